"""Comparing what backends report with what the database holds.

A broker process that died shows up here: the cluster turns `degraded` with the reason, and back to
`running` once every broker runs again. Each crashed or missing broker is also recorded as an anomaly
(`record_broker_unreachable`), which self-healing acts on once it has lasted long enough.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from controlplane.clusters.actions import (
    heal_broker_anomalies,
    record_broker_unreachable,
    record_brokers_reachable,
    sync_cluster_description,
)
from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import BackendNotAvailable, backend_for, cluster_spec, get_backend
from controlplane.operations.choices import ACTIVE_OPERATION_STATES
from provisioning.backends.base import BackendError, BrokerProcessState, ClusterDescription

logger = logging.getLogger(__name__)

SERVING_STATUSES = (ClusterStatus.RUNNING, ClusterStatus.DEGRADED)
# Stopped on purpose (a restart in progress) is not unreachable.
UNREACHABLE_STATES = (BrokerProcessState.CRASHED, BrokerProcessState.MISSING)


def _down_reason(description: ClusterDescription) -> str:
    down = [b for b in description.brokers if b.state != BrokerProcessState.RUNNING]
    return "; ".join(
        f"broker {b.node_id} ({b.rack}) is {b.state}" + (f": {b.detail}" if b.detail else "") for b in down
    )


def reconcile_cluster(cluster: Cluster, *, restart: bool = False) -> None:
    """Refresh one cluster's broker states; with `restart`, start brokers that should run but do not."""
    backend = backend_for(cluster)
    spec = cluster_spec(cluster)
    # Brokers planned but never started are expected to be missing.
    planned = set(cluster.brokers.filter(state=BrokerState.PENDING).values_list("node_id", flat=True))
    description = backend.provision(spec) if restart else backend.describe(spec)
    sync_cluster_description(cluster_id=cluster.id, description=description)
    _record_reachability(cluster, description, planned)
    reason = _down_reason(description)
    # Only clusters without an operation in flight: an operation owns the status while it runs.
    idle = Cluster.objects.filter(pk=cluster.pk, status__in=SERVING_STATUSES).exclude(
        operations__state__in=ACTIVE_OPERATION_STATES
    )
    if reason:
        idle.update(status=ClusterStatus.DEGRADED, status_reason=reason, updated_at=timezone.now())
    else:
        idle.filter(status=ClusterStatus.DEGRADED).update(
            status=ClusterStatus.RUNNING, status_reason="", updated_at=timezone.now()
        )


def _record_reachability(cluster: Cluster, description: ClusterDescription, planned: set[int]) -> None:
    now = timezone.now()
    for broker in description.brokers:
        if broker.node_id in planned:
            continue
        if broker.state in UNREACHABLE_STATES:
            detail = f"{broker.state}" + (f": {broker.detail}" if broker.detail else "")
            record_broker_unreachable(
                cluster.id,
                broker.node_id,
                seen_at=now,
                detail=f"the backend reports it {detail}",
                source="reconcile",
                heal=False,
            )
        elif broker.state == BrokerProcessState.RUNNING:
            record_brokers_reachable(cluster.id, [broker.node_id], seen_at=now)
    # Once every broker is recorded, so that several down at once are seen together.
    heal_broker_anomalies(cluster_id=cluster.id)


def resume_local_clusters() -> int:
    """Bring back the `local` brokers stopped when the control plane last shut down, whatever their
    cluster is doing: an operation interrupted by the shutdown then resumes against the cluster it left
    (a rolling restart finds its other brokers up, a provisioning its started brokers). Returns how
    many clusters had brokers to bring back."""
    try:
        backend = get_backend("local")
    except BackendNotAvailable:
        return 0
    resume = getattr(backend, "resume_after_shutdown", None)
    if resume is None:
        return 0
    count = 0
    clusters = Cluster.objects.filter(backend="local").exclude(status=ClusterStatus.DELETED)
    for cluster in clusters.select_related("organization"):
        try:
            count += bool(resume(cluster_spec(cluster)))
        except BackendError as exc:
            logger.warning("cluster=%s could not be resumed: %s", cluster.id, exc)
    return count


def reconcile_all(*, restart: bool = False, backend: str | None = None) -> int:
    clusters = Cluster.objects.filter(status__in=SERVING_STATUSES).select_related("organization")
    if backend:
        clusters = clusters.filter(backend=backend)
    count = 0
    for cluster in clusters:
        try:
            reconcile_cluster(cluster, restart=restart)
            count += 1
        except (BackendError, BackendNotAvailable) as exc:
            logger.warning("cluster=%s reconcile failed: %s", cluster.id, exc)
    return count
