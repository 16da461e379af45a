"""The alert lifecycle, driven by the collector after every collection of a cluster.

    conditions true        -> incident pending (or firing at once when the rule's `for` is 0)
    still true after `for` -> firing, and channels get a trigger unless the incident is muted
    acknowledged (API)     -> no more repeats; channels that got the trigger get an acknowledge
    condition gone         -> resolved; channels that got the trigger get a resolve

Time is the snapshot's `collected_at`, never the wall clock, so the lifecycle follows the data (and
tests drive it with any clock they like).

Hot path: this runs once per cluster per collection interval across the whole fleet. A healthy
cluster with no open incidents costs no query when the collector read its `ClusterFacts` (three small
ones otherwise) and no transaction; everything else is batched (one insert for new incidents, one
update per kind of transition, one bulk update for changed values, one insert for deliveries),
whatever the number of conditions.

Automatic transitions are not written to the audit log: they are nobody's action, the incident row
itself keeps when it was first seen, fired and resolved, and an audit row per transition would
multiply the writes of a flapping fleet. What people do to incidents is audited in `actions`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from monitoring import health
from monitoring.alerting import delivery
from monitoring.alerting.choices import OPEN_STATES, DeliveryEvent, IncidentState
from monitoring.alerting.models import Incident
from monitoring.alerting.muting import Mutes, active_mutes, brokers_in_running_operations
from monitoring.alerting.rules import CLUSTER_SUBJECT, CLUSTER_UNREACHABLE, effective_rules
from monitoring.collection_sql import (
    insert_all,
    last_sequences,
    locked_open_incidents,
    new,
    routing_channels,
    update_all,
    update_by_pk,
)
from monitoring.conditions import (
    CONSUMER_LAG_OFFSETS,
    CONSUMER_LAG_STATUS,
    CONSUMER_TIME_LAG,
    DISK_USAGE,
    MAX_DEDUP_KEY_LENGTH,
    AlertRule,
    Condition,
    dedup_key,
    evaluate,
)

if TYPE_CHECKING:
    # Only for annotations: the collector imports this module when it hands snapshots over.
    from monitoring.collector import ClusterSnapshot

logger = logging.getLogger(__name__)

SYSTEM = Actor.system("alerting")
HEALTH_RULES = frozenset(
    {
        health.OFFLINE_PARTITIONS,
        health.UNDER_MIN_ISR,
        health.AT_MIN_ISR,
        health.UNDER_REPLICATED,
        health.BROKER_DOWN,
        health.CONTROLLER_MISSING,
        health.CONTROLLER_LAGGING,
    }
)
LAG_RULES = frozenset({CONSUMER_LAG_STATUS, CONSUMER_LAG_OFFSETS, CONSUMER_TIME_LAG})
MAX_ERROR_CHARS = 300


@dataclass
class Outcome:
    """What one evaluation changed, for logs, tests and benchmarks."""

    opened: list[int] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    deliveries: int = 0


def evaluate_cluster(cluster_id: uuid.UUID, snapshot: ClusterSnapshot) -> None:
    """Bring the cluster's incidents in line with one snapshot and notify channels of the changes."""
    evaluate_snapshot(cluster_id, snapshot)


