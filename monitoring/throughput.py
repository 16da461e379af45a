"""Messages in and bytes in per broker, from what two collections saw of every partition.

Kafka publishes its own per-broker rates (BytesInPerSec, MessagesInPerSec) over JMX only, which the
admin protocol cannot read. What the protocol can read is every partition's log end offset
(ListOffsets) and the size of each replica (DescribeLogDirs). Between two collections, a partition's
end offset grew by the messages produced to it and its size by the bytes appended; both were written
by its leader, so each partition's growth is credited to the broker that leads it now, and divided by
the time between the collections.

What this does not see: retention deleting segments shrinks a partition, so a collection in which
that happened credits less than was appended (growth is never counted below zero); compaction
likewise. A partition whose leader moved between the collections is credited to the new leader.
Rates are averages over the collection interval, not peaks.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from provisioning.kafka_admin.base import ClusterState, KafkaAdmin, KafkaAdminError, TopicPartition

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class PartitionTotals:
    """Every partition's log end offset and size (its largest replica) at one collection."""

    at_ms: int
    ends: Mapping[TopicPartition, int] = field(default_factory=dict)
    sizes: Mapping[TopicPartition, int] = field(default_factory=dict)  # empty: sizes unknown


@dataclass(frozen=True)
class BrokerRate:
    messages_per_second: float
    bytes_per_second: float | None  # None when either collection had no sizes


def read_totals(
    admin: KafkaAdmin, state: ClusterState, at_ms: int, size_brokers: Collection[int]
) -> PartitionTotals | None:
    """The partitions' end offsets now, and their sizes from `size_brokers` (those that just answered
    DescribeLogDirs: asking one that did not would wait out its timeout again); None when the end
    offsets cannot be read (the rest of the collection stands without them). Sizes that cannot be
    read leave bytes in unknown."""
    partitions = [(topic.name, p.partition) for topic in state.topics for p in topic.partitions]
    try:
        ends = admin.end_offsets(partitions) if partitions else {}
    except KafkaAdminError as exc:
        log.debug("no end offsets for throughput: %s", exc)
        return None
    replicas: dict[TopicPartition, dict[int, int]] = {}
    if size_brokers:
        try:
            replicas = admin.replica_sizes(size_brokers)
        except KafkaAdminError as exc:
            log.debug("no replica sizes for throughput: %s", exc)
    sizes = {tp: max(by_broker.values()) for tp, by_broker in replicas.items() if by_broker}
    return PartitionTotals(at_ms, ends, sizes)


def broker_rates(
    previous: PartitionTotals | None,
    current: PartitionTotals | None,
    leaders: Mapping[TopicPartition, int | None],
    brokers: Iterable[int],
) -> dict[int, BrokerRate]:
    """Each broker's messages and bytes in per second between the two collections; every broker in
    `brokers` has a rate (zero when it leads nothing that grew). Empty when either collection is
    missing or they are not in order."""
    if previous is None or current is None or current.at_ms <= previous.at_ms:
        return {}
    seconds = (current.at_ms - previous.at_ms) / 1000
    with_bytes = bool(previous.sizes) and bool(current.sizes)
    everyone = list(brokers)
    messages: dict[int, int] = dict.fromkeys(everyone, 0)
    appended: dict[int, int] = dict.fromkeys(everyone, 0)
    for tp, leader in leaders.items():
        if leader is None:
            continue
        messages.setdefault(leader, 0)
        appended.setdefault(leader, 0)
        messages[leader] += _growth(previous.ends, current.ends, tp)
        if with_bytes:
            appended[leader] += _growth(previous.sizes, current.sizes, tp)
    return {
        broker: BrokerRate(messages[broker] / seconds, appended[broker] / seconds if with_bytes else None)
        for broker in sorted(messages)
    }


def _growth(
    before: Mapping[TopicPartition, int], after: Mapping[TopicPartition, int], tp: TopicPartition
) -> int:
    """How much a partition grew; zero when it shrank (retention, a recreated topic) or was not seen
    both times (a new partition's earlier messages are not this interval's)."""
    if tp not in before or tp not in after:
        return 0
    return max(0, after[tp] - before[tp])


def leaders_of(state: ClusterState) -> dict[TopicPartition, int | None]:
    return {(topic.name, p.partition): p.leader for topic in state.topics for p in topic.partitions}


# -- stored with the cluster's health, for the next collection ------------------------------------


def encode(totals: PartitionTotals) -> str:
    """`{"v": 1, "t": epoch ms, "p": [[topic, partition, end or null, size or null], ...]}`."""
    keys = sorted(set(totals.ends) | set(totals.sizes))
    rows = [
        [topic, partition, totals.ends.get((topic, partition)), totals.sizes.get((topic, partition))]
        for topic, partition in keys
    ]
    return orjson.dumps({"v": FORMAT, "t": totals.at_ms, "p": rows}).decode()


def decode(text: str | None) -> PartitionTotals | None:
    """What `encode` stored; None for nothing stored or an unknown format (rates start afresh)."""
    data = orjson.loads(text) if text else None
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        return None
    ends = {(topic, partition): end for topic, partition, end, _ in data["p"] if end is not None}
    sizes = {(topic, partition): size for topic, partition, _, size in data["p"] if size is not None}
    return PartitionTotals(int(data["t"]), ends, sizes)
