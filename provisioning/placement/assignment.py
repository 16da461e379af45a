"""Replica lists for a new topic's partitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
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
