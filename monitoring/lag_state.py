"""The latest consumer-lag state of a cluster as stored: every group's evaluation and the offset
windows it was made from, one `LagState` row per cluster, written by each collection that reaches
the cluster and read by the API, the dashboard, the exporter and the next collection.

Both are rewritten whole by every collection: one row per cluster costs one statement whatever the
number of groups, where a row per group cost an upsert of every group (and its index entries) every
collection. The groups are a JSON document; the windows are the bytes of the cluster's matrices
(`lag_windows.ClusterWindows`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from monitoring import collection_sql
from monitoring.lag import (
    DEFAULT_WINDOW_SIZE,
    GroupLag,
    LagStatus,
    PartitionWindow,
    evaluate_group,
)
from monitoring.lag_windows import ClusterWindows, WindowsByGroup
from monitoring.models import LagState
from provisioning.kafka_admin.base import GroupMember


@dataclass(frozen=True)
class StoredGroup:
    """A consumer group's latest Burrow evaluation as stored: its totals and sentence. The
    partitions' results are evaluated again from the stored windows when asked for
    (`stored_group_lag`)."""

    group_id: str
    state: str  # Kafka's: Stable, Empty, PreparingRebalance...
    members: int | None  # None when the cluster cannot tell
    status: str  # LagStatus value
    summary: str
    total_lag: int
    max_lag: int
    time_lag_seconds: float | None
    topics: dict[str, list[Any]]  # {topic: [lag, largest time lag]}
    collected_at: datetime
    # Each member's client id, host and assigned partitions; empty where the broker does not tell them
    # (and for groups stored before members were).
    member_details: tuple[GroupMember, ...] = ()

    @property
    def status_rank(self) -> int:
        return LagStatus(self.status).rank


# -- reading and writing ---------------------------------------------------------------------------


# Per group id: Kafka's group state, its member count (None when unknown) and its members.
GroupMembers = Mapping[str, tuple[str, int | None, tuple[GroupMember, ...]]]


def save(
    cluster_id: uuid.UUID,
    groups: Iterable[GroupLag],
    members: GroupMembers,
    windows: ClusterWindows,
    collected_at: datetime,
) -> None:
    """Store one collection's groups (with each one's Kafka state and member count, by group id)
    and windows, replacing the previous ones: groups the cluster no longer lists are gone."""
    collection_sql.save_lag_state(cluster_id, encode_groups(groups, members), windows.encode(), collected_at)


def load_groups(cluster_id: uuid.UUID) -> list[StoredGroup]:
    """The cluster's groups as last collected, worst first; empty before its first collection."""
    row = LagState.objects.filter(pk=cluster_id).values_list("groups", "collected_at").first()
    return decode_groups(*row) if row else []


def load(cluster_id: uuid.UUID) -> tuple[list[StoredGroup], WindowsByGroup]:
    """The cluster's groups, worst first, and the windows they were judged on, in one query."""
    row = LagState.objects.filter(pk=cluster_id).values_list("groups", "collected_at", "windows").first()
    if row is None:
        return [], {}
    groups, collected_at, windows = row
    return decode_groups(groups, collected_at), decode_windows(windows)


def stored_group_lag(group: StoredGroup, windows: WindowsByGroup) -> GroupLag:
    """A stored group's evaluation with every partition's status and sentence.

    The per-partition results are evaluated again from the cluster's stored windows
    (`load`) at the moment of the collection, which gives exactly what the collection saw.
    """
    return evaluate_group(
        group.group_id, windows.get(group.group_id, {}), group.collected_at, members=group.members
    )


# -- groups as stored data -------------------------------------------------------------------------

GROUPS_FORMAT = 1


