from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.health import (
    AT_MIN_ISR,
    BROKER_DOWN,
    CONTROLLER_LAGGING,
    CONTROLLER_MISSING,
    OFFLINE_PARTITIONS,
    UNDER_MIN_ISR,
    UNDER_REPLICATED,
    assess_cluster,
    classify_partition,
)
from provisioning.kafka_admin.base import (
    BrokerInfo,
    ClusterState,
    PartitionState,
    QuorumMember,
    QuorumState,
    TopicState,
)


def brokers(*ids: int) -> tuple[BrokerInfo, ...]:
    return tuple(BrokerInfo(i, f"10.0.0.{i}", 9092) for i in ids)


def p(
    topic: str, partition: int, leader: int | None, replicas: tuple[int, ...], isr: tuple[int, ...]
) -> PartitionState:
    return PartitionState(topic, partition, leader, replicas, isr)


def cluster(
    *topics: TopicState, live: tuple[int, ...] = (1, 2, 3), controller: int | None = 1
) -> ClusterState:
    return ClusterState("c-1", controller, brokers(*live), topics)


HEALTHY = TopicState("orders", (p("orders", 0, 1, (1, 2, 3), (1, 2, 3)),), min_insync_replicas=2)


@pytest.mark.parametrize(
    ("partition", "min_isr", "expected"),
    [
        pytest.param(p("t", 0, 1, (1, 2, 3), (1, 2, 3)), 2, (False, False, False, False), id="healthy"),
        pytest.param(p("t", 0, 1, (1, 2, 3), (1, 2)), 2, (False, True, False, True), id="urp-at-min"),
        pytest.param(p("t", 0, 1, (1, 2, 3), (1,)), 2, (False, True, True, False), id="under-min"),
        pytest.param(p("t", 0, None, (1, 2, 3), (1,)), 2, (True, False, False, False), id="no-leader"),
        pytest.param(p("t", 0, 9, (9, 2, 3), (9, 2, 3)), 2, (True, False, False, False), id="dead-leader"),
        pytest.param(p("t", 0, 1, (1,), (1,)), 1, (False, False, False, False), id="rf-equals-min"),
        pytest.param(p("t", 0, 1, (1, 2), (1, 2, 7)), 2, (False, False, False, False), id="stray-isr"),
    ],
)
def test_classify_partition(
    partition: PartitionState, min_isr: int, expected: tuple[bool, bool, bool, bool]
) -> None:
    health = classify_partition(partition, min_isr, {1, 2, 3})
    assert (health.offline, health.under_replicated, health.under_min_isr, health.at_min_isr) == expected


def test_healthy_cluster_has_no_findings() -> None:
    report = assess_cluster(cluster(HEALTHY), [1, 2, 3])
    assert report.healthy
    assert report.totals.partitions == 1
    assert report.active_controllers == 1
    assert report.brokers[2].partitions == 1 and report.brokers[1].leaders == 1


def test_broker_down_counts_per_cluster_topic_and_broker() -> None:
    # Broker 3 died: it dropped out of every ISR; "payments" (min ISR 3) is now under min ISR,
    # "orders" (min ISR 2) sits at it, and "logs" (RF 1 on broker 3) is offline.
    state = cluster(
        TopicState(
            "orders",
            (p("orders", 0, 1, (1, 2, 3), (1, 2)), p("orders", 1, 2, (2, 3, 1), (2, 1))),
            min_insync_replicas=2,
        ),
        TopicState("payments", (p("payments", 0, 1, (3, 1, 2), (1, 2)),), min_insync_replicas=3),
        TopicState("logs", (p("logs", 0, None, (3,), (3,)),)),
        live=(1, 2),
    )
    report = assess_cluster(state, [1, 2, 3])

    assert report.down_brokers == {3}
    assert report.totals.partitions == 4
    assert report.totals.offline == 1
    assert report.totals.under_replicated == 3
    assert report.totals.under_min_isr == 1
    assert report.totals.at_min_isr == 2
    assert report.topics["orders"].at_min_isr == 2
    assert report.topics["payments"].under_min_isr == 1
    assert report.topics["logs"].offline == 1
    assert report.brokers[3].out_of_sync_replicas == 3
    assert report.brokers[3].offline == 1
    assert report.brokers[1].out_of_sync_replicas == 0
    assert report.brokers[3].leaders == 0

    kinds = [(f.kind, f.subject, f.value) for f in report.findings]
    assert kinds == [
        (BROKER_DOWN, "broker:3", 1),
        (OFFLINE_PARTITIONS, "topic:logs", 1),
        (UNDER_MIN_ISR, "topic:payments", 1),
        (AT_MIN_ISR, "topic:orders", 2),
        (UNDER_REPLICATED, "broker:3", 3),
    ]
    down = report.findings_of(BROKER_DOWN)[0]
    assert down.summary == (
        "Broker 3 is expected but not registered with the cluster; it hosts 4 partition replicas."
    )
    urp = report.findings_of(UNDER_REPLICATED)[0]
    assert urp.brokers == {3}
    assert urp.summary.startswith("Broker 3 (down) is out of sync on 3 partitions")
    offline = report.findings_of(OFFLINE_PARTITIONS)[0]
    assert offline.summary == (
        "Topic logs has 1 partition without a live leader: nothing can be written or read there."
    )
    assert offline.partitions == (("logs", 0),)
    assert offline.brokers == {3}
    assert report.findings_of(AT_MIN_ISR)[0].brokers == {3}


