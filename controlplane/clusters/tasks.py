"""Periodic reconciliation of what backends report with what the database holds, and self-healing."""

from __future__ import annotations

from celery import shared_task

from controlplane.clusters import reconcile
from controlplane.clusters.actions import heal_broker_anomalies


@shared_task(ignore_result=True)
def reconcile_clusters() -> int:
    count = reconcile.reconcile_all()
    # Also catches anomalies that became due with nobody observing them again (a retry delay that
    # ran out, an operation that was in the way and has finished).
    heal_broker_anomalies()
    return count
