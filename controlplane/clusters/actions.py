"""Every write to clusters and brokers goes through these functions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.choices import (
    LIVE_ANOMALY_STATES,
    AnomalyState,
    BrokerState,
    ClusterStatus,
    DriftPolicy,
)
from controlplane.clusters.models import Broker, BrokerAnomaly, Cluster, ClusterSecurity
from controlplane.operations.actions import OperationConflict, active_operation, start_operation
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from controlplane.targets.hosts import allocate_hosts
from controlplane.targets.models import Placement, Target
from controlplane.targets.resolve import choose_target
from controlplane.tenancy.models import Organization
from provisioning import security
from provisioning.backends.base import BrokerProcessState, ClusterDescription
from provisioning.placement import place_brokers

logger = logging.getLogger(__name__)

SELF_HEALING = Actor.system("self-healing")


class ClusterNameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"A cluster named {name!r} already exists in this organization.")


class ClusterNotChangeable(Exception):
    """The cluster's lifecycle state does not allow the requested change (e.g. it is deleted)."""


# Operations whose failure leaves the cluster unusable, rather than serving in a degraded way.


def request_cluster_create(
    *, organization: Organization, spec: Mapping[str, Any], actor: Actor
) -> tuple[Cluster, Operation]:
    """Record a cluster and its brokers' planned placement, and start provisioning it.

    `spec` holds validated values: name, backend, kafka_version, brokers, racks, replication_factor,
    min_insync_replicas, node_size {cpu, memory_mb, disk_gb}, config, self_healing, and optionally the
    name of its `target` (default: the organization's only target of the backend, if it has one).
    """
    target = choose_target(organization, spec["backend"], spec.get("target"), dry_run=False)
    node_size = spec["node_size"]
    with transaction.atomic():  # nothing is recorded when hosts cannot be allocated
        cluster = _create_cluster_record(organization, spec, node_size, actor)
        _record_brokers(cluster, organization, spec, node_size, target, actor)
        operation = start_operation(cluster=cluster, kind=OperationKind.PROVISION, actor=actor)
    return cluster, operation


def _create_cluster_record(
    organization: Organization, spec: Mapping[str, Any], node_size: Mapping[str, Any], actor: Actor
) -> Cluster:
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
                drift_policy=spec.get("drift_policy", DriftPolicy.REPORT),
                client_authentication=list(spec.get("client_authentication") or []),
                created_by=actor.account,
            )
            if cluster.client_authentication:
                _create_certificate_authority(cluster)
    except IntegrityError as exc:
        raise ClusterNameTaken(spec["name"]) from exc
    return cluster


def _record_brokers(
    cluster: Cluster,
    organization: Organization,
    spec: Mapping[str, Any],
    node_size: Mapping[str, Any],
    target: Target | None,
    actor: Actor,
) -> None:
    """The brokers in the racks the placement engine picks, the cluster's target and, on a host pool,
    a host for each broker."""
    layout = place_brokers(list(cluster.racks), cluster.broker_count)
    Broker.objects.bulk_create(
        Broker(cluster=cluster, node_id=node_id, rack=rack) for node_id, rack in sorted(layout.items())
    )
    if target is not None:
        Placement.objects.create(cluster=cluster, target=target)
        allocate_hosts(cluster=cluster, node_ids=sorted(layout))
    record_event(
        actor=actor,
        action="cluster.create",
        target=cluster,
        organization=organization,
        # Audit details are JSON: the CPU count arrives as a Decimal from the serializer.
        details={key: value for key, value in spec.items() if key not in ("config", "target")}
        | {"node_size": {**node_size, "cpu": float(node_size["cpu"])}}
        | ({"target": target.name} if target is not None else {}),
    )


