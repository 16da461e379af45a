"""Celery entry points of monitoring. Thin: ids in, one function of `monitoring.collector` or
`monitoring.history` each."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from monitoring import collector, history

log = logging.getLogger(__name__)

# The admin client bounds each request; this bounds the whole collection (several requests) as well,
# so a cluster that answers slowly but within each request's timeout cannot hold a worker for long.
COLLECTION_TIME_LIMIT = float(getattr(settings, "MONITORING_COLLECTION_TIME_LIMIT_SECONDS", 60))


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def schedule_collections() -> int:
    """Enqueue one `collect_cluster` per cluster that is due (beat runs this every few seconds)."""
    due = collector.claim_due_clusters()
    for cluster_id in due:
        collect_cluster.delay(str(cluster_id))
    return len(due)


# Not acks_late: a collection lost with its worker is simply taken again on the next schedule, and
# redelivering a stale one would only record an old picture.
@shared_task(
    ignore_result=True,
    acks_late=False,
    soft_time_limit=COLLECTION_TIME_LIMIT,
    time_limit=COLLECTION_TIME_LIMIT + 15,
)
def collect_cluster(cluster_id: str) -> None:
    try:
        collector.collect_cluster(uuid.UUID(cluster_id))
    except SoftTimeLimitExceeded:
        collector.record_collection_failure(
            uuid.UUID(cluster_id), f"collection took longer than {COLLECTION_TIME_LIMIT:g} s"
        )


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def prune_history() -> None:
    averaged, deleted = history.prune_history()
    log.info("monitoring history: %d raw points averaged, %d expired points deleted", averaged, deleted)
