"""Placement goals: the shared interface, the hard goals, and helpers for choosing brokers.

The structure follows Cruise Control's goals: hard goals (rack awareness, capacity) must hold or
planning fails with a reason; soft goals (replica distribution in `balance.py`, leader
distribution in `leadership.py`) are pursued as far as the hard goals allow. Goals run in priority
order and each optimizes with the goals before it as guards: it only makes moves every earlier
goal accepts, so a later goal never undoes an earlier one. Reordering a partition's replicas
changes no replica set, so only the leader goal does it and no other goal has to judge it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from provisioning.placement.model import PlacementError
from provisioning.placement.state import Buckets, ClusterState


class Goal(Protocol):
    name: str
    hard: bool

    def score(self, state: ClusterState) -> int:
        """How far the state is from satisfying the goal; 0 means satisfied."""
        ...

    def accepts_move(self, state: ClusterState, pid: int, source: int, destination: int) -> bool:
        """Whether moving the partition's replica from `source` to `destination` keeps the goal."""
        ...

    def optimize(self, state: ClusterState, guards: Sequence[Goal]) -> None:
        """Improve the state using only moves every guard accepts."""
        ...


def accepted(guards: Sequence[Goal], state: ClusterState, pid: int, source: int, destination: int) -> bool:
    return all(g.accepts_move(state, pid, source, destination) for g in guards)


def best_home(state: ClusterState, pid: int, source: int, guards: Sequence[Goal]) -> int | None:
    """The destination for a replica that must leave `source`.

    Ranked by rack spread, then staying in the source's rack (a drained or replaced broker's
    replicas stay where its rack-mates expect them), then the least loaded broker. Among equally
    loaded brokers a leader replica goes to the one leading the fewest partitions.
    """
    leader = state.replicas[pid][0] == source
    drained = source in state.former_rack
    best: tuple[int, bool, int] | None = None
    best_broker = None
    for rack in state.racks:
        delta = state.rack_delta(pid, source, rack)
        away = drained and rack != state.former_rack[source]
        buckets = state.rack_counts[rack]
        for value, group in buckets.ascending(buckets.high):
            if best is not None and (delta, away, value) >= best:
                break
            chosen = pick_broker(state, pid, source, group, guards, leader)
            if chosen is not None:
                best, best_broker = (delta, away, value), chosen
                break
    return best_broker


def pick_broker(
    state: ClusterState, pid: int, source: int, group: list[int], guards: Sequence[Goal], leader: bool
) -> int | None:
    """The first broker of an equally loaded group that may take the replica."""
    if leader and len(group) > 1:
        group = sorted(group, key=state.leaders.count.__getitem__)
    for broker_id in group:
        if state.can_host(pid, broker_id) and accepted(guards, state, pid, source, broker_id):
            return broker_id
    return None


def pick_source(buckets: Buckets, stuck: set[int]) -> int | None:
    """The most loaded broker not known to be stuck, if it is at least two above the least."""
    for value in range(buckets.high, buckets.low + 1, -1):
        for broker_id in buckets.at(value):
            if broker_id not in stuck:
                return broker_id
    return None


class RackAwareGoal:
    """Every partition's replicas spread over racks as evenly as the brokers allow.

    With at least as many racks as replicas that means one replica per rack; with fewer racks, no
    rack holds more than ceil(RF / racks) and every rack holds one.
    """

    name = "rack-awareness"
    hard = True

    def score(self, state: ClusterState) -> int:
        return sum(1 for pid in range(len(state.replicas)) if state.violation(pid))

    def accepts_move(self, state: ClusterState, pid: int, source: int, destination: int) -> bool:
        return state.move_delta(pid, source, destination) <= 0

    def optimize(self, state: ClusterState, guards: Sequence[Goal]) -> None:
        for pid in range(len(state.replicas)):
            while state.violation(pid):
                fix = self._best_fix(state, pid, guards)
                if fix is None:
                    cap, spread = state.limits(len(state.replicas[pid]))
                    raise PlacementError(
                        f"{state.describe(pid)} cannot be spread over {spread} racks with at most {cap} "
                        f"replicas per rack: every broker that could take a replica is blocked by an "
                        f"earlier goal (capacity) or already holds one; add brokers to the short racks"
                    )
                state.move(pid, *fix)

    def _best_fix(self, state: ClusterState, pid: int, guards: Sequence[Goal]) -> tuple[int, int] | None:
        best: tuple[int, int, int] | None = None
        fix = None
        for source in state.replicas[pid]:
            if source not in state.rack:
                continue
            for rack in state.racks:
                delta = state.rack_delta(pid, source, rack)
                if delta >= 0:
                    continue
                for value, group in state.rack_counts[rack].ascending(state.rack_counts[rack].high):
                    key = (delta, value, -state.counts.count[source])
                    if best is not None and key >= best:
                        break
                    chosen = pick_broker(state, pid, source, group, guards, False)
                    if chosen is not None:
                        best, fix = key, (source, chosen)
                        break
        return fix


class CapacityGoal:
    """No broker holds more bytes than its capacity (only brokers with a capacity are checked)."""

    name = "capacity"
    hard = True

    def __init__(self, capacities: Mapping[int, int]) -> None:
        self.capacities = dict(capacities)

    def _over(self, state: ClusterState) -> list[int]:
        return [b for b, cap in sorted(self.capacities.items()) if b in state.rack and state.bytes[b] > cap]

    def score(self, state: ClusterState) -> int:
        return len(self._over(state))

    def accepts_move(self, state: ClusterState, pid: int, source: int, destination: int) -> bool:
        cap = self.capacities.get(destination)
        return cap is None or state.bytes[destination] + state.sizes[pid] <= cap

    def optimize(self, state: ClusterState, guards: Sequence[Goal]) -> None:
        over = self._over(state)
        if not over:
            return
        checks = [*guards, self]
        hosted: dict[int, list[int]] = {b: [] for b in over}
        for pid, reps in enumerate(state.replicas):
            for broker_id in reps:
                if broker_id in hosted:
                    hosted[broker_id].append(pid)
        for broker_id in over:
            cap = self.capacities[broker_id]
            candidates = sorted(hosted[broker_id], key=lambda p: (state.sizes[p], p))
            while state.bytes[broker_id] > cap and candidates:
                excess = state.bytes[broker_id] - cap
                # Fewest bytes: the smallest replica that clears the excess on its own, else the largest.
                index = next((i for i, p in enumerate(candidates) if state.sizes[p] >= excess), -1)
                pid = candidates.pop(index)
                destination = self._destination(state, pid, broker_id, checks)
                if destination is not None:
                    state.move(pid, broker_id, destination)
            if state.bytes[broker_id] > cap:
                raise PlacementError(
                    f"broker {broker_id} would hold {state.bytes[broker_id] - cap} bytes more than its "
                    f"capacity of {cap} and no rack-aware destination has room; add brokers or disk"
                )

    def _destination(self, state: ClusterState, pid: int, source: int, checks: Sequence[Goal]) -> int | None:
        for broker_id in sorted(state.rack, key=lambda b: (state.counts.count[b], state.bytes[b], b)):
            if state.can_host(pid, broker_id) and accepted(checks, state, pid, source, broker_id):
                return broker_id
        return None
