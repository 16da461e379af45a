"""Upgrades, and the controller quorum they roll through, on real Apache Kafka: the workflows' steps roll
real brokers onto a new release and finalize its feature levels, and Kafka itself shows them
(DescribeFeatures and DescribeCluster read with a client of the test's own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from monitoring.conditions import CONTROLLER_LAGGING, CONTROLLER_MISSING, evaluate
from monitoring.health import assess_cluster, broker_subject
from provisioning.backends.base import ClusterSpec
from provisioning.kafka_admin.base import ClusterState
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.kafka_admin.features import KRAFT_VERSION, METADATA_VERSION, release_feature_levels
from provisioning.workflows.rolling import UPGRADE
from provisioning.workflows.safety import restart_blockers
from provisioning.workflows.scaling import SCALE
from tests.support.apache_kafka import AckedTraffic, KafkaTestCluster, wait_for
from tests.support.workflow_runner import WorkflowRun, run_workflow

pytestmark = [
    pytest.mark.slow,
    # Whole cluster lifecycles (scale-in, upgrade, quorum loss): minutes on a busy machine.
    pytest.mark.timeout(900),
]

NEWEST = "4.4.0"
BROKERS = [1, 2, 3]


@contextmanager
def kafka_python(cluster: KafkaTestCluster) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient  # here, so the module's warning filters apply

    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers.split(","))
    try:
        yield client
    finally:
        client.close()


def finalized_levels(cluster: KafkaTestCluster) -> dict[str, int]:
    """What the cluster's brokers say is finalized, as Kafka reports it (a level 0 is left out)."""
    with kafka_python(cluster) as client:
        described = client.describe_features()
    return {name: entry["finalized"][1] for name, entry in described.items() if entry.get("finalized")}


def upgrade(cluster: KafkaTestCluster, spec: ClusterSpec, bootstrap_servers: str) -> WorkflowRun:
    """Run the upgrade workflow's steps from `spec`'s release to the newest."""
    params = {
        "kafka_version": NEWEST,
        "from_version": spec.kafka_version,
        "broker_timeout_seconds": 300,
        "poll_seconds": 1,
    }
    return run_workflow(
        UPGRADE, spec=spec, params=params, backend=cluster.backend, bootstrap_servers=bootstrap_servers
    )


def test_a_static_quorum_cluster_from_3_9_is_finalized_at_the_new_release(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    cluster = new_kafka_cluster(brokers=1, version="3.9.2")
    # What a 3.9 release finalizes by default: metadata.version alone (kraft.version 0, static quorum).
    assert finalized_levels(cluster) == {METADATA_VERSION: release_feature_levels("3.9.2")[METADATA_VERSION]}

    run = upgrade(cluster, cluster.spec, cluster.bootstrap_servers)

    assert run.spec.kafka_version == NEWEST
    finalized = finalized_levels(cluster)
    assert finalized == dict(release_feature_levels(NEWEST)), run.log_lines("finalize_features")
    assert KRAFT_VERSION not in finalized, "the static quorum stays static"
    assert run.state["finalized_features"] == finalized


def conditions(state: ClusterState, brokers: list[int]) -> dict[str, set[str]]:
    """Rule -> subjects of the conditions the default alert rules raise for this snapshot."""
    raised: dict[str, set[str]] = {}
    for condition in evaluate("test", health_report=assess_cluster(state, brokers)):
        raised.setdefault(condition.rule_key, set()).add(condition.subject)
    return raised


def test_a_cluster_scaled_in_losing_a_controller_then_upgraded_and_losing_its_quorum(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    """One cluster through a sequence, with a producer at acks=all running through the first part:

    1. DescribeQuorum names the active controller (Metadata names a random broker, KIP-590).
    2. Scale-in unregisters the removed broker, or finalizing would be refused, naming it.
    3. A follower controller dies: it falls behind the leader, which warns, and the other follower
       may not be restarted while it is down.
    4. The rolling upgrade restarts the dead controller first (it serves nothing, and its partitions
       being under-replicated would hold every other restart back) and the quorum leader last, each
       broker only after its controlled shutdown; then the new release's feature levels are finalized.
    5. Two controllers lost: no quorum leader, which pages, although Metadata still lists every broker.
    """
    # Racks a, b, c, a: nodes 1-3 are the controllers too, 4 only a broker.
    cluster = new_kafka_cluster(brokers=4, version="4.3.2")
    topic = cluster.topic("orders", partitions=6)
    admin = cluster.admin()
    quorum = admin.describe_quorum()
    assert quorum is not None and quorum.voter_ids == {1, 2, 3}
    assert 4 in {o.node_id for o in quorum.observers}
    assert admin.describe_cluster().controller_id == quorum.leader_id in quorum.voter_ids

    with AckedTraffic(cluster.bootstrap_servers, topic) as traffic:
        traffic.wait_for_acks(50)
        scaled = run_workflow(
            SCALE,
            spec=cluster.spec,
            params={"brokers": 3, "from_brokers": 4, "remove_node_ids": [4], "poll_seconds": 1},
            backend=cluster.backend,
            bootstrap_servers=cluster.bootstrap_servers,
        )
        assert set(cluster.registrations()) == {1, 2, 3}, "broker 4 is unregistered"

        leader = admin.describe_cluster().controller_id
        assert leader is not None
        behind, other = sorted({1, 2, 3} - {leader})
        cluster.kill(behind)
        state = wait_for(
            lambda: s if CONTROLLER_LAGGING in conditions(s := admin.describe_cluster(), BROKERS) else None,
            90,
            what="the lagging-controller condition",
        )
        assert conditions(state, BROKERS)[CONTROLLER_LAGGING] == {broker_subject(behind)}
        assert CONTROLLER_MISSING not in conditions(state, BROKERS)
        assert any("voters are caught up" in reason for reason in restart_blockers(state, other))

        run = upgrade(cluster, scaled.spec, scaled.bootstrap_servers)
        traffic.wait_for_acks(len(traffic.acked) + 50)
    assert traffic.missing() == set(), "no acknowledged message lost"

    restarted = [line for line in run.log_lines("upgrade_brokers") if line.startswith("upgrading broker")]
    assert len(restarted) == len(BROKERS)
    assert restarted[0].startswith(f"upgrading broker {behind} first: broker {behind} is not registered")
    assert restarted[-1] == f"upgrading broker {leader} (the active controller)", restarted
    for node_id in set(BROKERS) - {behind}:
        # Stopped only once its controlled shutdown had completed (SIGKILLed, `behind` had none).
        assert cluster.broker_log(node_id).count("shut down completed (kafka.server.BrokerServer)") == 1
    finalized = finalized_levels(cluster)
    assert {name: finalized.get(name) for name in release_feature_levels(NEWEST)} == dict(
        release_feature_levels(NEWEST)
    )
    assert finalized[KRAFT_VERSION] == 1, "a dynamic quorum keeps kraft.version 1, as formatted"
    assert run.spec.kafka_version == NEWEST

    for node_id in sorted({1, 2, 3})[1:]:
        cluster.kill(node_id)
    quick = ConfluentKafkaAdmin(cluster.bootstrap_servers, timeout=3)
    try:
        state = wait_for(
            lambda: s if (s := quick.describe_cluster()).controller_id is None else None,
            120,
            what="no leader",
        )
    finally:
        quick.close()
    assert state.quorum is not None and state.quorum.leader_id is None
    assert CONTROLLER_MISSING in conditions(state, BROKERS)
