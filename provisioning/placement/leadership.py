"""The leader-distribution goal: preferred-leader counts per broker within one of each other."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from provisioning.placement.goals import Goal, accepted, pick_source
from provisioning.placement.state import ClusterState


class _Roles:
    """Which partitions each broker leads and follows, kept in step with the state's replica lists."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.led: dict[int, dict[int, None]] = {b: {} for b in state.rack}
        self.followed: dict[int, dict[int, None]] = {b: {} for b in state.rack}
        self._seen = [tuple(reps) for reps in state.replicas]
        for pid, reps in enumerate(self._seen):
            self._index(pid, reps, add=True)

    def _index(self, pid: int, replicas: tuple[int, ...], *, add: bool) -> None:
        for position, broker_id in enumerate(replicas):
            if broker_id in self.led:
                roles = (self.followed if position else self.led)[broker_id]
                if add:
                    roles[pid] = None
                else:
                    del roles[pid]

    def refresh(self, pid: int) -> None:
        """Re-index a partition after its replica list changed."""
        now = tuple(self.state.replicas[pid])
        if now != self._seen[pid]:
            self._index(pid, self._seen[pid], add=False)
            self._index(pid, now, add=True)
            self._seen[pid] = now

    def make_leader(self, pid: int, broker_id: int) -> None:
        self.state.make_leader(pid, broker_id)
        self.refresh(pid)

    def move(self, pid: int, source: int, destination: int) -> None:
        self.state.move(pid, source, destination)
        self.refresh(pid)


class LeaderDistributionGoal:
    """Preferred-leader counts per broker differ by at most one, with as few changes as possible.

    Leadership moves by reordering a partition's replicas, so no data moves: directly to a follower
    with few leaders, or along a chain of reorderings found by breadth-first search. When reordering
    cannot help (a broker leading single-replica partitions), a leader replica moves to a broker
    with few leaders if the earlier goals accept it, or else trades places with one of that
    broker's followers, which leaves replica counts as they were (so only the hard goals need to
    accept each half).
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
        roles = _Roles(state)
        progressed = True
        while progressed and state.leaders.spread > 1:
            progressed = False
            stuck: set[int] = set()
            # As for replica chains: brokers a failed search reached need no search of their own.
            unchained: set[int] = set()
            while (source := pick_source(state.leaders, stuck)) is not None:
                if self._direct(state, roles, source):
                    progressed = True
                    continue
                if source not in unchained:
                    reached = self._chain(state, roles, source)
                    if reached is None:
                        progressed = True
                        continue
                    unchained |= reached
                if self._move(state, roles, source, guards) or self._exchange(state, roles, source, guards):
                    progressed = True
                    continue
                stuck.add(source)

    def _direct(self, state: ClusterState, roles: _Roles, source: int) -> bool:
        counts = state.leaders.count
        limit = counts[source] - 2
        best: tuple[int, bool] | None = None
        choice = None
        for pid in roles.led[source]:
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
        roles.make_leader(*choice)
        return True

    def _chain(self, state: ClusterState, roles: _Roles, source: int) -> set[int] | None:
        """Reorder along a chain ending at a broker with few leaders; None when done, else the reached."""
        counts = state.leaders.count
        limit = counts[source] - 2
        parent: dict[int, tuple[int, int] | None] = {source: None}
        queue = deque([source])
        while queue:
            broker_id = queue.popleft()
            for pid in roles.led[broker_id]:
                for follower in state.replicas[pid][1:]:
                    if follower not in counts or follower in parent:
                        continue
                    parent[follower] = (broker_id, pid)
                    if counts[follower] <= limit:
                        steps = []
                        node = follower
                        while (link := parent[node]) is not None:
                            steps.append((link[1], node))
                            node = link[0]
                        for step_pid, new_leader in steps:
                            roles.make_leader(step_pid, new_leader)
                        return None
                    queue.append(follower)
        return set(parent)

    def _move(self, state: ClusterState, roles: _Roles, source: int, guards: Sequence[Goal]) -> bool:
        limit = state.leaders.count[source] - 2
        pids = sorted(roles.led[source], key=lambda p: (state.sizes[p], p))
        for _, group in state.leaders.ascending(limit):
            for destination in group:
                for pid in pids:
                    if state.can_host(pid, destination) and accepted(guards, state, pid, source, destination):
                        roles.move(pid, source, destination)
                        return True
        return False

    def _exchange(self, state: ClusterState, roles: _Roles, source: int, guards: Sequence[Goal]) -> bool:
        limit = state.leaders.count[source] - 2
        hard = [g for g in guards if g.hard]
        mine = sorted(roles.led[source], key=lambda p: (state.sizes[p], p))
        for _, group in state.leaders.ascending(limit):
            for destination in group:
                outgoing = next(
                    (
                        pid
                        for pid in mine
                        if state.can_host(pid, destination)
                        and state.move_delta(pid, source, destination) <= 0
                        and accepted(hard, state, pid, source, destination)
                    ),
                    None,
                )
                if outgoing is None:
                    continue
                for pid in roles.followed[destination]:
                    if (
                        state.can_host(pid, source)
                        and state.move_delta(pid, destination, source) <= 0
                        and accepted(hard, state, pid, destination, source)
                    ):
                        roles.move(outgoing, source, destination)
                        roles.move(pid, destination, source)
                        return True
        return False
