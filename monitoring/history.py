"""History for charts: cluster totals and consumer group lag over time.

Every collection that reaches a cluster adds one raw point, which holds the cluster's totals and
every consumer group's lag (`record_samples`, inside the collection's transaction). `prune_history`
keeps them bounded:

- raw points older than `MONITORING_RAW_HISTORY_SECONDS` (default one hour) are replaced by one
  average per minute and cluster (each group's lag averaged over the points that have it);
- every point older than `MONITORING_HISTORY_SECONDS` (default 24 hours) is deleted.

A collection that could not reach the cluster adds nothing, so a chart shows a gap, not a zero.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from statistics import fmean
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from monitoring import collection_sql
from monitoring.lag import LagStatus
from monitoring.models import ClusterSample, Resolution

if TYPE_CHECKING:
    from monitoring.collector import ClusterSnapshot

# Series of a cluster's totals: API name -> ClusterSample field.
CLUSTER_SERIES = {
    "brokers_up": "brokers_up",
    "offline_partitions": "offline_partitions",
    "under_replicated_partitions": "under_replicated_partitions",
    "under_min_isr_partitions": "under_min_isr_partitions",
    "at_min_isr_partitions": "at_min_isr_partitions",
}
# Series per consumer group: API name -> index in a sample's `groups` entry
# ([lag, time lag, status]; points stored before statuses were have no status).
GROUP_SERIES = {"consumer_lag": 0, "consumer_time_lag_seconds": 1}
STATUS_INDEX = 2
# Series per broker: API name -> index in a sample's `brokers` entry.
BROKER_SERIES = {
    "broker_messages_in_per_second": 0,
    "broker_bytes_in_per_second": 1,
    "broker_disk_used_percent": 2,
}
SERIES_NAMES = (*CLUSTER_SERIES, *GROUP_SERIES, *BROKER_SERIES)

# Downsampling works through old raw points a slice of time at a time, one transaction each, so a
# backlog (history switched on for a large fleet, the pruner down for a day) never becomes one huge
# transaction; within a slice, averages are written a batch at a time.
DOWNSAMPLE_SLICE = timedelta(minutes=10)
DOWNSAMPLE_BATCH = 1000


def history_retention() -> timedelta:
    return timedelta(seconds=getattr(settings, "MONITORING_HISTORY_SECONDS", 24 * 3600))


def raw_retention() -> timedelta:
    return timedelta(seconds=getattr(settings, "MONITORING_RAW_HISTORY_SECONDS", 3600))


@dataclass(frozen=True)
class Series:
    name: str
    group_id: str | None  # for consumer group series
    points: tuple[tuple[datetime, float | None], ...]
    broker_id: int | None = None  # for broker series


def record_samples(snapshot: ClusterSnapshot) -> None:
    """Add one point with the cluster's totals and every group's lag; part of the collection's
    transaction."""
    report = snapshot.health
    if not snapshot.reachable or report is None:
        return
    totals = report.totals
    sample = ClusterSample(
        cluster_id=snapshot.cluster_id,
        at=snapshot.collected_at,
        brokers_up=len(report.registered_brokers),
        offline_partitions=totals.offline,
        under_replicated_partitions=totals.under_replicated,
        under_min_isr_partitions=totals.under_min_isr,
        at_min_isr_partitions=totals.at_min_isr,
        groups={
            group.group_id: [group.total_lag, group.time_lag_seconds, group.status.value]
            for group in snapshot.groups
        },
        brokers=broker_points(snapshot),
    )
    collection_sql.insert_all(ClusterSample, [sample])


def broker_points(snapshot: ClusterSnapshot) -> dict[str, list[float | None]]:
    """{broker id: [messages in/s, bytes in/s, disk used %]} for every broker with a rate or a disk."""
    rates, disks = snapshot.broker_rates, snapshot.disks or {}
    points: dict[str, list[float | None]] = {}
    for broker in sorted(set(rates) | set(disks)):
        rate, disk = rates.get(broker), disks.get(broker)
        points[str(broker)] = [
            round(rate.messages_per_second, 3) if rate else None,
            round(rate.bytes_per_second, 3) if rate and rate.bytes_per_second is not None else None,
            round(disk.used_percent, 2) if disk else None,
        ]
    return points


def prune_history(now: datetime | None = None) -> tuple[int, int]:
    """Downsample old raw points, delete expired ones. Returns (points averaged away, deleted).

    Safe to run twice at once: a minute's average is unique per cluster, and a second run's inserts
    of the same minute are ignored.
    """
    now = now or timezone.now()
    averaged = downsample(now - raw_retention())
    deleted = ClusterSample.objects.filter(at__lt=now - history_retention()).delete()[0]
    return averaged, deleted


def downsample(before: datetime) -> int:
    """Replace raw points older than `before` (rounded down to the minute) by per-minute averages."""
    cutoff = before.astimezone(UTC).replace(second=0, microsecond=0)
    oldest = _oldest_raw(cutoff)
    replaced = 0
    while oldest is not None and oldest < cutoff:
        end = min(oldest.replace(second=0, microsecond=0) + DOWNSAMPLE_SLICE, cutoff)
        with transaction.atomic():
            replaced += _downsample_slice(oldest, end)
        oldest = _oldest_raw(cutoff)
    return replaced


def _oldest_raw(cutoff: datetime) -> datetime | None:
    return ClusterSample.objects.filter(resolution=Resolution.RAW, at__lt=cutoff).aggregate(oldest=Min("at"))[
        "oldest"
    ]


def _downsample_slice(start: datetime, end: datetime) -> int:
    raw = ClusterSample.objects.filter(resolution=Resolution.RAW, at__gte=start, at__lt=end)
    fields = list(CLUSTER_SERIES.values())
    rows = raw.order_by("cluster_id", "at").values_list("cluster_id", "at", "groups", "brokers", *fields)
    averages: list[ClusterSample] = []
    for (cluster_id, minute), points in groupby(rows.iterator(chunk_size=2000), key=_cluster_minute):
        averages.append(_average(cluster_id, minute, list(points), fields))
        if len(averages) >= DOWNSAMPLE_BATCH:
            ClusterSample.objects.bulk_create(averages, ignore_conflicts=True)
            averages = []
    ClusterSample.objects.bulk_create(averages, ignore_conflicts=True)
    return raw.delete()[0]


def _cluster_minute(row: Sequence[Any]) -> tuple[Any, datetime]:
    return row[0], row[1].astimezone(UTC).replace(second=0, microsecond=0)


def _average(
    cluster_id: Any, minute: datetime, points: list[Sequence[Any]], fields: list[str]
) -> ClusterSample:
    """One minute's points as one: each total averaged, each group's lag and time lag averaged over
    the points that have them (a group that appeared mid-minute, a time lag not always known), and
    its worst status of the minute."""
    lags: dict[str, list[float]] = {}
    time_lags: dict[str, list[float]] = {}
    statuses: dict[str, str] = {}
    for point in points:
        for group_id, (lag, time_lag, *status) in point[2].items():
            lags.setdefault(group_id, []).append(lag)
            if time_lag is not None:
                time_lags.setdefault(group_id, []).append(time_lag)
            if status and (group_id not in statuses or _rank(status[0]) > _rank(statuses[group_id])):
                statuses[group_id] = status[0]
    return ClusterSample(
        cluster_id=cluster_id,
        at=minute,
        resolution=Resolution.MINUTE,
        groups={
            group_id: [
                fmean(values),
                fmean(time_lags[group_id]) if group_id in time_lags else None,
                *([statuses[group_id]] if group_id in statuses else []),
            ]
            for group_id, values in lags.items()
        },
        brokers=_average_brokers(point[3] for point in points),
        **{field: fmean(point[4 + i] for point in points) for i, field in enumerate(fields)},
    )


def _average_brokers(entries: Iterable[dict[str, list[float | None]]]) -> dict[str, list[float | None]]:
    """Each broker's measures averaged over the points that have them."""
    values: dict[str, list[list[float]]] = {}
    for entry in entries:
        for broker, measures in entry.items():
            slots = values.setdefault(broker, [[] for _ in BROKER_SERIES])
            for slot, value in zip(slots, measures, strict=False):
                if value is not None:
                    slot.append(value)
    return {broker: [fmean(slot) if slot else None for slot in slots] for broker, slots in values.items()}


