"""Rolling restart and upgrade on the simulated cluster stand-in, and the restart safety rules."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from controlplane.clusters.actions import request_restart, request_upgrade
from controlplane.clusters.models import Cluster
from provisioning.kafka_admin.base import (
    BrokerInfo,
    ClusterState,
    PartitionState,
    QuorumMember,
    QuorumState,
    TopicState,
)
from provisioning.workflows.safety import restart_blockers, restart_order, sync_problems
from tests.operations.conftest import ClusterFactory, Driver
from tests.support.simulated_backend import Simulation
from tests.support.tenants import SYSTEM


def restarts(simulation: Simulation) -> list[tuple[int, dict[str, Any]]]:
    return [(node_id, details) for action, node_id, details in simulation.events if action == "restart"]


def test_rolling_restart_goes_one_broker_at_a_time_controller_last(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.set_controller(2)

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "succeeded", operation.error
    done = restarts(simulation)
    assert [node_id for node_id, _ in done] == [0, 1, 3, 4, 5, 2]
    assert done[-1][1]["controller"] == 2
    # Each broker waited until nothing was under-replicated, i.e. the previous one was back in sync,
    # which takes the simulated brokers `rejoin_delay_seconds` at least.
    assert all(details["under_replicated"] == 0 for _, details in done)
    times = [details["at"] for _, details in done]
    assert all(later - earlier >= kafka.rejoin_delay_seconds for earlier, later in pairwise(times))
    state = kafka.describe_cluster()
    assert all(p.leader == p.replicas[0] for t in state.topics for p in t.partitions)
    assert operation.steps.get(name="restart_brokers").progress_done == 6
    cluster.refresh_from_db()
    assert cluster.status == "running"


def test_a_broker_that_is_down_is_restarted_first(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    # Its partitions are under-replicated, which holds every other restart back; it serves nothing,
    # so restarting it cannot hurt and is what brings them back in sync.
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.set_voters([0, 1, 2])
    kafka.set_controller(2)
    kafka.fail_broker(4)

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "succeeded", operation.error
    # Unready first, then the controllers, the brokers, and the quorum's leader last.
    assert [node_id for node_id, _ in restarts(simulation)] == [4, 0, 1, 3, 5, 2]
    log = " ".join(line.message for line in operation.log_lines.all())
    assert "restarting broker 4 first: broker 4 is not registered with the cluster" in log
    assert all(details["under_replicated"] == 0 for _, details in restarts(simulation)[1:])


def test_a_controller_waits_until_the_other_voters_are_caught_up(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    _, kafka = simulated_cluster(brokers=6, topics=())
    kafka.set_voters([0, 1, 2])
    kafka.set_controller(2)
    kafka.fail_broker(1)
    kafka.advance(30)  # controller 1 falls behind the quorum leader
    state = kafka.describe_cluster()

    # Without 0 only the leader would be caught up: 1 of 3, short of a majority.
    (reason,) = restart_blockers(state, 0)
    assert "without controller 0 only 1 of 3 voters are caught up" in reason
    assert restart_blockers(state, 3) == [], "a broker that is not a controller does not touch the quorum"
    assert restart_blockers(state, 1) == [], "not ready: it serves nothing"
    assert restart_order(state, range(6)) == [1, 0, 3, 4, 5, 2]

    kafka.fail_broker(0)  # the quorum loses its majority
    state = kafka.describe_cluster()
    assert state.controller_id is None and state.quorum is not None and state.quorum.leader_id is None
    assert "the controller quorum has no leader" in " ".join(restart_blockers(state, 2))


def test_rolling_restart_waits_while_a_restart_could_stop_acks_all_producers(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    # Broker 5 is registered but stays behind on its partitions, which sit at min.insync.replicas
    # (2 of 3 in sync) meanwhile.
    kafka.rejoin_delay_seconds = 3600
    kafka.restart_broker(5)
    kafka.rejoin_delay_seconds = 10
    operation = request_restart(cluster=cluster, actor=SYSTEM)

    for _ in range(5):
        driver.run_once(operation.id)
        simulation.advance(60)

    assert restarts(simulation) == []
    waiting = " ".join(line.message for line in operation.log_lines.all())
    assert "exactly at min.insync.replicas" in waiting
    assert "under-replicated" in waiting
    assert operation.steps.get(name="restart_brokers").state == "running"

    simulation.advance(3600)
    operation = driver.run(operation.id)

    assert operation.state == "succeeded", operation.error
    assert sorted(node_id for node_id, _ in restarts(simulation)) == list(range(6))
    assert all(details["under_replicated"] == 0 for _, details in restarts(simulation))


def test_a_broker_that_does_not_come_back_in_time_fails_the_restart(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, settings: Any
) -> None:
    settings.OPERATION_BROKER_TIMEOUT_SECONDS = 0
    cluster, _ = simulated_cluster(brokers=3)

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "failed"
    assert operation.error["code"] == "broker_not_back"
    assert "Broker 1 did not come back in sync" in operation.error["message"]
    assert [node_id for node_id, _ in restarts(simulation)] == [1]  # 0 is the controller
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.status == "degraded"
    assert "Broker 1" in cluster.status_reason


def test_upgrade_rolls_every_broker_then_raises_the_feature_levels(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)

    operation = request_upgrade(cluster=cluster, kafka_version="4.3.2", actor=SYSTEM)
    driver.run(operation.id, until=lambda op: op.steps.get(name="upgrade_brokers").progress_done == 3)
    assert Cluster.objects.get(pk=cluster.pk).kafka_version == "4.2.2"  # not until every broker runs it
    assert kafka.finalized_release is None
    operation = driver.run(operation.id)

    assert operation.state == "succeeded", operation.error
    assert sorted(node_id for node_id, _ in restarts(simulation)) == list(range(6))
    assert {details["version"] for _, details in restarts(simulation)} == {"4.3.2"}
    assert kafka.finalized_release == "4.3.2"
    assert [s.name for s in operation.steps.all()][-1] == "finalize_features"
    cluster.refresh_from_db()
    assert (cluster.kafka_version, cluster.status) == ("4.3.2", "running")


def _state(*partitions: tuple[tuple[int, ...], tuple[int, ...]], min_isr: int = 2) -> ClusterState:
    return ClusterState(
        cluster_id="c",
        controller_id=1,
        brokers=tuple(BrokerInfo(n, f"b{n}", 9092) for n in range(1, 5)),
        topics=(
            TopicState(
                "t",
                tuple(
                    PartitionState("t", i, isr[0] if isr else None, replicas, isr)
                    for i, (replicas, isr) in enumerate(partitions)
                ),
                min_insync_replicas=min_isr,
            ),
        ),
    )


@pytest.mark.parametrize(
    ("partitions", "min_isr", "broker", "words"),
    [
        ((((1, 2, 3), (1, 2, 3)),), 2, 1, []),
        ((((1, 2, 3), (2,)),), 2, 1, ["already below min.insync.replicas", "under-replicated"]),
        ((((1, 2, 3), (1, 2)),), 2, 1, ["exactly at min.insync.replicas", "under-replicated"]),
        # Not in the ISR of the partition at min.insync.replicas: only the lagging partition blocks.
        ((((1, 2, 3), (2, 3)),), 2, 1, ["under-replicated"]),
        ((((2, 3, 4), (2, 3)),), 2, 1, ["under-replicated"]),
        # No more replicas than min.insync.replicas: any restart stops acks=all, so it cannot block.
        ((((1, 2), (1, 2)),), 2, 1, []),
        ((((1, 2, 3), ()),), 2, 4, ["offline", "under-replicated"]),
    ],
)
def test_restart_blockers(
    partitions: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...],
    min_isr: int,
    broker: int,
    words: list[str],
) -> None:
    reasons = " ".join(restart_blockers(_state(*partitions, min_isr=min_isr), broker))
    for word in words:
        assert word in reasons
    if not words:
        assert reasons == ""


def test_sync_problems_name_what_is_missing() -> None:
    assert sync_problems(_state(((1, 2, 3), (1, 2, 3))), 2) is None
    assert "not yet in sync for 1 partition" in sync_problems(_state(((1, 2, 3), (1, 3))), 2)
    assert "is not registered with the cluster yet" in sync_problems(_state(((1, 2, 3), (1, 3))), 7)


DEDICATED = (90000, 90001, 90002)


def _with_dedicated_quorum(leader: int | None = 90001, behind: tuple[int, ...] = ()) -> ClusterState:
    """Brokers 1-4 and a quorum of three dedicated controllers, which never register as brokers."""
    now_ms = 1_000_000
    voters = tuple(
        QuorumMember(n, 100 if n in behind else 500, now_ms - 60_000 if n in behind else now_ms)
        for n in DEDICATED
    )
    quorum = QuorumState(leader_id=leader, leader_epoch=3, high_watermark=500, voters=voters)
    return ClusterState(
        cluster_id="c",
        controller_id=leader,
        brokers=tuple(BrokerInfo(n, f"b{n}", 9092) for n in range(1, 5)),
        topics=(),
        quorum=quorum,
    )


def test_dedicated_controllers_are_judged_by_the_quorum_alone() -> None:
    ready = _with_dedicated_quorum()
    nodes = [1, 2, 3, 4, *DEDICATED]
    # Ready controllers before ready brokers, the quorum's leader last.
    assert restart_order(ready, nodes, controller_only=DEDICATED) == [90000, 90002, 1, 2, 3, 4, 90001]
    assert restart_blockers(ready, 90000, controller_only=DEDICATED) == []
    assert sync_problems(ready, 90002, controller_only=DEDICATED) is None

    lagging = _with_dedicated_quorum(behind=(90002,))
    # The controller behind serves nothing: first. Any other would leave too few voters caught up.
    assert restart_order(lagging, nodes, controller_only=DEDICATED)[0] == 90002
    assert restart_blockers(lagging, 90002, controller_only=DEDICATED) == []
    (blocker,) = restart_blockers(lagging, 90000, controller_only=DEDICATED)
    assert "only 1 of 3 voters are caught up" in blocker and "controllers 90002 are behind" in blocker
    assert "controller 90002 has not caught up" in sync_problems(lagging, 90002, controller_only=DEDICATED)

    unknown = replace(ready, quorum=None)
    assert restart_blockers(unknown, 90000, controller_only=DEDICATED) == [
        "the controller quorum could not be described"
    ]
    assert "could not be described" in sync_problems(unknown, 90000, controller_only=DEDICATED)
    # Without being told, a node that never registers as a broker looks down, and nothing holds it.
    assert "not registered" in sync_problems(ready, 90000)
