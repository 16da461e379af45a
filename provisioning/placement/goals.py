"""Placement goals in priority order, each able to score a state, judge a move and optimize.

The structure follows Cruise Control's goals: hard goals (rack awareness, capacity) must hold or
planning fails with a reason; soft goals (replica and leader distribution) are pursued as far as
the hard goals allow. A goal optimizes with the goals before it as guards: it only makes moves
every earlier goal accepts, so a later goal never undoes an earlier one. Leadership swaps change no
replica set, so only the leader goal proposes them and no other goal has to judge them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from provisioning.placement.model import PlacementError
from provisioning.placement.state import Buckets, ClusterState

# After the first acceptable destination, look at this many more partitions for a less loaded one.
# Bounded so a broker with thousands of partitions is not rescanned on every move.
LOOKAHEAD = 16


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
            chosen = _pick(state, pid, source, group, guards, leader)
            if chosen is not None:
                best, best_broker = (delta, away, value), chosen
                break
    return best_broker


def _pick(
    state: ClusterState, pid: int, source: int, group: list[int], guards: Sequence[Goal], leader: bool
) -> int | None:
    """The first broker of an equally loaded group that may take the replica."""
    if leader and len(group) > 1:
        group = sorted(group, key=state.leaders.count.__getitem__)
    for broker_id in group:
        if state.can_host(pid, broker_id) and accepted(guards, state, pid, source, broker_id):
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
            if source not in state.rack or not state.is_movable(pid, source):
                continue
            for rack in state.racks:
                delta = state.rack_delta(pid, source, rack)
                if delta >= 0:
                    continue
                for value, group in state.rack_counts[rack].ascending(state.rack_counts[rack].high):
                    key = (delta, value, -state.counts.count[source])
                    if best is not None and key >= best:
                        break
                    chosen = _pick(state, pid, source, group, guards, False)
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
                if broker_id in hosted and state.is_movable(pid, broker_id):
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


class ReplicaDistributionGoal:
    """Replica counts per broker differ by at most one, reached with as few moves as possible.

    Replicas move from the most loaded broker to the least loaded one that may take them, so every
    move lowers the spread or the number of brokers at its extremes. With sizes, smaller partitions
    move first; a replica is moved at most once per plan.
    """

    name = "replica-distribution"
    hard = False

    def score(self, state: ClusterState) -> int:
        return state.counts.spread

    def accepts_move(self, state: ClusterState, pid: int, source: int, destination: int) -> bool:
        if source not in state.rack:
            return True
        return state.counts.count[destination] < state.counts.count[source]

    def optimize(self, state: ClusterState, guards: Sequence[Goal]) -> None:
        if len(state.counts) < 2 or state.counts.spread <= 1:
            return
        lists = _Candidates(state)
        total_leaders = sum(state.leaders.count.values())
        leader_average = total_leaders / len(state.leaders)
        progressed = True
        while progressed and state.counts.spread > 1:
            progressed = False
            stuck: set[int] = set()
            while (source := _pick_source(state.counts, stuck)) is not None:
                prefer_leader = state.leaders.count[source] > leader_average
                if self._move_from(state, source, lists.iterate(source, prefer_leader), guards):
                    progressed = True
                else:
                    stuck.add(source)

    def _move_from(
        self, state: ClusterState, source: int, candidates: Iterator[int], guards: Sequence[Goal]
    ) -> bool:
        limit = state.counts.count[source] - 2
        best: tuple[int, int, int] | None = None
        looked = 0
        for pid in candidates:
            found = _lightest(state, pid, source, limit if best is None else best[0] - 1, guards)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], pid, found[1])
                if best[0] == state.counts.low:
                    break
            if best is not None:
                looked += 1
                if looked > LOOKAHEAD:
                    break
        if best is None:
            return False
        state.move(best[1], source, best[2])
        return True


def _pick_source(buckets: Buckets, stuck: set[int]) -> int | None:
    """The most loaded broker not known to be stuck, if it is at least two above the least."""
    for value in range(buckets.high, buckets.low + 1, -1):
        for broker_id in buckets.at(value):
            if broker_id not in stuck:
                return broker_id
    return None


def _lightest(
    state: ClusterState, pid: int, source: int, limit: int, guards: Sequence[Goal]
) -> tuple[int, int] | None:
    """(count, broker) of the least loaded broker at or under `limit` that may take the replica.

    The source's own rack is tried first and wins ties, since a move inside a rack never changes
    the partition's rack spread.
    """
    source_rack = state.rack[source]
    leader = state.replicas[pid][0] == source
    best: tuple[int, int] | None = None
    for rack in (source_rack, *(r for r in state.racks if r != source_rack)):
        buckets = state.rack_counts[rack]
        ceiling = limit if best is None else best[0] - 1
        if buckets.low > ceiling:
            continue
        if rack != source_rack and state.rack_delta(pid, source, rack) > 0:
            continue
        for value, group in buckets.ascending(ceiling):
            chosen = _pick(state, pid, source, group, guards, leader)
            if chosen is not None:
                best = (value, chosen)
                break
    return best


class _Candidates:
    """Per broker, the replicas it may give away: leaders and followers, each smallest first.

    Heads only move forward past replicas that already left, so picking a replica stays cheap
    however many were moved before.
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.led: dict[int, list[int]] = {b: [] for b in state.rack}
        self.followed: dict[int, list[int]] = {b: [] for b in state.rack}
        for pid, reps in enumerate(state.replicas):
            for position, broker_id in enumerate(reps):
                if broker_id in state.rack and state.is_movable(pid, broker_id):
                    (self.followed if position else self.led)[broker_id].append(pid)
        self.sized = any(state.sizes)
        if self.sized:
            for lists in (self.led, self.followed):
                for pids in lists.values():
                    pids.sort(key=lambda p: (state.sizes[p], p))
        self.heads: dict[int, list[int]] = {b: [0, 0] for b in state.rack}

    def _live(self, broker_id: int, kind: int) -> Iterator[int]:
        pids = (self.led if kind == 0 else self.followed)[broker_id]
        heads = self.heads[broker_id]
        replicas = self.state.replicas
        while heads[kind] < len(pids) and broker_id not in replicas[pids[heads[kind]]]:
            heads[kind] += 1
        for index in range(heads[kind], len(pids)):
            pid = pids[index]
            reps = replicas[pid]
            if broker_id in reps and (reps[0] == broker_id) == (kind == 0):
                yield pid

    def iterate(self, broker_id: int, prefer_leader: bool) -> Iterator[int]:
        first, second = (0, 1) if prefer_leader else (1, 0)
        if not self.sized:
            yield from self._live(broker_id, first)
            yield from self._live(broker_id, second)
            return
        sizes = self.state.sizes
        yield from (
            pid
            for _, _, pid in heapq.merge(
                ((sizes[p], 0, p) for p in self._live(broker_id, first)),
                ((sizes[p], 1, p) for p in self._live(broker_id, second)),
            )
        )


