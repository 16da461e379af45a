"""Collection: read one cluster through `KafkaAdmin`, judge it, store the result, hand it to alerting.

One collection of one cluster is one `collect_cluster` call (one Celery task): Describe Cluster +
Metadata + Describe Configs feed `health.assess_cluster`; Describe Log Dirs gives each broker's disk
usage (`disk`); the consumer groups' committed offsets and the partitions' end offsets are added as
one column to the cluster's Burrow windows (`lag_windows.ClusterWindows`) and judged, all groups at
once, by `lag_batch.evaluate_groups`. The result is written in one transaction (latest health, latest
status of every group with its windows, one history point), then passed to alerting's
`evaluate_cluster`. The statements every collection runs are in `collection_sql`.

A cluster that cannot be reached, or answers with an error, is not a failure of the collection: its
health becomes `unknown` with the reason, its windows and counts are left as they were, and alerting
still hears about it (`reachable=False`).

Scheduling: `claim_due_clusters` (every beat tick) picks the clusters whose `next_collection_at` has
come, moves it on by the cluster's `collection_interval_seconds` and returns their ids, one task each,
so collections spread over the workers and a slow cluster holds up nobody else. A running collection
holds a lease (`collecting_until`) so that a slow cluster is never collected twice at once, and a
cluster whose collection is still queued or running is not enqueued again (`queued_until`), so the
queue cannot grow when the workers fall behind.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.clusters.actions import record_broker_observations
from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import admin_for
from monitoring import assignment, collection_sql, health, history, lag_state, throughput
from monitoring.alerting.rules import DEFAULT_RULES, effective_rules
from monitoring.collection_sql import ClusterFacts, ClusterRow
from monitoring.conditions import AlertRule, Severity, finding_severity
from monitoring.disk import BrokerDisk, broker_disks, disks_data
from monitoring.health import Finding, HealthReport, assess_cluster, classify_partition
from monitoring.lag import (
    DEFAULT_MAX_AGE,
    DEFAULT_WINDOW_SIZE,
    GroupLag,
    millis,
)
from monitoring.lag_batch import evaluate_groups
from monitoring.lag_windows import ClusterWindows
from monitoring.models import ClusterHealth, HealthStatus
from monitoring.throughput import BrokerRate, PartitionTotals
from provisioning.kafka_admin.base import (
    ClusterState,
    ConsumerGroupState,
    KafkaAdmin,
    KafkaAdminError,
    TopicPartition,
)

log = logging.getLogger(__name__)

# Clusters in these states have brokers that should answer; the others are being built or torn down.
COLLECTED_STATUSES = (ClusterStatus.RUNNING, ClusterStatus.DEGRADED, ClusterStatus.UPDATING)
# Brokers planned but not started yet are not expected to be registered.
NOT_EXPECTED_BROKER_STATES = (BrokerState.PENDING,)
# A cluster due within this much of a beat tick is collected on that tick rather than the next one,
# so that an interval equal to a multiple of the tick does not slip by a whole tick.
SCHEDULE_SLACK = timedelta(seconds=1)
# Which finding explains a cluster's status when several have the same severity: what stops clients
# first, then its causes.
REASON_PRIORITY = (
    health.OFFLINE_PARTITIONS,
    health.UNDER_MIN_ISR,
    health.CONTROLLER_MISSING,
    health.BROKER_DOWN,
    health.UNDER_REPLICATED,
    health.AT_MIN_ISR,
)
# A cluster that cannot be reached is collected again at most this long apart (see `retry_interval`).
MAX_UNREACHABLE_RETRY = timedelta(seconds=60)
# How long a bootstrap address may take to accept or refuse a TCP connection in `refused_everywhere`.
PROBE_TIMEOUT_SECONDS = 1.0
# Kafka group states in which a group has members by definition; a broker that reports such a group
# with no members (Tansu does) does not know its members, which is not the same as having none.
STATES_WITH_MEMBERS = frozenset({"Stable", "PreparingRebalance", "CompletingRebalance"})


def collection_lease() -> timedelta:
    """How long a collection may hold a cluster before another may start. Longer than the collection
    task's hard time limit, so it only expires for a worker that died mid-way."""
    return timedelta(seconds=getattr(settings, "MONITORING_COLLECTION_LEASE_SECONDS", 180))


def window_size() -> int:
    return int(getattr(settings, "MONITORING_LAG_WINDOW_SIZE", DEFAULT_WINDOW_SIZE))


