"""A STAND-IN for multi-broker Kafka clusters, for tests and benchmarks only.

No multi-broker Apache Kafka can run on these machines (see KAFKA-HERE.md), so operations that move
replicas, roll brokers or replace them are exercised against `SimulatedKafkaCluster`:

- `SimulatedBackend` implements the provisioning `Backend` interface by acting on the simulator
  (provision adds brokers, which register after `registration_delay` simulated seconds; remove,
  restart and replace act on the simulated brokers);
- `simulated_admin` is a `KAFKA_ADMIN_FACTORY` that returns the simulator of a cluster as its admin.

Both share one `Simulation` (`SIMULATION`), which keeps the simulators by cluster id and lets time pass
(`advance`). Tests select them with settings overrides: `CONTROLPLANE_BACKENDS["simulated"]` and
`KAFKA_ADMIN_FACTORY` (and clear `get_backend`'s cache).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from provisioning.backends.base import (
    BackendError,
    BrokerProcessState,
    BrokerStatus,
    ClusterDescription,
    ClusterSpec,
    KafkaConnection,
    ProvisioningPlan,
)
from provisioning.kafka_admin.base import KafkaAdmin, TopicPartition
from tests.support.simulator import SimulatedKafkaCluster

BACKEND_NAME = "simulated"
BACKEND_FACTORY = "tests.support.simulated_backend.simulated_backend"
ADMIN_FACTORY = "tests.support.simulated_backend.simulated_admin"


class StandInKafkaCluster(SimulatedKafkaCluster):
    """The simulator, plus a record of what tests check afterwards: which brokers exist and run,
    every throttle change and reassignment submitted (with the throttles in force at that moment),
    and the release whose feature levels were finalized last."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.members: dict[int, str | None] = {}
        self.down: set[int] = set()
        self.throttle_changes: list[tuple[str, list[int], int | None]] = []
        self.submissions: list[tuple[dict[TopicPartition, list[int] | None], dict[int, int]]] = []
        self.finalized_release: str | None = None
        super().__init__(*args, **kwargs)

    def add_broker(self, node_id: int, rack: str | None = None) -> None:
        super().add_broker(node_id, rack)
        self.members[node_id] = rack

    def remove_broker(self, node_id: int) -> None:
        super().remove_broker(node_id)
        del self.members[node_id]
        self.down.discard(node_id)

    def fail_broker(self, node_id: int) -> None:
        super().fail_broker(node_id)
        self.down.add(node_id)

    def restore_broker(self, node_id: int) -> None:
        super().restore_broker(node_id)
        self.down.discard(node_id)

    def set_replication_throttle(self, broker_ids: Collection[int], bytes_per_second: int) -> None:
        super().set_replication_throttle(broker_ids, bytes_per_second)
        self.throttle_changes.append(("set", sorted(broker_ids), bytes_per_second))

    def clear_replication_throttle(self, broker_ids: Collection[int], topics: Collection[str] = ()) -> None:
        super().clear_replication_throttle(broker_ids, topics)
        self.throttle_changes.append(("clear", sorted(broker_ids), None))

    def alter_partition_reassignments(self, targets: Mapping[TopicPartition, list[int] | None]) -> None:
        super().alter_partition_reassignments(targets)
        self.submissions.append((dict(targets), self.throttles))

    def update_features(self, release: str) -> dict[str, int]:
        levels = super().update_features(release)
        self.finalized_release = release
        return levels

    def replicas_on(self, node_id: int) -> int:
        return sum(node_id in p.replicas for t in self.describe_cluster().topics for p in t.partitions)


@dataclass
class Simulation:
    clusters: dict[str, StandInKafkaCluster] = field(default_factory=dict)
    registration_delay: float = 5.0
    # cluster id -> node id -> (rack, simulated time it registers at)
    starting: dict[str, dict[int, tuple[str, float]]] = field(default_factory=dict)
    # What the backend was asked to do, in order: (action, node id, details).
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    # Errors to raise from backend methods, by method name, first in first out.
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    # Set to play a backend whose brokers keep no data across a restart (the development broker).
    durability_note: str = ""

    def reset(self) -> None:
        self.clusters.clear()
        self.starting.clear()
        self.events.clear()
        self.failures.clear()
        self.registration_delay = 5.0
        self.durability_note = ""

    def cluster(self, cluster_id: str) -> StandInKafkaCluster:
        return self.clusters[str(cluster_id)]

    def fail_next(self, method: str, *errors: Exception) -> None:
        self.failures.setdefault(method, []).extend(errors)

    def advance(self, seconds: float) -> None:
        """Let simulated time pass on every cluster; brokers whose start is due register."""
        for cluster_id, kafka in self.clusters.items():
            kafka.advance(seconds)
            starting = self.starting.get(cluster_id, {})
            for node_id, (rack, due) in sorted(starting.items()):
                if due <= kafka.now:
                    kafka.add_broker(node_id, rack)
                    del starting[node_id]


SIMULATION = Simulation()


