"""Orders a plan's reassignments into batches a throttled executor can run one after another."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from provisioning.placement.model import Batch, ReplicaMove, TopicPartition


def make_batches(
    current: Mapping[TopicPartition, list[int]],
    target: Mapping[TopicPartition, list[int]],
    moves: Sequence[ReplicaMove],
    *,
    live: Collection[int],
    draining: Collection[int],
    max_moves_per_broker: int,
) -> tuple[Batch, ...]:
    """Group partition reassignments so no live broker takes part in more than the limit at once.

    A partition's moves always travel together: Kafka reassigns a partition as a whole, adding the
    new replicas before dropping the old ones, so its replica count never drops mid-way. Partitions
    that lost a replica to a dead broker go first (they are under-replicated), then those draining
    removed brokers, then plain rebalancing. Dead brokers send no data (the new replica copies from
    the leader), so they do not count against the limit. Reassignments that only reorder replicas
    move no data and form the last batch.
    """
    by_partition: dict[TopicPartition, list[ReplicaMove]] = {}
    for move in moves:
        by_partition.setdefault(move.partition, []).append(move)

    def urgency(partition: TopicPartition) -> tuple[int, TopicPartition]:
        sources = [m.source for m in by_partition[partition]]
        if any(s not in live for s in sources):
            return 0, partition
        if any(s in draining for s in sources):
            return 1, partition
        return 2, partition

    loads: dict[int, list[int]] = {}
    first_open: dict[int, int] = {}
    batches: list[list[TopicPartition]] = []
    for partition in sorted(by_partition, key=urgency):
        involved = [b for m in by_partition[partition] for b in (m.source, m.destination) if b in live]
        index = max((first_open.get(b, 0) for b in involved), default=0)
        while any(_load(loads, b, index) >= max_moves_per_broker for b in involved):
            index += 1
        while len(batches) <= index:
            batches.append([])
        batches[index].append(partition)
        for broker_id in involved:
            load = loads[broker_id]
            load[index] += 1
            position = first_open.get(broker_id, 0)
            while position < len(load) and load[position] >= max_moves_per_broker:
                position += 1
            first_open[broker_id] = position

    result = [
        Batch(
            reassignments={p: list(target[p]) for p in sorted(members)},
            moves=tuple(m for p in sorted(members) for m in by_partition[p]),
        )
        for members in batches
    ]
    reordered = sorted(
        p for p, reps in target.items() if p not in by_partition and list(reps) != list(current[p])
    )
    if reordered:
        result.append(Batch(reassignments={p: list(target[p]) for p in reordered}, moves=()))
    return tuple(result)


def _load(loads: dict[int, list[int]], broker_id: int, index: int) -> int:
    load = loads.setdefault(broker_id, [])
    if len(load) <= index:
        load.extend([0] * (index + 1 - len(load)))
    return load[index]
