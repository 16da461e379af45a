"""Operations run in this process against the simulated cluster stand-in (see
tests/support/simulated_backend.py): a test plays the worker with `Driver`, letting simulated time pass
between polls, so a multi-hour rebalance runs in a moment and every interleaving is reproducible.
The tests that need real processes (a Celery worker killed mid-operation, concurrent requests) say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import get_backend
from controlplane.operations import actions as operation_actions
from controlplane.operations import engine
from controlplane.operations.choices import FINISHED_OPERATION_STATES
from controlplane.operations.models import Operation
from tests.support.simulated_backend import (
    ADMIN_FACTORY,
    BACKEND_FACTORY,
    BACKEND_NAME,
    SIMULATION,
    Simulation,
    StandInKafkaCluster,
)
from tests.support.tenants import SYSTEM, Tenant


@pytest.fixture
def simulation(settings: Any) -> Iterator[Simulation]:
    settings.CONTROLPLANE_BACKENDS = {**settings.CONTROLPLANE_BACKENDS, BACKEND_NAME: BACKEND_FACTORY}
    settings.KAFKA_ADMIN_FACTORY = ADMIN_FACTORY
    get_backend.cache_clear()
    SIMULATION.reset()
    yield SIMULATION
    SIMULATION.reset()
    get_backend.cache_clear()


class Driver:
    """Plays the Celery worker in the test's process: runs an operation as `run_operation` tasks would,
    and between runs lets as much simulated time pass as the last dispatch asked to wait."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.dispatches: list[tuple[Any, float | None]] = []
        self.history: list[tuple[Any, float | None]] = []

    def dispatch(self, operation_id: Any, *, countdown: float | None = None) -> None:
        self.dispatches.append((operation_id, countdown))
        self.history.append((operation_id, countdown))

    def run_once(self, operation_id: Any) -> Operation:
        self.dispatches.clear()
        engine.run_operation(operation_id)
        return Operation.objects.get(pk=operation_id)

    def run(
        self, operation_id: Any, *, until: Callable[[Operation], bool] | None = None, rounds: int = 20_000
    ) -> Operation:
        for _ in range(rounds):
            operation = self.run_once(operation_id)
            if operation.state in FINISHED_OPERATION_STATES or (until is not None and until(operation)):
                return operation
            self.simulation.advance(max((c or 0.0 for _, c in self.dispatches), default=0.0))
        raise AssertionError(f"operation {operation_id} still {operation.state} after {rounds} runs")


@pytest.fixture
def driver(simulation: Simulation, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Driver:
    runner = Driver(simulation)
    monkeypatch.setattr(operation_actions, "dispatch_operation", runner.dispatch)
    # The test's transaction is invisible to other connections, so the heartbeat thread (which has
    # its own) would find no operation and give the lease up; and closing "old" connections would
    # end the test's transaction. Neither matters within one process.
    settings.OPERATION_HEARTBEAT_SECONDS = 3600
    monkeypatch.setattr(engine, "close_old_connections", lambda: None)
    return runner


ClusterFactory = Callable[..., tuple[Cluster, StandInKafkaCluster]]


@pytest.fixture
def simulated_cluster(tenant: Tenant, driver: Driver, simulation: Simulation) -> ClusterFactory:
    """A provisioned cluster on the simulated backend, with topics, and data in every partition."""

    def make(
        *,
        name: str = "orders",
        brokers: int = 6,
        racks: int = 3,
        replication_factor: int = 3,
        min_insync_replicas: int = 2,
        topics: tuple[tuple[str, int], ...] = (("payments", 12), ("events", 12)),
        records: int = 2000,
    ) -> tuple[Cluster, StandInKafkaCluster]:
        cluster, operation = request_cluster_create(
            organization=tenant.organization,
            spec={
                "name": name,
                "backend": BACKEND_NAME,
                "kafka_version": "4.2.2",
                "brokers": brokers,
                "racks": [f"rack-{i}" for i in range(1, racks + 1)],
                "replication_factor": replication_factor,
                "min_insync_replicas": min_insync_replicas,
                "node_size": {"cpu": 2, "memory_mb": 4096, "disk_gb": 100},
            },
            actor=SYSTEM,
        )
        assert driver.run(operation.id).state == "succeeded"
        kafka = simulation.cluster(str(cluster.id))
        for topic, partitions in topics:
            kafka.create_topic(
                topic, partitions, replication_factor, {"min.insync.replicas": str(min_insync_replicas)}
            )
            for partition in range(partitions):
                kafka.produce(topic, partition, records)
        cluster.refresh_from_db()
        return cluster, kafka

    return make
