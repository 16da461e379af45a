"""What an operation's start and end mean for its cluster: status, broker records, healing anomalies.

Kept beside the operation's own state changes (`operations.actions`), which call `apply_operation_outcome`
in the same transaction that finishes an operation: a worker dying between the two writes would
otherwise leave the cluster `updating` or `provisioning` for good.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from controlplane.clusters.choices import AnomalyState, BrokerState, ClusterStatus
from controlplane.clusters.models import Broker, BrokerAnomaly, Cluster
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from controlplane.targets.hosts import free_cluster_hosts

# Kinds whose failure leaves no serving cluster behind.
_LIFECYCLE_KINDS = {OperationKind.PROVISION, OperationKind.DELETE}
MAX_HEALING_RETRY_SECONDS = 24 * 3600.0


def record_operation_started(operation_id: uuid.UUID) -> None:
    operation = Operation.objects.select_related("cluster").get(pk=operation_id)
    if operation.kind == OperationKind.PROVISION:
        Cluster.objects.filter(pk=operation.cluster_id, status=ClusterStatus.REQUESTED).update(
            status=ClusterStatus.PROVISIONING, updated_at=timezone.now()
        )
    elif operation.kind != OperationKind.DELETE:
        Cluster.objects.filter(pk=operation.cluster_id).exclude(
            status__in=[ClusterStatus.DELETING, ClusterStatus.DELETED]
        ).update(status=ClusterStatus.UPDATING, updated_at=timezone.now())


def apply_operation_outcome(operation_id: uuid.UUID) -> None:
    """Move the cluster to the status its finished operation implies. Called inside the transaction
    that finishes the operation, so the two are committed together or not at all."""
    operation = Operation.objects.select_related("cluster").get(pk=operation_id)
    kind, state = operation.kind, operation.state
    now = timezone.now()
    changes: dict[str, Any] = {"updated_at": now, "status_reason": ""}
    if state == OperationState.SUCCEEDED:
        if kind == OperationKind.DELETE:
            changes.update(status=ClusterStatus.DELETED, deleted_at=now)
            Broker.objects.filter(cluster_id=operation.cluster_id).update(state=BrokerState.STOPPED)
            free_cluster_hosts(operation.cluster_id)  # the backend removed everything from them
        else:
            changes["status"] = ClusterStatus.RUNNING
    elif state == OperationState.FAILED:
        message = (operation.error or {}).get("message", "unknown error")
        changes["status"] = ClusterStatus.FAILED if kind in _LIFECYCLE_KINDS else ClusterStatus.DEGRADED
        changes["status_reason"] = f"{operation.get_kind_display()} failed: {message}"
    elif state == OperationState.CANCELLED:
        if kind in _LIFECYCLE_KINDS:
            changes["status"] = ClusterStatus.FAILED
            changes["status_reason"] = f"{operation.get_kind_display()} was cancelled before it finished."
        else:
            changes["status"] = ClusterStatus.RUNNING
    else:
        return
    if state != OperationState.SUCCEEDED and kind in (OperationKind.SCALE, OperationKind.REPLACE_BROKER):
        _settle_brokers(operation)
    if kind == OperationKind.REPLACE_BROKER:
        _record_healing_outcome(operation)
    Cluster.objects.filter(pk=operation.cluster_id).update(**changes)


def _settle_brokers(operation: Operation) -> None:
    """After a scale or replacement that did not finish, make the broker records say what exists:
    brokers that were never started are forgotten, brokers that were being drained stay."""
    params = operation.params or {}
    added = list(params.get("add_node_ids", []))
    if params.get("replacement_node_id") is not None:
        added.append(params["replacement_node_id"])
    Broker.objects.filter(
        cluster_id=operation.cluster_id, node_id__in=added, state=BrokerState.PENDING
    ).delete()
    Broker.objects.filter(
        cluster_id=operation.cluster_id,
        node_id__in=params.get("remove_node_ids", []),
        state=BrokerState.DRAINING,
    ).update(state=BrokerState.RUNNING, updated_at=timezone.now())
    count = Broker.objects.filter(cluster_id=operation.cluster_id).count()
    Cluster.objects.filter(pk=operation.cluster_id).update(broker_count=count)


def _record_healing_outcome(operation: Operation) -> None:
    now = timezone.now()
    healing = BrokerAnomaly.objects.filter(operation=operation, state=AnomalyState.HEALING)
    if operation.state == OperationState.SUCCEEDED:
        healing.update(state=AnomalyState.RESOLVED, resolved_at=now)
        return
    # Open again, so it is not forgotten, but not retried at once: a replacement that failed for a
    # lasting reason would otherwise be started over and over.
    for anomaly in healing:
        delay = settings.SELF_HEALING_AFTER_SECONDS * 2 ** max(0, anomaly.attempts - 1)
        anomaly.state = AnomalyState.OPEN
        anomaly.retry_after = now + timedelta(seconds=min(delay, MAX_HEALING_RETRY_SECONDS))
        anomaly.save(update_fields=["state", "retry_after"])