def _create_certificate_authority(cluster: Cluster) -> ClusterSecurity:
    """The cluster's own CA, and the control plane's SCRAM password (used when it has SCRAM)."""
    ca = security.new_certificate_authority(cluster.name)
    return ClusterSecurity.objects.create(
        cluster=cluster,
        ca_certificate_pem=ca.certificate_pem,
        secrets={"ca_private_key_pem": ca.private_key_pem, "admin_password": security.new_password()},
    )


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
    if changes.get("self_healing"):
        # Anomalies recorded while it was off are acted on now, not at the next observation.
        cluster_id = cluster.id
        transaction.on_commit(lambda: heal_broker_anomalies(cluster_id=cluster_id))
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
    reported: dict[str, object] = {
        "durable": description.durable,
        "durability_note": description.durability_note,
    }
    if description.bootstrap_servers:
        reported["bootstrap_servers"] = description.bootstrap_servers
        reported["client_endpoints"] = dict(description.client_endpoints)
    Cluster.objects.filter(pk=cluster_id).update(**reported, updated_at=now)
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


# Statuses in which a serving cluster may be changed by an operation.
CHANGEABLE_STATUSES = (ClusterStatus.RUNNING, ClusterStatus.DEGRADED)


def require_changeable(cluster: Cluster) -> None:
    """Refuse while an operation runs (naming it) or when the cluster is not serving."""
    if running := active_operation(cluster):
        raise OperationConflict(running)
    if cluster.status not in CHANGEABLE_STATUSES:
        raise ClusterNotChangeable(
            f"Cluster {cluster.name} is {cluster.status}; only a running or degraded cluster can be changed."
        )


def _lock_for_change(cluster: Cluster) -> Cluster:
    """Lock the cluster's row for the rest of the transaction, so that concurrent requests are decided
    one after the other, then check it may be changed."""
    locked = Cluster.objects.select_for_update(of=("self",)).select_related("organization").get(pk=cluster.pk)
    require_changeable(locked)
    return locked


def _timeouts() -> dict[str, Any]:
    return {
        "broker_timeout_seconds": settings.OPERATION_BROKER_TIMEOUT_SECONDS,
        "poll_seconds": settings.OPERATION_POLL_SECONDS,
    }


def _throttle() -> dict[str, Any]:
    return {
        "throttle_bytes_per_second": settings.OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND,
        "poll_seconds": settings.OPERATION_POLL_SECONDS,
    }


def request_scale(*, cluster: Cluster, brokers: int, actor: Actor) -> Operation:
    """Start scaling to `brokers` (validated by `validation.scale_errors`).

    New brokers are recorded now, in the racks `place_brokers` picks; the brokers to remove (as many
    from each rack, the newest first) are marked draining. The operation makes the cluster match.
    """
    now = timezone.now()
    with transaction.atomic():
        cluster = _lock_for_change(cluster)
        existing = dict(cluster.brokers.values_list("node_id", "rack"))
        params: dict[str, Any] = {"brokers": brokers, "from_brokers": len(existing), **_throttle()}
        added, removed = scale_layout(existing, list(cluster.racks), brokers)
        if brokers > len(existing):
            params["add_node_ids"] = sorted(added)
        else:
            params["remove_node_ids"] = removed
        operation = start_operation(cluster=cluster, kind=OperationKind.SCALE, actor=actor, params=params)
        Broker.objects.bulk_create(
            Broker(cluster=cluster, node_id=node_id, rack=rack) for node_id, rack in sorted(added.items())
        )
        allocate_hosts(cluster=cluster, node_ids=sorted(added))
        Broker.objects.filter(cluster=cluster, node_id__in=removed).update(
            state=BrokerState.DRAINING, updated_at=now
        )
        Cluster.objects.filter(pk=cluster.pk).update(broker_count=brokers, updated_at=now)
        record_event(
            actor=actor,
            action="cluster.scale",
            target=cluster,
            organization=cluster.organization,
            details={"from": len(existing), "to": brokers, "add": sorted(added), "remove": removed},
        )
    return operation


def request_restart(*, cluster: Cluster, actor: Actor) -> Operation:
    with transaction.atomic():
        cluster = _lock_for_change(cluster)
        operation = start_operation(
            cluster=cluster, kind=OperationKind.RESTART, actor=actor, params=_timeouts()
        )
        record_event(actor=actor, action="cluster.restart", target=cluster, organization=cluster.organization)
    return operation


