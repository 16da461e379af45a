"""Replication and broker health of one cluster, computed from a metadata snapshot.

Definitions follow the broker metrics Kafka itself exposes, so numbers here match what an operator
sees in JMX:

- offline: no live leader. An offline partition is counted only as offline, the way Kafka's
  `OfflinePartitionsCount` is kept apart from the leader-reported URP and min-ISR counts.
- under-replicated (URP): fewer in-sync replicas than assigned replicas, not counting replicas a
  reassignment is still adding (`PartitionState.under_replicated`, as Kafka counts it): a planned
  move copying data is not under-replicated, and its new replicas are not "out of sync".
- under-min-ISR: fewer in-sync replicas than the topic's `min.insync.replicas`; `acks=all`
  producers are refused (KIP-427), so this breaks writes.
- at-min-ISR: exactly `min.insync.replicas` in sync, so one more failure breaks writes. Partitions
  whose replication factor equals `min.insync.replicas` are left out: they always sit at the
  minimum and would drown the signal.
- controller missing: no active controller, which on KRaft is the controller quorum's leader as
  DescribeQuorum names it (Metadata names a random live broker "controller", KIP-590).
- controller lagging: a voter not caught up with the quorum's leader within
  `controller.quorum.fetch.timeout.ms` (Kafka's default), valued in seconds since it last was.

Findings carry the brokers involved so that alert conditions can tell a URP caused by a planned
restart of broker 3 from one on broker 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from provisioning.kafka_admin.base import ClusterState, PartitionState, TopicPartition

# Finding kinds share their names with the alert rules that turn them into conditions.
OFFLINE_PARTITIONS = "offline_partitions"
UNDER_MIN_ISR = "under_min_isr"
AT_MIN_ISR = "at_min_isr"
UNDER_REPLICATED = "under_replicated"
BROKER_DOWN = "broker_down"
CONTROLLER_MISSING = "controller_missing"
CONTROLLER_LAGGING = "controller_lagging"

CLUSTER_SUBJECT = "cluster"
# The value of a lagging-controller finding when the leader has no timestamp for the voter at all.
UNKNOWN_LAG_SECONDS = 24 * 3600
# Partitions listed in a finding are capped; the count in `value` is always exact.
MAX_LISTED_PARTITIONS = 50


def topic_subject(topic: str) -> str:
    return f"topic:{topic}"


def broker_subject(broker_id: int) -> str:
    return f"broker:{broker_id}"


@dataclass(frozen=True)
class PartitionCounts:
    partitions: int = 0
    offline: int = 0
    under_replicated: int = 0
    under_min_isr: int = 0
    at_min_isr: int = 0


@dataclass(frozen=True)
class BrokerCounts(PartitionCounts):
    """Counts over the partitions that have a replica on the broker."""

    leaders: int = 0
    out_of_sync_replicas: int = 0  # assigned here, but not in the ISR: this broker is behind


@dataclass(frozen=True)
class Finding:
    kind: str  # one of the kind constants above
    subject: str  # "cluster", "topic:<name>" or "broker:<id>"
    value: int  # how many partitions (or 1 for a broker or controller finding)
    summary: str  # one plain sentence
    # The brokers that cause the finding: out of sync (URP, min ISR), down, or hosting an offline
    # partition. Suppression for planned operations compares this set with the operation's brokers.
    brokers: frozenset[int] = frozenset()
    partitions: tuple[TopicPartition, ...] = ()  # up to MAX_LISTED_PARTITIONS examples


@dataclass(frozen=True)
class HealthReport:
    cluster_id: str
    totals: PartitionCounts
    topics: Mapping[str, PartitionCounts]
    brokers: Mapping[int, BrokerCounts]  # every expected or registered broker
    expected_brokers: frozenset[int]
    registered_brokers: frozenset[int]
    down_brokers: frozenset[int]  # expected but not registered
    unexpected_brokers: frozenset[int]  # registered but not expected (e.g. mid scale-out)
    active_controllers: int  # 0 or 1: a metadata snapshot names at most one controller
    findings: tuple[Finding, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not self.findings

    def findings_of(self, kind: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)


@dataclass
class _Tally:
    partitions: int = 0
    offline: int = 0
    under_replicated: int = 0
    under_min_isr: int = 0
    at_min_isr: int = 0
    leaders: int = 0
    out_of_sync_replicas: int = 0

    def add(self, state: _PartitionHealth) -> None:
        self.partitions += 1
        self.offline += state.offline
        self.under_replicated += state.under_replicated
        self.under_min_isr += state.under_min_isr
        self.at_min_isr += state.at_min_isr

    def counts(self) -> PartitionCounts:
        return PartitionCounts(
            self.partitions, self.offline, self.under_replicated, self.under_min_isr, self.at_min_isr
        )

    def broker_counts(self) -> BrokerCounts:
        return BrokerCounts(
            self.partitions,
            self.offline,
            self.under_replicated,
            self.under_min_isr,
            self.at_min_isr,
            self.leaders,
            self.out_of_sync_replicas,
        )


@dataclass(frozen=True)
class _PartitionHealth:
    offline: bool
    under_replicated: bool
    under_min_isr: bool
    at_min_isr: bool
    out_of_sync: frozenset[int]


def classify_partition(
    partition: PartitionState, min_insync_replicas: int, live_brokers: Collection[int]
) -> _PartitionHealth:
    # A leader that is not registered cannot serve requests; metadata can name one briefly after
    # the broker died, before the controller has elected another.
    offline = partition.leader is None or partition.leader not in live_brokers
    out_of_sync = partition.out_of_sync
    if offline:
        return _PartitionHealth(True, False, False, False, out_of_sync)
    isr_size = len(set(partition.isr) & set(partition.replicas))
    return _PartitionHealth(
        offline=False,
        under_replicated=partition.under_replicated,
        under_min_isr=isr_size < min_insync_replicas,
        at_min_isr=isr_size == min_insync_replicas and partition.replication_factor > min_insync_replicas,
        out_of_sync=out_of_sync,
    )


def assess_cluster(state: ClusterState, expected_broker_ids: Collection[int]) -> HealthReport:
    """Count partition and broker problems and describe each as a finding with a subject."""
    registered = frozenset(b.node_id for b in state.brokers)
    expected = frozenset(expected_broker_ids)
    down = expected - registered

    total = _Tally()
    per_topic: dict[str, _Tally] = defaultdict(_Tally)
    per_broker: dict[int, _Tally] = defaultdict(_Tally)
    offline_by_topic: dict[str, list[PartitionState]] = defaultdict(list)
    under_min_by_topic: dict[str, list[PartitionState]] = defaultdict(list)
    at_min_by_topic: dict[str, list[PartitionState]] = defaultdict(list)
    out_of_sync_by_broker: dict[int, list[PartitionState]] = defaultdict(list)

    for topic in state.topics:
        # Creating the tally up front lists a healthy topic too, with zero counts.
        topic_tally = per_topic[topic.name]
        for partition in topic.partitions:
            health = classify_partition(partition, topic.min_insync_replicas, registered)
            total.add(health)
            topic_tally.add(health)
            for broker_id in partition.replicas:
                per_broker[broker_id].add(health)
            if partition.leader is not None and not health.offline:
                per_broker[partition.leader].leaders += 1
            for broker_id in health.out_of_sync:
                per_broker[broker_id].out_of_sync_replicas += 1
                out_of_sync_by_broker[broker_id].append(partition)
            if health.offline:
                offline_by_topic[topic.name].append(partition)
            if health.under_min_isr:
                under_min_by_topic[topic.name].append(partition)
            if health.at_min_isr:
                at_min_by_topic[topic.name].append(partition)

    for broker_id in expected | registered:
        per_broker.setdefault(broker_id, _Tally())

    findings: list[Finding] = []
    if state.controller_id is None:
        # On KRaft the controller is the quorum's leader (DescribeQuorum): none means the quorum has
        # lost its majority or cannot elect, whatever Metadata still says about brokers.
        why = f" ({state.quorum.error})" if state.quorum is not None and state.quorum.error else ""
        findings.append(
            Finding(
                CONTROLLER_MISSING,
                CLUSTER_SUBJECT,
                1,
                f"The cluster has no active controller{why}, so leaders cannot be elected, failed "
                "brokers are not fenced and topic changes cannot be made.",
            )
        )
    findings.extend(_lagging_controllers(state))
    for broker_id in sorted(down):
        hosted = per_broker[broker_id].partitions
        findings.append(
            Finding(
                BROKER_DOWN,
                broker_subject(broker_id),
                1,
                f"Broker {broker_id} is expected but not registered with the cluster; it hosts "
                f"{hosted:,} partition replicas.",
                brokers=frozenset({broker_id}),
            )
        )
    for topic_name, partitions in sorted(offline_by_topic.items()):
        findings.append(
            _topic_finding(
                OFFLINE_PARTITIONS,
                topic_name,
                partitions,
                "Topic {topic} has {n} without a live leader: nothing can be written or read there",
                caused_by_out_of_sync=False,
            )
        )
    for topic_name, partitions in sorted(under_min_by_topic.items()):
        findings.append(
            _topic_finding(
                UNDER_MIN_ISR,
                topic_name,
                partitions,
                "Topic {topic} has {n} with fewer in-sync replicas than min.insync.replicas: "
                "producers using acks=all are refused there",
                caused_by_out_of_sync=True,
            )
        )
    for topic_name, partitions in sorted(at_min_by_topic.items()):
        findings.append(
            _topic_finding(
                AT_MIN_ISR,
                topic_name,
                partitions,
                "Topic {topic} has {n} exactly at min.insync.replicas: one more lost replica "
                "stops acks=all producers there",
                caused_by_out_of_sync=True,
            )
        )
    for broker_id, partitions in sorted(out_of_sync_by_broker.items()):
        state_word = "down" if broker_id in down else "registered"
        findings.append(
            Finding(
                UNDER_REPLICATED,
                broker_subject(broker_id),
                len(partitions),
                f"Broker {broker_id} ({state_word}) is out of sync on {_partitions(len(partitions))}, "
                f"which are under-replicated until it catches up.",
                brokers=frozenset({broker_id}),
                partitions=_listed(partitions),
            )
        )

    return HealthReport(
        cluster_id=state.cluster_id,
        totals=total.counts(),
        topics=MappingProxyType({name: tally.counts() for name, tally in sorted(per_topic.items())}),
        brokers=MappingProxyType(
            {broker_id: tally.broker_counts() for broker_id, tally in sorted(per_broker.items())}
        ),
        expected_brokers=expected,
        registered_brokers=registered,
        down_brokers=down,
        unexpected_brokers=registered - expected if expected else frozenset(),
        active_controllers=0 if state.controller_id is None else 1,
        findings=tuple(findings),
    )


def _lagging_controllers(state: ClusterState) -> list[Finding]:
    """Voters behind the quorum's leader; the value is how long ago, in seconds on the leader's clock,
    each was last caught up. One voter down leaves a three-voter quorum without a spare."""
    quorum = state.quorum
    if quorum is None or quorum.leader_id is None:
        return []
    findings = []
    for voter in quorum.voters:
        if quorum.caught_up(voter.node_id):
            continue
        behind_ms = quorum.behind_ms(voter.node_id)
        lag = quorum.lag(voter.node_id)
        when = (
            f"{behind_ms / 1000:,.0f} s ago"
            if behind_ms is not None
            else "at a time the leader does not know"
        )
        records = f", {lag:,} metadata records behind" if lag is not None else ""
        findings.append(
            Finding(
                CONTROLLER_LAGGING,
                broker_subject(voter.node_id),
                # Unknown counts as far behind: the leader has never seen it caught up.
                behind_ms // 1000 if behind_ms is not None else UNKNOWN_LAG_SECONDS,
                f"Controller {voter.node_id} was last caught up with the quorum leader "
                f"{quorum.leader_id} {when}{records}: one more controller lost and the quorum has no "
                "majority.",
                brokers=frozenset({voter.node_id}),
            )
        )
    return findings


def _topic_finding(
    kind: str, topic: str, partitions: list[PartitionState], template: str, *, caused_by_out_of_sync: bool
) -> Finding:
    if caused_by_out_of_sync:
        brokers = frozenset(b for p in partitions for b in p.out_of_sync)
    else:
        brokers = frozenset(b for p in partitions for b in p.replicas)
    sentence = template.format(n=_partitions(len(partitions)), topic=topic)
    return Finding(
        kind,
        topic_subject(topic),
        len(partitions),
        f"{sentence}.",
        brokers=brokers,
        partitions=_listed(partitions),
    )


def _listed(partitions: list[PartitionState]) -> tuple[TopicPartition, ...]:
    return tuple((p.topic, p.partition) for p in partitions[:MAX_LISTED_PARTITIONS])


def _partitions(count: int) -> str:
    return "1 partition" if count == 1 else f"{count:,} partitions"