@dataclass(frozen=True)
class ClusterSnapshot:
    """What one collection saw of one cluster; handed to alerting after it is stored.

    `health` is None and `groups` empty when the cluster could not be reached (`error` says why).
    """

    cluster_id: uuid.UUID
    cluster_name: str
    collected_at: datetime  # aware, UTC
    reachable: bool
    expected_broker_ids: frozenset[int]
    min_insync_replicas: int  # the cluster's default; topics may set their own (see `state`)
    error: str = ""
    health: HealthReport | None = None
    groups: tuple[GroupLag, ...] = ()  # Burrow evaluation, one per consumer group
    # Kafka's view of each group (state, members, committed offsets), by group id.
    group_states: Mapping[str, ConsumerGroupState] = field(default_factory=lambda: MappingProxyType({}))
    state: ClusterState | None = None  # the metadata the health report was computed from
    # Each broker's fullest data volume, by broker id; brokers that did not answer are missing. None
    # when the cluster said nothing about disks (unreachable, or it does not support DescribeLogDirs).
    disks: Mapping[int, BrokerDisk] | None = None
    # Why consumer groups and offsets could not be read though the cluster answered; then `groups` is
    # empty and the stored groups and windows stay as they were.
    lag_error: str = ""
    # Every partition's end offset and size now, and each broker's messages and bytes in per second
    # since the previous collection (`throughput`); None and empty when they could not be read.
    partition_totals: PartitionTotals | None = None
    broker_rates: Mapping[int, BrokerRate] = field(default_factory=lambda: MappingProxyType({}))
    duration_seconds: float = 0.0
    facts: ClusterFacts | None = None  # None when the snapshot was not taken by `collect_cluster`
    # The cluster's effective alert rules, read once per collection by `collect_cluster`: the stored
    # health status and alerting both judge by them. None: look them up (`snapshot_rules`).
    rules: Mapping[str, AlertRule] | None = None


@dataclass(frozen=True)
class CollectionTarget:
    """What a collection needs to know about a cluster besides what Kafka says."""

    cluster_id: uuid.UUID
    cluster_name: str
    expected_broker_ids: frozenset[int]
    min_insync_replicas: int
    facts: ClusterFacts | None = None
    rules: Mapping[str, AlertRule] | None = None
    # What the previous collection saw of every partition, for the brokers' rates (`throughput`).
    previous_totals: PartitionTotals | None = None


# -- collecting (no database) ----------------------------------------------------------------------


def take_snapshot(
    admin: KafkaAdmin,
    target: CollectionTarget,
    windows: ClusterWindows,
    now: datetime,
    *,
    size: int = DEFAULT_WINDOW_SIZE,
    max_age: timedelta | None = DEFAULT_MAX_AGE,
) -> tuple[ClusterSnapshot, ClusterWindows]:
    """Read the cluster and judge it. Returns the snapshot and the windows to keep.

    A `KafkaAdminError` (unreachable, timed out, refused)
    while describing the cluster gives an unreachable snapshot and the windows unchanged. One while
    reading consumer groups or offsets leaves only the lag unread (`lag_error`): a broker that died but
    is still registered (until its session times out) cannot answer the group listing every broker is
    asked for, and that is no reason to call the whole cluster unreachable.
    """
    started = time.perf_counter()
    try:
        state = admin.describe_cluster()
    except KafkaAdminError as exc:
        return _unreachable(target, now, _reason(exc), started=started), windows

    disks = read_disks(admin, [broker.node_id for broker in state.brokers])
    report = assess_cluster(state, target.expected_broker_ids)
    try:
        kafka_groups = admin.list_consumer_groups()
        partitions = {tp for group in kafka_groups for tp in group.committed}
        # Every partition's end offset, read after the committed offsets (so that no commit is ahead
        # of the end read for it), serves both the lag and the brokers' rates.
        totals = throughput.read_totals(admin, state, millis(now), list(disks or ()))
        if totals is not None:
            end_offsets = {tp: totals.ends[tp] for tp in partitions if tp in totals.ends}
        else:
            end_offsets = admin.end_offsets(partitions) if partitions else {}
    except KafkaAdminError as exc:
        snapshot = _snapshot(
            target, now, started, health=report, state=state, disks=disks, lag_error=_reason(exc)
        )
        return snapshot, windows
    rates = throughput.broker_rates(
        target.previous_totals, totals, throughput.leaders_of(state), (b.node_id for b in state.brokers)
    )
    kept = windows.record(
        ((group.group_id, group.committed) for group in kafka_groups),
        end_offsets,
        millis(now),
        size=size,
        max_age=max_age,
    )
    lags = evaluate_groups(kept, [(group.group_id, known_members(group)) for group in kafka_groups], now)
    snapshot = _snapshot(
        target,
        now,
        started,
        health=report,
        groups=tuple(lags),
        group_states=MappingProxyType({g.group_id: g for g in kafka_groups}),
        state=state,
        disks=disks,
        partition_totals=totals,
        broker_rates=MappingProxyType(rates),
    )
    return snapshot, kept


