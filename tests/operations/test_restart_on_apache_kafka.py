"""A rolling restart on real Apache Kafka, asked for through the REST API and run by a real Celery
worker while a partition is under-replicated, with a producer at acks=all running through it and every
acknowledged message read back afterwards (tests/support/operated_kafka.py says how).

The cluster is created on 3.9 (a static KRaft quorum, `controller.quorum.voters`) with four nodes: three
combined controllers and one broker only. Upgrading such a cluster to 4.x is proven elsewhere rather
than here, as it would repeat proofs made on real Kafka already:
- the upgrade through the API under a producer, brokers rolled one at a time and the feature levels
  raised only once all run the new release: test_on_apache_kafka.py (4.3.2 to 4.4.0);
- a 3.9 cluster's upgrade workflow finalizing 4.4's levels with `kraft.version` left out (the static
  quorum stays static): tests/provisioning/test_upgrade_kafka.py;
- a three-node 3.9 cluster restarted onto 4.x keeping its static voters and a quorum leader:
  tests/provisioning/test_local_backend_kafka.py.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.operated_kafka import (
    ControlPlane,
    OperatedCluster,
    describe_operation,
    log_messages,
    out_of_sync,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

TOPIC = "orders"
RACKS = ("a", "b", "c")


def test_a_3_9_cluster_restarted_while_a_partition_is_under_replicated(control_plane: ControlPlane) -> None:
    cluster = control_plane.create_cluster(
        name="from-3-9",
        kafka_version="3.9.2",
        # Four racks of one broker: three are KRaft controllers and the fourth only a broker, the kind
        # of node that can be out of sync while it counts as ready (a lagging combined node is an
        # unready controller, which a roll restarts first).
        brokers=4,
        racks=[*RACKS, "d"],
        replication_factor=3,
        min_insync_replicas=2,
        config=FROZEN_FOLLOWER_CONFIG,
    )
    cluster.topic(TOPIC, partitions=3)

    restart_waits_while_under_replicated_then_rolls_controller_last(cluster)


# A broker (not a controller) frozen for longer than replica.lag.time.max.ms leaves the ISRs, and stays
# registered (and so ready: not a node a roll restarts first) for broker.session.timeout.ms: a window in which a partition
# is under-replicated while every node is up. (Kafka never throttles an in-sync follower, so a throttle
# cannot make one.)
FROZEN_FOLLOWER_CONFIG = {"replica.lag.time.max.ms": "10000", "broker.session.timeout.ms": "90000"}


def restart_waits_while_under_replicated_then_rolls_controller_last(cluster: OperatedCluster) -> None:
    """A rolling restart asked for while a partition is under-replicated restarts nothing until it is
    in sync again; then it restarts one broker at a time, each back in the ISR before the next, the
    quorum leader (as kafka-metadata-quorum names it) last, and no acknowledged message is lost."""
    leader = cluster.active_controller()
    pids_before = cluster.broker_pids()
    quorum = cluster.state().quorum
    assert quorum is not None
    frozen = next(n for n in sorted(pids_before) if n not in quorum.voter_ids)

    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(100)
        os.kill(pids_before[frozen], signal.SIGSTOP)
        try:
            wait_for(lambda: frozen in out_of_sync(cluster.state()), 60, what=f"broker {frozen} out of sync")
            operation = cluster.request("restart")
            waiting = cluster.wait(
                operation["id"],
                timeout=60,
                until=lambda op: any("under-replicated" in m for m in log_messages(op, "restart_brokers")),
            )
            assert cluster.broker_pids() == pids_before, describe_operation(waiting)
        finally:
            os.kill(pids_before[frozen], signal.SIGCONT)
        operation = cluster.wait(operation["id"], timeout=600)
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set()

    restarts = [m for m in log_messages(operation, "restart_brokers") if m.startswith("restarting broker")]
    restarted = [int(m.split()[2]) for m in restarts]
    assert sorted(restarted) == sorted(pids_before), describe_operation(operation)
    # The quorum leader goes last: the one kafka-metadata-quorum named before the roll, or, when
    # leadership moved while the roll ran (seen on a machine at load 40), the one the roll found by
    # describing the quorum before each restart. Never a leader restarted before others are done.
    taken_as_leader = [i for i, m in enumerate(restarts) if m.endswith("(the active controller)")]
    assert taken_as_leader in ([], [len(restarts) - 1]), restarts
    assert restarted[-1] == leader or taken_as_leader == [len(restarts) - 1], (restarts, leader)
    # Each broker back in sync (as the roll asked Kafka) before the next one is restarted.
    steps = [
        m
        for m in log_messages(operation, "restart_brokers")
        if m.startswith("restarting broker") or m.endswith("is back and in sync")
    ]
    assert [m.startswith("restarting") for m in steps] == [True, False] * len(restarted), steps
    assert all(pid != pids_before[n] for n, pid in cluster.broker_pids().items())
