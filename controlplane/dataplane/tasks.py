"""Celery entry points of the data plane: the drift check of every cluster with managed topics. Thin:
ids in, one action out."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from controlplane.clusters.models import Cluster
from controlplane.dataplane import actions
from controlplane.dataplane.errors import ClusterUnreachable, DataPlaneConflict
from controlplane.dataplane.kafka import SERVING_STATUSES

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=45)
def schedule_drift_checks() -> int:
    """One `check_topic_drift` per serving cluster that has managed topics (beat runs this)."""
    cluster_ids = list(
        Cluster.objects.filter(status__in=SERVING_STATUSES, topics__isnull=False)
        .distinct()
        .values_list("pk", flat=True)
    )
    for cluster_id in cluster_ids:
        check_topic_drift.delay(str(cluster_id))
    return len(cluster_ids)


# Not acks_late: a check lost with its worker is simply made again on the next schedule.
@shared_task(ignore_result=True, acks_late=False, soft_time_limit=120, time_limit=150)
def check_topic_drift(cluster_id: str) -> int:
    """Compare a cluster's managed topics with Kafka and act on its drift policy; returns how many
    topics differ."""
    cluster = Cluster.objects.select_related("organization").filter(pk=uuid.UUID(cluster_id)).first()
    if cluster is None:
        return 0
    try:
        found = actions.check_drift(cluster=cluster)
    except (ClusterUnreachable, DataPlaneConflict) as exc:
        log.info("cluster=%s drift not checked: %s", cluster_id, exc)
        return 0
    return sum(bool(drift) for drift in found.values())
