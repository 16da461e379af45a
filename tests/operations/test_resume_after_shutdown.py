"""`make run` stopped in the middle of an operation: the next start brings the brokers back and the
operation finishes.

Runs on the `local` backend's development broker (one node), played by the in-process driver: what is
shown is the shutdown/start bookkeeping and the operation resuming, which do not depend on the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.clusters.actions import request_cluster_create, request_restart
from controlplane.clusters.models import Cluster
from controlplane.clusters.reconcile import resume_local_clusters
from controlplane.clusters.specs import cluster_spec, get_backend
from controlplane.operations.models import Operation
from provisioning.backends.base import BrokerProcessState
from provisioning.backends.local import stop_all
from tests.operations.conftest import Driver
from tests.support.tenants import SYSTEM, Tenant

pytestmark = pytest.mark.slow


def rolling(operation: Operation) -> bool:
    roll = operation.steps.get(name="restart_brokers").output.get("roll") or {}
    return roll.get("current") is not None


def test_a_rolling_restart_interrupted_by_a_shutdown_finishes_after_the_next_start(
    tenant: Tenant, driver: Driver, settings: Any, tmp_path: Path
) -> None:
    settings.LOCAL_BACKEND_STATE_DIR = tmp_path / "local"
    settings.KAFKA_ADMIN_FACTORY = "controlplane.clusters.backends.confluent_admin"  # a real broker
    settings.OPERATION_MAX_TRANSIENT_RETRIES = 1
    get_backend.cache_clear()
    cluster, created = request_cluster_create(
        organization=tenant.organization,
        spec={
            "name": "interrupted",
            "backend": "local",
            "kafka_version": "4.4.0",
            "brokers": 1,
            "racks": ["a"],
            "replication_factor": 1,
            "min_insync_replicas": 1,
            "node_size": {"cpu": 1, "memory_mb": 1024, "disk_gb": 1},
        },
        actor=SYSTEM,
    )
    assert driver.run(created.id).state == "succeeded"
    backend = get_backend("local")
    try:
        restart = request_restart(cluster=Cluster.objects.get(pk=cluster.pk), actor=SYSTEM)
        assert driver.run(restart.id, until=rolling).state == "running"

        stop_all(settings.LOCAL_BACKEND_STATE_DIR)  # Ctrl-C of `make run`
        spec = cluster_spec(Cluster.objects.get(pk=cluster.pk))
        assert backend.describe(spec).brokers[0].state == BrokerProcessState.STOPPED

        assert resume_local_clusters() == 1  # the next `make run`
        assert backend.describe(spec).brokers[0].state == BrokerProcessState.RUNNING
        finished = driver.run(restart.id)
        assert finished.state == "succeeded", finished.error
        assert Cluster.objects.get(pk=cluster.pk).status == "running"
        assert resume_local_clusters() == 0, "nothing left to bring back"
    finally:
        backend.delete(cluster_spec(Cluster.objects.get(pk=cluster.pk)))
