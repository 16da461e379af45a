"""Minimal-movement reassignment plans: scale-out, scale-in, broker replacement and rebalancing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

from provisioning.placement.balance import ReplicaDistributionGoal
from provisioning.placement.batching import make_batches
from provisioning.placement.goals import CapacityGoal, Goal, RackAwareGoal
from provisioning.placement.layout import check_racks
from provisioning.placement.leadership import LeaderDistributionGoal
from provisioning.placement.model import GoalResult, LeadershipChange, Plan, ReplicaMove, TopicPartition
from provisioning.placement.optimizer import run_goals
from provisioning.placement.state import ClusterState


def plan_reassignment(
    current: Mapping[TopicPartition, list[int]],
    brokers: Mapping[int, str | None],
    *,
    remove: Collection[int] = (),
    sizes: Mapping[TopicPartition, int] | None = None,
    max_moves_per_broker: int = 10,
    capacities: Mapping[int, int] | None = None,
) -> Plan:
    """Plan how to get from `current` to a balanced assignment on `brokers` minus `remove`.

    `brokers` is the target broker set with racks, new (empty) brokers included. Replicas on brokers
    in `remove`, or on brokers missing from `brokers` (dead ones), are moved off first; a dead
    broker's replicas land on its replacement when that is the empty broker in the rack they need.
    Goals, hard first: rack awareness, capacity (bytes per broker, when `capacities` is given),
    replica counts within one of each other, preferred-leader counts within one; and among plans
    that reach them, the fewest replica moves (bytes, with `sizes`) and leadership changes.
    """
    has_racks = check_racks(brokers)
    if max_moves_per_broker < 1:
        raise ValueError(f"max_moves_per_broker must be at least 1, got {max_moves_per_broker}")
    removing = set(remove)
    # Sorted so that ties break the same way however the caller's mapping was built.
    targets = {b: brokers[b] for b in sorted(brokers) if b not in removing}
    if not targets:
        raise ValueError("no brokers would be left after removing " + ", ".join(map(str, sorted(removing))))
    keys = sorted(current)
    replicas: list[list[int]] = []
    for key in keys:
        reps = list(current[key])
        if not reps:
            raise ValueError(f"{key[0]}-{key[1]} has no replicas")
        if len(set(reps)) != len(reps):
            raise ValueError(f"{key[0]}-{key[1]} lists a broker twice: {reps}")
        if len(reps) > len(targets):
            raise ValueError(
                f"{key[0]}-{key[1]} has replication factor {len(reps)} but only {len(targets)} brokers "
                "would remain"
            )
        replicas.append(reps)
    sizes = sizes or {}
    size_list = [sizes.get(key, 0) for key in keys]
    if any(size < 0 for size in size_list):
        raise ValueError("partition sizes cannot be negative")

    state = ClusterState(
        targets,
        replicas,
        size_list,
        keys=keys,
        former_racks={b: rack for b, rack in brokers.items() if b in removing},
    )
    goals: list[Goal] = [RackAwareGoal()]
    if capacities:
        goals.append(CapacityGoal(capacities))
    goals += [ReplicaDistributionGoal(), LeaderDistributionGoal()]
    must_move = bool(state.orphans())
    results = run_goals(state, goals)
    warnings = _warnings(state, results, has_racks)

    if not must_move and _worse(results):
        # A safety net: goals only make improving moves, so this means a bug; doing nothing is safe.
        warnings.append("the optimized assignment scored worse than the current one; keeping the current one")
        results = tuple(GoalResult(r.name, r.hard, r.before, r.before) for r in results)
        return Plan({k: list(current[k]) for k in keys}, (), (), (), results, tuple(warnings))

    target = {key: list(state.replicas[pid]) for pid, key in enumerate(keys)}
    moves = tuple(ReplicaMove(keys[pid], src, dst, size_list[pid]) for pid, src, dst in state.net_moves())
    changes = tuple(
        LeadershipChange(key, current[key][0], target[key][0])
        for key in keys
        if current[key][0] != target[key][0]
    )
    batches = make_batches(
        current,
        target,
        moves,
        live=brokers.keys(),
        draining=removing,
        max_moves_per_broker=max_moves_per_broker,
    )
    return Plan(target, moves, changes, batches, results, tuple(warnings))


def _worse(results: tuple[GoalResult, ...]) -> bool:
    """Whether the outcome is worse than the start, comparing goals in priority order."""
    return tuple(r.after for r in results) > tuple(r.before for r in results)


def _warnings(state: ClusterState, results: tuple[GoalResult, ...], has_racks: bool) -> list[str]:
    warnings = []
    racks = len(state.racks)
    if has_racks:
        short = Counter(len(reps) for reps in state.replicas if len(reps) > racks)
        for rf, count in sorted(short.items()):
            cap, _ = state.limits(rf)
            warnings.append(
                f"{count} partitions have replication factor {rf} but the brokers span only {racks} racks: "
                f"each rack holds up to {cap} of their replicas, so losing one rack loses that many"
            )
    for result in results:
        if not result.hard and result.after > 1:
            what = "replicas" if result.name == "replica-distribution" else "preferred leaders"
            warnings.append(
                f"{what} per broker still differ by up to {result.after}: rack awareness does not allow "
                "a closer balance (racks have unequal broker counts or too few partitions move freely)"
            )
    return warnings
