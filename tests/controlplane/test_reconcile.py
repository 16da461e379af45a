"""A broker process of a `local` cluster that dies is visible as such, and comes back on restart."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from django.conf import settings

from controlplane.audit.actions import Actor
from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from controlplane.clusters.reconcile import reconcile_all
from controlplane.operations.engine import run_operation
from tests.support.tenants import Tenant

pytestmark = pytest.mark.slow


def broker_pid(cluster: Cluster) -> int:
    state = json.loads((Path(settings.LOCAL_BACKEND_STATE_DIR) / str(cluster.id) / "state.json").read_text())
    (broker,) = state["brokers"]
    return int(broker["pid"])


@pytest.fixture
def running_cluster(transactional_db: None, tenant: Tenant) -> Cluster:
    spec = {
        "name": "payments",
        "backend": "local",
        "kafka_version": settings.DEFAULT_KAFKA_VERSION,
        "brokers": 1,
        "racks": ["rack-1"],
        "replication_factor": 1,
        "min_insync_replicas": 1,
        "node_size": {"cpu": 1, "memory_mb": 1024, "disk_gb": 1},
    }
    cluster, operation = request_cluster_create(
        organization=tenant.organization, spec=spec, actor=Actor.system("tests")
    )
    # The engine runs in this process here; test_end_to_end covers a real worker.
    for _ in range(30):
        run_operation(operation.id)
        operation.refresh_from_db()
        if operation.state != "running":
            break
    cluster.refresh_from_db()
    assert cluster.status == "running", operation.error
    yield cluster
    from controlplane.clusters.specs import cluster_spec, get_backend

    get_backend("local").delete(cluster_spec(cluster))


def test_a_crashed_broker_degrades_the_cluster_with_the_reason(running_cluster: Cluster) -> None:
    os.kill(broker_pid(running_cluster), signal.SIGKILL)

    reconcile_all()

    running_cluster.refresh_from_db()
    broker = running_cluster.brokers.get()
    assert running_cluster.status == "degraded"
    assert "broker 0 (rack-1) is crashed" in running_cluster.status_reason
    assert broker.state == "crashed"
    assert broker.state_detail

    reconcile_all(restart=True)

    running_cluster.refresh_from_db()
    assert running_cluster.status == "running"
    assert running_cluster.status_reason == ""
    assert running_cluster.brokers.get().state == "running"
