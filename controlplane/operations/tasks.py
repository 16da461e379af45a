"""Celery entry points for operations. Thin: they take ids and call the engine."""

from __future__ import annotations

import uuid

from celery import shared_task

from controlplane.operations import engine


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_operation(operation_id: str) -> None:
    engine.run_operation(uuid.UUID(operation_id))


@shared_task(ignore_result=True)
def reap_stalled_operations() -> int:
    return len(engine.reap_stalled_operations())