class SimulatedBackend:
    """The provisioning `Backend` interface acting on `SIMULATION`'s clusters. Tests only."""

    name = BACKEND_NAME

    def __init__(self, simulation: Simulation = SIMULATION) -> None:
        self.simulation = simulation

    def _maybe_fail(self, method: str) -> None:
        pending = self.simulation.failures.get(method)
        if pending:
            raise pending.pop(0)

    def _kafka(self, spec: ClusterSpec) -> StandInKafkaCluster:
        clusters = self.simulation.clusters
        if spec.cluster_id not in clusters:
            clusters[spec.cluster_id] = StandInKafkaCluster(cluster_id=spec.cluster_id)
        return clusters[spec.cluster_id]

    def validate(self, spec: ClusterSpec) -> dict[str, str]:
        self._maybe_fail("validate")
        return {}

    def plan(self, spec: ClusterSpec) -> ProvisioningPlan:
        return ProvisioningPlan(summary=f"{len(spec.brokers)} simulated broker(s)", artifacts={})

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        self._maybe_fail("provision")
        kafka = self._kafka(spec)
        starting = self.simulation.starting.setdefault(spec.cluster_id, {})
        for broker in spec.brokers:
            if broker.node_id in kafka.members:
                if broker.node_id in kafka.down:
                    kafka.restore_broker(broker.node_id)
            elif broker.node_id not in starting:
                self.simulation.events.append(("start", broker.node_id, {"rack": broker.rack}))
                if self.simulation.registration_delay <= 0:
                    kafka.add_broker(broker.node_id, broker.rack)
                else:
                    starting[broker.node_id] = (broker.rack, kafka.now + self.simulation.registration_delay)
        return self.describe(spec)

    def remove_brokers(self, spec: ClusterSpec, node_ids: list[int]) -> ClusterDescription:
        self._maybe_fail("remove_brokers")
        kafka = self._kafka(spec)
        for node_id in node_ids:
            if node_id not in kafka.members:
                continue  # removed already: removing is idempotent
            held = kafka.replicas_on(node_id)
            self.simulation.events.append(("remove", node_id, {"replicas": held}))
            try:
                kafka.remove_broker(node_id)
            except ValueError as exc:
                raise BackendError(str(exc)) from exc
        gone = set(node_ids)
        return self.describe(replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id not in gone)))

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        self._maybe_fail("restart_broker")
        kafka = self._kafka(spec)
        if node_id not in kafka.members:
            raise BackendError(f"broker {node_id} has not been provisioned")
        state = kafka.describe_cluster()
        self.simulation.events.append(
            (
                "restart",
                node_id,
                {
                    "version": spec.kafka_version,
                    "at": kafka.now,
                    "controller": state.controller_id,
                    "under_replicated": sum(p.under_replicated for t in state.topics for p in t.partitions),
                },
            )
        )
        kafka.restart_broker(node_id)

    def replace_broker(self, spec: ClusterSpec, node_id: int, *, keep_disk: bool) -> ClusterDescription:
        self._maybe_fail("replace_broker")
        kafka = self._kafka(spec)
        if node_id not in kafka.members:
            raise BackendError(f"broker {node_id} has not been provisioned")
        if not keep_disk:
            raise BackendError("the simulation does not model a broker losing its disk in place")
        self.simulation.events.append(("replace", node_id, {"keep_disk": keep_disk}))
        if node_id in kafka.down:
            kafka.restore_broker(node_id)
        else:
            kafka.restart_broker(node_id)
        return self.describe(spec)

    def delete(self, spec: ClusterSpec) -> bool:
        self.simulation.clusters.pop(spec.cluster_id, None)
        self.simulation.starting.pop(spec.cluster_id, None)
        return True

    def connection(self, spec: ClusterSpec, bootstrap_servers: str) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers)

    def describe(self, spec: ClusterSpec) -> ClusterDescription:
        kafka = self.simulation.clusters.get(spec.cluster_id)
        starting = self.simulation.starting.get(spec.cluster_id, {})
        statuses = []
        for broker in sorted(spec.brokers, key=lambda b: b.node_id):
            endpoint = f"broker-{broker.node_id}.simulated.invalid:9092"
            if kafka is not None and broker.node_id in kafka.members:
                state = (
                    BrokerProcessState.CRASHED if broker.node_id in kafka.down else BrokerProcessState.RUNNING
                )
            elif broker.node_id in starting:
                state = BrokerProcessState.STARTING
            else:
                state, endpoint = BrokerProcessState.MISSING, ""
            statuses.append(BrokerStatus(broker.node_id, broker.rack, endpoint, state))
        bootstrap = f"simulated://{spec.cluster_id}" if kafka is not None else ""
        note = self.simulation.durability_note
        return ClusterDescription(
            bootstrap_servers=bootstrap, brokers=tuple(statuses), durable=not note, durability_note=note
        )


def simulated_backend() -> SimulatedBackend:
    return SimulatedBackend(SIMULATION)


def simulated_admin(spec: ClusterSpec, bootstrap_servers: str) -> KafkaAdmin:
    return SIMULATION.cluster(spec.cluster_id)
