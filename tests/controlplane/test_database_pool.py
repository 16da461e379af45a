"""Database connections of Celery workers: each pool process keeps a connection pool of its own
(never one inherited across the fork) and every task takes its connection from it and hands it back,
instead of opening and closing one per task; a connection PostgreSQL dropped is replaced, not handed
out. Proven with a real worker (two pool processes) on Redis and the test's PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from monitoring.alerting import actions
from monitoring.alerting.choices import DeliveryStatus
from monitoring.alerting.evaluation import evaluate_cluster
from monitoring.alerting.models import Delivery
from tests.support.alerting import make_cluster, unreachable_snapshot
from tests.support.http_receiver import HttpReceiver
from tests.support.tenants import SYSTEM, Tenant

CHANNELS = 12  # one delivery task each per incident, plus one task that fans them out


def sessions_established() -> int:
    """Connections ever made to the test database (PostgreSQL counts them when a backend starts)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def drop_other_connections() -> int:
    """Terminate every other backend of the test database, as a PostgreSQL restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def wait_for_deliveries(count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{count} deliveries not sent by the worker within {timeout} s")


@pytest.mark.slow
def test_worker_tasks_share_their_process_pool_and_survive_dropped_connections(
    start_worker: Any, tenant: Tenant, http_receiver: HttpReceiver
) -> None:
    assert settings.DATABASES["default"]["OPTIONS"].get("pool"), "PostgreSQL connections are pooled"
    for number in range(CHANNELS):
        actions.create_channel(
            organization=tenant.organization,
            name=f"hook-{number}",
            kind="webhook",
            config={"url": http_receiver.url_for(f"/hook-{number}"), "secret": "whsec-pool"},
            min_severity="warning",
            enabled=True,
            repeat_interval_seconds=None,
            actor=SYSTEM,
        )
    first, second = (make_cluster(tenant.organization, name=name) for name in ("payments", "orders"))
    before = sessions_established()
    worker = start_worker(purge=True, queues=["notifications"])

    evaluate_cluster(first.pk, unreachable_snapshot(first, datetime.now(UTC)))
    wait_for_deliveries(CHANNELS)

    # Every pooled connection of the worker's processes is gone; their next tasks must not fail on it.
    assert drop_other_connections() >= 1
    evaluate_cluster(second.pk, unreachable_snapshot(second, datetime.now(UTC)))
    wait_for_deliveries(2 * CHANNELS)
    assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
    assert len(http_receiver.requests) == 2 * CHANNELS

    worker.stop()
    tasks = 2 * (CHANNELS + 1)
    sessions = sessions_established() - before
    # Two pool processes, each with a connection before and after the drop (and the main process's
    # start-up checks): a connection per task would be at least `tasks`.
    assert sessions <= 8 < tasks, f"{sessions} connections for {tasks} tasks"
    log = worker.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