def _snapshot(target: CollectionTarget, now: datetime, started: float | None, **seen: Any) -> ClusterSnapshot:
    """A snapshot of `target` taken at `now`, with what was seen; reachable unless `seen` says not."""
    return ClusterSnapshot(
        cluster_id=target.cluster_id,
        cluster_name=target.cluster_name,
        collected_at=now,
        reachable=seen.pop("reachable", True),
        expected_broker_ids=target.expected_broker_ids,
        min_insync_replicas=target.min_insync_replicas,
        duration_seconds=time.perf_counter() - started if started is not None else 0.0,
        facts=target.facts,
        rules=target.rules,
        **seen,
    )


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def read_disks(admin: KafkaAdmin, broker_ids: list[int]) -> Mapping[int, BrokerDisk] | None:
    """Each broker's disk usage, or None when the cluster cannot tell: the rest of the collection
    stands without it, so a failure here is no reason to call the cluster unreachable."""
    try:
        return MappingProxyType(broker_disks(admin.describe_log_dirs(broker_ids)))
    except KafkaAdminError as exc:
        log.debug("no disk usage: %s", exc)
        return None


def known_members(group: ConsumerGroupState) -> int | None:
    """The group's member count, or None when the broker's answer cannot be the real count."""
    if group.members == 0 and group.state in STATES_WITH_MEMBERS:
        return None
    return group.members


def health_status(snapshot: ClusterSnapshot) -> tuple[HealthStatus, str]:
    """The cluster's status and the one sentence that explains it."""
    if not snapshot.reachable or snapshot.health is None:
        return HealthStatus.UNKNOWN, f"The cluster could not be reached: {snapshot.error}"
    report = snapshot.health
    if not report.findings:
        brokers = len(report.registered_brokers)
        return (
            HealthStatus.OK,
            f"{_plural(brokers, 'broker')} up and all {_plural(report.totals.partitions, 'partition')} "
            f"fully replicated.",
        )
    rules = snapshot_rules(snapshot)
    worst = max(report.findings, key=lambda finding: _finding_rank(finding, rules))
    severity = finding_severity(worst.kind, rules)
    status = {Severity.CRITICAL: HealthStatus.CRITICAL, Severity.WARNING: HealthStatus.WARNING}.get(
        severity, HealthStatus.OK
    )
    others = len(report.findings) - 1
    reason = worst.summary if not others else f"{worst.summary} ({_plural(others, 'more finding')})"
    return status, reason


def snapshot_rules(snapshot: ClusterSnapshot) -> Mapping[str, AlertRule]:
    """The cluster's effective alert rules: those the snapshot carries, else read."""
    if snapshot.rules is not None:
        return snapshot.rules
    organization_id = (
        Cluster.objects.filter(pk=snapshot.cluster_id).values_list("organization_id", flat=True).first()
    )
    return DEFAULT_RULES if organization_id is None else effective_rules(organization_id, snapshot.cluster_id)


def _finding_rank(finding: Finding, rules: Mapping[str, AlertRule]) -> tuple[int, int, int]:
    priority = (
        len(REASON_PRIORITY) - REASON_PRIORITY.index(finding.kind) if finding.kind in REASON_PRIORITY else 0
    )
    return finding_severity(finding.kind, rules).rank, priority, finding.value


def _plural(count: int, noun: str) -> str:
    return f"1 {noun}" if count == 1 else f"{count:,} {noun}s"


def under_replicated_partitions(state: ClusterState) -> list[TopicPartition]:
    """Every under-replicated partition, counted as `health` counts them (offline ones are not)."""
    live = {b.node_id for b in state.brokers}
    return [
        (p.topic, p.partition)
        for topic in state.topics
        for p in topic.partitions
        if classify_partition(p, topic.min_insync_replicas, live).under_replicated
    ]