def evaluate_snapshot(cluster_id: uuid.UUID, snapshot: ClusterSnapshot) -> Outcome:
    # A snapshot from `collect_cluster` carries what the collector read with the cluster row
    # (`facts`), which saves looking up the organization, the overrides and the open incidents.
    facts = snapshot.facts
    if facts is not None:
        organization_id = facts.organization_id
    else:
        cluster = Cluster.objects.only("id", "status", "organization_id").filter(pk=cluster_id).first()
        if cluster is None or cluster.status == ClusterStatus.DELETED:
            return Outcome()
        organization_id = cluster.organization_id
    rules = (
        snapshot.rules
        if snapshot.rules is not None
        else effective_rules(organization_id, cluster_id, overrides=facts is None or facts.rule_overrides)
    )
    conditions = snapshot_conditions(cluster_id, snapshot, rules)
    if not conditions and not (
        facts.open_incidents
        if facts is not None
        else Incident.objects.filter(cluster_id=cluster_id, state__in=OPEN_STATES).exists()
    ):
        # The usual case of a healthy cluster: nothing to open, nothing to resolve, no lock needed.
        return Outcome()
    observed = observed_in(snapshot)
    # Silences and maintenance windows are looked up only when the collector saw one in force.
    look_up_mutes = facts is None or facts.mutes
    # Two evaluations of one cluster may race (a slow collection overlapping the next one). Open
    # incidents are locked; a lost race to open the same new incident violates a unique constraint,
    # and the second run then sees the winner's incidents.
    try:
        with transaction.atomic():
            return _apply(
                cluster_id, organization_id, conditions, observed, snapshot.collected_at, look_up_mutes
            )
    except IntegrityError:
        logger.info("cluster=%s concurrent evaluation opened the same incident; re-evaluating", cluster_id)
    with transaction.atomic():
        return _apply(cluster_id, organization_id, conditions, observed, snapshot.collected_at, look_up_mutes)


def snapshot_conditions(
    cluster_id: uuid.UUID, snapshot: ClusterSnapshot, rules: Mapping[str, AlertRule]
) -> list[Condition]:
    """Active conditions, suppressed ones marked; operations are looked up only when they matter."""
    key = str(cluster_id)
    if not snapshot.reachable:
        rule = rules[CLUSTER_UNREACHABLE]
        if not rule.enabled or not rule.breached(1):
            return []
        error = " ".join((snapshot.error or "no answer").split())[:MAX_ERROR_CHARS]
        return [
            Condition(
                rule_key=CLUSTER_UNREACHABLE,
                subject=CLUSTER_SUBJECT,
                severity=rule.severity,
                value=1,
                threshold=rule.threshold,
                summary=f"Cluster {snapshot.cluster_name} cannot be reached: {error}",
                dedup_key=dedup_key(key, CLUSTER_UNREACHABLE, CLUSTER_SUBJECT),
                for_seconds=rule.for_seconds,
                details={"error": error},
            )
        ]
    disk = {broker_id: d.used_percent for broker_id, d in (snapshot.disks or {}).items()}

    def run(operation_brokers: Collection[int]) -> list[Condition]:
        return evaluate(
            key,
            rules,
            health_report=snapshot.health,
            lag=snapshot.groups,
            disk_usage_percent=disk,
            operation_brokers=operation_brokers,
        )

    conditions = run(())
    if any(rules[c.rule_key].suppressible and c.brokers for c in conditions):
        busy = brokers_in_running_operations(cluster_id)
        if busy:
            conditions = run(busy)
    return conditions


@dataclass(frozen=True)
class Observed:
    """What a snapshot says something about: only incidents it observes may resolve by absence.

    An unreachable cluster says nothing about its partitions or consumers, so their incidents stay
    as they were rather than resolving and firing again when the cluster answers. Likewise consumer
    incidents stay when the groups could not be read, and a broker that did not report its disk (down,
    or slow to answer) keeps its disk incident.
    """

    rules: frozenset[str]
    disk_subjects: frozenset[str] = frozenset()  # the brokers whose disk the snapshot read

    def covers(self, rule_key: str, subject: str) -> bool:
        if rule_key == DISK_USAGE:
            return subject in self.disk_subjects
        return rule_key in self.rules


def observed_in(snapshot: ClusterSnapshot) -> Observed:
    if not snapshot.reachable:
        return Observed(frozenset({CLUSTER_UNREACHABLE}))
    rules = {CLUSTER_UNREACHABLE}
    if not snapshot.lag_error:
        rules |= LAG_RULES
    if snapshot.health is not None:
        rules |= HEALTH_RULES
    disks = snapshot.disks or {}
    return Observed(frozenset(rules), frozenset(health.broker_subject(b) for b in disks))


