"""Properties of the roll's order and quorum rule (provisioning/workflows/safety.py) over generated
clusters: combined or dedicated controllers, any of them behind the leader or down, with or without a
leader. No partitions: the in-sync-replica rules have table-driven cases in test_rolling.py."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.kafka_admin.base import BrokerInfo, ClusterState, QuorumMember, QuorumState
from provisioning.workflows.safety import not_ready, quorum_blocker, restart_blockers, restart_order

NOW_MS = 1_000_000
BEHIND_MS = 60_000  # far beyond the default quorum fetch timeout


@dataclass(frozen=True)
class Scenario:
    state: ClusterState
    brokers: tuple[int, ...]
    dedicated: tuple[int, ...]  # controllers that are no brokers
    caught_up: frozenset[int]  # voters caught up with the leader (the leader included)

    @property
    def nodes(self) -> list[int]:
        return [*self.brokers, *self.dedicated]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    broker_count = draw(st.integers(min_value=1, max_value=8))
    brokers = tuple(range(broker_count))
    voter_count = draw(st.sampled_from([1, 3, 5]))
    if draw(st.booleans()):
        dedicated = tuple(range(90000, 90000 + voter_count))
        voters = dedicated
    else:
        dedicated = ()
        voters = brokers[: min(voter_count, broker_count)]
    registered = draw(st.sets(st.sampled_from(brokers))) if brokers else set()
    caught_up = frozenset(draw(st.sets(st.sampled_from(voters))))
    leader = draw(st.sampled_from(sorted(caught_up))) if caught_up and draw(st.booleans()) else None
    members = tuple(
        QuorumMember(v, 500, NOW_MS if v in caught_up or v == leader else NOW_MS - BEHIND_MS) for v in voters
    )
    quorum = QuorumState(leader_id=leader, leader_epoch=1 if leader is not None else -1, voters=members)
    state = ClusterState(
        cluster_id="c",
        controller_id=leader,
        brokers=tuple(BrokerInfo(n, f"b{n}", 9092) for n in sorted(registered)),
        topics=(),
        quorum=quorum,
    )
    return Scenario(state, brokers, dedicated, caught_up | ({leader} if leader is not None else set()))


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_order_puts_unready_nodes_first_and_the_leader_last(scenario: Scenario) -> None:
    state, dedicated = scenario.state, scenario.dedicated
    order = restart_order(state, scenario.nodes, controller_only=dedicated)

    assert sorted(order) == sorted(scenario.nodes)
    if state.controller_id is not None:
        assert order[-1] == state.controller_id
    ready = [not_ready(state, n, controller_only=dedicated) is None for n in order]
    others = [r for n, r in zip(order, ready, strict=True) if n != state.controller_id]
    assert others == sorted(others)  # every unready node before every ready one
    for node in dedicated:
        # A dedicated controller is judged by the quorum alone, never as an unregistered broker.
        assert "not registered" not in (not_ready(state, node, controller_only=dedicated) or "")


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_ready_controller_restarts_only_while_a_majority_of_the_others_is_caught_up(
    scenario: Scenario,
) -> None:
    state, dedicated = scenario.state, scenario.dedicated
    quorum = state.quorum
    assert quorum is not None
    voters = sorted(quorum.voter_ids)
    for node in voters:
        if not_ready(state, node, controller_only=dedicated) is not None:
            continue  # serves nothing: restarting it cannot lose anything
        allowed = not restart_blockers(state, node, controller_only=dedicated)
        if not allowed:
            continue
        # Allowed: the quorum has a leader, and without this node enough voters stay caught up to keep
        # (or elect) one.
        assert quorum.leader_id is not None
        others = [v for v in voters if v != node and v in scenario.caught_up]
        assert len(others) >= min(len(voters) - 1, len(voters) // 2 + 1)
        assert quorum_blocker(state, node, controller_only=dedicated) is None