def truncate_to_millis(moment: datetime) -> datetime:
    """Collection times are kept to the millisecond, which is what stored windows can hold, so that
    a window read back compares equal to the one written."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- scheduling --------------------------------------------------------------------------------------


def claim_due_clusters(now: datetime | None = None) -> list[uuid.UUID]:
    """The clusters to collect now; each one's next collection is moved on by its interval.

    Runs under row locks that skip rows another scheduler holds, so two beat ticks that overlap
    never hand out the same cluster twice.
    """
    now = now or timezone.now()
    missing = Cluster.objects.filter(status__in=COLLECTED_STATUSES, health__isnull=True).values_list(
        "pk", flat=True
    )
    ClusterHealth.objects.bulk_create(
        [ClusterHealth(cluster_id=pk, reason="Not collected yet.") for pk in missing],
        ignore_conflicts=True,
    )
    with transaction.atomic():
        due = list(
            ClusterHealth.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(cluster__status__in=COLLECTED_STATUSES)
            .exclude(cluster__bootstrap_servers="")
            .filter(Q(next_collection_at__isnull=True) | Q(next_collection_at__lte=now + SCHEDULE_SLACK))
            .filter(Q(queued_until__isnull=True) | Q(queued_until__lt=now))
            .filter(Q(collecting_until__isnull=True) | Q(collecting_until__lt=now))
            .select_related("cluster")
            .only("pk", "next_collection_at", "cluster__collection_interval_seconds")
        )
        for row in due:
            interval = timedelta(seconds=row.cluster.collection_interval_seconds)
            # Keep the cadence of the previous schedule unless it has fallen behind.
            following = (row.next_collection_at or now) + interval
            row.next_collection_at = following if following > now else now + interval
            row.queued_until = now + collection_lease()
        ClusterHealth.objects.bulk_update(due, ["next_collection_at", "queued_until"])
    return [row.pk for row in due]


def _acquire_lease(cluster_id: uuid.UUID, now: datetime) -> bool:
    until = now + collection_lease()
    if collection_sql.claim_lease(cluster_id, now, until):
        return True
    # No row yet (a cluster collected before the scheduler saw it), or someone else holds it.
    ClusterHealth.objects.bulk_create(
        [ClusterHealth(cluster_id=cluster_id, reason="Not collected yet.")], ignore_conflicts=True
    )
    return collection_sql.claim_lease(cluster_id, now, until)


def _release_lease(cluster_id: uuid.UUID) -> None:
    ClusterHealth.objects.filter(pk=cluster_id).update(collecting_until=None, queued_until=None)


# -- one collection, stored --------------------------------------------------------------------------


def collect_cluster(
    cluster_id: uuid.UUID, *, admin: KafkaAdmin | None = None, now: datetime | None = None
) -> ClusterSnapshot | None:
    """Collect one cluster, store the result and hand it to alerting.

    Returns None without doing anything when the cluster is gone, no longer collected, or being
    collected by someone else right now. `admin` replaces the cluster's own admin client (tests,
    benchmarks).
    """
    now = truncate_to_millis(now or timezone.now())
    # The stored windows, the expected brokers and the facts alerting needs come with the cluster.
    row = collection_sql.read_cluster(cluster_id, COLLECTED_STATUSES, NOT_EXPECTED_BROKER_STATES, now)
    if row is None or (admin is None and not row.bootstrap_servers) or not _acquire_lease(cluster_id, now):
        return None
    try:
        target = CollectionTarget(
            cluster_id=row.cluster_id,
            cluster_name=row.name,
            expected_broker_ids=row.expected_broker_ids,
            min_insync_replicas=row.min_insync_replicas,
            facts=row.facts,
            rules=effective_rules(row.facts.organization_id, cluster_id, overrides=row.facts.rule_overrides),
            previous_totals=throughput.decode(row.partition_totals),
        )
        windows = ClusterWindows.decode(row.windows)
        snapshot, windows = _snapshot_with(row, admin, target, windows, now)
        store_collection(snapshot, windows)  # releases the lease
        if not snapshot.reachable:
            back_off(cluster_id, timedelta(seconds=row.collection_interval_seconds), now)
    except BaseException:
        _release_lease(cluster_id)
        raise
    notify_alerting(snapshot)
    observe_brokers(snapshot)
    return snapshot


def _snapshot_with(
    cluster: ClusterRow,
    admin: KafkaAdmin | None,
    target: CollectionTarget,
    windows: ClusterWindows,
    now: datetime,
) -> tuple[ClusterSnapshot, ClusterWindows]:
    size = window_size()
    # A window spans `size` collections; at long intervals that is longer than the default age limit.
    max_age = max(DEFAULT_MAX_AGE, timedelta(seconds=cluster.collection_interval_seconds * (size + 1)))
    if admin is not None:
        return take_snapshot(admin, target, windows, now, size=size, max_age=max_age)
    if refused := refused_everywhere(cluster.bootstrap_servers):
        return _unreachable(target, now, refused), windows
    try:
        own_admin = admin_for(Cluster.objects.get(pk=cluster.cluster_id))
    except KafkaAdminError as exc:
        return _unreachable(target, now, str(exc)), windows
    try:
        return take_snapshot(own_admin, target, windows, now, size=size, max_age=max_age)
    finally:
        own_admin.close()


def refused_everywhere(bootstrap_servers: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> str:
    """Why the cluster is unreachable when every bootstrap address refuses a TCP connection (no
    broker listens there), else "". A client would retry those addresses until its whole request
    timeout ran out, holding a worker that long at every collection; a refusal is an answer, and
    takes a moment. Addresses that do not answer at all (a host that is down, a firewall dropping
    packets) could be slow to answer the client too, so they are left to the client to judge."""
    refused = []
    for address in filter(None, (a.strip() for a in bootstrap_servers.split(","))):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return ""
        except ConnectionRefusedError:
            refused.append(address)
        except (OSError, ValueError):
            return ""
    if not refused:
        return ""
    return f"every bootstrap address refused the connection ({', '.join(refused)}): no broker listens there"


def back_off(cluster_id: uuid.UUID, interval: timedelta, now: datetime) -> None:
    """Collect a cluster that could not be reached less and less often (`retry_interval`)."""
    health = ClusterHealth.objects.filter(pk=cluster_id).values("succeeded_at", "next_collection_at").first()
    created = Cluster.objects.filter(pk=cluster_id).values_list("created_at", flat=True).first()
    if health is None or created is None:
        return
    unreachable_since = health["succeeded_at"] or created
    following = now + retry_interval(interval, now - unreachable_since)
    if health["next_collection_at"] is None or health["next_collection_at"] < following:
        ClusterHealth.objects.filter(pk=cluster_id).update(next_collection_at=following)


def retry_interval(interval: timedelta, unreachable_for: timedelta) -> timedelta:
    """How long after an unreachable collection the next one is due: the cluster's interval at first,
    so that a blip ends quickly, then half the time it has been unreachable, up to
    `MAX_UNREACHABLE_RETRY`. Each collection of an unreachable cluster can hold a worker for the admin
    client's whole timeout; collected at the usual pace, a few such clusters keep the workers busy and
    everyone else's collections and pages wait behind them. The price: a cluster that comes back after
    a long outage is seen back up to `MAX_UNREACHABLE_RETRY` later (its page is not delayed: the first
    failed collection raises it)."""
    return min(MAX_UNREACHABLE_RETRY, max(interval, unreachable_for / 2))


def _unreachable(
    target: CollectionTarget, now: datetime, error: str, *, started: float | None = None
) -> ClusterSnapshot:
    return _snapshot(target, now, started, reachable=False, error=error)


def record_collection_failure(cluster_id: uuid.UUID, error: str, now: datetime | None = None) -> None:
    """Mark a cluster's health unknown when its collection could not finish (it timed out)."""
    now = now or timezone.now()
    ClusterHealth.objects.filter(pk=cluster_id).update(
        status=HealthStatus.UNKNOWN,
        reason=f"The cluster could not be collected: {error}",
        collected_at=now,
        collecting_until=None,
        queued_until=None,
    )