def notification_key(key: str, sequence: int) -> str:
    """The incident's key for receivers: its dedup key plus its sequence, within PagerDuty's limit."""
    suffix = f"/{sequence}"
    if len(key) + len(suffix) <= MAX_DEDUP_KEY_LENGTH:
        return key + suffix
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: MAX_DEDUP_KEY_LENGTH - len(suffix) - len(digest) - 1]}#{digest}{suffix}"


# An open incident's latest value, summary and details are copied from its condition at most this
# often (and whenever it fires or its severity or muting changes): lag numbers change on every
# collection, and rewriting every open incident every ten seconds would dominate evaluation.
VALUES_REFRESH = timedelta(seconds=60)


def _apply(
    cluster_id: uuid.UUID,
    organization_id: int,
    conditions: Sequence[Condition],
    observed: Observed,
    now: datetime,
    look_up_mutes: bool = True,
) -> Outcome:
    outcome = Outcome()
    open_incidents = {incident.dedup_key: incident for incident in locked_open_incidents(cluster_id)}
    if not conditions and not open_incidents:
        return outcome
    current: dict[str, Condition] = {}
    for condition in conditions:
        current.setdefault(condition.dedup_key, condition)
    mutes = (
        active_mutes(organization_id, [cluster_id], now)[cluster_id] if look_up_mutes else Mutes(cluster_id)
    )

    new_keys = [key for key in current if key not in open_incidents]
    sequences = last_sequences(cluster_id, new_keys)
    created: list[Incident] = []
    for key in new_keys:
        condition = current[key]
        sequence = sequences.get(key, 0) + 1
        fires = condition.for_seconds <= 0
        incident = new(
            Incident,
            cluster_id=cluster_id,
            rule_key=condition.rule_key,
            subject=condition.subject,
            dedup_key=key,
            sequence=sequence,
            notification_key=notification_key(key, sequence),
            state=IncidentState.FIRING if fires else IncidentState.PENDING,
            first_seen_at=now,
            fired_at=now if fires else None,
        )
        _refresh(incident, condition, mutes, now, force_values=True)
        created.append(incident)

    to_fire: list[Incident] = []
    changed: dict[frozenset[str], list[Incident]] = {}
    to_resolve: list[Incident] = []
    for key, incident in open_incidents.items():
        condition = current.get(key)
        if condition is None:
            if observed.covers(incident.rule_key, incident.subject):
                to_resolve.append(incident)
            continue
        fires = incident.state == IncidentState.PENDING and now - incident.first_seen_at >= timedelta(
            seconds=condition.for_seconds
        )
        if fires:
            to_fire.append(incident)
        if fields := _refresh(incident, condition, mutes, now, force_values=fires):
            changed.setdefault(frozenset(fields), []).append(incident)

    # Incidents that open firing and unmuted are routed to channels below; their mark goes in with
    # the insert rather than in an update after it.
    opened_due = [i for i in created if i.state == IncidentState.FIRING and not i.muted]
    for incident in opened_due:
        incident.last_notified_at = now
    if created:
        insert_all(Incident, created)
        outcome.opened = [i.pk for i in created]
    # Grouped by the fields that changed: a bulk update writes every named field of every row.
    for fields, incidents in changed.items():
        update_all(Incident, incidents, sorted(fields))
    if to_fire:
        update_by_pk(
            Incident,
            [i.pk for i in to_fire],
            {"state": IncidentState.FIRING, "fired_at": now},
            where={"state": [IncidentState.PENDING]},
        )
        for incident in to_fire:
            incident.state, incident.fired_at = IncidentState.FIRING, now
    if to_resolve:
        update_by_pk(
            Incident,
            [i.pk for i in to_resolve],
            {"state": IncidentState.RESOLVED, "resolved_at": now, "resolved_by_name": SYSTEM.name},
            where={"state": OPEN_STATES},
        )
        for incident in to_resolve:
            incident.state, incident.resolved_at = IncidentState.RESOLVED, now
        outcome.resolved = [i.pk for i in to_resolve]

    fired = [i for i in created if i.state == IncidentState.FIRING] + to_fire
    outcome.fired = [i.pk for i in fired]

    due = [
        i
        for i in open_incidents.values()
        if i.state == IncidentState.FIRING and not i.muted and i.last_notified_at is None
    ]
    resolved_notified = [i for i in to_resolve if i.last_notified_at is not None]
    outcome.deliveries = notify(
        organization_id, [*opened_due, *due], resolved_notified, now=now, unmarked=due
    )
    return outcome