def _rank(status: str) -> int:
    try:
        return LagStatus(status).rank
    except ValueError:
        return -1


@dataclass(frozen=True)
class StatusSpan:
    """A stretch of time over which a consumer group's status stayed the same."""

    status: str
    since: datetime
    until: datetime  # the last point with this status


def group_status_history(cluster_id: object, group_id: str, since: datetime) -> list[StatusSpan]:
    """The group's status over time from `since`, newest first, as spans of one status: what the
    collections that stored a status said (a minute's point says its worst)."""
    spans: list[StatusSpan] = []
    samples = ClusterSample.objects.filter(cluster_id=cluster_id, at__gte=since, groups__has_key=group_id)
    # KeyTransform rather than a `groups__<id>` lookup: a group id may itself contain "__".
    entries = samples.annotate(entry=KeyTransform(group_id, "groups")).order_by("at")
    for at, entry in entries.values_list("at", "entry"):
        if not isinstance(entry, list) or len(entry) <= STATUS_INDEX:
            continue
        status = entry[STATUS_INDEX]
        if spans and spans[-1].status == status:
            spans[-1] = StatusSpan(status, spans[-1].since, at)
        else:
            spans.append(StatusSpan(status, at, at))
    return spans[::-1]


def cluster_series(
    cluster_id: object, names: Iterable[str], since: datetime, until: datetime | None = None
) -> list[Series]:
    """Time series of a cluster's totals, oldest point first."""
    names = [n for n in names if n in CLUSTER_SERIES]
    if not names:
        return []
    samples = ClusterSample.objects.filter(cluster_id=cluster_id, at__gte=since)
    if until is not None:
        samples = samples.filter(at__lte=until)
    rows = list(samples.order_by("at").values_list("at", *(CLUSTER_SERIES[n] for n in names)))
    return [Series(name, None, tuple((row[0], row[i + 1]) for row in rows)) for i, name in enumerate(names)]