def store_collection(snapshot: ClusterSnapshot, windows: ClusterWindows) -> None:
    """Write one collection in one transaction: health, every group's status and windows, history.

    Releases the collection's lease. Groups the cluster no longer lists are gone from what is stored.
    """
    status, reason = health_status(snapshot)
    duration_ms = round(snapshot.duration_seconds * 1000)
    with collection_sql.pipelined(), transaction.atomic():
        if not snapshot.reachable or snapshot.health is None or snapshot.state is None:
            collection_sql.update_health(
                snapshot.cluster_id,
                status=status,
                reason=reason,
                collected_at=snapshot.collected_at,
                duration_ms=duration_ms,
                collecting_until=None,
                queued_until=None,
            )
            return
        report = snapshot.health
        totals = report.totals
        collection_sql.update_health(
            snapshot.cluster_id,
            status=status,
            reason=reason,
            collected_at=snapshot.collected_at,
            succeeded_at=snapshot.collected_at,
            duration_ms=duration_ms,
            brokers_up=len(report.registered_brokers),
            brokers_expected=len(report.expected_brokers),
            active_controllers=report.active_controllers,
            partitions=totals.partitions,
            offline_partitions=totals.offline,
            under_replicated_partitions=totals.under_replicated,
            under_min_isr_partitions=totals.under_min_isr,
            at_min_isr_partitions=totals.at_min_isr,
            counts=health_counts(report),
            findings=[finding_data(f) for f in report.findings],
            under_replicated=(
                [list(tp) for tp in under_replicated_partitions(snapshot.state)]
                if totals.under_replicated
                else []
            ),
            disks=disks_data(snapshot.disks or {}),
            assignment=assignment.encode(snapshot.state),
            # Kept from the previous collection when unread, so the next rates span the gap.
            **(
                {"partition_totals": throughput.encode(snapshot.partition_totals)}
                if snapshot.partition_totals is not None
                else {}
            ),
            collecting_until=None,
            queued_until=None,
        )
        members = {
            group_id: (state.state, known_members(state), state.member_details)
            for group_id, state in snapshot.group_states.items()
        }
        if not snapshot.lag_error:
            lag_state.save(snapshot.cluster_id, snapshot.groups, members, windows, snapshot.collected_at)
        history.record_samples(snapshot)