def request_certificate_rotation(*, cluster: Cluster, actor: Actor) -> Operation:
    """Start giving every broker a new certificate from the cluster's CA, one at a time (validated by
    `validation.rotation_errors`)."""
    with transaction.atomic():
        cluster = _lock_for_change(cluster)
        ClusterSecurity.objects.filter(cluster=cluster).update(
            certificate_generation=F("certificate_generation") + 1, certificates_rotated_at=timezone.now()
        )
        generation = ClusterSecurity.objects.get(cluster=cluster).certificate_generation
        operation = start_operation(
            cluster=cluster,
            kind=OperationKind.ROTATE_CERTIFICATES,
            actor=actor,
            params={"certificate_generation": generation, **_timeouts()},
        )
        record_event(
            actor=actor,
            action="cluster.rotate_certificates",
            target=cluster,
            organization=cluster.organization,
            details={"certificate_generation": generation},
        )
    return operation


def request_upgrade(*, cluster: Cluster, kafka_version: str, actor: Actor) -> Operation:
    """Start a rolling upgrade (validated by `validation.upgrade_errors`). The cluster's recorded
    version changes only once every broker runs the new one and the feature levels are raised."""
    with transaction.atomic():
        cluster = _lock_for_change(cluster)
        params = {"kafka_version": kafka_version, "from_version": cluster.kafka_version, **_timeouts()}
        operation = start_operation(cluster=cluster, kind=OperationKind.UPGRADE, actor=actor, params=params)
        record_event(
            actor=actor,
            action="cluster.upgrade",
            target=cluster,
            organization=cluster.organization,
            details={"from": cluster.kafka_version, "to": kafka_version},
        )
    return operation


def request_replace_broker(
    *, cluster: Cluster, node_id: int, keep_disk: bool, actor: Actor, anomaly_id: int | None = None
) -> Operation:
    """Start replacing a broker in its rack (validated by `validation.replace_broker_errors`).

    Without its disk, the replacement is a new broker, recorded now with the next free node id (or the
    one an earlier, unfinished replacement of this broker already started); the old one is removed
    once its replicas have moved.
    """
    with transaction.atomic():
        cluster = _lock_for_change(cluster)
        broker = Broker.objects.get(cluster=cluster, node_id=node_id)
        params: dict[str, Any] = {"node_id": node_id, "keep_disk": keep_disk}
        if anomaly_id is not None:
            params["anomaly"] = anomaly_id
        replacement: int | None = None
        started_before = False
        if not keep_disk:
            replacement, started_before = replacement_node_id(broker)
            params.update(replacement_node_id=replacement, **_throttle())
        operation = start_operation(
            cluster=cluster, kind=OperationKind.REPLACE_BROKER, actor=actor, params=params
        )
        if replacement is not None and not started_before:
            Broker.objects.create(cluster=cluster, node_id=replacement, rack=broker.rack)
            # On a host pool, another free host of the rack: the old one still runs the old broker
            # until its replicas have moved.
            allocate_hosts(cluster=cluster, node_ids=[replacement])
        record_event(
            actor=actor,
            action="cluster.replace_broker",
            target=cluster,
            organization=cluster.organization,
            details={"node_id": node_id, "keep_disk": keep_disk, "replacement": replacement},
        )
    return operation


def replacement_node_id(broker: Broker) -> tuple[int, bool]:
    """The node id of the broker that replaces `broker` without its disk, and whether an earlier,
    unfinished replacement already started it: the next free node id, or that earlier one."""
    earlier = _unfinished_replacement(broker)
    if earlier is not None:
        return earlier, True
    return max(
        Broker.objects.filter(cluster_id=broker.cluster_id).values_list("node_id", flat=True)
    ) + 1, False


