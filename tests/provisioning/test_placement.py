"""Placement engine: table-driven cases for layouts, assignments and reassignment plans.

The invariant checks at the top are shared with the property tests.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping

import pytest

from provisioning.placement import (
    PlacementError,
    Plan,
    TopicPartition,
    add_partitions,
    assign_replicas,
    assignment_stats,
    place_brokers,
    plan_reassignment,
    rack_alternated,
)

Assignment = Mapping[TopicPartition, list[int]]


def best_rack_cap(rack_sizes: Mapping[object, int], rf: int) -> int:
    """The fewest replicas one rack must be allowed to hold so `rf` replicas fit at all."""
    cap = -(-rf // len(rack_sizes))
    while sum(min(size, cap) for size in rack_sizes.values()) < rf:
        cap += 1
    return cap


def check_rack_spread(replicas: list[int], brokers: Mapping[int, str | None]) -> None:
    """Replicas are distinct and spread over racks as evenly as the rack sizes allow."""
    assert len(set(replicas)) == len(replicas), replicas
    assert all(b in brokers for b in replicas), replicas
    rack_sizes = Counter(brokers.values())
    per_rack = Counter(brokers[b] for b in replicas)
    rf = len(replicas)
    assert len(per_rack) == min(rf, len(rack_sizes)), (replicas, per_rack)
    assert max(per_rack.values()) <= best_rack_cap(rack_sizes, rf), (replicas, per_rack)


def spreads(assignment: Assignment | list[list[int]], brokers: Mapping[int, str | None]) -> tuple[int, int]:
    stats = assignment_stats(assignment, brokers)
    return stats.replica_spread, stats.leader_spread


def equal_racks(brokers: Mapping[int, str | None]) -> bool:
    return len(set(Counter(brokers.values()).values())) == 1


def apply_batches(current: Assignment, plan: Plan, brokers: Mapping[int, str | None], limit: int) -> None:
    """Runs the batches the way Kafka would and checks every intermediate state on the way."""
    state = {p: list(r) for p, r in current.items()}
    for batch in plan.batches:
        involvement: Counter[int] = Counter()
        for move in batch.moves:
            assert move.source in state[move.partition]
            assert move.destination in batch.reassignments[move.partition]
            involvement.update(b for b in (move.source, move.destination) if b in brokers)
        assert not involvement or max(involvement.values()) <= limit
        for partition, replicas in batch.reassignments.items():
            before = state[partition]
            # While Kafka copies, the partition holds the union: never fewer replicas than before.
            assert len(set(before) | set(replicas)) >= len(before)
            assert len(replicas) == len(before)
            state[partition] = list(replicas)
        for partition, replicas in state.items():
            # After each batch every partition is wholly at its start or its target.
            assert replicas in (list(current[partition]), plan.target[partition])
    assert state == {p: list(r) for p, r in plan.target.items()}


def check_plan(
    current: Assignment,
    plan: Plan,
    brokers: Mapping[int, str | None],
    remove: set[int],
    *,
    limit: int = 10,
) -> None:
    """Every invariant a plan promises, checked against the inputs alone."""
    targets = {b: r for b, r in brokers.items() if b not in remove}
    assert plan.target.keys() == current.keys()
    for partition, replicas in plan.target.items():
        assert len(replicas) == len(current[partition])
        check_rack_spread(replicas, targets)
    replica_spread, leader_spread = spreads(plan.target, targets)
    if equal_racks(targets):
        assert replica_spread <= 1 and leader_spread <= 1
    # Uneven racks can make either balance unreachable; the plan then says so.
    if replica_spread > 1:
        assert any(w.startswith("replicas per broker") for w in plan.warnings)
    if leader_spread > 1:
        assert any(w.startswith("preferred leaders per broker") for w in plan.warnings)
    # Each move is real and needed: the moves are exactly the difference between start and target.
    needed = sum(len(set(plan.target[p]) - set(r)) for p, r in current.items())
    assert len(plan.moves) == needed
    for move in plan.moves:
        assert move.source in current[move.partition] and move.source not in plan.target[move.partition]
        assert move.destination in plan.target[move.partition]
        assert move.destination not in current[move.partition]
    changes = {c.partition for c in plan.leadership_changes}
    assert changes == {p for p, r in current.items() if r[0] != plan.target[p][0]}
    apply_batches(current, plan, brokers, limit)


def topic_assignment(brokers: Mapping[int, str | None], topics: Mapping[str, tuple[int, int]]) -> dict:
    """Assignment of several topics created one after another, as a cluster would have them."""
    result: dict[TopicPartition, list[int]] = {}
    created = 0
    for topic, (partitions, rf) in topics.items():
        for index, replicas in enumerate(assign_replicas(brokers, partitions, rf, start=created)):
            result[(topic, index)] = replicas
        created += partitions
    return result


# Layout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("racks", "count", "existing", "expected"),
    [
        (["a", "b", "c"], 6, None, {0: "a", 1: "b", 2: "c", 3: "a", 4: "b", 5: "c"}),
        (["z", "y"], 3, None, {0: "z", 1: "y", 2: "z"}),
        (["a", "b", "c"], 5, {0: "a", 1: "b", 2: "c"}, {0: "a", 1: "b", 2: "c", 3: "a", 4: "b"}),
        # After a failure left rack "a" short, new brokers fill it first; ids continue after the highest.
        (["a", "b"], 5, {3: "b", 7: "b", 9: "a"}, {3: "b", 7: "b", 9: "a", 10: "a", 11: "a"}),
        (["a"], 2, {5: "a", 6: "a"}, {5: "a", 6: "a"}),
    ],
)
def test_place_brokers(racks: list[str], count: int, existing: dict | None, expected: dict) -> None:
    assert place_brokers(racks, count, existing) == expected


@pytest.mark.parametrize(
    ("racks", "count", "existing", "message"),
    [
        ([], 3, None, "at least one rack"),
        (["a", "a"], 3, None, "distinct"),
        (["a", "b"], 1, {0: "a", 1: "b"}, "already exist"),
        (["a", "b"], 3, {0: "c"}, "not in"),
    ],
)
def test_place_brokers_refuses(racks: list[str], count: int, existing: dict | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        place_brokers(racks, count, existing)


def test_place_brokers_is_balanced_for_any_count() -> None:
    for count in range(0, 40):
        sizes = Counter(place_brokers(["a", "b", "c", "d"], count).values())
        assert sum(sizes.values()) == count
        assert not sizes or max(sizes.values()) - min(sizes.values(), default=0) <= 1


def test_rack_alternated_matches_kafkas_documented_example() -> None:
    brokers = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated(brokers) == [0, 3, 1, 5, 4, 2]


# Assignment --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("brokers", "partitions", "rf"),
    [
        ({i: "abc"[i % 3] for i in range(6)}, 8, 3),
        ({i: "abc"[i % 3] for i in range(9)}, 100, 2),
        ({i: "ab"[i % 2] for i in range(6)}, 40, 3),  # fewer racks than replicas
        ({i: "abcd"[i % 4] for i in range(8)}, 13, 3),  # more racks than replicas
        ({i: None for i in range(5)}, 17, 3),  # no racks at all
        ({0: "a", 1: "a", 2: "a", 3: "b", 4: "c"}, 30, 3),  # uneven racks
        ({0: "a", 1: "a", 2: "b"}, 7, 3),  # uneven and fewer racks than replicas
        ({i: "r" + str(i % 5) for i in range(5)}, 1, 5),
        ({7: "x"}, 3, 1),
    ],
)
def test_assign_replicas_invariants(brokers: dict, partitions: int, rf: int) -> None:
    result = assign_replicas(brokers, partitions, rf)
    assert len(result) == partitions
    for replicas in result:
        assert len(replicas) == rf
        check_rack_spread(replicas, brokers)
    replica_spread, leader_spread = spreads(result, brokers)
    assert leader_spread <= 1
    if equal_racks(brokers):
        assert replica_spread <= 1
    assert assign_replicas(brokers, partitions, rf) == result


def test_assign_replicas_spreads_followers_like_kafkas_shift() -> None:
    brokers = place_brokers(["a", "b", "c"], 30)
    result = assign_replicas(brokers, 3000, 3)
    followers_of_0 = {b for replicas in result if replicas[0] == 0 for b in replicas[1:]}
    # Broker 0's partitions are followed by most brokers of the other racks, not just a fixed pair.
    assert len(followers_of_0) >= 15


def test_assign_replicas_start_rotates_the_first_leader() -> None:
    brokers = place_brokers(["a", "b", "c"], 6)
    assert assign_replicas(brokers, 1, 3, start=0)[0][0] != assign_replicas(brokers, 1, 3, start=1)[0][0]


@pytest.mark.parametrize(
    ("brokers", "partitions", "rf", "message"),
    [
        ({0: "a", 1: "b"}, 3, 3, "larger than the 2 available brokers"),
        ({0: "a", 1: "b"}, 3, 0, "at least 1"),
        ({0: "a", 1: "b"}, 0, 1, "partition count"),
        ({0: "a", 1: None, 2: "b"}, 3, 2, r"brokers \[1\] have no rack"),
    ],
)
def test_assign_replicas_refuses(brokers: dict, partitions: int, rf: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assign_replicas(brokers, partitions, rf)


def test_assign_replicas_large_cluster() -> None:
    brokers = place_brokers([f"zone-{i}" for i in range(3)], 300)
    result = assign_replicas(brokers, 100_000, 3)
    stats = assignment_stats(result, brokers)
    assert (stats.replica_spread, stats.leader_spread, stats.rack_violations) == (0, 1, 0)


@pytest.mark.parametrize(
    ("brokers", "before", "added", "rf"),
    [
        ({i: "abc"[i % 3] for i in range(6)}, 6, 6, 3),
        ({i: "abc"[i % 3] for i in range(6)}, 5, 1, 3),
        ({i: "ab"[i % 2] for i in range(6)}, 4, 8, 3),  # fewer racks than replicas
        ({i: "abcd"[i % 4] for i in range(8)}, 3, 10, 3),  # more racks than replicas
        ({i: None for i in range(5)}, 2, 13, 3),  # no racks at all
        ({0: "a", 1: "a", 2: "a", 3: "b", 4: "c"}, 7, 9, 3),  # uneven racks
        ({7: "x"}, 1, 2, 1),
    ],
)
def test_add_partitions_keeps_the_topic_rack_aware_and_balanced(
    brokers: dict, before: int, added: int, rf: int
) -> None:
    existing = assign_replicas(brokers, before, rf)

    result = add_partitions(brokers, existing, added, rf)

    assert len(result) == added
    for replicas in result:
        assert len(replicas) == rf
        check_rack_spread(replicas, brokers)
    replica_spread, leader_spread = spreads(existing + result, brokers)
    assert leader_spread <= 1
    if equal_racks(brokers):
        assert replica_spread <= 1
    assert add_partitions(brokers, existing, added, rf) == result


def test_add_partitions_evens_out_a_topic_placed_by_hand() -> None:
    brokers = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}
    # Everything on the first three brokers, as a topic created before brokers 4-6 joined would be.
    existing = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]

    result = add_partitions(brokers, existing, 3, 3)

    # The three new brokers take every new replica: 3 each, as brokers 1-3 hold already.
    assert sorted(b for replicas in result for b in replicas) == [4, 4, 4, 5, 5, 5, 6, 6, 6]
    assert sorted(replicas[0] for replicas in result) == [4, 5, 6]
    for replicas in result:
        check_rack_spread(replicas, brokers)


def test_add_partitions_ignores_replicas_on_brokers_gone_from_the_cluster() -> None:
    brokers = {1: "a", 2: "b", 3: "c"}
    result = add_partitions(brokers, [[9, 1, 2]], 1, 3)
    assert sorted(result[0]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("brokers", "count", "rf", "message"),
    [
        ({0: "a", 1: "b"}, 1, 3, "larger than the 2 available brokers"),
        ({0: "a", 1: "b"}, 1, 0, "at least 1"),
        ({0: "a", 1: "b"}, 0, 1, "to add must be at least 1"),
        ({0: "a", 1: None, 2: "b"}, 1, 2, r"brokers \[1\] have no rack"),
    ],
)
def test_add_partitions_refuses(brokers: dict, count: int, rf: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        add_partitions(brokers, [], count, rf)


# Reassignment ------------------------------------------------------------------------------------

RACKS = ["a", "b", "c"]


def test_scale_out_fills_new_brokers_with_the_minimum_moves() -> None:
    old = place_brokers(RACKS, 6)
    current = topic_assignment(old, {"orders": (24, 3), "audit": (6, 2)})
    brokers = place_brokers(RACKS, 9, old)
    plan = plan_reassignment(current, brokers)
    check_plan(current, plan, brokers, set())
    total = sum(len(r) for r in current.values())
    floor = total // len(brokers)
    assert len(plan.moves) == 3 * floor
    assert {m.destination for m in plan.moves} == {6, 7, 8}
    assert plan.warnings == ()


def test_decommission_moves_exactly_the_drained_replicas() -> None:
    brokers = place_brokers(RACKS, 12)
    current = topic_assignment(brokers, {"orders": (120, 3)})
    remove = {9, 10, 11}
    plan = plan_reassignment(current, brokers, remove=remove)
    check_plan(current, plan, brokers, remove)
    assert len(plan.moves) == sum(b in remove for r in current.values() for b in r)
    assert all(m.source in remove for m in plan.moves)
    # Draining moves come first; no move leaves the rack it must stay in.
    assert all(brokers[m.source] == brokers[m.destination] for m in plan.moves)


def test_replacement_sends_a_dead_brokers_replicas_to_its_replacement() -> None:
    brokers = place_brokers(RACKS, 12)
    current = topic_assignment(brokers, {"orders": (120, 3), "billing": (12, 3)})
    after = {b: r for b, r in brokers.items() if b != 4}
    after[12] = brokers[4]
    plan = plan_reassignment(current, after)
    check_plan(current, plan, after, set())
    lost = [p for p, r in current.items() if 4 in r]
    assert len(plan.moves) == len(lost)
    assert {(m.source, m.destination) for m in plan.moves} == {(4, 12)}
    # The replacement takes over exactly the dead broker's preferred leaderships.
    assert {c.partition for c in plan.leadership_changes} == {p for p in lost if current[p][0] == 4}


def test_replacement_keeping_the_node_id_needs_no_moves() -> None:
    brokers = place_brokers(RACKS, 6)
    current = topic_assignment(brokers, {"orders": (30, 3)})
    plan = plan_reassignment(current, brokers)
    assert plan.is_empty and plan.batches == ()


def test_rebalance_of_a_skewed_cluster() -> None:
    brokers = place_brokers(RACKS, 6)
    # Everything on brokers 0-2 and led by 0, the way a hand-made assignment might look.
    current = {("t", i): [0, 1, 2] for i in range(12)}
    plan = plan_reassignment(current, brokers)
    check_plan(current, plan, brokers, set())
    assert plan.goals[1].before == 12 and plan.goals[1].after <= 1


def test_rack_violations_are_repaired_first() -> None:
    brokers = place_brokers(RACKS, 6)
    current = {("t", 0): [0, 3, 1], ("t", 1): [1, 4, 2], ("t", 2): [2, 5, 0]}
    plan = plan_reassignment(current, brokers)
    check_plan(current, plan, brokers, set())
    assert plan.goals[0] == ("rack-awareness", True, 3, 0)


def test_fewer_racks_than_replicas_warns_and_spreads_best() -> None:
    brokers = {0: "a", 1: "a", 2: "a", 3: "b", 4: "b", 5: "b"}
    current = {("t", i): [0, 1, 2] for i in range(6)}
    plan = plan_reassignment(current, brokers)
    check_plan(current, plan, brokers, set())
    assert any("only 2 racks" in w for w in plan.warnings)


def test_mixed_replication_factors_and_uneven_racks_after_a_failure() -> None:
    brokers = place_brokers(RACKS, 12)
    current = topic_assignment(brokers, {"a": (40, 3), "b": (30, 2), "c": (9, 1), "d": (10, 5)})
    # Rack "a" lost two brokers for good; no replacements.
    remaining = {b: r for b, r in brokers.items() if b not in (0, 3)}
    plan = plan_reassignment(current, remaining)
    check_plan(current, plan, remaining, set())


def test_sizes_prefer_moving_small_partitions() -> None:
    old = place_brokers(RACKS, 3)
    current = topic_assignment(old, {"big": (6, 1), "small": (6, 1)})
    sizes = {p: (1000 if p[0] == "big" else 1) for p in current}
    brokers = place_brokers(RACKS, 6, old)
    plan = plan_reassignment(current, brokers, sizes=sizes)
    check_plan(current, plan, brokers, set())
    assert {m.partition[0] for m in plan.moves} == {"small"}
    assert plan.moved_bytes == len(plan.moves)


def test_capacity_is_respected() -> None:
    brokers = {0: "a", 1: "a", 2: "b", 3: "b"}
    current = {("t", i): [0, 2] for i in range(4)}
    sizes = dict.fromkeys(current, 10)
    plan = plan_reassignment(current, brokers, sizes=sizes, capacities={0: 20, 1: 100, 2: 20, 3: 100})
    check_plan(current, plan, brokers, set())
    bytes_on = Counter(b for r in plan.target.values() for b in r)
    assert bytes_on[0] * 10 <= 20 and bytes_on[2] * 10 <= 20
    with pytest.raises(PlacementError, match="capacity"):
        plan_reassignment(current, brokers, sizes=sizes, capacities={0: 10, 1: 10, 2: 10, 3: 10})


def test_batches_respect_the_per_broker_limit() -> None:
    old = place_brokers(RACKS, 3)
    current = topic_assignment(old, {"t": (60, 3)})
    brokers = place_brokers(RACKS, 6, old)
    plan = plan_reassignment(current, brokers, max_moves_per_broker=4)
    check_plan(current, plan, brokers, set(), limit=4)
    # Each new broker receives 30 replicas, 4 at a time: the fewest batches possible.
    assert len([b for b in plan.batches if b.moves]) == 8


@pytest.mark.parametrize(
    ("current", "brokers", "kwargs", "message"),
    [
        ({("t", 0): [0, 1]}, {0: "a", 1: None}, {}, "have no rack"),
        ({("t", 0): [0, 1]}, {0: "a", 1: "b"}, {"remove": [1]}, "only 1 brokers would remain"),
        ({("t", 0): [0, 0]}, {0: "a", 1: "b"}, {}, "twice"),
        ({("t", 0): []}, {0: "a"}, {}, "no replicas"),
        ({("t", 0): [0]}, {0: "a"}, {"remove": [0]}, "no brokers would be left"),
        ({("t", 0): [0]}, {0: "a"}, {"max_moves_per_broker": 0}, "at least 1"),
        ({("t", 0): [0]}, {0: "a"}, {"sizes": {("t", 0): -1}}, "negative"),
    ],
)
def test_plan_reassignment_refuses(current: dict, brokers: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_reassignment(current, brokers, **kwargs)


def test_plan_is_deterministic_and_leaves_inputs_alone() -> None:
    old = place_brokers(RACKS, 6)
    current = topic_assignment(old, {"t": (50, 3), "u": (20, 2)})
    brokers = place_brokers(RACKS, 9, old)
    frozen = copy.deepcopy((current, brokers))
    first = plan_reassignment(current, brokers, remove=[0])
    assert (current, brokers) == frozen
    assert plan_reassignment(current, brokers, remove=[0]) == first


def test_planning_the_result_again_moves_nothing() -> None:
    old = place_brokers(RACKS, 6)
    current = topic_assignment(old, {"t": (50, 3), "u": (20, 2)})
    brokers = place_brokers(RACKS, 9, old)
    plan = plan_reassignment(current, brokers)
    assert plan_reassignment(plan.target, brokers).is_empty


def test_plan_to_dict_is_plain_data() -> None:
    brokers = place_brokers(RACKS, 4)
    current = {("t", 0): [0, 1, 2]}
    data = plan_reassignment(current, brokers, remove=[0]).to_dict()
    assert data["moves"] == [["t", 0, 0, 3, 0]]
    assert data["target"] == [["t", 0, [3, 1, 2]]]


def test_plan_does_not_depend_on_mapping_order() -> None:
    old = place_brokers(RACKS, 6)
    current = topic_assignment(old, {"t": (40, 3), "u": (9, 1)})
    brokers = place_brokers(RACKS, 10, old)
    shuffled_brokers = dict(reversed(list(brokers.items())))
    shuffled_current = dict(reversed(list(current.items())))
    first = plan_reassignment(current, brokers, remove=[2])
    assert plan_reassignment(shuffled_current, shuffled_brokers, remove=[2]) == first
    assert assign_replicas(shuffled_brokers, 20, 3) == assign_replicas(brokers, 20, 3)