def health_counts(report: HealthReport) -> dict[str, Any]:
    return {
        "topics": {name: _counts(counts) for name, counts in report.topics.items()},
        "brokers": {str(broker_id): _counts(counts) for broker_id, counts in report.brokers.items()},
        "expected_brokers": sorted(report.expected_brokers),
        "registered_brokers": sorted(report.registered_brokers),
        "down_brokers": sorted(report.down_brokers),
        "unexpected_brokers": sorted(report.unexpected_brokers),
    }


def _counts(counts: Any) -> dict[str, int]:
    return dict(vars(counts))


def finding_data(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "subject": finding.subject,
        "value": finding.value,
        "summary": finding.summary,
        "brokers": sorted(finding.brokers),
        "partitions": [list(tp) for tp in finding.partitions],
    }


def notify_alerting(snapshot: ClusterSnapshot) -> None:
    """Hand the stored snapshot to alerting. Collection is stored whatever alerting does with it."""
    evaluate_cluster = _alerting_entry_point()
    try:
        evaluate_cluster(snapshot.cluster_id, snapshot)
    except Exception:
        # The collection is stored and its lease released; failing the task as well would add
        # nothing, and the next collection gives alerting another try.
        log.exception("alerting could not evaluate cluster %s", snapshot.cluster_id)


def observe_brokers(snapshot: ClusterSnapshot) -> None:
    """Tell self-healing which expected brokers the metadata showed and which it did not. A cluster
    that could not be reached at all says nothing about single brokers: the way to it may be broken."""
    if not snapshot.reachable or snapshot.health is None:
        return
    facts = snapshot.facts
    if facts is not None and not facts.open_anomalies and not snapshot.health.down_brokers:
        return  # nobody missing, nothing open to resolve
    try:
        record_broker_observations(
            snapshot.cluster_id,
            expected=snapshot.health.expected_brokers,
            registered=snapshot.health.registered_brokers,
            seen_at=snapshot.collected_at,
        )
    except Exception:
        # Like alerting: the collection is stored; the next one gives self-healing another look.
        log.exception("broker observations of cluster %s not recorded", snapshot.cluster_id)


def _alerting_entry_point() -> Callable[[uuid.UUID, ClusterSnapshot], None]:
    # Imported on use: alerting imports this module for ClusterSnapshot. A function of its own so
    # tests and the fleet benchmark can wrap what collection hands the snapshot to.
    from monitoring.alerting.evaluation import evaluate_cluster

    return evaluate_cluster
