"""Two changes to one cluster at the same moment, from two threads on real PostgreSQL connections:
exactly one starts an operation, the other is refused with 409 naming it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from controlplane.operations import actions as operation_actions
from controlplane.operations.actions import OperationConflict, start_operation
from controlplane.operations.choices import OperationKind
from controlplane.operations.models import Operation
from tests.support.tenants import SYSTEM, Tenant, token_client


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def running_cluster(tenant: Tenant, transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setattr(operation_actions, "dispatch_operation", lambda *args, **kwargs: None)
    cluster, operation = request_cluster_create(
        organization=tenant.organization,
        spec={
            "name": "contended",
            "backend": "local",
            "kafka_version": "4.2.2",
            "brokers": 1,
            "racks": ["rack-1"],
            "replication_factor": 1,
            "min_insync_replicas": 1,
            "node_size": {"cpu": 1, "memory_mb": 1024, "disk_gb": 1},
        },
        actor=SYSTEM,
    )
    # As if provisioning had finished.
    Operation.objects.filter(pk=operation.pk).update(state="succeeded")
    Cluster.objects.filter(pk=cluster.pk).update(status="running")
    return cluster


def test_two_requests_at_once_one_202_one_409(tenant: Tenant, running_cluster: Cluster) -> None:
    restart, upgrade = token_client(tenant.admin), token_client(tenant.owner)
    base = f"/api/v1/clusters/{running_cluster.id}"

    responses = run_together(
        lambda: restart.post(f"{base}/restart/", {}, format="json"),
        lambda: upgrade.post(f"{base}/upgrade/", {"kafka_version": "4.3.2"}, format="json"),
    )

    assert sorted(r.status_code for r in responses) == [202, 409]
    accepted = next(r for r in responses if r.status_code == 202).json()["operation"]["id"]
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["operation"] == accepted
    assert Operation.objects.filter(cluster=running_cluster, state="pending").count() == 1


def test_the_database_itself_refuses_a_second_active_operation(
    running_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past every check in Python (no row lock, no look-up first), the partial unique constraint still
    lets only one operation in, and the refusal names the one that got in."""
    real = operation_actions.active_operation

    def only_when_naming_the_winner(cluster: Cluster) -> Operation | None:
        # The look-up after the failed insert runs while the IntegrityError is being handled.
        return real(cluster) if sys.exc_info()[0] is not None else None

    monkeypatch.setattr(operation_actions, "active_operation", only_when_naming_the_winner)

    def start(kind: OperationKind) -> Operation:
        return start_operation(cluster=running_cluster, kind=kind, actor=SYSTEM, params={})

    results = run_together(lambda: start(OperationKind.RESTART), lambda: start(OperationKind.RESTART))

    started = [r for r in results if isinstance(r, Operation)]
    refused = [r for r in results if isinstance(r, OperationConflict)]
    assert len(started) == 1 and len(refused) == 1, results
    assert refused[0].running is not None and refused[0].running.id == started[0].id