class LeaderDistributionGoal:
    """Preferred-leader counts per broker differ by at most one, with as few changes as possible.

    Leadership moves by reordering a partition's replicas, so no data moves. When no partition led
    by the busiest broker has a follower with room, a chain of swaps through other brokers is found
    by breadth-first search.
    """

    name = "leader-distribution"
    hard = False

    def score(self, state: ClusterState) -> int:
        return state.leaders.spread

    def accepts_move(self, state: ClusterState, pid: int, source: int, destination: int) -> bool:
        return True

    def optimize(self, state: ClusterState, guards: Sequence[Goal]) -> None:
        if len(state.leaders) < 2 or state.leaders.spread <= 1:
            return
        led: dict[int, dict[int, None]] = {b: {} for b in state.rack}
        for pid, reps in enumerate(state.replicas):
            if reps[0] in led:
                led[reps[0]][pid] = None
        progressed = True
        while progressed and state.leaders.spread > 1:
            progressed = False
            stuck: set[int] = set()
            while (source := _pick_source(state.leaders, stuck)) is not None:
                if self._direct(state, led, source) or self._chain(state, led, source):
                    progressed = True
                else:
                    stuck.add(source)

    def _swap(self, state: ClusterState, led: dict[int, dict[int, None]], pid: int, new: int) -> None:
        del led[state.replicas[pid][0]][pid]
        led[new][pid] = None
        state.make_leader(pid, new)

    def _direct(self, state: ClusterState, led: dict[int, dict[int, None]], source: int) -> bool:
        limit = state.leaders.count[source] - 2
        counts = state.leaders.count
        best: tuple[int, int] | None = None
        choice = None
        for pid in led[source]:
            initial = state.initial_leaders[pid]
            for follower in state.replicas[pid][1:]:
                if follower in counts and counts[follower] <= limit:
                    # Handing leadership back to the partition's original leader undoes a change.
                    key = (counts[follower], follower != initial)
                    if best is None or key < best:
                        best, choice = key, (pid, follower)
            if best == (state.leaders.low, False):
                break
        if choice is None:
            return False
        self._swap(state, led, *choice)
        return True

    def _chain(self, state: ClusterState, led: dict[int, dict[int, None]], source: int) -> bool:
        limit = state.leaders.count[source] - 2
        counts = state.leaders.count
        parent: dict[int, tuple[int, int] | None] = {source: None}
        queue = deque([source])
        while queue:
            broker_id = queue.popleft()
            for pid in led[broker_id]:
                for follower in state.replicas[pid][1:]:
                    if follower not in counts or follower in parent:
                        continue
                    parent[follower] = (broker_id, pid)
                    if counts[follower] <= limit:
                        self._apply_chain(state, led, parent, follower)
                        return True
                    queue.append(follower)
        return False

    def _apply_chain(
        self,
        state: ClusterState,
        led: dict[int, dict[int, None]],
        parent: dict[int, tuple[int, int] | None],
        end: int,
    ) -> None:
        steps = []
        node = end
        while (link := parent[node]) is not None:
            steps.append((link[1], node))
            node = link[0]
        for pid, new in steps:
            self._swap(state, led, pid, new)
