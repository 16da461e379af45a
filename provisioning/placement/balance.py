"""The replica-distribution goal: replica counts per broker within one of each other."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Sequence

from provisioning.placement.goals import Goal, accepted, pick_broker, pick_source
from provisioning.placement.state import ClusterState

# After the first acceptable destination, look at this many more partitions for a less loaded one.
# Bounded so a broker with thousands of partitions is not rescanned on every move.
LOOKAHEAD = 16


class ReplicaDistributionGoal:
    """Replica counts per broker differ by at most one, reached with as few moves as possible.

    Replicas move from the most loaded broker to the least loaded one that may take them, so every
    move lowers the spread or the number of brokers at its extremes. With sizes, smaller partitions
    move first. Replicas that arrived during planning are tried last: moving one again changes where
    it ends up, not how many replicas move. When rack constraints block every direct move from the
    busiest broker, a chain of moves is searched for breadth-first: each broker on the way gives
    one replica and takes one, so only the two ends change count.
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
            # Brokers a failed chain search reached cannot reach a light broker either (their own
            # chain would extend the failed one), so their searches are skipped this round.
            unchained: set[int] = set()
            while (source := pick_source(state.counts, stuck)) is not None:
                prefer_leader = state.leaders.count[source] > leader_average
                if self._move_from(state, source, lists, prefer_leader, guards):
                    progressed = True
                    continue
                if source not in unchained:
                    reached = self._chain(state, source, lists, guards)
                    if reached is None:
                        progressed = True
                        continue
                    unchained |= reached
                stuck.add(source)

    def _move_from(
        self,
        state: ClusterState,
        source: int,
        lists: _Candidates,
        prefer_leader: bool,
        guards: Sequence[Goal],
    ) -> bool:
        limit = state.counts.count[source] - 2
        best: tuple[int, int, int] | None = None
        looked = 0
        for pid in lists.iterate(source, prefer_leader):
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
        _, pid, destination = best
        state.move(pid, source, destination)
        lists.arrived(pid, destination)
        return True

    def _chain(
        self, state: ClusterState, source: int, lists: _Candidates, guards: Sequence[Goal]
    ) -> set[int] | None:
        """Move along a chain ending at a light broker; None when done, else the brokers reached."""
        limit = state.counts.count[source] - 2
        hard = [g for g in guards if g.hard]
        pending = {
            rack: dict.fromkeys(m for m in members if m != source)
            for rack, members in state.rack_members.items()
        }
        parent: dict[int, tuple[int, int]] = {}
        queue = deque([source])
        while queue:
            broker_id = queue.popleft()
            used = set()
            node = broker_id
            while node in parent:
                node, pid = parent[node]
                used.add(pid)
            for pid in lists.iterate(broker_id, False):
                if pid in used:
                    continue
                for rack in state.racks:
                    waiting = pending[rack]
                    if not waiting or state.rack_delta(pid, broker_id, rack) > 0:
                        continue
                    for other in list(waiting):
                        if not state.can_host(pid, other) or not accepted(hard, state, pid, broker_id, other):
                            continue
                        del waiting[other]
                        parent[other] = (broker_id, pid)
                        if state.counts.count[other] <= limit and self._apply_chain(
                            state, parent, other, lists, hard
                        ):
                            return None
                        queue.append(other)
        return {source, *parent}

    def _apply_chain(
        self,
        state: ClusterState,
        parent: dict[int, tuple[int, int]],
        end: int,
        lists: _Candidates,
        hard: Sequence[Goal],
    ) -> bool:
        hops = []
        node = end
        while node in parent:
            previous, pid = parent[node]
            hops.append((pid, previous, node))
            node = previous
        # The far end first: each broker on the way gives a replica before it takes one.
        done = []
        for pid, source, destination in hops:
            if not (state.can_host(pid, destination) and accepted(hard, state, pid, source, destination)):
                for undo_pid, undo_source, undo_destination in reversed(done):
                    state.move(undo_pid, undo_destination, undo_source)
                return False
            state.move(pid, source, destination)
            done.append((pid, source, destination))
        for pid, _, destination in done:
            lists.arrived(pid, destination)
        return True


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
            chosen = pick_broker(state, pid, source, group, guards, leader)
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
                if broker_id in state.rack:
                    (self.followed if position else self.led)[broker_id].append(pid)
        self.sized = any(state.sizes)
        if self.sized:
            for lists in (self.led, self.followed):
                for pids in lists.values():
                    pids.sort(key=lambda p: (state.sizes[p], p))
        self.heads: dict[int, list[int]] = {b: [0, 0] for b in state.rack}

    def arrived(self, pid: int, broker_id: int) -> None:
        leader = self.state.replicas[pid][0] == broker_id
        (self.led if leader else self.followed)[broker_id].append(pid)

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
