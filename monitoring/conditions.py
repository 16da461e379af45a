"""Alert rules and the conditions they raise from health findings and consumer lag.

`RULES` is the one rule catalogue, `Severity` the one severity scale. Organisations and clusters
override a rule's threshold, `for` duration, severity or enabled flag; `apply_overrides` applies
those layers in order (organisation first, then cluster) and `monitoring.alerting.rules.
effective_rules` reads them, for alerting, the health status and the dashboard alike. `evaluate` turns one cluster's health report, lag results and disk usage into
the conditions that are active right now. It does not track time: the alert lifecycle that stores
conditions applies each rule's `for_seconds` (pending -> firing) and resolves conditions that are no
longer returned.

Planned operations: a rolling restart or a reassignment takes replicas out of sync on purpose.
Conditions of suppressible rules (URP, at-min-ISR, broker down) whose causing brokers all belong to a
running operation are returned with `suppressed_by_operation=True`, so they are recorded but not
sent. Under-min-ISR and offline partitions are never suppressible: they stop producers whatever the
cause (KIP-427).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from django.db import models

from monitoring import health
from monitoring.health import Finding, HealthReport
from monitoring.lag import GroupLag, LagStatus, format_seconds

OFFLINE_PARTITIONS = health.OFFLINE_PARTITIONS
UNDER_MIN_ISR = health.UNDER_MIN_ISR
AT_MIN_ISR = health.AT_MIN_ISR
UNDER_REPLICATED = health.UNDER_REPLICATED
BROKER_DOWN = health.BROKER_DOWN
CONTROLLER_MISSING = health.CONTROLLER_MISSING
CONTROLLER_LAGGING = health.CONTROLLER_LAGGING
CONSUMER_LAG_STATUS = "consumer_lag_status"
CONSUMER_LAG_OFFSETS = "consumer_lag_offsets"
CONSUMER_TIME_LAG = "consumer_time_lag"
DISK_USAGE = "disk_usage"
# Raised by alerting from the collection itself rather than from what the cluster reported.
CLUSTER_UNREACHABLE = "cluster_unreachable"

# PagerDuty's limit for dedup_key; the other channels accept anything shorter.
MAX_DEDUP_KEY_LENGTH = 255
MAX_LISTED_PARTITIONS = 20


class Severity(models.TextChoices):
    """How urgent a rule's condition is: rules, incidents, channels' least severity, notifications
    and the health status all speak this one scale."""

    CRITICAL = "critical", "Critical"  # pages: someone must act now
    WARNING = "warning", "Warning"  # needs attention during working hours
    INFO = "info", "Info"  # worth seeing on the dashboard; notify only if a channel asks for it

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


Comparison = Literal[">", ">="]


@dataclass(frozen=True)
class AlertRule:
    key: str
    title: str
    severity: Severity
    for_seconds: int  # how long the condition must hold before it fires
    threshold: float  # the condition is active when `value <comparison> threshold`
    comparison: Comparison
    unit: str
    enabled: bool
    description: str  # what it means, in plain words
    action: str  # what the person receiving it should do first
    suppressible: bool  # whether a planned operation on the causing brokers may suppress it

    def breached(self, value: float) -> bool:
        return value > self.threshold if self.comparison == ">" else value >= self.threshold


RULES: Mapping[str, AlertRule] = MappingProxyType(
    {
        rule.key: rule
        for rule in (
            AlertRule(
                key=OFFLINE_PARTITIONS,
                title="Offline partitions",
                severity=Severity.CRITICAL,
                # Every second without a leader is lost writes; there is nothing to wait for.
                for_seconds=0,
                threshold=0,
                comparison=">",
                unit="partitions",
                enabled=True,
                description="Partitions have no live leader: nothing can be produced to or consumed "
                "from them.",
                action="Bring back the brokers that host these partitions. If none of their replicas "
                "can return, decide whether to allow an unclean leader election and accept data loss.",
                suppressible=False,
            ),
            AlertRule(
                key=UNDER_MIN_ISR,
                title="Partitions under min.insync.replicas",
                severity=Severity.CRITICAL,
                for_seconds=0,
                threshold=0,
                comparison=">",
                unit="partitions",
                enabled=True,
                description="Fewer replicas are in sync than min.insync.replicas: producers using "
                "acks=all get NotEnoughReplicas errors and stop writing.",
                action="Find the out-of-sync brokers (down, overloaded disk or network) and restore "
                "them; do not restart any other broker holding these partitions meanwhile.",
                suppressible=False,
            ),
            AlertRule(
                key=UNDER_REPLICATED,
                title="Under-replicated partitions",
                severity=Severity.WARNING,
                # Followers drop out of the ISR and rejoin within replica.lag.time.max.ms during
                # ordinary load spikes; only a lasting gap is worth a person's attention (KIP-427).
                for_seconds=300,
                threshold=0,
                comparison=">",
                unit="partitions",
                enabled=True,
                description="A broker's replicas are not keeping up with their leaders, so partitions "
                "have less redundancy than configured.",
                action="Check the broker's health, disk and network throughput; if it is down, "
                "bring it back or replace it.",
                suppressible=True,
            ),
            AlertRule(
                key=AT_MIN_ISR,
                title="Partitions at min.insync.replicas",
                severity=Severity.INFO,
                for_seconds=300,
                threshold=0,
                comparison=">",
                unit="partitions",
                enabled=True,
                description="Partitions have exactly min.insync.replicas in sync: one more lost "
                "replica stops acks=all producers.",
                action="Avoid restarting or draining brokers that hold these partitions until the "
                "missing replicas catch up.",
                suppressible=True,
            ),
            AlertRule(
                key=BROKER_DOWN,
                title="Broker down",
                severity=Severity.CRITICAL,
                # The collection interval already delays detection; waiting longer would break the
                # promise to page within 30 seconds of a broker dying.
                for_seconds=0,
                threshold=0,
                comparison=">",
                unit="brokers",
                enabled=True,
                description="A broker that belongs to the cluster is not registered: it crashed, "
                "lost its network, or cannot reach the controller.",
                action="Check the broker's process, host and logs; restart it or start a broker replacement.",
                suppressible=True,
            ),
            AlertRule(
                key=CONTROLLER_MISSING,
                title="No active controller",
                severity=Severity.CRITICAL,
                # A controller election normally completes in seconds; a snapshot taken during one
                # should not page.
                for_seconds=30,
                threshold=0,
                comparison=">",
                unit="controllers missing",
                enabled=True,
                description="The cluster has no active controller: leaders cannot move, failed "
                "brokers are not handled and topics cannot be created or changed.",
                action="Check the KRaft controllers (kafka-metadata-quorum describe --status): a majority "
                "of them must be running and reach each other.",
                suppressible=False,
            ),
            AlertRule(
                key=CONTROLLER_LAGGING,
                title="Controller behind the quorum leader",
                severity=Severity.WARNING,
                # A controller restarting (a rolling restart) catches up within seconds.
                for_seconds=60,
                threshold=10,
                comparison=">",
                unit="seconds behind",
                enabled=True,
                description="A KRaft controller has not caught up with the quorum's leader: the quorum "
                "still has its majority, but losing one more controller would stop every metadata "
                "change (leader elections, topic changes, fencing failed brokers).",
                action="Check the controller's process, host and logs (kafka-metadata-quorum describe "
                "--replication shows each voter's lag); bring it back before touching another controller.",
                suppressible=True,
            ),
            AlertRule(
                key=CONSUMER_LAG_STATUS,
                title="Consumer not consuming",
                severity=Severity.CRITICAL,
                # The lag window already spans ten collections, so the status is a judgement over
                # time; waiting again would only delay it.
                for_seconds=0,
                threshold=LagStatus.STALL.rank,
                comparison=">=",
                unit="status",
                enabled=True,
                description="The consumer group's offsets show it has stalled or stopped while "
                "messages wait (statuses from OK through WARN, ERR, REWIND, STALL to STOP; the "
                "threshold is the least severe status that alerts).",
                action="Check the group's consumers: whether they run at all, crash-loop, or are "
                "stuck on one message (a poison pill or a slow dependency).",
                suppressible=False,
            ),
            AlertRule(
                key=CONSUMER_LAG_OFFSETS,
                title="Consumer lag",
                severity=Severity.WARNING,
                for_seconds=600,
                threshold=10_000,
                comparison=">",
                unit="messages",
                enabled=True,
                description="The consumer group has more messages waiting in total than the threshold.",
                action="Check whether the consumers keep up with the produce rate; add consumers "
                "(up to the partition count) or speed up processing.",
                suppressible=False,
            ),
            AlertRule(
                key=CONSUMER_TIME_LAG,
                title="Consumer time lag",
                severity=Severity.WARNING,
                for_seconds=300,
                threshold=300,
                comparison=">",
                unit="seconds",
                enabled=True,
                description="The oldest message the consumer group has not processed arrived longer "
                "ago than the threshold.",
                action="Check whether the consumers keep up with the produce rate and whether any "
                "partition is stuck.",
                suppressible=False,
            ),
            AlertRule(
                key=DISK_USAGE,
                title="Broker disk almost full",
                severity=Severity.WARNING,
                for_seconds=300,
                threshold=85,
                comparison=">",
                unit="percent",
                enabled=True,
                description="A broker's data disk is almost full; a full disk takes its log "
                "directory offline.",
                action="Lower retention on the largest topics, grow the volume, or add brokers and "
                "rebalance.",
                suppressible=False,
            ),
            AlertRule(
                key=CLUSTER_UNREACHABLE,
                title="Cluster unreachable",
                severity=Severity.CRITICAL,
                # A whole cluster gone is the most urgent page there is. The collection interval
                # already delays detection, and the collector's own request timeout absorbs a
                # single slow answer.
                for_seconds=0,
                threshold=0,
                comparison=">",
                unit="failed collections",
                enabled=True,
                description="The control plane cannot reach any broker of the cluster: every producer "
                "and consumer is most likely failing too.",
                action="Check the brokers' hosts, processes and network (and the bootstrap address); "
                "start with the controller quorum if brokers run but do not answer.",
                suppressible=False,
            ),
        )
    }
)


@dataclass(frozen=True)
class RuleOverride:
    """A partial change to a rule; None leaves the value as it is."""

    threshold: float | None = None
    for_seconds: int | None = None
    severity: Severity | None = None
    enabled: bool | None = None

    @classmethod
    def from_mapping(cls, rule_key: str, data: Mapping[str, Any]) -> RuleOverride:
        """Parse stored JSON ({"threshold": 5000, "severity": "critical", ...}) with clear errors."""
        unknown = set(data) - {"threshold", "for_seconds", "severity", "enabled"}
        if unknown:
            raise ValueError(f"rule {rule_key}: unknown override keys {sorted(unknown)}")
        threshold = data.get("threshold")
        if isinstance(threshold, str) and rule_key == CONSUMER_LAG_STATUS:
            try:
                threshold = LagStatus(threshold.upper()).rank
            except ValueError:
                names = ", ".join(s.value for s in LagStatus)
                raise ValueError(f"rule {rule_key}: threshold must be one of {names}") from None
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
            raise ValueError(f"rule {rule_key}: threshold must be a number, got {threshold!r}")
        for_seconds = data.get("for_seconds")
        if for_seconds is not None and (
            isinstance(for_seconds, bool) or not isinstance(for_seconds, int) or for_seconds < 0
        ):
            raise ValueError(f"rule {rule_key}: for_seconds must be a whole number >= 0, got {for_seconds!r}")
        severity = data.get("severity")
        if severity is not None:
            try:
                severity = Severity(severity)
            except ValueError:
                names = ", ".join(s.value for s in Severity)
                raise ValueError(f"rule {rule_key}: severity must be one of {names}") from None
        enabled = data.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ValueError(f"rule {rule_key}: enabled must be true or false, got {enabled!r}")
        return cls(threshold=threshold, for_seconds=for_seconds, severity=severity, enabled=enabled)

    def apply(self, rule: AlertRule) -> AlertRule:
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("threshold", self.threshold),
                ("for_seconds", self.for_seconds),
                ("severity", self.severity),
                ("enabled", self.enabled),
            )
            if value is not None
        }
        return replace(rule, **changes)


def apply_overrides(
    layers: Iterable[Mapping[str, RuleOverride]], catalogue: Mapping[str, AlertRule] = RULES
) -> dict[str, AlertRule]:
    """The catalogue with override layers applied in order (organisation, then cluster); overrides
    of rules the catalogue does not have are ignored."""
    rules = dict(catalogue)
    for layer in layers:
        for key, override in layer.items():
            if key in rules:
                rules[key] = override.apply(rules[key])
    return rules


def finding_severity(kind: str, rules: Mapping[str, AlertRule]) -> Severity:
    """The severity a health finding of this kind has under `rules` (the cluster's effective rules):
    its rule's, so the health status says what alerting pages with."""
    rule = rules.get(kind)
    return rule.severity if rule is not None else Severity.WARNING


@dataclass(frozen=True)
class Condition:
    rule_key: str
    subject: str  # "cluster", "topic:<name>", "broker:<id>" or "group:<id>"
    severity: Severity
    value: float
    threshold: float
    summary: str  # one plain sentence for a person
    dedup_key: str  # stable per (cluster, rule, subject); at most MAX_DEDUP_KEY_LENGTH characters
    for_seconds: int
    suppressed_by_operation: bool = False
    brokers: frozenset[int] = frozenset()
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def dedup_key(cluster: str, rule_key: str, subject: str) -> str:
    """One key per (cluster, rule, subject), the same every time it is computed.

    Pass the cluster's immutable identifier, not its display name, so a rename does not open a
    second incident. Keys longer than the limit (long group ids or topic names) keep a readable
    prefix and end in a hash of the full key, which keeps them unique.
    """
    key = f"kcp:{cluster}:{rule_key}:{subject}"
    if len(key) <= MAX_DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: MAX_DEDUP_KEY_LENGTH - len(digest) - 1]}#{digest}"


