"""Celery entry points for alerting. Thin: they take ids and call the delivery or housekeeping code."""

from __future__ import annotations

from celery import shared_task

from monitoring.alerting import delivery
from monitoring.alerting import housekeeping as housekeeping_jobs


# acks_late: a worker lost mid-send leaves the attempt "sending"; housekeeping then records it as
# failed and schedules the next attempt, so the message is never silently dropped.
# Bounded well above the longest channel timeout, so a silent receiver can hold a worker only so long.
@shared_task(
    acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=120, time_limit=150
)
def deliver_notification(delivery_id: int) -> None:
    delivery.attempt_delivery(delivery_id)


# acks_late: a worker lost mid-way hands the whole list on again; attempts already queued are not
# sent twice (only the run that claims a pending attempt sends it).
@shared_task(
    acks_late=True, reject_on_worker_lost=True, ignore_result=True, soft_time_limit=120, time_limit=150
)
def dispatch_deliveries(delivery_ids: list[int]) -> None:
    delivery.dispatch(delivery_ids)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def housekeeping() -> None:
    housekeeping_jobs.run()
