"""What keeps an incident from notifying: silences, maintenance windows, planned operations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from django.db.models import Q

from controlplane.clusters.models import Broker
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from monitoring.alerting.models import MaintenanceWindow, Silence

# Operations that take replicas out of sync on purpose while they run.
DISRUPTIVE_KINDS = (
    OperationKind.RESTART,
    OperationKind.UPGRADE,
    OperationKind.SCALE,
    OperationKind.REPLACE_BROKER,
)
# A rolling restart or upgrade takes every broker down in turn.
WHOLE_CLUSTER_KINDS = (OperationKind.RESTART, OperationKind.UPGRADE)


def brokers_in_running_operations(cluster_id: uuid.UUID) -> frozenset[int]:
    """The brokers that running operations on the cluster restart, add, drain or replace."""
    operations = list(
        Operation.objects.filter(
            cluster_id=cluster_id, state=OperationState.RUNNING, kind__in=DISRUPTIVE_KINDS
        ).values_list("kind", "params")
    )
    if not operations:
        return frozenset()
    brokers: set[int] = set()
    for kind, params in operations:
        named = set() if kind in WHOLE_CLUSTER_KINDS else brokers_named_in(params or {})
        if named:
            brokers |= named
        else:
            # A scale that does not name its brokers moves replicas across all of them.
            brokers |= set(Broker.objects.filter(cluster_id=cluster_id).values_list("node_id", flat=True))
    return frozenset(brokers)


def brokers_named_in(params: Mapping[str, Any]) -> set[int]:
    """Broker ids in an operation's parameters: any `*broker*_id(s)` or `*node*_id(s)` value.

    Counts such as `brokers: 6` (a scale's target size) are not ids and are left alone.
    """
    found: set[int] = set()
    for key, value in params.items():
        name = key.lower()
        if not (("broker" in name or "node" in name) and name.endswith(("_id", "_ids"))):
            continue
        values = value if isinstance(value, list | tuple) else [value]
        found |= {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
    return found


@dataclass(frozen=True)
class ActiveSilence:
    pk: int
    cluster_id: uuid.UUID | None
    rule_key: str
    subject: str

    def matches(self, cluster_id: uuid.UUID, rule_key: str, subject: str) -> bool:
        return (
            (self.cluster_id is None or self.cluster_id == cluster_id)
            and (not self.rule_key or self.rule_key == rule_key)
            and (not self.subject or fnmatchcase(subject, self.subject))
        )


@dataclass(frozen=True)
class Mutes:
    """Silences and maintenance windows active at one moment for one cluster."""

    cluster_id: uuid.UUID
    silences: tuple[ActiveSilence, ...] = ()
    maintenance_window_id: int | None = None

    def match(self, rule_key: str, subject: str) -> tuple[int | None, int | None]:
        """(silence id, maintenance window id) muting this incident; both None when it may notify."""
        silence = next((s.pk for s in self.silences if s.matches(self.cluster_id, rule_key, subject)), None)
        return silence, self.maintenance_window_id


def active_mutes(
    organization_id: int, cluster_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Mutes]:
    """Mutes in force at `now` for each cluster of one organization (two queries for any number)."""
    cluster_ids = list(cluster_ids)
    silences = [
        ActiveSilence(pk, cluster_id, rule_key, subject)
        for pk, cluster_id, rule_key, subject in Silence.objects.filter(
            Q(cluster_id__in=cluster_ids) | Q(cluster__isnull=True),
            organization_id=organization_id,
            starts_at__lte=now,
            ends_at__gt=now,
        )
        .order_by("pk")
        .values_list("pk", "cluster_id", "rule_key", "subject")
    ]
    windows: dict[uuid.UUID, int] = {}
    for pk, cluster_id in (
        MaintenanceWindow.objects.filter(cluster_id__in=cluster_ids, starts_at__lte=now, ends_at__gt=now)
        .order_by("pk")
        .values_list("pk", "cluster_id")
    ):
        windows.setdefault(cluster_id, pk)
    return {
        cluster_id: Mutes(
            cluster_id,
            tuple(s for s in silences if s.cluster_id in (None, cluster_id)),
            windows.get(cluster_id),
        )
        for cluster_id in cluster_ids
    }