def _refresh(
    incident: Incident, condition: Condition, mutes: Mutes, now: datetime, *, force_values: bool
) -> set[str]:
    """Copy the condition and the mutes onto the incident; returns the fields that changed."""
    silence_id, window_id = mutes.match(condition.rule_key, condition.subject)
    changed = _assign(
        incident,
        {
            "severity": condition.severity.value,
            "suppressed_by_operation": condition.suppressed_by_operation,
            "silenced": silence_id is not None or window_id is not None,
            "silence": silence_id,
            "maintenance_window": window_id,
        },
    )
    if force_values or changed or incident.values_at is None or now - incident.values_at >= VALUES_REFRESH:
        values = _assign(
            incident,
            {
                "summary": condition.summary,
                "value": float(condition.value),
                "threshold": float(condition.threshold),
                "details": dict(condition.details),
            },
        )
        if values:
            incident.values_at = now
            changed |= values | {"values_at"}
    return changed


def _assign(incident: Incident, values: dict[str, object]) -> set[str]:
    changed = set()
    for name, value in values.items():
        attribute = f"{name}_id" if name in ("silence", "maintenance_window") else name
        if getattr(incident, attribute) != value:
            setattr(incident, attribute, value)
            changed.add(name)
    return changed


def notify(
    organization_id: int,
    triggers: Sequence[Incident],
    resolves: Sequence[Incident],
    *,
    now: datetime,
    requested_by: str = SYSTEM.name,
    unmarked: Sequence[Incident] | None = None,
) -> int:
    """Schedule triggers to routed channels and resolves to the channels that got the trigger.

    Triggers are marked notified at `now`; `unmarked` names those whose stored row is not yet (all
    of them unless given). Must run inside the transaction that changed the incidents. Returns the
    deliveries scheduled.
    """
    if not triggers and not resolves:
        return 0
    planned: list[delivery.Planned] = []
    if triggers:
        channels = routing_channels(organization_id)
        for incident in triggers:
            planned += [
                delivery.Planned(c.pk, incident.pk, DeliveryEvent.TRIGGER, incident.notification_key)
                for c in delivery.channels_for(channels, incident.severity)
            ]
        # Marked even when no channel takes the incident: routing is done, and an organization
        # without channels must not cost a channel query on every evaluation.
        to_mark = triggers if unmarked is None else unmarked
        if to_mark:
            update_by_pk(Incident, [i.pk for i in to_mark], {"last_notified_at": now})
        for incident in triggers:
            incident.last_notified_at = now
    if resolves:
        planned += closing_deliveries(resolves, DeliveryEvent.RESOLVE)
    delivery.schedule(planned, now=now, requested_by=requested_by)
    return len(planned)


def closing_deliveries(incidents: Sequence[Incident], event: DeliveryEvent) -> list[delivery.Planned]:
    """Acknowledge or resolve events for the channels each incident's trigger went to, each to
    supersede the incident's triggers still unsent to its channel."""
    sent_to = delivery.triggered_channels([i.pk for i in incidents])
    return [
        delivery.Planned(channel_id, incident.pk, event, incident.notification_key, tuple(pending))
        for incident in incidents
        for channel_id, pending in sorted(sent_to.get(incident.pk, {}).items())
    ]
