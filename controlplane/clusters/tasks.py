"""Periodic reconciliation of what backends report with what the database holds."""

from __future__ import annotations

from celery import shared_task

from controlplane.clusters import reconcile


@shared_task(ignore_result=True)
def reconcile_clusters() -> int:
    return reconcile.reconcile_all()
