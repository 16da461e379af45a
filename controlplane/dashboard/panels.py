"""Read-only shapes of the cluster page's monitoring panels, built from what the collector stored.

Nothing here reads Kafka: health, replica counts and consumer groups are the last collection's rows,
so the page costs the same however large or unreachable the cluster is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When

from controlplane.clusters.models import Cluster
from monitoring.alerting.choices import OPEN_STATES, IncidentState, Severity
from monitoring.alerting.models import Incident
from monitoring.alerting.rules import effective_rules
from monitoring.collector import window_size
from monitoring.conditions import (
    AT_MIN_ISR,
    OFFLINE_PARTITIONS,
    UNDER_MIN_ISR,
    UNDER_REPLICATED,
    finding_severity,
)
from monitoring.lag_state import StoredGroup, load_groups
from monitoring.models import ClusterHealth

# Consumer groups listed on the cluster page, worst first; the API lists every one.
GROUPS_SHOWN = 25
FINDINGS_SHOWN = 8
NO_RACK = "no rack recorded"

# Open incidents first: firing needs someone now, acknowledged has someone, pending may clear.
STATE_ORDER = (
    IncidentState.FIRING,
    IncidentState.ACKNOWLEDGED,
    IncidentState.PENDING,
    IncidentState.RESOLVED,
)
SEVERITY_ORDER = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
# The per-topic counts the collector stores, and the finding (and rule) each counts.
TOPIC_FINDINGS = {
    "offline": OFFLINE_PARTITIONS,
    "under_min_isr": UNDER_MIN_ISR,
    "under_replicated": UNDER_REPLICATED,
    "at_min_isr": AT_MIN_ISR,
}


def _rank(field_name: str, values: tuple[str, ...]) -> Case:
    return Case(
        *(When(**{field_name: value}, then=Value(rank)) for rank, value in enumerate(values)),
        default=Value(len(values)),
        output_field=IntegerField(),
    )


def incidents_in_triage_order(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """Firing, then acknowledged, then pending, then resolved; the most severe and newest first."""
    return incidents.annotate(
        state_rank=_rank("state", STATE_ORDER), severity_rank=_rank("severity", SEVERITY_ORDER)
    ).order_by("state_rank", "severity_rank", "-first_seen_at", "-id")


def open_incidents(cluster: Cluster) -> list[Incident]:
    return list(
        incidents_in_triage_order(
            Incident.objects.filter(cluster=cluster, state__in=OPEN_STATES)
        ).select_related("cluster")
    )


@dataclass(frozen=True)
class TopicProblem:
    name: str
    partitions: int
    offline: int
    under_min_isr: int
    under_replicated: int
    at_min_isr: int
    # The worst severity its problems have under the cluster's effective rules: what alerting
    # pages with for them.
    severity: Severity = Severity.INFO

    @property
    def rank(self) -> tuple[int, ...]:
        return (self.offline, self.under_min_isr, self.under_replicated, self.at_min_isr)


@dataclass(frozen=True)
class HealthPanel:
    health: ClusterHealth
    collected: bool  # False until a collection reached the cluster once
    topics: list[TopicProblem] = field(default_factory=list)
    down_brokers: list[int] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    more_findings: int = 0


def health_panel(cluster: Cluster) -> HealthPanel:
    health = ClusterHealth.objects.filter(cluster=cluster).defer("assignment").first() or ClusterHealth(
        cluster=cluster, reason="Not collected yet."
    )
    counts = health.counts or {}
    rules = effective_rules(cluster.organization_id, cluster.pk)
    topics = [
        TopicProblem(
            name=name,
            partitions=values.get("partitions", 0),
            offline=values.get("offline", 0),
            under_min_isr=values.get("under_min_isr", 0),
            under_replicated=values.get("under_replicated", 0),
            at_min_isr=values.get("at_min_isr", 0),
            severity=max(
                (
                    finding_severity(kind, rules)
                    for count, kind in TOPIC_FINDINGS.items()
                    if values.get(count)
                ),
                key=lambda severity: severity.rank,
                default=Severity.INFO,
            ),
        )
        for name, values in counts.get("topics", {}).items()
    ]
    problems = sorted((t for t in topics if any(t.rank)), key=lambda t: (t.rank, t.name), reverse=True)
    findings = list(health.findings or [])
    return HealthPanel(
        health=health,
        collected=health.succeeded_at is not None,
        topics=problems,
        down_brokers=list(counts.get("down_brokers", [])),
        findings=findings[:FINDINGS_SHOWN],
        more_findings=max(0, len(findings) - FINDINGS_SHOWN),
    )


@dataclass(frozen=True)
class BrokerReplicas:
    node_id: int
    replicas: int
    leaders: int
    out_of_sync: int
    down: bool

    @property
    def followers_in_sync(self) -> int:
        return max(0, self.replicas - self.leaders - self.out_of_sync)


@dataclass(frozen=True)
class RackReplicas:
    name: str
    brokers: list[BrokerReplicas]

    @property
    def replicas(self) -> int:
        return sum(b.replicas for b in self.brokers)


@dataclass(frozen=True)
class ReplicaChart:
    racks: list[RackReplicas]
    widest: int  # the most replicas on one broker: the bars' full width

    @property
    def brokers(self) -> list[BrokerReplicas]:
        return [broker for rack in self.racks for broker in rack.brokers]

    @property
    def fewest(self) -> int:
        return min((b.replicas for b in self.brokers), default=0)

    @property
    def average(self) -> float:
        brokers = self.brokers
        return sum(b.replicas for b in brokers) / len(brokers) if brokers else 0.0


def replica_chart(cluster: Cluster, health: ClusterHealth) -> ReplicaChart:
    """Replicas, leaders and out-of-sync replicas per broker from the last collection, by rack.

    A broker the cluster does not record (seen mid scale-out) is drawn under NO_RACK rather than
    left out: an empty or overloaded newcomer is exactly what this chart is for.
    """
    counts = (health.counts or {}).get("brokers", {})
    down = set((health.counts or {}).get("down_brokers", []))
    racks_of = dict(cluster.brokers.values_list("node_id", "rack"))
    by_rack: dict[str, list[BrokerReplicas]] = {}
    for key, values in counts.items():
        node_id = int(key)
        by_rack.setdefault(racks_of.get(node_id) or NO_RACK, []).append(
            BrokerReplicas(
                node_id=node_id,
                replicas=values.get("partitions", 0),
                leaders=values.get("leaders", 0),
                out_of_sync=values.get("out_of_sync_replicas", 0),
                down=node_id in down,
            )
        )
    names = [rack for rack in cluster.racks if rack in by_rack]
    names += sorted(set(by_rack) - set(names) - {NO_RACK}) + ([NO_RACK] if NO_RACK in by_rack else [])
    racks = [RackReplicas(name, sorted(by_rack[name], key=lambda b: b.node_id)) for name in names]
    widest = max((b.replicas for rack in racks for b in rack.brokers), default=0)
    return ReplicaChart(racks=racks, widest=widest)


@dataclass(frozen=True)
class GroupList:
    groups: list[StoredGroup]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.groups)


def groups_worst_first(cluster: Cluster) -> list[StoredGroup]:
    return sorted(load_groups(cluster.pk), key=lambda g: (-g.status_rank, -g.total_lag, g.group_id))


def consumer_groups(cluster: Cluster) -> GroupList:
    groups = groups_worst_first(cluster)
    return GroupList(groups=groups[:GROUPS_SHOWN], total=len(groups))


def monitoring_context(cluster: Cluster) -> dict[str, Any]:
    """Everything the live panels of the cluster page show; the page and its refreshes share it."""
    panel = health_panel(cluster)
    return {
        "health_panel": panel,
        "replicas": replica_chart(cluster, panel.health),
        "consumer_groups": consumer_groups(cluster),
        "cluster_incidents": open_incidents(cluster),
        "lag_window": window_size(),
    }