def scale_layout(
    existing: Mapping[int, str], racks: list[str], target: int
) -> tuple[dict[int, str], list[int]]:
    """The brokers a scale to `target` adds (node id -> rack, in the racks `place_brokers` picks) and
    the ones it removes (`brokers_to_remove`); one of the two is empty."""
    if target > len(existing):
        layout = place_brokers(racks, target, dict(existing))
        return {node_id: rack for node_id, rack in layout.items() if node_id not in existing}, []
    return {}, brokers_to_remove(existing, racks, target)


def _unfinished_replacement(broker: Broker) -> int | None:
    """The replacement broker an earlier replacement of `broker` started but did not finish with, if
    it still exists: trying again continues with it rather than adding yet another broker."""
    earlier = (
        Operation.objects.filter(
            cluster_id=broker.cluster_id,
            kind=OperationKind.REPLACE_BROKER,
            state__in=[OperationState.FAILED, OperationState.CANCELLED],
            params__node_id=broker.node_id,
            params__keep_disk=False,
        )
        .order_by("-created_at")
        .values_list("params", flat=True)
        .first()
    )
    if earlier is None:
        return None
    candidate = earlier.get("replacement_node_id")
    exists = (
        Broker.objects.filter(cluster_id=broker.cluster_id, node_id=candidate, rack=broker.rack)
        .exclude(state__in=[BrokerState.PENDING, BrokerState.DRAINING])
        .exists()
    )
    return candidate if exists else None


def brokers_to_remove(existing: Mapping[int, str], racks: list[str], target: int) -> list[int]:
    """Which brokers a scale-in to `target` removes: from each rack, those beyond its even share,
    newest (highest node id) first. Fewer than asked when the racks are not evenly filled."""
    share = target // len(racks) if racks else 0
    by_rack: dict[str, list[int]] = {}
    for node_id, rack in existing.items():
        by_rack.setdefault(rack, []).append(node_id)
    chosen: list[int] = []
    for rack, node_ids in by_rack.items():
        keep = share if rack in racks else 0
        chosen += sorted(node_ids)[keep:]
    return sorted(chosen)


@transaction.atomic
def record_brokers_removed(*, cluster_id: uuid.UUID, node_ids: Collection[int]) -> None:
    """Forget brokers an operation removed; anomalies about them have nothing left to heal."""
    now = timezone.now()
    Broker.objects.filter(cluster_id=cluster_id, node_id__in=node_ids).delete()
    remaining = Broker.objects.filter(cluster_id=cluster_id).count()
    Cluster.objects.filter(pk=cluster_id).update(broker_count=remaining, updated_at=now)
    BrokerAnomaly.objects.filter(cluster_id=cluster_id, node_id__in=node_ids, state=AnomalyState.OPEN).update(
        state=AnomalyState.RESOLVED, resolved_at=now, detail="the broker was removed"
    )


def record_kafka_version(*, cluster_id: uuid.UUID, version: str) -> None:
    Cluster.objects.filter(pk=cluster_id).update(kafka_version=version, updated_at=timezone.now())


def record_broker_unreachable(
    cluster_id: uuid.UUID,
    node_id: int,
    *,
    seen_at: datetime,
    detail: str = "",
    source: str = "monitoring",
    actor: Actor = SELF_HEALING,
    heal: bool = True,
) -> BrokerAnomaly | None:
    """Record that a broker could not be reached at `seen_at` (missing from the cluster metadata, or
    reported crashed by its backend), then start healing what is due (unless `heal` is false: a
    caller observing several brokers heals once it has recorded them all).

    The anomaly is stored whether or not self-healing is on, so nothing is missed. Brokers not
    started yet are not expected to answer and are ignored (None).
    """
    with transaction.atomic():
        broker = (
            Broker.objects.filter(cluster_id=cluster_id, node_id=node_id).select_related("cluster").first()
        )
        if broker is None or broker.state == BrokerState.PENDING:
            return None
        live = BrokerAnomaly.objects.select_for_update().filter(
            cluster_id=cluster_id, node_id=node_id, state__in=LIVE_ANOMALY_STATES
        )
        anomaly = live.first()
        if anomaly is None:
            try:
                with transaction.atomic():
                    anomaly = BrokerAnomaly.objects.create(
                        cluster_id=cluster_id,
                        node_id=node_id,
                        source=source,
                        detail=detail,
                        detected_at=seen_at,
                        last_seen_at=seen_at,
                    )
            except IntegrityError:  # another observer recorded it first
                anomaly = live.get()
            else:
                record_event(
                    actor=actor,
                    action="broker.unreachable",
                    target=anomaly,
                    organization=broker.cluster.organization,
                    details={
                        "cluster": str(cluster_id),
                        "node_id": node_id,
                        "source": source,
                        "detail": detail,
                    },
                )
        if seen_at > anomaly.last_seen_at:
            anomaly.last_seen_at = seen_at
            anomaly.detail = detail or anomaly.detail
            anomaly.save(update_fields=["last_seen_at", "detail"])
    if heal:
        heal_broker_anomalies(cluster_id=cluster_id, now=seen_at)
    return anomaly


