"""Runs the goals in priority order over a working state and reports how each one fared."""

from __future__ import annotations

from collections.abc import Sequence

from provisioning.placement.goals import Goal, RackAwareGoal, best_home
from provisioning.placement.model import GoalResult, PlacementError
from provisioning.placement.state import ClusterState


def place_orphans(state: ClusterState, goals: Sequence[Goal]) -> None:
    """Give every replica on a broker outside the target set a new home.

    These moves are not optional, so they come before any goal optimizes. The rack spread decides
    first (`best_home` ranks by it rather than refusing a worse spread, so an unavoidable one still
    finds a home), then capacity, then the lightest broker.
    """
    guards = [g for g in goals if g.hard and not isinstance(g, RackAwareGoal)]
    for pid, source in state.orphans():
        destination = best_home(state, pid, source, guards)
        if destination is None:
            reason = f"on broker {source}" if source >= 0 else "to place"
            raise PlacementError(
                f"no broker can take the replica of {state.describe(pid)} {reason}: every broker "
                f"either holds a replica of it already or lacks capacity; add brokers or capacity"
            )
        state.move(pid, source, destination)


def run_goals(state: ClusterState, goals: Sequence[Goal]) -> tuple[GoalResult, ...]:
    """Place orphans, then let each goal optimize guarded by the goals before it."""
    before = [goal.score(state) for goal in goals]
    place_orphans(state, goals)
    for index, goal in enumerate(goals):
        goal.optimize(state, goals[:index])
    return tuple(
        GoalResult(goal.name, goal.hard, start, goal.score(state))
        for goal, start in zip(goals, before, strict=True)
    )
