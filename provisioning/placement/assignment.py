"""Replica lists for a new topic's partitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from math import gcd, lcm

from provisioning.placement.balance import ReplicaDistributionGoal
from provisioning.placement.goals import RackAwareGoal
from provisioning.placement.layout import check_racks, rack_alternated
from provisioning.placement.leadership import LeaderDistributionGoal
from provisioning.placement.optimizer import run_goals
from provisioning.placement.state import ClusterState


def assign_replicas(
    brokers: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    *,
    start: int | None = None,
) -> list[list[int]]:
    """One replica list per partition, the first broker of each being its preferred leader.

    Replicas of a partition sit on distinct brokers and in distinct racks (with fewer racks than
    replicas, no rack holds more than ceil(RF / racks)); preferred leaders per broker differ by at
    most one, and so do replicas per broker when racks have equal broker counts. `start` rotates
    where the first partition lands (Kafka picks it at random; here it is 0 unless given), so
    callers creating several topics can spread their first partitions over different brokers.
    """
    check_racks(brokers)
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, got {replication_factor}")
    if partitions < 1:
        raise ValueError(f"partition count must be at least 1, got {partitions}")
    if replication_factor > len(brokers):
        raise ValueError(
            f"replication factor {replication_factor} is larger than the {len(brokers)} available brokers"
        )
    order = rack_alternated(brokers)
    offset = (start or 0) % len(order)
    rack_sizes = Counter(brokers.values())
    if len(set(rack_sizes.values())) == 1:
        return _striped(order, len(rack_sizes), partitions, replication_factor, offset)
    return _greedy(brokers, order, partitions, replication_factor, offset)


def _striped(
    order: list[int], racks: int, partitions: int, replication_factor: int, start: int
) -> list[list[int]]:
    """Even racks: deal consecutive windows of the rack-alternated list, like dealing cards.

    Windows of `replication_factor` consecutive positions tile the list, so replica counts never
    differ by more than one, and consecutive positions are in distinct racks. Once every position
    has been dealt equally often (a "period"), the list is reshuffled within each rack (blocks of
    each column rotate at a different rate) so that a broker's partitions get different followers
    over time, the purpose of the shift in Kafka's algorithm. The leader's offset in the window
    moves on each period so leadership rotates over every position.
    """
    n = len(order)
    group = gcd(n, replication_factor)
    columns = lcm(racks, group)  # a multiple of both, so reshuffling keeps racks and leader classes
    blocks = n // columns
    period = n // group
    result: list[list[int]] = []
    dealt: list[int] = order
    for index in range(partitions):
        cycle, k = divmod(index, period)
        if k == 0:
            dealt = [
                order[c + columns * ((b + cycle * c) % blocks)] for b in range(blocks) for c in range(columns)
            ]
        base = start + k * replication_factor
        lead = cycle % group
        result.append(
            [dealt[(base + (lead + j) % replication_factor) % n] for j in range(replication_factor)]
        )
    return result


def _greedy(
    brokers: Mapping[int, str | None], order: list[int], partitions: int, replication_factor: int, start: int
) -> list[list[int]]:
    """Uneven racks: place each replica on the lightest broker of the best rack, then rebalance."""
    rotated = order[start:] + order[:start]
    # Placeholders (negative ids) are outside the broker set, so they are placed like orphans.
    placeholders = [-(slot + 1) for slot in range(replication_factor)]
    state = ClusterState(
        {b: brokers[b] for b in rotated},
        [list(placeholders) for _ in range(partitions)],
        [0] * partitions,
    )
    run_goals(state, [RackAwareGoal(), ReplicaDistributionGoal(), LeaderDistributionGoal()])
    return state.replicas


def add_partitions(
    brokers: Mapping[int, str | None],
    existing: Sequence[Sequence[int]],
    count: int,
    replication_factor: int,
) -> list[list[int]]:
    """Replica lists for `count` partitions added to a topic whose partitions hold `existing`.

    Existing partitions never move (Kafka's CreatePartitions only adds). A topic laid out by
    `assign_replicas` over these same brokers, in racks of equal size, is continued exactly as one call
    for all its partitions would have laid it out (Kafka's own partition increase continues its assignment the same way), so it
    stays as balanced as `assign_replicas` keeps any topic. Any other layout (placed by hand, by another
    tool, or over brokers the cluster had before a scale-out) is extended greedily: each new leader is
    a broker leading fewest of the topic's partitions, its followers come from the racks the partition
    uses least (distinct racks first; with fewer racks than replicas as evenly as the rack sizes allow),
    then from the brokers holding fewest of the topic's replicas, so new brokers catch up first.
    """
    check_racks(brokers)
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, got {replication_factor}")
    if count < 1:
        raise ValueError(f"partition count to add must be at least 1, got {count}")
    if replication_factor > len(brokers):
        raise ValueError(
            f"replication factor {replication_factor} is larger than the {len(brokers)} available brokers"
        )
    start = _laid_out_from(brokers, existing, replication_factor)
    if start is not None:
        total = len(existing) + count
        return assign_replicas(brokers, total, replication_factor, start=start)[len(existing) :]
    return _extend_greedily(brokers, existing, count, replication_factor)


def _laid_out_from(
    brokers: Mapping[int, str | None], existing: Sequence[Sequence[int]], replication_factor: int
) -> int | None:
    """The `start` with which `assign_replicas` lays out exactly `existing`, if there is one. Only racks
    of equal size are dealt partition by partition (the first partitions of a longer layout are a shorter
    layout); uneven racks are optimized over all partitions at once, so no layout continues there."""
    if not existing or len(set(Counter(brokers.values()).values())) != 1:
        return None
    wanted = [list(replicas) for replicas in existing]
    for start in range(len(brokers)):
        # The first partition rules out almost every start before the whole layout is computed.
        if assign_replicas(brokers, 1, replication_factor, start=start)[0] != wanted[0]:
            continue
        if assign_replicas(brokers, len(wanted), replication_factor, start=start) == wanted:
            return start
    return None


def _extend_greedily(
    brokers: Mapping[int, str | None],
    existing: Sequence[Sequence[int]],
    count: int,
    replication_factor: int,
) -> list[list[int]]:
    has_racks = check_racks(brokers)
    order = rack_alternated(brokers)
    position = {broker: index for index, broker in enumerate(order)}
    rack_of = {broker: (brokers[broker] if has_racks else broker) for broker in brokers}
    rack_sizes = Counter(rack_of.values())
    replicas_on = Counter(r for replicas in existing for r in replicas if r in brokers)
    leaders_on = Counter(replicas[0] for replicas in existing if replicas and replicas[0] in brokers)
    # Where the next leader search starts, so equal brokers take turns instead of the first one winning.
    turn = len(existing)
    added: list[list[int]] = []
    for _ in range(count):
        start = order[turn % len(order)]
        turn += 1

        def distance(broker: int, origin: int) -> int:
            return (position[broker] - position[origin]) % len(order)

        leader = min(order, key=lambda b: (leaders_on[b], replicas_on[b], distance(b, start)))
        chosen = [leader]
        in_rack = Counter({rack_of[leader]: 1})
        while len(chosen) < replication_factor:
            candidates = [b for b in order if b not in chosen]
            follower = min(
                candidates,
                key=lambda b: (
                    # A rack's share relative to its size keeps uneven racks from being over-filled.
                    in_rack[rack_of[b]] / rack_sizes[rack_of[b]] if in_rack[rack_of[b]] else -1,
                    replicas_on[b],
                    distance(b, leader),
                ),
            )
            chosen.append(follower)
            in_rack[rack_of[follower]] += 1
        for broker in chosen:
            replicas_on[broker] += 1
        leaders_on[leader] += 1
        added.append(chosen)
    return added
