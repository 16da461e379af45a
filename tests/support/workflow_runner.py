"""Runs a workflow's steps in the test's own process against a real backend and a real cluster.

The operations engine does the same from database rows through a Celery worker (tests of that path run
the whole thing through the REST API); here the steps themselves are the subject, so what they do to a
real Kafka cluster can be checked between polls. Like the engine, the runner merges each step's output
into the state later steps see, applies what a finished step changes in the cluster's record (removed
brokers, the Kafka version), retries transient errors and polls a step until it is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from provisioning.backends.base import Backend, BackendUnavailableError, ClusterSpec
from provisioning.kafka_admin.base import KafkaAdmin, KafkaUnavailableError
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.workflows.base import StepContext, StepRetry, Workflow

TRANSIENT_ERRORS = (StepRetry, BackendUnavailableError, KafkaUnavailableError)
# Polls are spaced as the step asks, but never longer than this: tests wait for real clusters.
MAX_POLL_SECONDS = 1.0


def real_admin(spec: ClusterSpec, bootstrap_servers: str) -> KafkaAdmin:
    return ConfluentKafkaAdmin(bootstrap_servers, timeout=10)


@dataclass
class WorkflowRun:
    spec: ClusterSpec
    bootstrap_servers: str
    state: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (step name, message)

    def log_lines(self, step: str | None = None) -> list[str]:
        return [message for name, message in self.logs if step is None or name == step]


def run_workflow(
    workflow: Workflow,
    *,
    spec: ClusterSpec,
    params: Mapping[str, Any],
    backend: Backend,
    bootstrap_servers: str,
    admin_factory: Callable[[ClusterSpec, str], KafkaAdmin] = real_admin,
    before_step: Callable[[str, WorkflowRun], None] | None = None,
    between_polls: Callable[[str, WorkflowRun], None] | None = None,
    timeout: float = 600.0,
    transient_retries: int = 30,
) -> WorkflowRun:
    """Run every step that applies to `params`, in order. `before_step(step name, run)` is called before
    a step first runs, `between_polls(step name, run)` after each poll of a step that is not done yet.
    A permanent failure (`StepFailed`) propagates."""
    run = WorkflowRun(spec=spec, bootstrap_servers=bootstrap_servers)
    deadline = time.monotonic() + timeout
    for step in workflow.steps_for(params):
        if before_step is not None:
            before_step(step.name, run)
        started_at = datetime.now(UTC)
        attempt = 0
        retries = 0
        while True:
            attempt += 1
            ctx = StepContext(
                spec=run.spec,
                params=params,
                state=dict(run.state),
                backend=backend,
                admin_factory=admin_factory,
                log=lambda message, name=step.name: run.logs.append((name, message)),
                started_at=started_at,
                attempt=attempt,
                bootstrap_servers=run.bootstrap_servers,
            )
            try:
                outcome = step.run(ctx)
            except TRANSIENT_ERRORS as exc:
                retries += 1
                if retries > transient_retries:
                    raise
                run.logs.append((step.name, f"transient error, retrying: {exc}"))
                time.sleep(MAX_POLL_SECONDS)
                continue
            run.state.update(outcome.output)
            if outcome.description is not None and outcome.description.bootstrap_servers:
                run.bootstrap_servers = outcome.description.bootstrap_servers
            if outcome.done:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"step {step.name} of {workflow.kind} not done after {timeout} s")
            if between_polls is not None:
                between_polls(step.name, run)
            time.sleep(min(outcome.poll_after_seconds, MAX_POLL_SECONDS))
        if outcome.removed_brokers:
            gone = set(outcome.removed_brokers)
            run.spec = replace(run.spec, brokers=tuple(b for b in run.spec.brokers if b.node_id not in gone))
        if outcome.kafka_version is not None:
            run.spec = replace(run.spec, kafka_version=outcome.kafka_version)
    return run