def record_brokers_reachable(cluster_id: uuid.UUID, node_ids: Collection[int], *, seen_at: datetime) -> int:
    """Record that these brokers answered at `seen_at`: their open anomalies are resolved. One being
    healed is left to its operation, which started from the broker being gone. Returns how many were
    resolved."""
    return BrokerAnomaly.objects.filter(
        cluster_id=cluster_id, node_id__in=list(node_ids), state=AnomalyState.OPEN, detected_at__lte=seen_at
    ).update(state=AnomalyState.RESOLVED, resolved_at=seen_at)


def record_broker_observations(
    cluster_id: uuid.UUID, *, expected: Collection[int], registered: Collection[int], seen_at: datetime
) -> None:
    """What one look at a reachable cluster's metadata says about each broker: the expected ones that
    did not register are unreachable, the registered ones are back.

    Runs after every collection of every cluster, so the usual case (everyone there, nothing open)
    costs one UPDATE that matches no row.
    """
    missing = sorted(set(expected) - set(registered))
    for node_id in missing:
        record_broker_unreachable(
            cluster_id, node_id, seen_at=seen_at, detail="missing from the cluster metadata", heal=False
        )
    record_brokers_reachable(cluster_id, registered, seen_at=seen_at)
    if missing:
        heal_broker_anomalies(cluster_id=cluster_id, now=seen_at)


@transaction.atomic
def ignore_broker_anomaly(*, anomaly: BrokerAnomaly, actor: Actor) -> BrokerAnomaly:
    """A person decides not to act on an open anomaly: self-healing leaves that broker alone."""
    updated = BrokerAnomaly.objects.filter(pk=anomaly.pk, state=AnomalyState.OPEN).update(
        state=AnomalyState.IGNORED, resolved_at=timezone.now()
    )
    anomaly.refresh_from_db()
    if not updated:
        raise ClusterNotChangeable(
            f"The anomaly of broker {anomaly.node_id} is {anomaly.state}; only an open one can be ignored."
        )
    record_event(
        actor=actor,
        action="broker.anomaly_ignored",
        target=anomaly,
        organization=anomaly.cluster.organization,
        details={"cluster": str(anomaly.cluster_id), "node_id": anomaly.node_id},
    )
    return anomaly


