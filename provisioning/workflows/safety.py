"""Whether a broker may be restarted now, and whether it is back: pure checks on one metadata snapshot.

The rules are Strimzi KafkaRoller's: never restart a broker that holds a replica of a partition already
below `min.insync.replicas`, nor one in the ISR of a partition exactly at it, because either would stop
producers using acks=all. On top of that, as cp-ansible does, nothing is restarted while any partition
is under-replicated: a second broker out of sync is how a routine restart becomes an outage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from provisioning.kafka_admin.base import ClusterState, PartitionState, TopicPartition

EXAMPLES_SHOWN = 3


def _name(partition: PartitionState) -> str:
    return f"{partition.topic}[{partition.partition}]"


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:EXAMPLES_SHOWN])
    return shown + (f" and {len(names) - EXAMPLES_SHOWN} more" if len(names) > EXAMPLES_SHOWN else "")


def _partitions(state: ClusterState) -> Iterable[tuple[PartitionState, int]]:
    for topic in state.topics:
        for partition in topic.partitions:
            yield partition, topic.min_insync_replicas


def under_replicated(state: ClusterState) -> list[PartitionState]:
    return [p for p, _ in _partitions(state) if len(p.isr) < len(p.replicas)]


def restart_blockers(state: ClusterState, node_id: int) -> list[str]:
    """Why restarting `node_id` now could hurt availability, in plain words; empty when it is safe."""
    reasons = []
    offline = [_name(p) for p, _ in _partitions(state) if p.leader is None]
    if offline:
        reasons.append(f"{len(offline)} partition(s) are offline: {_examples(offline)}")
    below: list[str] = []
    at: list[str] = []
    for partition, min_isr in _partitions(state):
        if node_id not in partition.replicas or partition.leader is None:
            continue
        # A partition with no more replicas than min.insync.replicas stops acks=all producers
        # whichever broker restarts; holding the roll back for it would only stall it for good.
        if len(partition.replicas) <= min_isr:
            continue
        if len(partition.isr) < min_isr:
            below.append(f"{_name(partition)} ({len(partition.isr)} in sync, min.insync.replicas {min_isr})")
        elif len(partition.isr) == min_isr and node_id in partition.isr:
            at.append(_name(partition))
    if below:
        reasons.append(
            f"broker {node_id} holds a replica of {len(below)} partition(s) already below "
            f"min.insync.replicas: {_examples(below)}"
        )
    if at:
        reasons.append(
            f"broker {node_id} is in the ISR of {len(at)} partition(s) exactly at min.insync.replicas; "
            f"restarting it would stop acks=all producers: {_examples(at)}"
        )
    lagging = [_name(p) for p in under_replicated(state)]
    if lagging:
        reasons.append(f"{len(lagging)} partition(s) are under-replicated: {_examples(lagging)}")
    return reasons


def sync_problems(state: ClusterState, node_id: int) -> str | None:
    """What still keeps a restarted broker from being back in full; None once it is."""
    if all(b.node_id != node_id for b in state.brokers):
        return f"broker {node_id} has not registered with the cluster yet"
    behind = [_name(p) for p, _ in _partitions(state) if node_id in p.replicas and node_id not in p.isr]
    if behind:
        return f"broker {node_id} is not yet in sync for {len(behind)} partition(s): {_examples(behind)}"
    return None


def hosted_partitions(state: ClusterState, node_ids: Collection[int]) -> list[TopicPartition]:
    """Partitions with a replica on any of these brokers."""
    wanted = set(node_ids)
    return [(p.topic, p.partition) for p, _ in _partitions(state) if wanted.intersection(p.replicas)]


def replica_counts(state: ClusterState, node_ids: Collection[int]) -> dict[int, int]:
    counts = Counter(r for p, _ in _partitions(state) for r in p.replicas)
    return {node_id: counts.get(node_id, 0) for node_id in node_ids}


def rack_conflicts(state: ClusterState, racks: Mapping[int, str]) -> list[str]:
    """Partitions with two replicas in one rack although there are enough racks to avoid it."""
    rack_count = len(set(racks.values()))
    conflicts = []
    for partition, _ in _partitions(state):
        used = [racks.get(r) for r in partition.replicas]
        if len(partition.replicas) <= rack_count and len(set(used)) < len(used):
            conflicts.append(_name(partition))
    return conflicts