def _points_by_key(
    cluster_id: object, column: str, since: datetime, until: datetime | None, wanted: Collection[str] | None
) -> dict[str, list[tuple[datetime, list[float | None]]]]:
    """Each key's (time, values) points of a per-group or per-broker column, oldest first."""
    samples = ClusterSample.objects.filter(cluster_id=cluster_id, at__gte=since)
    if until is not None:
        samples = samples.filter(at__lte=until)
    keep = set(wanted) if wanted is not None else None
    points: dict[str, list[tuple[datetime, list[float | None]]]] = {}
    for at, entries in samples.order_by("at").values_list("at", column):
        for key, values in entries.items():
            if keep is None or key in keep:
                points.setdefault(key, []).append((at, values))
    return points


def group_series(
    cluster_id: object,
    names: Iterable[str],
    since: datetime,
    until: datetime | None = None,
    groups: Collection[str] | None = None,
) -> list[Series]:
    """Time series per consumer group (all groups, or those named), oldest point first."""
    names = [n for n in names if n in GROUP_SERIES]
    if not names:
        return []
    points = _points_by_key(cluster_id, "groups", since, until, groups)
    return [
        Series(name, group_id, tuple((at, values[GROUP_SERIES[name]]) for at, values in points[group_id]))
        for group_id in sorted(points)
        for name in names
    ]


def broker_series(
    cluster_id: object,
    names: Iterable[str],
    since: datetime,
    until: datetime | None = None,
    brokers: Collection[int] | None = None,
) -> list[Series]:
    """Time series per broker (all brokers, or those given), oldest point first."""
    names = [n for n in names if n in BROKER_SERIES]
    if not names:
        return []
    wanted = [str(b) for b in brokers] if brokers is not None else None
    points = _points_by_key(cluster_id, "brokers", since, until, wanted)
    return [
        Series(name, None, tuple((at, values[BROKER_SERIES[name]]) for at, values in points[key]), int(key))
        for key in sorted(points, key=int)
        for name in names
    ]
