"""The simulated multi-broker cluster: a stand-in for the multi-broker Apache Kafka that cannot run here.

These tests pin down the behaviour workflows and monitoring rely on: failures lead to under-replicated,
under-min-ISR and offline partitions; moves take simulated time under a throttle and never shrink the
replica set; returning brokers rejoin the ISR after catching up.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.kafka_admin.base import (
    ClusterState,
    KafkaAdminError,
    KafkaUnavailableError,
    PartitionState,
    ReassignmentProgress,
    TopicAlreadyExistsError,
)
from tests.support.simulator import SimulatedKafkaCluster

MIB = 2**20


def partition_of(state: ClusterState, topic: str, index: int) -> PartitionState:
    (found,) = (p for t in state.topics if t.name == topic for p in t.partitions if p.partition == index)
    return found


def under_replicated(state: ClusterState) -> set[tuple[str, int]]:
    return {
        (p.topic, p.partition)
        for t in state.topics
        for p in t.partitions
        if p.leader is not None and len(p.isr) < len(p.replicas)
    }


def under_min_isr(state: ClusterState) -> set[tuple[str, int]]:
    return {
        (p.topic, p.partition)
        for t in state.topics
        for p in t.partitions
        if p.leader is not None and len(p.isr) < t.min_insync_replicas
    }


def offline(state: ClusterState) -> set[tuple[str, int]]:
    return {(p.topic, p.partition) for t in state.topics for p in t.partitions if p.leader is None}


@pytest.fixture
def cluster() -> SimulatedKafkaCluster:
    """Six brokers over three racks, one topic of six partitions with three replicas each."""
    sim = SimulatedKafkaCluster.with_brokers(6, racks=3, seed=7)
    sim.create_topic("orders", partitions=6, replication_factor=3, config={"min.insync.replicas": "2"})
    return sim


# -- topics and placement -------------------------------------------------------------------------


def test_new_topic_places_each_partition_in_distinct_racks_and_spreads_leaders(
    cluster: SimulatedKafkaCluster,
) -> None:
    state = cluster.describe_cluster()
    racks = {b.node_id: b.rack for b in state.brokers}
    (topic,) = state.topics

    assert topic.min_insync_replicas == 2
    for p in topic.partitions:
        assert len({racks[r] for r in p.replicas}) == 3
        assert p.isr == p.replicas and p.leader == p.replicas[0]
    assert sorted(p.leader for p in topic.partitions) == [1, 2, 3, 4, 5, 6]
    assert not under_replicated(state) and not offline(state)


def test_topic_creation_errors_match_kafka(cluster: SimulatedKafkaCluster) -> None:
    with pytest.raises(TopicAlreadyExistsError):
        cluster.create_topic("orders", partitions=1, replication_factor=1)
    with pytest.raises(KafkaAdminError, match="larger than the 6 available brokers"):
        cluster.create_topic("wide", partitions=1, replication_factor=7)
    with pytest.raises(KafkaAdminError, match=r"min\.insync\.replicas"):
        cluster.create_topic("bad", partitions=1, replication_factor=1, config={"min.insync.replicas": "x"})


def test_same_seed_and_actions_give_the_same_cluster() -> None:
    def scenario() -> tuple[ClusterState, list[object]]:
        sim = SimulatedKafkaCluster.with_brokers(9, racks=3, seed=42)
        for name in ("a", "b", "c"):
            sim.create_topic(name, partitions=12, replication_factor=3)
        sim.generate_load(groups=5, max_records_per_partition=1000)
        sim.fail_broker(4)
        sim.advance(30)
        return sim.describe_cluster(), sim.list_consumer_groups()

    assert scenario() == scenario()


# -- failures -------------------------------------------------------------------------------------


def test_failing_brokers_leads_to_urp_then_under_min_isr_then_offline() -> None:
    sim = SimulatedKafkaCluster.with_brokers(4, racks=2, seed=0)
    sim.create_topic("ledger", partitions=4, replication_factor=3, config={"min.insync.replicas": "2"})
    target = partition_of(sim.describe_cluster(), "ledger", 0)
    first, second, third = target.replicas
    key = ("ledger", 0)

    sim.fail_broker(first)
    state = sim.describe_cluster()
    after_one = partition_of(state, "ledger", 0)
    assert first not in {b.node_id for b in state.brokers}
    assert after_one.isr == (second, third) and after_one.leader == second
    assert after_one.replicas == target.replicas  # failure changes the ISR, never the assignment
    assert key in under_replicated(state) and key not in under_min_isr(state)

    sim.fail_broker(second)
    state = sim.describe_cluster()
    assert partition_of(state, "ledger", 0).leader == third
    assert key in under_min_isr(state)

    sim.fail_broker(third)
    state = sim.describe_cluster()
    gone = partition_of(state, "ledger", 0)
    assert gone.leader is None and gone.isr == ()
    assert key in offline(state)
    assert key not in sim.end_offsets([key])
    with pytest.raises(KafkaUnavailableError, match="offline"):
        sim.produce("ledger", 0)


def test_offline_partition_returns_only_with_its_last_in_sync_replica() -> None:
    sim = SimulatedKafkaCluster.with_brokers(3, racks=3, seed=0)
    sim.create_topic("t", partitions=1, replication_factor=2)
    first, last = partition_of(sim.describe_cluster(), "t", 0).replicas
    sim.produce("t", 0, 10)
    sim.fail_broker(first)
    sim.produce("t", 0, 5)  # only `last` has these
    sim.fail_broker(last)

    sim.restore_broker(first)
    assert partition_of(sim.describe_cluster(), "t", 0).leader is None  # `first` lacks records

    sim.restore_broker(last)
    back = partition_of(sim.describe_cluster(), "t", 0)
    assert back.leader == last and back.isr == (last,)
    assert sim.end_offsets([("t", 0)]) == {("t", 0): 15}

    sim.advance(sim.rejoin_delay_seconds)
    assert set(partition_of(sim.describe_cluster(), "t", 0).isr) == {first, last}


def test_restored_broker_rejoins_the_isr_after_catching_up(cluster: SimulatedKafkaCluster) -> None:
    cluster.fail_broker(2)
    for p in range(6):
        cluster.produce("orders", p, 50_000)  # about 50 MiB each, missed by broker 2
    cluster.restore_broker(2)

    state = cluster.describe_cluster()
    assert 2 in {b.node_id for b in state.brokers}
    lagging = {(p.topic, p.partition) for p in state.topics[0].partitions if 2 in p.replicas}
    assert lagging and under_replicated(state) == lagging

    cluster.advance(cluster.rejoin_delay_seconds - 1)
    assert under_replicated(cluster.describe_cluster()) == lagging  # copied, but not yet allowed back

    cluster.advance(1)
    assert not under_replicated(cluster.describe_cluster())


def test_restart_moves_leadership_away_until_preferred_leaders_are_elected(
    cluster: SimulatedKafkaCluster,
) -> None:
    led_by_3 = [p.partition for p in cluster.describe_cluster().topics[0].partitions if p.leader == 3]
    cluster.restart_broker(3)
    keys = [("orders", p) for p in led_by_3]

    assert all(partition_of(cluster.describe_cluster(), *k).leader != 3 for k in keys)
    with pytest.raises(KafkaUnavailableError, match="preferred leader not available"):
        cluster.elect_preferred_leaders(keys)  # broker 3 is not back in sync yet

    cluster.advance(cluster.rejoin_delay_seconds)
    cluster.elect_preferred_leaders(keys)
    assert all(partition_of(cluster.describe_cluster(), *k).leader == 3 for k in keys)


def test_controller_is_the_lowest_alive_broker_unless_pinned(cluster: SimulatedKafkaCluster) -> None:
    assert cluster.describe_cluster().controller_id == 1
    cluster.fail_broker(1)
    assert cluster.describe_cluster().controller_id == 2
    cluster.set_controller(5)
    assert cluster.describe_cluster().controller_id == 5
    cluster.fail_broker(5)
    assert cluster.describe_cluster().controller_id == 2


# -- reassignments --------------------------------------------------------------------------------


def test_throttled_move_completes_only_after_enough_time_and_never_drops_replicas() -> None:
    sim = SimulatedKafkaCluster.with_brokers(4, racks=1, seed=0, record_bytes=1024)
    sim.create_topic("big", partitions=1, replication_factor=3)
    before = partition_of(sim.describe_cluster(), "big", 0)
    sim.produce("big", 0, 100 * 1024)  # 100 MiB to copy
    leaving = before.replicas[0]  # the leader leaves, so leadership must move too
    spare = next(b for b in (1, 2, 3, 4) if b not in before.replicas)
    target = [r for r in before.replicas if r != leaving] + [spare]

    sim.set_replication_throttle([1, 2, 3, 4], 10 * MIB)
    sim.alter_partition_reassignments({("big", 0): target})
    assert sim.list_partition_reassignments() == {
        ("big", 0): ReassignmentProgress(replicas=(*target, leaving), adding=(spare,), removing=(leaving,))
    }

    seconds = 0
    while sim.list_partition_reassignments():
        current = partition_of(sim.describe_cluster(), "big", 0)
        assert len(current.replicas) >= 3 and len(current.isr) >= 3
        assert current.leader == leaving  # nothing changes for clients until the move is done
        sim.advance(1)
        seconds += 1
        assert seconds <= 60, "the move never finished"

    assert seconds == 10  # 100 MiB at 10 MiB/s
    done = partition_of(sim.describe_cluster(), "big", 0)
    assert done.replicas == tuple(target) and done.isr == tuple(target)
    assert done.leader == target[0]
    assert not sim.list_partition_reassignments()


def test_throttle_only_slows_moves_and_can_be_cleared() -> None:
    def seconds_to_move(throttle: int | None, clear_after: int | None = None) -> int:
        sim = SimulatedKafkaCluster.with_brokers(3, racks=1, seed=0, replication_bytes_per_second=50 * MIB)
        sim.create_topic("t", partitions=1, replication_factor=1)
        sim.produce("t", 0, 100 * 1024)
        if throttle is not None:
            sim.set_replication_throttle([1, 2, 3], throttle)
        source = partition_of(sim.describe_cluster(), "t", 0).replicas[0]
        destination = next(b for b in (1, 2, 3) if b != source)
        sim.alter_partition_reassignments({("t", 0): [destination]})
        elapsed = 0
        while sim.list_partition_reassignments():
            if elapsed == clear_after:
                sim.clear_replication_throttle([1, 2, 3])
                assert sim.throttles == {}
            sim.advance(1)
            elapsed += 1
        return elapsed

    assert seconds_to_move(None) == 2  # network bound: 100 MiB at 50 MiB/s
    assert seconds_to_move(5 * MIB) == 20
    assert seconds_to_move(5 * MIB, clear_after=4) == 6  # 20 MiB throttled, then 80 MiB at full speed


def test_one_long_step_ends_where_many_short_steps_do() -> None:
    def run(steps: list[float]) -> ClusterState:
        sim = SimulatedKafkaCluster.with_brokers(6, racks=3, seed=3)
        sim.create_topic("t", partitions=12, replication_factor=3)
        for p in range(12):
            sim.produce("t", p, 20_000)
        sim.set_replication_throttle(range(1, 7), 4 * MIB)
        # Every replica moves to the next broker: twelve partitions compete for bandwidth.
        sim.alter_partition_reassignments(
            {
                (p.topic, p.partition): [r % 6 + 1 for r in p.replicas]
                for p in sim.describe_cluster().topics[0].partitions
            }
        )
        for seconds in steps:
            sim.advance(seconds)
        return sim.describe_cluster()

    assert run([45.0]) == run([1.5] * 30)


def test_move_to_a_stopped_broker_waits_for_it(cluster: SimulatedKafkaCluster) -> None:
    current = partition_of(cluster.describe_cluster(), "orders", 0).replicas
    spare = next(b for b in range(1, 7) if b not in current)
    cluster.produce("orders", 0, 1000)
    cluster.fail_broker(spare)
    cluster.alter_partition_reassignments({("orders", 0): [*current[:2], spare]})

    cluster.advance(3600)
    assert ("orders", 0) in cluster.list_partition_reassignments()

    cluster.restore_broker(spare)
    cluster.advance(cluster.rejoin_delay_seconds)
    assert partition_of(cluster.describe_cluster(), "orders", 0).replicas == (*current[:2], spare)


def test_cancelling_a_move_restores_the_original_replicas(cluster: SimulatedKafkaCluster) -> None:
    original = partition_of(cluster.describe_cluster(), "orders", 1).replicas
    spare = next(b for b in range(1, 7) if b not in original)
    cluster.produce("orders", 1, 10_000)
    cluster.alter_partition_reassignments({("orders", 1): [spare, *original[1:]]})
    assert len(partition_of(cluster.describe_cluster(), "orders", 1).replicas) == 4

    cluster.alter_partition_reassignments({("orders", 1): None})
    cluster.alter_partition_reassignments({("orders", 1): None})  # nothing pending: no error

    restored = partition_of(cluster.describe_cluster(), "orders", 1)
    assert restored.replicas == original and restored.isr == original
    assert cluster.list_partition_reassignments() == {}


def test_invalid_reassignments_are_rejected_whole(cluster: SimulatedKafkaCluster) -> None:
    before = cluster.describe_cluster()
    good = {("orders", 0): [1, 2, 3]}
    for bad, message in (
        ({("orders", 1): [1, 1, 2]}, "distinct"),
        ({("orders", 1): [1, 2, 99]}, "unknown brokers"),
        ({("missing", 0): [1, 2, 3]}, "no such partition"),
    ):
        with pytest.raises(KafkaAdminError, match=message):
            cluster.alter_partition_reassignments({**good, **bad})
    assert cluster.describe_cluster() == before


def test_a_drained_broker_can_be_removed_and_a_new_one_added(cluster: SimulatedKafkaCluster) -> None:
    with pytest.raises(ValueError, match="still holds"):
        cluster.remove_broker(6)
    cluster.add_broker(7, "rack-2")
    moves = {
        (p.topic, p.partition): [7 if r == 6 else r for r in p.replicas]
        for p in cluster.describe_cluster().topics[0].partitions
        if 6 in p.replicas
    }
    cluster.alter_partition_reassignments(moves)
    cluster.advance(1)

    cluster.remove_broker(6)
    state = cluster.describe_cluster()
    assert [b.node_id for b in state.brokers] == [1, 2, 3, 4, 5, 7]
    assert all(6 not in p.replicas for p in state.topics[0].partitions)


def test_throttles_need_a_running_known_broker(cluster: SimulatedKafkaCluster) -> None:
    with pytest.raises(KafkaAdminError, match="unknown brokers"):
        cluster.set_replication_throttle([1, 42], 1000)
    cluster.fail_broker(2)
    with pytest.raises(KafkaUnavailableError, match="not running"):
        cluster.set_replication_throttle([1, 2], 1000)
    with pytest.raises(KafkaAdminError, match="positive"):
        cluster.set_replication_throttle([1], 0)


# -- consumer groups, reachability, snapshots -----------------------------------------------------


def test_groups_commits_and_end_offsets_give_lag(cluster: SimulatedKafkaCluster) -> None:
    cluster.produce("orders", 0, 100)
    cluster.produce("orders", 1, 40)
    cluster.commit("billing", "orders", 0, 70)
    cluster.commit("billing", "orders", 1, 40)
    cluster.set_group_state("billing", "Stable", members=2)
    cluster.commit("audit", "orders", 0, 5)

    groups = {g.group_id: g for g in cluster.list_consumer_groups()}
    ends = cluster.end_offsets([("orders", 0), ("orders", 1)])

    assert (groups["billing"].state, groups["billing"].members) == ("Stable", 2)
    assert (groups["audit"].state, groups["audit"].members) == ("Empty", 0)
    assert {tp: ends[tp] - o for tp, o in groups["billing"].committed.items()} == {
        ("orders", 0): 30,
        ("orders", 1): 0,
    }
    with pytest.raises(ValueError, match="unknown group state"):
        cluster.set_group_state("billing", "Rebalancing")


def test_snapshots_are_immutable_and_reused_until_something_changes(cluster: SimulatedKafkaCluster) -> None:
    cluster.create_topic("quiet", partitions=1, replication_factor=2)
    cluster.commit("g", "orders", 0, 1)
    first = cluster.describe_cluster()
    groups = cluster.list_consumer_groups()

    cluster.produce("orders", 0, 10)  # offsets are not part of the cluster snapshot
    assert cluster.describe_cluster() is first

    cluster.commit("g", "orders", 0, 5)
    assert groups[0].committed == {("orders", 0): 1}
    with pytest.raises(TypeError):
        groups[0].committed[("orders", 0)] = 9  # type: ignore[index]

    quiet_before = next(t for t in first.topics if t.name == "quiet")
    elsewhere = next(b.node_id for b in first.brokers if b.node_id not in quiet_before.partitions[0].replicas)
    cluster.fail_broker(elsewhere)
    second = cluster.describe_cluster()
    assert second is not first
    # The topic the failure did not touch is handed out again, not rebuilt.
    assert next(t for t in second.topics if t.name == "quiet") is quiet_before


def test_unreachable_cluster_fails_every_admin_call_but_keeps_running(cluster: SimulatedKafkaCluster) -> None:
    cluster.set_reachable(False)
    calls = [
        cluster.describe_cluster,
        lambda: cluster.create_topic("x", 1, 1),
        cluster.list_consumer_groups,
        lambda: cluster.end_offsets([("orders", 0)]),
        lambda: cluster.alter_partition_reassignments({("orders", 0): [1, 2, 3]}),
        cluster.list_partition_reassignments,
        lambda: cluster.set_replication_throttle([1], 1000),
        lambda: cluster.clear_replication_throttle([1]),
        lambda: cluster.elect_preferred_leaders([("orders", 0)]),
    ]
    for call in calls:
        with pytest.raises(KafkaUnavailableError, match="unreachable"):
            call()
    cluster.close()

    cluster.produce("orders", 0, 3)  # the cluster itself carries on
    cluster.fail_broker(1)
    cluster.advance(5)
    cluster.set_reachable(True)
    assert cluster.end_offsets([("orders", 0)]) == {("orders", 0): 3}
    assert 1 not in {b.node_id for b in cluster.describe_cluster().brokers}


def test_a_cluster_with_no_running_broker_is_unavailable() -> None:
    sim = SimulatedKafkaCluster([(1, None)])
    sim.fail_broker(1)
    with pytest.raises(KafkaUnavailableError, match="no broker running"):
        sim.describe_cluster()


def test_benchmark_sized_cluster_builds_and_moves() -> None:
    """A scale smoke test (no timing): 20 brokers, 10 topics of 100 partitions, 50 groups."""
    sim = SimulatedKafkaCluster.with_brokers(20, racks=3, seed=11)
    for number in range(10):
        sim.create_topic(f"topic-{number}", partitions=100, replication_factor=3)
    sim.generate_load(groups=50, max_records_per_partition=10_000)

    state = sim.describe_cluster()
    assert sum(len(t.partitions) for t in state.topics) == 1000
    assert len(sim.list_consumer_groups()) == 50
    sim.fail_broker(20)
    sim.restore_broker(20)
    sim.advance(600)
    assert not under_replicated(sim.describe_cluster())


# -- invariants under arbitrary events ------------------------------------------------------------

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("fail"), st.integers(1, 5)),
        st.tuples(st.just("restore"), st.integers(1, 5)),
        st.tuples(st.just("restart"), st.integers(1, 5)),
        st.tuples(st.just("advance"), st.floats(0, 30)),
        st.tuples(st.just("produce"), st.integers(0, 3)),
        st.tuples(st.just("move"), st.permutations([1, 2, 3, 4, 5])),
        st.tuples(st.just("cancel"), st.integers(0, 3)),
        st.tuples(st.just("throttle"), st.integers(1, 5)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events=EVENTS)
def test_replication_invariants_hold_whatever_happens(events: list[tuple[str, object]]) -> None:
    sim = SimulatedKafkaCluster.with_brokers(5, racks=3, seed=1)
    sim.create_topic("t", partitions=4, replication_factor=3)
    pending_before: dict[tuple[str, int], ReassignmentProgress] = {}
    for step, (kind, arg) in enumerate(events):
        try:
            if kind == "fail":
                sim.fail_broker(arg)  # type: ignore[arg-type]
            elif kind == "restore":
                sim.restore_broker(arg)  # type: ignore[arg-type]
            elif kind == "restart":
                sim.restart_broker(arg)  # type: ignore[arg-type]
            elif kind == "advance":
                sim.advance(arg)  # type: ignore[arg-type]
            elif kind == "produce":
                sim.produce("t", arg, 5000)  # type: ignore[arg-type]
            elif kind == "move":
                sim.alter_partition_reassignments({("t", step % 4): list(arg)[:3]})  # type: ignore[call-overload]
            elif kind == "cancel":
                sim.alter_partition_reassignments({("t", arg): None})  # type: ignore[dict-item]
            elif kind == "throttle":
                sim.set_replication_throttle([arg], 1 * MIB)  # type: ignore[list-item]
        except KafkaUnavailableError:
            pass  # offline partition, stopped broker, or no broker running at all
        try:
            state = sim.describe_cluster()
            pending = sim.list_partition_reassignments()
        except KafkaUnavailableError:
            continue
        alive = {b.node_id for b in state.brokers}
        for p in state.topics[0].partitions:
            assert set(p.isr) <= set(p.replicas)
            assert set(p.isr) <= alive
            assert (p.leader is None) == (not p.isr)
            assert p.leader is None or p.leader in p.isr
            assert len(p.replicas) >= 3
            before = pending_before.get(("t", p.partition))
            if before is not None and kind not in ("move", "cancel"):
                # A move keeps its whole replica set until it completes, then keeps exactly the target.
                after = pending.get(("t", p.partition))
                if after is not None:
                    assert after == before and p.replicas == before.replicas
                else:
                    assert p.replicas == tuple(r for r in before.replicas if r not in before.removing)
        pending_before = pending


def test_a_removed_broker_blocks_finalizing_until_it_is_unregistered() -> None:
    sim = SimulatedKafkaCluster.with_brokers(4)
    sim.remove_broker(4)

    with pytest.raises(KafkaAdminError, match="broker 4 is registered"):
        sim.update_features("4.4.0")
    sim.unregister_broker(4)
    sim.unregister_broker(4)  # not registered any more: nothing to do

    assert sim.update_features("4.4.0")["metadata.version"] == 33