def heal_broker_anomalies(
    *, cluster_id: uuid.UUID | None = None, now: datetime | None = None
) -> list[Operation]:
    """Start a replace-broker operation for each open anomaly that is due: unreachable for longer than
    `SELF_HEALING_AFTER_SECONDS` at `now`, on a cluster with self-healing on and no operation running.
    The others stay open and are looked at again on the next call (every reconcile, every observation).

    An observation passes its own time: anomalies are detected at the time of the observation that saw
    them, so "unreachable for how long" compares two observations' times, on one clock."""
    now = now or timezone.now()
    due = (
        BrokerAnomaly.objects.filter(
            state=AnomalyState.OPEN,
            detected_at__lte=now - timedelta(seconds=settings.SELF_HEALING_AFTER_SECONDS),
            cluster__self_healing=True,
            cluster__status__in=CHANGEABLE_STATUSES,
        )
        .filter(Q(retry_after__isnull=True) | Q(retry_after__lte=now))
        .order_by("detected_at")
    )
    if cluster_id is not None:
        due = due.filter(cluster_id=cluster_id)
    started: list[Operation] = []
    busy: set[uuid.UUID] = set()
    for anomaly_id, anomaly_cluster in list(due.values_list("pk", "cluster_id")):
        if anomaly_cluster in busy:
            continue
        try:
            operation = _heal(anomaly_id)
        except (OperationConflict, ClusterNotChangeable):
            operation = None
        if operation is not None:
            started.append(operation)
        busy.add(anomaly_cluster)  # one operation per cluster at a time anyway
    return started


def _heal_in_place(cluster: Cluster, node_id: int) -> bool:
    """Whether self-healing restarts the broker in place rather than replacing it without its disk.

    An unreachable broker's disk cannot be trusted, so its replicas move to a new broker in its rack,
    unless that would lose data (single-replica partitions have no other copy) or the backend cannot
    replace it that way (the single-node development broker cannot run the extra broker meanwhile; a
    KRaft controller cannot leave a `local` cluster's quorum).
    """
    from controlplane.clusters.validation import replace_broker_errors  # it imports this module

    return cluster.replication_factor < 2 or bool(replace_broker_errors(cluster, node_id, False))


def _healing_hold_reason(unreachable: int, provisioned: int) -> str:
    if provisioned == 1:
        return (
            "self-healing does not act on a one-broker cluster: with its only broker unreachable it "
            "cannot tell a dead broker from a lost connection, and no other broker holds its data; "
            "restart or replace it yourself (replace-broker) once you know why it is down"
        )
    return (
        f"{unreachable} of {provisioned} brokers are unreachable at once, which looks like the control "
        f"plane lost its way to the cluster rather than dead machines; replacing them would only make "
        f"it worse, so none is replaced automatically"
    )


def _heal(anomaly_id: int) -> Operation | None:
    with transaction.atomic():
        anomaly = BrokerAnomaly.objects.select_for_update().select_related("cluster").get(pk=anomaly_id)
        if anomaly.state != AnomalyState.OPEN:
            return None
        cluster = anomaly.cluster
        provisioned = Broker.objects.filter(cluster=cluster).exclude(state=BrokerState.PENDING)
        if not provisioned.filter(node_id=anomaly.node_id).exists():
            anomaly.state, anomaly.resolved_at = AnomalyState.RESOLVED, timezone.now()
            anomaly.save(update_fields=["state", "resolved_at"])
            return None
        # Most brokers unreachable at once looks like the control plane lost its way to the cluster,
        # not like dead machines: replacing them would only make it worse.
        unreachable = BrokerAnomaly.objects.filter(cluster=cluster, state__in=LIVE_ANOMALY_STATES).count()
        if unreachable * 2 > provisioned.count():
            reason = _healing_hold_reason(unreachable, provisioned.count())
            logger.warning("cluster=%s broker=%s not healed: %s", cluster.id, anomaly.node_id, reason)
            # It holds every unreachable broker of the cluster alike.
            BrokerAnomaly.objects.filter(cluster=cluster, state=AnomalyState.OPEN).exclude(
                held_because=reason
            ).update(held_because=reason)
            return None
        operation = request_replace_broker(
            cluster=cluster,
            node_id=anomaly.node_id,
            keep_disk=_heal_in_place(cluster, anomaly.node_id),
            actor=SELF_HEALING,
            anomaly_id=anomaly.pk,
        )
        anomaly.state, anomaly.operation, anomaly.attempts, anomaly.held_because = (
            AnomalyState.HEALING,
            operation,
            anomaly.attempts + 1,
            "",
        )
        anomaly.save(update_fields=["state", "operation", "attempts", "held_because"])
    return operation
