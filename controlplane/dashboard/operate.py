"""Operations started from the dashboard (scale, rolling restart, replace broker, upgrade, certificate
rotation): what each
asks for, the checks the REST API makes (its serializers and `clusters.validation`, so the messages
are the API's), and what will happen, shown before anything does.

The previews are computed from what is recorded: the cluster's brokers and the replica assignment
the last collection saw (`monitoring.assignment`); nothing here asks the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.settings import api_settings

from controlplane.api import serializers as api
from controlplane.audit.actions import Actor
from controlplane.clusters import actions as cluster_actions
from controlplane.clusters.models import Broker, Cluster
from controlplane.clusters.validation import (
    replace_broker_errors,
    rotation_errors,
    scale_errors,
    upgrade_errors,
)
from controlplane.operations.models import Operation
from monitoring import assignment
from provisioning.placement import plan_reassignment


@dataclass(frozen=True)
class RackChange:
    rack: str
    kept: list[int]
    added: list[int]
    removed: list[int]


@dataclass(frozen=True)
class BrokerMoves:
    node_id: int
    replicas_in: int
    replicas_out: int


@dataclass(frozen=True)
class Preview:
    """What an operation will do, in the words and numbers shown on its confirmation page."""

    kind: str
    summary: str
    racks: list[RackChange] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # rolling operations: brokers in turn
    controller_id: int | None = None
    moves: int | None = None  # replica moves the plan needs; None when no assignment is known
    partitions_moved: int | None = None
    leadership_changes: int | None = None
    by_broker: list[BrokerMoves] = field(default_factory=list)
    seen_at: datetime | None = None  # the collection the assignment comes from
    notes: list[str] = field(default_factory=list)


def _order(node_ids: list[int], controller_id: int | None) -> list[int]:
    """The order a roll takes when every node is ready: by node id, the active controller (the
    quorum leader) last. The workflow chooses again before each node (unready nodes first, then
    controllers; docs/operations.md), and follows the controller if it moves meanwhile."""
    return sorted(node_ids, key=lambda node_id: (node_id == controller_id, node_id))


def _brokers(cluster: Cluster) -> dict[int, str]:
    return dict(cluster.brokers.order_by("node_id").values_list("node_id", "rack"))


def _rack_names(cluster: Cluster, brokers: Mapping[int, str]) -> list[str]:
    return list(cluster.racks) + sorted(set(brokers.values()) - set(cluster.racks))


def scale_preview(cluster: Cluster, values: Mapping[str, Any]) -> Preview:
    target = values["brokers"]
    existing = _brokers(cluster)
    added, removed = cluster_actions.scale_layout(existing, list(cluster.racks), target)
    racks = [
        RackChange(
            rack=rack,
            kept=[n for n, r in existing.items() if r == rack and n not in removed],
            added=sorted(n for n, r in added.items() if r == rack),
            removed=sorted(n for n in removed if existing[n] == rack),
        )
        for rack in _rack_names(cluster, existing)
    ]
    direction = "out" if added else "in"
    preview = Preview(
        kind="scale",
        summary=f"Scale {direction} from {len(existing)} to {target} brokers.",
        racks=racks,
        notes=[
            "New brokers start first and replicas move onto them once they have registered."
            if added
            else "The brokers to remove are drained first: their replicas move to the others, then "
            "they are stopped and removed.",
            "Replicas move batch by batch under a replication throttle of "
            f"{settings.OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND // (1024 * 1024)} MiB/s per broker.",
        ],
    )
    return _with_moves(preview, cluster, {**existing, **added}, removed)


def _with_moves(preview: Preview, cluster: Cluster, brokers: Mapping[int, str], remove: list[int]) -> Preview:
    """The preview with the replica moves the placement engine plans from the last known assignment;
    the operation plans again from the assignment it finds when it starts."""
    known = assignment.load(cluster.pk)
    if not known.known:
        return _replace(
            preview,
            notes=[
                *preview.notes,
                "No collection has reached the cluster yet, so the "
                "replica moves are planned when the operation starts.",
            ],
        )
    try:
        plan = plan_reassignment(known.replicas, dict(brokers), remove=remove)
    except ValueError as exc:
        return _replace(preview, notes=[*preview.notes, f"The replicas cannot be placed: {exc}"])
    moved_in = Counter(move.destination for move in plan.moves)
    moved_out = Counter(move.source for move in plan.moves)
    return _replace(
        preview,
        moves=len(plan.moves),
        partitions_moved=len({move.partition for move in plan.moves}),
        leadership_changes=len(plan.leadership_changes),
        by_broker=[
            BrokerMoves(node_id, moved_in[node_id], moved_out[node_id])
            for node_id in sorted(set(moved_in) | set(moved_out))
        ],
        seen_at=known.seen_at,
    )


def _replace(preview: Preview, **changes: Any) -> Preview:
    return replace(preview, **changes)


def restart_preview(cluster: Cluster, values: Mapping[str, Any]) -> Preview:
    return _rolling(cluster, "restart", "Restart every broker, one at a time.")


def rotation_preview(cluster: Cluster, values: Mapping[str, Any]) -> Preview:
    preview = _rolling(
        cluster,
        "rotate_certificates",
        "Restart every broker, one at a time, each with a new certificate from the cluster's CA.",
    )
    notes = [
        *preview.notes,
        "Clients trust the cluster's CA, not a broker's certificate: they reconnect and carry on. Client "
        "certificates of mTLS users stay valid.",
    ]
    return _replace(preview, notes=notes)


def upgrade_preview(cluster: Cluster, values: Mapping[str, Any]) -> Preview:
    version = values["kafka_version"]
    preview = _rolling(
        cluster,
        "upgrade",
        f"Upgrade every broker from Kafka {cluster.kafka_version} to {version}, one at a time.",
    )
    notes = [
        *preview.notes,
        f"Once every broker runs {version}, the feature levels (metadata.version) are raised to "
        f"{version}'s; after that the cluster cannot go back to {cluster.kafka_version}.",
    ]
    return _replace(preview, notes=notes)


def _rolling(cluster: Cluster, kind: str, summary: str) -> Preview:
    known = assignment.load(cluster.pk)
    order = _order(list(_brokers(cluster)), known.controller_id)
    notes = [
        "Before each broker, the roll waits until restarting it cannot stop acks=all producers (no "
        "partition it holds would fall below min.insync.replicas); the next one waits until it is back "
        "in sync.",
    ]
    if known.controller_id is None:
        notes.append("The active controller is not known yet; the roll finds it and takes it last.")
    return Preview(
        kind=kind,
        summary=summary,
        order=order,
        controller_id=known.controller_id,
        seen_at=known.seen_at,
        notes=notes,
    )


def replace_preview(cluster: Cluster, values: Mapping[str, Any]) -> Preview:
    broker = Broker.objects.get(cluster=cluster, node_id=values["node_id"])
    if values["keep_disk"]:
        return Preview(
            kind="replace_broker",
            summary=f"Restart broker {broker.node_id} in {broker.rack} with its disk: it keeps its node "
            "id and its data.",
            notes=[
                "Its replicas are out of sync while it restarts and catch up from the other replicas "
                "afterwards; nothing moves to another broker.",
            ],
        )
    replacement, _ = cluster_actions.replacement_node_id(broker)
    preview = Preview(
        kind="replace_broker",
        summary=f"Replace broker {broker.node_id} in {broker.rack} by a new broker {replacement} in the "
        f"same rack. Broker {broker.node_id}'s data is not kept.",
        notes=[
            f"Broker {replacement} starts empty; broker {broker.node_id}'s replicas are copied to it "
            "from the other replicas (throttled), then broker "
            f"{broker.node_id} is stopped, removed and unregistered.",
        ],
    )
    brokers = {**_brokers(cluster), replacement: broker.rack}
    return _with_moves(preview, cluster, brokers, [broker.node_id])


# -- forms: the API's serializers ------------------------------------------------------------------


@dataclass(frozen=True)
class OperationKind:
    """One operation the cluster page offers: its request body, checks, preview and action."""

    slug: str
    title: str
    button: str
    body: type[serializers.Serializer]
    errors: Callable[[Cluster, dict[str, Any]], dict[str, str]]
    preview: Callable[[Cluster, dict[str, Any]], Preview]
    start: Callable[[Cluster, dict[str, Any], Actor], Operation]


KINDS: dict[str, OperationKind] = {
    kind.slug: kind
    for kind in (
        OperationKind(
            "scale",
            "Scale",
            "Scale",
            api.ScaleSerializer,
            lambda cluster, v: scale_errors(cluster, v["brokers"]),
            scale_preview,
            lambda cluster, v, actor: cluster_actions.request_scale(
                cluster=cluster, brokers=v["brokers"], actor=actor
            ),
        ),
        OperationKind(
            "restart",
            "Rolling restart",
            "Restart every broker",
            api.RestartSerializer,
            lambda cluster, v: {},
            restart_preview,
            lambda cluster, v, actor: cluster_actions.request_restart(cluster=cluster, actor=actor),
        ),
        OperationKind(
            "replace-broker",
            "Replace broker",
            "Replace the broker",
            api.ReplaceBrokerSerializer,
            lambda cluster, v: replace_broker_errors(cluster, v["node_id"], v["keep_disk"]),
            replace_preview,
            lambda cluster, v, actor: cluster_actions.request_replace_broker(
                cluster=cluster, node_id=v["node_id"], keep_disk=v["keep_disk"], actor=actor
            ),
        ),
        OperationKind(
            "upgrade",
            "Upgrade",
            "Upgrade",
            api.UpgradeSerializer,
            lambda cluster, v: upgrade_errors(cluster, v["kafka_version"]),
            upgrade_preview,
            lambda cluster, v, actor: cluster_actions.request_upgrade(
                cluster=cluster, kafka_version=v["kafka_version"], actor=actor
            ),
        ),
        OperationKind(
            "rotate-certificates",
            "Certificate rotation",
            "Rotate the certificates",
            api.RestartSerializer,
            lambda cluster, v: rotation_errors(cluster),
            rotation_preview,
            lambda cluster, v, actor: cluster_actions.request_certificate_rotation(
                cluster=cluster, actor=actor
            ),
        ),
    )
}


def form_values(kind: OperationKind, data: Mapping[str, Any]) -> dict[str, Any]:
    """The posted fields the kind's request body has; an unchecked box is false, as the API reads it."""
    values = {name: data[name] for name in kind.body().fields if name in data}
    if "keep_disk" in kind.body().fields:
        values["keep_disk"] = data.get("keep_disk") in ("on", "true", "1")
    return values


def check(
    kind: OperationKind, cluster: Cluster, data: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str | None, list[str]]]:
    """The validated values, or the API's messages by field (None's are the request's as a whole)."""
    body = kind.body(data=form_values(kind, data), context={"form_values": True})
    if not body.is_valid():
        return {}, {_field(name): [str(m) for m in messages] for name, messages in body.errors.items()}
    values = dict(body.validated_data)
    if errors := kind.errors(cluster, values):
        return {}, {_field(name): [message] for name, message in errors.items()}
    return values, {}


def _field(name: str) -> str | None:
    """The form field a message belongs to; None for the request as a whole (shown above the form)."""
    return None if name == api_settings.NON_FIELD_ERRORS_KEY else name
