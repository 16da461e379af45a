"""What a workflow is: an ordered list of named, idempotent steps.

A step gets everything through `StepContext` (the cluster's desired spec, the operation's parameters,
what earlier steps produced, the backend, a Kafka admin factory and a log) and answers a `StepOutcome`.
It never touches the database: the operations engine persists outcomes. A step must be safe to run
again from the start after a worker died in the middle of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provisioning.backends.base import Backend, ClusterDescription, ClusterSpec
from provisioning.kafka_admin.base import KafkaAdmin


class StepFailed(Exception):
    """A permanent failure: retrying will not help. `code` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})


class StepRetry(Exception):
    """A transient failure (infrastructure unreachable): the engine retries with backoff."""


@dataclass(frozen=True)
class StepContext:
    spec: ClusterSpec
    params: Mapping[str, Any]
    state: Mapping[str, Any]  # outputs of the steps before this one, merged in order
    backend: Backend
    admin_factory: Callable[[ClusterSpec, str], KafkaAdmin]  # (spec, bootstrap servers) -> admin
    log: Callable[[str], None]
    started_at: datetime  # when this step first started (polls keep the first time)
    attempt: int
    bootstrap_servers: str = ""

    def admin(self) -> KafkaAdmin:
        if not self.bootstrap_servers:
            raise StepFailed("no_bootstrap", "The cluster has no bootstrap address yet.")
        return self.admin_factory(self.spec, self.bootstrap_servers)


@contextmanager
def open_admin(ctx: StepContext) -> Iterator[KafkaAdmin]:
    """The cluster's admin client for the length of a `with` block, closed afterwards."""
    admin = ctx.admin()
    try:
        yield admin
    finally:
        admin.close()


@dataclass(frozen=True)
class StepOutcome:
    done: bool = True  # False: poll this step again after `poll_after_seconds`
    output: Mapping[str, Any] = field(default_factory=dict)
    description: ClusterDescription | None = None  # the backend's view, synced into broker rows
    progress: tuple[int, int] | None = None  # (done, total) within this step
    poll_after_seconds: float = 2.0
    # Changes to the cluster's record that the engine commits together with the step's success.
    removed_brokers: tuple[int, ...] = ()  # brokers gone for good: their records are dropped
    kafka_version: str | None = None  # the Kafka version every broker now runs


StepFunction = Callable[[StepContext], StepOutcome]


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    run: StepFunction
    timeout_seconds: float = 900.0
    # Whether an operation with these parameters has this step (e.g. only a scale-in removes
    # brokers); decided once, when the operation is recorded. None: every operation has it.
    applies: Callable[[Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Workflow:
    kind: str
    steps: tuple[Step, ...]
    # Best effort after a cancellation or a permanent failure, so the cluster is not left with what
    # only made sense while the operation ran (replication throttles, reassignments nobody follows).
    # Gets the context of the step where the operation stopped, with every step's output so far.
    cleanup: StepFunction | None = None

    def steps_for(self, params: Mapping[str, Any]) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.applies is None or step.applies(params))

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"workflow {self.kind!r} has no step {name!r}")


def started_again(ctx: StepContext, node_id: int, description: ClusterDescription) -> ClusterDescription:
    """Log that a broker was started again and what it still holds: never claim data a backend does
    not keep (the development broker loses everything with its process)."""
    if description.durable:
        ctx.log(f"broker {node_id} started again with its data")
    else:
        ctx.log(f"broker {node_id} started again empty: {description.durability_note}")
    return description
