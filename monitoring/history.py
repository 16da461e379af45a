"""History for charts: cluster totals and consumer group lag over time.

Every collection that reaches a cluster adds one raw point for the cluster and one per consumer group
(`record_samples`, inside the collection's transaction). `prune_history` keeps them bounded:

- raw points older than `MONITORING_RAW_HISTORY_SECONDS` (default one hour) are replaced by one
  average per minute, per cluster and per group;
- every point older than `MONITORING_HISTORY_SECONDS` (default 24 hours) is deleted.

A collection that could not reach the cluster adds nothing, so a chart shows a gap, not a zero.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Min
from django.db.models.functions import TruncMinute
from django.utils import timezone

from monitoring.models import ClusterSample, GroupLagSample, Resolution

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
# Series per consumer group: API name -> GroupLagSample field.
GROUP_SERIES = {"consumer_lag": "total_lag", "consumer_time_lag_seconds": "time_lag_seconds"}
SERIES_NAMES = (*CLUSTER_SERIES, *GROUP_SERIES)

# Downsampling works through old raw points a slice of time at a time, one transaction each, so a
# backlog (history switched on for a large fleet, the pruner down for a day) never becomes one huge
# transaction.
DOWNSAMPLE_SLICE = timedelta(minutes=10)


def history_retention() -> timedelta:
    return timedelta(seconds=getattr(settings, "MONITORING_HISTORY_SECONDS", 24 * 3600))


def raw_retention() -> timedelta:
    return timedelta(seconds=getattr(settings, "MONITORING_RAW_HISTORY_SECONDS", 3600))


@dataclass(frozen=True)
class Series:
    name: str
    group_id: str | None  # for consumer group series
    points: tuple[tuple[datetime, float | None], ...]


def record_samples(snapshot: ClusterSnapshot) -> None:
    """Add one point per cluster and per group; part of the collection's transaction."""
    report = snapshot.health
    if not snapshot.reachable or report is None:
        return
    totals = report.totals
    ClusterSample.objects.create(
        cluster_id=snapshot.cluster_id,
        at=snapshot.collected_at,
        brokers_up=len(report.registered_brokers),
        offline_partitions=totals.offline,
        under_replicated_partitions=totals.under_replicated,
        under_min_isr_partitions=totals.under_min_isr,
        at_min_isr_partitions=totals.at_min_isr,
    )
    GroupLagSample.objects.bulk_create(
        [
            GroupLagSample(
                cluster_id=snapshot.cluster_id,
                group_id=group.group_id,
                at=snapshot.collected_at,
                total_lag=group.total_lag,
                time_lag_seconds=group.time_lag_seconds,
            )
            for group in snapshot.groups
        ]
    )


def prune_history(now: datetime | None = None) -> tuple[int, int]:
    """Downsample old raw points, delete expired ones. Returns (points averaged away, deleted).

    Safe to run twice at once: a minute's average is unique per cluster (and group), and a second
    run's inserts of the same minute are ignored.
    """
    now = now or timezone.now()
    averaged = downsample(now - raw_retention())
    expired = now - history_retention()
    deleted = ClusterSample.objects.filter(at__lt=expired).delete()[0]
    deleted += GroupLagSample.objects.filter(at__lt=expired).delete()[0]
    return averaged, deleted


def downsample(before: datetime) -> int:
    """Replace raw points older than `before` (rounded down to the minute) by per-minute averages."""
    cutoff = before.astimezone(UTC).replace(second=0, microsecond=0)
    oldest = _oldest_raw(cutoff)
    replaced = 0
    while oldest is not None and oldest < cutoff:
        end = min(oldest.replace(second=0, microsecond=0) + DOWNSAMPLE_SLICE, cutoff)
        with transaction.atomic():
            replaced += _downsample_clusters(oldest, end) + _downsample_groups(oldest, end)
        oldest = _oldest_raw(cutoff)
    return replaced


def _oldest_raw(cutoff: datetime) -> datetime | None:
    moments = [
        model.objects.filter(resolution=Resolution.RAW, at__lt=cutoff).aggregate(oldest=Min("at"))["oldest"]
        for model in (ClusterSample, GroupLagSample)
    ]
    return min((m for m in moments if m is not None), default=None)


def _downsample_clusters(start: datetime, end: datetime) -> int:
    raw = ClusterSample.objects.filter(resolution=Resolution.RAW, at__gte=start, at__lt=end)
    averages = (
        raw.annotate(minute=TruncMinute("at", tzinfo=UTC))
        .values("cluster_id", "minute")
        .annotate(**{field: Avg(field) for field in CLUSTER_SERIES.values()})
        .order_by()
    )
    ClusterSample.objects.bulk_create(
        [
            ClusterSample(
                cluster_id=row["cluster_id"],
                at=row["minute"],
                resolution=Resolution.MINUTE,
                **{field: row[field] for field in CLUSTER_SERIES.values()},
            )
            for row in averages
        ],
        ignore_conflicts=True,
    )
    return raw.delete()[0]


def _downsample_groups(start: datetime, end: datetime) -> int:
    raw = GroupLagSample.objects.filter(resolution=Resolution.RAW, at__gte=start, at__lt=end)
    averages = (
        raw.annotate(minute=TruncMinute("at", tzinfo=UTC))
        .values("cluster_id", "group_id", "minute")
        .annotate(total_lag=Avg("total_lag"), time_lag_seconds=Avg("time_lag_seconds"))
        .order_by()
    )
    GroupLagSample.objects.bulk_create(
        [
            GroupLagSample(
                cluster_id=row["cluster_id"],
                group_id=row["group_id"],
                at=row["minute"],
                resolution=Resolution.MINUTE,
                total_lag=row["total_lag"],
                time_lag_seconds=row["time_lag_seconds"],
            )
            for row in averages
        ],
        ignore_conflicts=True,
    )
    return raw.delete()[0]


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
    samples = GroupLagSample.objects.filter(cluster_id=cluster_id, at__gte=since)
    if until is not None:
        samples = samples.filter(at__lte=until)
    if groups is not None:
        samples = samples.filter(group_id__in=list(groups))
    fields = [GROUP_SERIES[n] for n in names]
    points: dict[str, list[tuple[datetime, ...]]] = {}
    for group_id, at, *values in samples.order_by("group_id", "at").values_list("group_id", "at", *fields):
        points.setdefault(group_id, []).append((at, *values))
    return [
        Series(name, group_id, tuple((row[0], row[i + 1]) for row in rows))
        for group_id, rows in points.items()
        for i, name in enumerate(names)
    ]