def test_missing_controller_and_unexpected_broker() -> None:
    report = assess_cluster(cluster(HEALTHY, live=(1, 2, 3, 4), controller=None), [1, 2, 3])
    assert report.active_controllers == 0
    assert [f.kind for f in report.findings] == [CONTROLLER_MISSING]
    assert report.unexpected_brokers == {4}
    assert 4 in report.brokers


def test_lagging_follower_on_live_broker() -> None:
    state = cluster(TopicState("t", (p("t", 0, 1, (1, 2, 3), (1, 3)),), min_insync_replicas=2))
    report = assess_cluster(state, [1, 2, 3])
    (finding,) = report.findings_of(UNDER_REPLICATED)
    assert finding.subject == "broker:2"
    assert "(registered)" in finding.summary


@st.composite
def cluster_states(draw: st.DrawFn) -> tuple[ClusterState, list[int]]:
    broker_ids = list(range(1, draw(st.integers(1, 6)) + 1))
    live = draw(st.lists(st.sampled_from(broker_ids), unique=True))
    topics = []
    for t in range(draw(st.integers(0, 4))):
        rf = draw(st.integers(1, len(broker_ids)))
        partitions = []
        for n in range(draw(st.integers(1, 5))):
            replicas = tuple(draw(st.permutations(broker_ids))[:rf])
            isr = tuple(r for r in replicas if r in live and draw(st.booleans()))
            leader = draw(st.sampled_from([None, *isr])) if isr else None
            partitions.append(PartitionState(f"t{t}", n, leader, replicas, isr))
        topics.append(TopicState(f"t{t}", tuple(partitions), min_insync_replicas=draw(st.integers(1, rf))))
    controller = draw(st.sampled_from([None, *live])) if live else None
    return ClusterState("c", controller, brokers(*live), tuple(topics)), broker_ids


@given(cluster_states())
def test_counts_add_up(generated: tuple[ClusterState, list[int]]) -> None:
    state, expected = generated
    report = assess_cluster(state, expected)
    for field in ("partitions", "offline", "under_replicated", "under_min_isr", "at_min_isr"):
        assert getattr(report.totals, field) == sum(getattr(c, field) for c in report.topics.values())
    assert report.totals.partitions == sum(len(t.partitions) for t in state.topics)
    # Offline partitions are never also counted as under-replicated or under min ISR.
    assert report.totals.offline + report.totals.under_replicated <= report.totals.partitions
    assert report.totals.under_min_isr <= report.totals.under_replicated
    assert sum(f.value for f in report.findings_of(OFFLINE_PARTITIONS)) == report.totals.offline
    assert sum(f.value for f in report.findings_of(UNDER_MIN_ISR)) == report.totals.under_min_isr
    assert {f.subject for f in report.findings_of(BROKER_DOWN)} == {
        f"broker:{b}" for b in set(expected) - {b.node_id for b in state.brokers}
    }


def test_a_replica_a_reassignment_is_adding_does_not_make_its_partition_under_replicated() -> None:
    moving = PartitionState("orders", 0, 1, (1, 2, 3, 4), (1, 2, 3), adding=(4,), removing=(3,))
    behind = PartitionState("orders", 1, 1, (1, 2, 4, 3), (1, 2), adding=(4,), removing=(3,))
    report = assess_cluster(
        cluster(TopicState("orders", (moving, behind), min_insync_replicas=2), live=(1, 2, 3, 4)),
        [1, 2, 3, 4],
    )

    assert report.totals.under_replicated == 1  # only the one whose original replica 3 is behind
    (finding,) = report.findings_of(UNDER_REPLICATED)
    assert finding.brokers == {3} and finding.partitions == (("orders", 1),)


def test_the_quorum_leader_is_the_controller_and_a_voter_behind_it_is_a_finding() -> None:
    voters = (QuorumMember(1, 900, 50_000), QuorumMember(2, 900, 49_900), QuorumMember(3, 700, 20_000))
    lagging = ClusterState("c-1", 1, brokers(1, 2, 3), (HEALTHY,), QuorumState(1, voters=voters))

    (finding,) = assess_cluster(lagging, [1, 2, 3]).findings_of(CONTROLLER_LAGGING)
    assert (finding.subject, finding.value, finding.brokers) == ("broker:3", 30, {3})
    assert "200 metadata records behind" in finding.summary

    lost = ClusterState(
        "c-1", None, brokers(1, 2, 3), (HEALTHY,), QuorumState(None, error="no answer within 10 s")
    )
    (missing,) = assess_cluster(lost, [1, 2, 3]).findings_of(CONTROLLER_MISSING)
    assert "no answer within 10 s" in missing.summary
