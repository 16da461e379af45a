"""Property tests: every placement invariant over random clusters, topics and scenarios."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from provisioning.placement import add_partitions, assign_replicas, place_brokers, plan_reassignment
from tests.provisioning.test_placement import (
    check_plan,
    check_rack_spread,
    equal_racks,
    spreads,
    topic_assignment,
)

Brokers = dict[int, str | None]


@st.composite
def clusters(draw: st.DrawFn, max_brokers: int = 500) -> Brokers:
    """Brokers with racks: 1-12 racks of equal or uneven size, sparse ids, or no racks at all."""
    if draw(st.integers(0, 9)) == 0:
        count = draw(st.integers(1, 60))
        first = draw(st.integers(0, 1000))
        return {first + i: None for i in range(count)}
    racks = draw(st.integers(1, 12))
    per_rack = max_brokers // racks
    if draw(st.booleans()):
        sizes = [draw(st.integers(1, min(per_rack, 40)))] * racks
        if draw(st.integers(0, 9)) == 0:
            sizes = [per_rack] * racks
    else:
        sizes = draw(st.lists(st.integers(1, min(per_rack, 40)), min_size=racks, max_size=racks))
    names = [f"zone-{i}" for i in draw(st.permutations(range(racks)))]
    ids = draw(st.permutations(range(sum(sizes) * 2)))[: sum(sizes)]
    brokers: Brokers = {}
    position = 0
    for name, size in zip(names, sizes, strict=True):
        for _ in range(size):
            brokers[ids[position]] = name
            position += 1
    return brokers


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    brokers=clusters(),
    rf=st.integers(1, 5),
    partitions=st.integers(1, 10_000),
    start=st.none() | st.integers(0, 10_000),
)
def test_assign_replicas_invariants(brokers: Brokers, rf: int, partitions: int, start: int | None) -> None:
    assume(rf <= len(brokers))
    result = assign_replicas(brokers, partitions, rf, start=start)
    assert len(result) == partitions
    for replicas in result:
        assert len(replicas) == rf
        check_rack_spread(replicas, brokers)
    replica_spread, leader_spread = spreads(result, brokers)
    assert leader_spread <= 1
    if equal_racks(brokers):
        assert replica_spread <= 1
    assert assign_replicas(brokers, partitions, rf, start=start) == result


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    brokers=clusters(max_brokers=120),
    rf=st.integers(1, 5),
    before=st.integers(1, 300),
    added=st.integers(1, 300),
    start=st.integers(0, 500),
)
def test_add_partitions_continues_a_topic_laid_out_by_assign_replicas(
    brokers: Brokers, rf: int, before: int, added: int, start: int
) -> None:
    """Grown in steps, a topic is laid out as if created with all its partitions at once (racks of equal
    size; uneven ones are optimized over all partitions, see the next test)."""
    assume(rf <= len(brokers) and equal_racks(brokers))
    existing = assign_replicas(brokers, before, rf, start=start)

    result = add_partitions(brokers, existing, added, rf)

    assert existing + result == assign_replicas(brokers, before + added, rf, start=start)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    racks=st.integers(1, 5),
    per_rack_before=st.integers(1, 4),
    per_rack_added=st.integers(0, 4),
    rf=st.integers(1, 5),
    before=st.integers(1, 200),
    added=st.integers(1, 200),
    start=st.integers(0, 20),
)
def test_add_partitions_evens_out_a_topic_laid_out_over_fewer_brokers(
    racks: int, per_rack_before: int, per_rack_added: int, rf: int, before: int, added: int, start: int
) -> None:
    """A topic created before a scale-out: new partitions are rack-aware, and leaders and replicas go
    where there are fewest, so neither spread grows (replicas may differ by two where racks force it)."""
    names = [f"zone-{i}" for i in range(racks)]
    old = place_brokers(names, racks * per_rack_before)
    brokers = place_brokers(names, racks * (per_rack_before + per_rack_added), old)
    assume(rf <= len(old))
    existing = assign_replicas(old, before, rf, start=start)
    initial_replicas, initial_leaders = spreads(existing, brokers)

    result = add_partitions(brokers, existing, added, rf)

    for replicas in result:
        check_rack_spread(replicas, brokers)
    replica_spread, leader_spread = spreads(existing + result, brokers)
    assert leader_spread <= max(initial_leaders, 1)
    assert replica_spread <= max(initial_replicas, 2)


@st.composite
def scenarios(
    draw: st.DrawFn, max_brokers: int = 500, max_partitions: int = 10_000
) -> tuple[dict, Brokers, set[int], dict | None, int]:
    """A current assignment and what happens to the cluster: growth, removal, failure, replacement."""
    brokers = draw(clusters(max_brokers=max_brokers))
    racks = sorted({r for r in brokers.values() if r is not None})
    kind = draw(st.sampled_from(["scale-out", "decommission", "dead", "replace", "rebalance"]))
    topic_count = draw(st.integers(1, 4))
    budget = draw(st.integers(1, max_partitions))
    topics = {
        f"topic-{i}": (draw(st.integers(1, max(1, budget // topic_count))), draw(st.integers(1, 5)))
        for i in range(topic_count)
    }
    highest_rf = max(rf for _, rf in topics.values())
    assume(highest_rf <= len(brokers))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if draw(st.integers(0, 3)) == 0:
        # A hand-made assignment that ignores racks and balance entirely.
        ids = sorted(brokers)
        current = {
            (topic, p): rng.sample(ids[: max(rf, len(ids) // 2)], rf)
            for topic, (count, rf) in topics.items()
            for p in range(count)
        }
    else:
        current = topic_assignment(brokers, topics)

    target: Brokers = dict(brokers)
    remove: set[int] = set()
    spare = len(brokers) - highest_rf
    if kind == "scale-out":
        added = draw(st.integers(1, 40))
        next_id = max(brokers) + 1
        for i in range(added):
            target[next_id + i] = rng.choice(racks) if racks else None
    elif kind in ("decommission", "dead", "replace") and spare > 0:
        gone = set(rng.sample(sorted(brokers), draw(st.integers(1, min(spare, 6)))))
        if kind == "decommission":
            remove = gone
        else:
            next_id = max(brokers) + 1
            for i, broker_id in enumerate(sorted(gone)):
                rack = target.pop(broker_id)
                if kind == "replace":
                    target[next_id + i] = rack
    sizes = None
    if draw(st.booleans()):
        sizes = {p: rng.randrange(0, 10**9) for p in current}
    limit = draw(st.integers(1, 10))
    return current, target, remove, sizes, limit


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_plan_reassignment_invariants(scenario: tuple[dict, Brokers, set[int], dict | None, int]) -> None:
    current, brokers, remove, sizes, limit = scenario
    plan = plan_reassignment(current, brokers, remove=remove, sizes=sizes, max_moves_per_broker=limit)
    check_plan(current, plan, brokers, remove, limit=limit)
    for result in plan.goals:
        if result.hard:
            assert result.after == 0
    # Partitions that had to leave a broker moved exactly those replicas, no more.
    gone = {b for r in current.values() for b in r if b not in brokers or b in remove}
    assert sum(b in gone for r in current.values() for b in r) <= len(plan.moves)
    # Planning a balanced result again finds nothing left to do.
    if all(r.after <= 1 for r in plan.goals):
        targets = {b: r for b, r in brokers.items() if b not in remove}
        assert plan_reassignment(plan.target, targets, sizes=sizes).is_empty


def test_large_cluster_scale_out_and_decommission() -> None:
    racks = [f"zone-{i}" for i in range(12)]
    old = place_brokers(racks, 360)
    topics = {f"t{i}": (1000, 1 + i % 5) for i in range(10)}
    current = topic_assignment(old, topics)
    brokers = place_brokers(racks, 500, old)
    plan = plan_reassignment(current, brokers)
    check_plan(current, plan, brokers, set())
    total = sum(len(r) for r in current.values())
    floor = total // len(brokers)
    assert len(plan.moves) <= 1.05 * floor * (len(brokers) - len(old))

    remove = set(range(488, 500))
    drained = plan_reassignment(plan.target, brokers, remove=remove)
    check_plan(plan.target, drained, brokers, remove)
    assert len(drained.moves) == sum(b in remove for r in plan.target.values() for b in r)
    assert Counter(brokers[m.source] for m in drained.moves) == Counter(
        brokers[m.destination] for m in drained.moves
    )