def group_subject(group_id: str) -> str:
    return f"group:{group_id}"


def evaluate(
    cluster: str,
    rules: Mapping[str, AlertRule] = RULES,
    *,
    health_report: HealthReport | None = None,
    lag: Iterable[GroupLag] = (),
    disk_usage_percent: Mapping[int, float] | None = None,
    operation_brokers: Collection[int] = (),
) -> list[Condition]:
    """Every active condition for one cluster, suppressed ones included and marked.

    `operation_brokers` are the brokers touched by running planned operations (restarting, gaining
    or losing replicas).
    """
    conditions: list[Condition] = []
    busy = frozenset(operation_brokers)

    def add(
        rule_key: str,
        subject: str,
        value: float,
        summary: str,
        *,
        brokers: frozenset[int] = frozenset(),
        details: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> None:
        rule = rules.get(rule_key)
        if rule is None or not rule.enabled or not rule.breached(value):
            return
        suppressed = rule.suppressible and bool(brokers) and brokers <= busy
        conditions.append(
            Condition(
                rule_key=rule_key,
                subject=subject,
                severity=severity or rule.severity,
                value=value,
                threshold=rule.threshold,
                summary=summary,
                dedup_key=dedup_key(cluster, rule_key, subject),
                for_seconds=rule.for_seconds,
                suppressed_by_operation=suppressed,
                brokers=brokers,
                details=dict(details or {}),
            )
        )

    if health_report is not None:
        for finding in health_report.findings:
            add(
                finding.kind,
                finding.subject,
                finding.value,
                finding.summary,
                brokers=finding.brokers,
                details=_finding_details(finding),
            )

    status_rule = rules.get(CONSUMER_LAG_STATUS)
    offsets_rule = rules.get(CONSUMER_LAG_OFFSETS)
    time_rule = rules.get(CONSUMER_TIME_LAG)
    for group in lag:
        # Hot path: most groups raise no condition, and their details (the troubled partitions,
        # sorted) and sentences would be built only to be dropped.
        if not (
            _raises(status_rule, group.status.rank)
            or _raises(offsets_rule, group.total_lag)
            or (group.time_lag_seconds is not None and _raises(time_rule, group.time_lag_seconds))
        ):
            continue
        subject = group_subject(group.group_id)
        details = _lag_details(group)
        severity = None
        if status_rule is not None and group.status.rank < LagStatus.STALL.rank:
            # Slow, rewound or unreadable groups may be made to alert, but never page: their
            # messages are still being processed or there is nothing a person can do at night.
            severity = min(status_rule.severity, Severity.WARNING, key=lambda s: s.rank)
        add(
            CONSUMER_LAG_STATUS, subject, group.status.rank, group.summary, details=details, severity=severity
        )

        if offsets_rule is not None:
            where = ""
            if group.max_lag_partition is not None:
                topic, partition = group.max_lag_partition
                where = f"; the furthest behind is {topic}[{partition}] with {group.max_lag:,}"
            add(
                CONSUMER_LAG_OFFSETS,
                subject,
                group.total_lag,
                f"Group {group.group_id} has {group.total_lag:,} messages waiting, above the "
                f"threshold of {offsets_rule.threshold:,.0f}{where}.",
                details=details,
            )

        if time_rule is not None and group.time_lag_seconds is not None:
            add(
                CONSUMER_TIME_LAG,
                subject,
                group.time_lag_seconds,
                f"Group {group.group_id} is about {_seconds(group.time_lag_seconds)} behind: its "
                f"oldest waiting message arrived that long ago (threshold "
                f"{_seconds(time_rule.threshold)}).",
                details=details,
            )

    disk_rule = rules.get(DISK_USAGE)
    for broker_id, used in sorted((disk_usage_percent or {}).items()):
        threshold = disk_rule.threshold if disk_rule else 0
        add(
            DISK_USAGE,
            health.broker_subject(broker_id),
            used,
            f"Broker {broker_id}'s data disk is {used:.0f}% full (threshold {threshold:.0f}%).",
            brokers=frozenset({broker_id}),
        )

    return conditions


def _raises(rule: AlertRule | None, value: float) -> bool:
    """Whether `evaluate` would raise a condition of the rule for this value."""
    return rule is not None and rule.enabled and rule.breached(value)


def active(conditions: Iterable[Condition]) -> list[Condition]:
    """The conditions to notify about: those not suppressed by a planned operation."""
    return [c for c in conditions if not c.suppressed_by_operation]


def _finding_details(finding: Finding) -> dict[str, Any]:
    return {
        "brokers": sorted(finding.brokers),
        "partitions": [f"{topic}[{partition}]" for topic, partition in finding.partitions],
    }


def _lag_details(group: GroupLag) -> dict[str, Any]:
    troubled = [p for p in group.partitions if p.status != LagStatus.OK]
    troubled.sort(key=lambda p: (-p.status.rank, -(p.lag or 0)))
    return {
        "status": group.status.value,
        "total_lag": group.total_lag,
        "max_lag": group.max_lag,
        "time_lag_seconds": group.time_lag_seconds,
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "status": p.status.value,
                "lag": p.lag,
                "summary": p.summary,
            }
            for p in troubled[:MAX_LISTED_PARTITIONS]
        ],
    }


def _seconds(value: float) -> str:
    return format_seconds(value)