def encode_groups(groups: Iterable[GroupLag], members: GroupMembers) -> str:
    """Groups as compact JSON, worst first: `{"v": 1, "g": [row, ...]}`, each row the fields of
    `StoredGroup` up to `topics`, in order, then its members as
    `[[member id, client id, host, [[topic, partition], ...]], ...]` (rows stored before members
    were end at `topics`)."""
    rows = []
    for lag in sorted(groups, key=lambda g: (-g.status.rank, g.group_id)):
        state, count, details = members.get(lag.group_id, ("", None, ()))
        rows.append(
            [
                lag.group_id,
                state,
                count,
                lag.status.value,
                lag.summary,
                lag.total_lag,
                lag.max_lag,
                lag.time_lag_seconds,
                topic_totals(lag),
                # orjson writes the assignment's tuples as arrays: no copies of every member's list.
                [[m.member_id, m.client_id, m.host, m.assignment] for m in details],
            ]
        )
    return orjson.dumps({"v": GROUPS_FORMAT, "g": rows}).decode()


def decode_groups(text: str, collected_at: datetime) -> list[StoredGroup]:
    """The groups `encode_groups` stored; none for data of an unknown format (the next collection
    stores them again)."""
    data = orjson.loads(text) if text else None
    if not isinstance(data, dict) or data.get("v") != GROUPS_FORMAT:
        return []
    return [
        StoredGroup(*row[:9], collected_at=collected_at, member_details=_decode_members(row[9:]))
        for row in data["g"]
    ]


def _decode_members(rest: list[Any]) -> tuple[GroupMember, ...]:
    if not rest:
        return ()
    return tuple(
        GroupMember(member_id, client_id, host, tuple((topic, partition) for topic, partition in assignment))
        for member_id, client_id, host, assignment in rest[0]
    )


def topic_totals(lag: GroupLag) -> dict[str, list[Any]]:
    """{topic: [lag, largest time lag]} of one group, what the exporter publishes per topic."""
    totals: dict[str, list[Any]] = {}
    for partition in lag.partitions:
        entry = totals.setdefault(partition.topic, [0, None])
        entry[0] += partition.lag or 0
        if partition.time_lag_seconds is not None and (
            entry[1] is None or partition.time_lag_seconds > entry[1]
        ):
            entry[1] = partition.time_lag_seconds
    return totals


# -- windows as stored data ------------------------------------------------------------------------


def decode_windows(data: bytes | memoryview | str | None) -> WindowsByGroup:
    """Every group's stored windows, one by one (for the API and the exporter)."""
    return ClusterWindows.decode(data).windows_by_group()


# Earlier versions stored the windows as JSON; `ClusterWindows.decode` still reads it, once per
# cluster after an upgrade.
JSON_WINDOWS_FORMAT = 2


def decode_json_windows(text: bytes | str) -> WindowsByGroup:
    """Windows stored as JSON by earlier versions: `{"v": 2, "size": 10, "max_age": 3600.0, "t":
    [epoch ms...], "g": {group: [[topic, partition, start, [committed...], [end...]], ...]}}`, where
    `start` is where the partition's run of timestamps starts in `t`, or the list of its indexes,
    and a sixth list holds commit times when known. Empty for data of an unknown format (start afresh).
    A partition whose columns do not fit together starts afresh too."""
    try:
        data = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict) or data.get("v") != JSON_WINDOWS_FORMAT:
        return {}
    size = int(data.get("size") or DEFAULT_WINDOW_SIZE)
    max_age_seconds = data.get("max_age")
    max_age = timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None
    stamps: list[int] = data["t"]
    windows: WindowsByGroup = {}
    for group_id, partitions in data["g"].items():
        group_windows = windows[group_id] = {}
        for topic, partition, where, committed, ends, *commit_times in partitions:
            count = len(committed)
            if isinstance(where, int):
                times = stamps[where : where + count] if where >= 0 else []
            else:
                times = [stamps[i] for i in where if 0 <= i < len(stamps)]
            if len(times) != count or len(ends) != count or (commit_times and len(commit_times[0]) != count):
                group_windows[(topic, partition)] = PartitionWindow(size=size, max_age=max_age)
                continue
            group_windows[(topic, partition)] = PartitionWindow(
                size, max_age, times, committed, ends, commit_times[0] if commit_times else None
            )
    return windows
