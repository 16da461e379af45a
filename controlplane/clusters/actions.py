"""Every write to clusters and brokers goes through these functions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Broker, Cluster
from controlplane.operations.actions import start_operation
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from controlplane.tenancy.models import Organization
from provisioning.backends.base import BrokerProcessState, ClusterDescription
from provisioning.placement import place_brokers


class ClusterNameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"A cluster named {name!r} already exists in this organization.")


class ClusterNotChangeable(Exception):
    """The cluster's lifecycle state does not allow the requested change (e.g. it is deleted)."""


# Operations whose failure leaves the cluster unusable, rather than serving in a degraded way.
_LIFECYCLE_KINDS = {OperationKind.PROVISION, OperationKind.DELETE}


def request_cluster_create(
    *, organization: Organization, spec: Mapping[str, Any], actor: Actor
) -> tuple[Cluster, Operation]:
    """Record a cluster and its brokers' planned placement, and start provisioning it.

    `spec` holds validated values: name, backend, kafka_version, brokers, racks, replication_factor,
    min_insync_replicas, node_size {cpu, memory_mb, disk_gb}, config, self_healing.
    """
    node_size = spec["node_size"]
    try:
        with transaction.atomic():
            cluster = Cluster.objects.create(
                organization=organization,
                name=spec["name"],
                backend=spec["backend"],
                kafka_version=spec["kafka_version"],
                broker_count=spec["brokers"],
                racks=list(spec["racks"]),
                replication_factor=spec["replication_factor"],
                min_insync_replicas=spec["min_insync_replicas"],
                node_cpu=Decimal(str(node_size["cpu"])),
                node_memory_mb=node_size["memory_mb"],
                node_disk_gb=node_size["disk_gb"],
                config=dict(spec.get("config") or {}),
                self_healing=spec.get("self_healing", True),
                created_by=actor.user if actor.user is not None and actor.user.is_authenticated else None,
            )
    except IntegrityError as exc:
        raise ClusterNameTaken(spec["name"]) from exc
    with transaction.atomic():
        Broker.objects.bulk_create(
            Broker(cluster=cluster, node_id=node_id, rack=rack)
            for node_id, rack in sorted(place_brokers(list(cluster.racks), cluster.broker_count).items())
        )
        record_event(
            actor=actor,
            action="cluster.create",
            target=cluster,
            organization=organization,
            # Audit details are JSON: the CPU count arrives as a Decimal from the serializer.
            details={key: value for key, value in spec.items() if key != "config"}
            | {"node_size": {**node_size, "cpu": float(node_size["cpu"])}},
        )
        operation = start_operation(cluster=cluster, kind=OperationKind.PROVISION, actor=actor)
    return cluster, operation


def _require_live(cluster: Cluster) -> None:
    if cluster.status in (ClusterStatus.DELETED, ClusterStatus.DELETING):
        raise ClusterNotChangeable(f"Cluster {cluster.name} is {cluster.status}.")


@transaction.atomic
def request_cluster_delete(*, cluster: Cluster, actor: Actor) -> Operation:
    if cluster.status == ClusterStatus.DELETED:
        raise ClusterNotChangeable(f"Cluster {cluster.name} is already deleted.")
    operation = start_operation(cluster=cluster, kind=OperationKind.DELETE, actor=actor)
    Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.DELETING, updated_at=timezone.now())
    record_event(actor=actor, action="cluster.delete", target=cluster, organization=cluster.organization)
    cluster.refresh_from_db()
    return operation


@transaction.atomic
def update_cluster_settings(*, cluster: Cluster, changes: Mapping[str, Any], actor: Actor) -> Cluster:
    """Change settings that need no operation (self-healing, collection interval)."""
    _require_live(cluster)
    fields = sorted(changes)
    for field_name in fields:
        setattr(cluster, field_name, changes[field_name])
    cluster.save(update_fields=[*fields, "updated_at"])
    record_event(
        actor=actor,
        action="cluster.update",
        target=cluster,
        organization=cluster.organization,
        details=dict(changes),
    )
    return cluster


_BROKER_STATES = {
    BrokerProcessState.RUNNING: BrokerState.RUNNING,
    BrokerProcessState.STARTING: BrokerState.STARTING,
    BrokerProcessState.STOPPED: BrokerState.STOPPED,
    BrokerProcessState.CRASHED: BrokerState.CRASHED,
    BrokerProcessState.MISSING: BrokerState.MISSING,
}


@transaction.atomic
def sync_cluster_description(*, cluster_id: uuid.UUID, description: ClusterDescription) -> None:
    """Store what the backend reports: the bootstrap address and each broker's endpoint and state."""
    now = timezone.now()
    if description.bootstrap_servers:
        Cluster.objects.filter(pk=cluster_id).update(
            bootstrap_servers=description.bootstrap_servers, updated_at=now
        )
    brokers = {b.node_id: b for b in Broker.objects.select_for_update().filter(cluster_id=cluster_id)}
    for status in description.brokers:
        broker = brokers.get(status.node_id)
        if broker is None:
            continue
        broker.endpoint = status.endpoint
        # A broker being drained keeps that state until it is removed.
        if broker.state != BrokerState.DRAINING:
            broker.state = _BROKER_STATES[status.state]
        broker.state_detail = status.detail
        if status.state == BrokerProcessState.RUNNING:
            broker.last_seen_at = now
        broker.save(update_fields=["endpoint", "state", "state_detail", "last_seen_at", "updated_at"])


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


@transaction.atomic
def record_operation_outcome(operation_id: uuid.UUID) -> None:
    """Move the cluster to the status its finished operation implies."""
    operation = Operation.objects.select_related("cluster").get(pk=operation_id)
    kind, state = operation.kind, operation.state
    now = timezone.now()
    changes: dict[str, Any] = {"updated_at": now, "status_reason": ""}
    if state == OperationState.SUCCEEDED:
        if kind == OperationKind.DELETE:
            changes.update(status=ClusterStatus.DELETED, deleted_at=now)
            Broker.objects.filter(cluster_id=operation.cluster_id).update(state=BrokerState.STOPPED)
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
    Cluster.objects.filter(pk=operation.cluster_id).update(**changes)
