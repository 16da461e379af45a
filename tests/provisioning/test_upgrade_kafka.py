"""Upgrades on real Apache Kafka: the workflow's steps roll real brokers onto a new release and finalize
its feature levels, and Kafka itself (DescribeFeatures read with a client of its own) shows them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from provisioning.backends.base import ClusterSpec
from provisioning.kafka_admin.features import KRAFT_VERSION, METADATA_VERSION, release_feature_levels
from provisioning.workflows.rolling import UPGRADE
from provisioning.workflows.scaling import SCALE
from tests.support.apache_kafka import AckedTraffic, KafkaTestCluster
from tests.support.workflow_runner import WorkflowRun, run_workflow

pytestmark = [
    pytest.mark.slow,
    # kafka-python 3.0 loads its protocol schemas with importlib.resources calls deprecated in 3.11.
    pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning"),
]

NEWEST = "4.4.0"


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


def broker_log(cluster: KafkaTestCluster, node_id: int) -> str:
    return (
        cluster.backend.state_dir / cluster.spec.cluster_id / f"broker-{node_id}" / "broker.log"
    ).read_text()


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


def registrations(cluster: KafkaTestCluster) -> dict[int, bool]:
    """Every registered broker, fenced ones included: node id -> fenced."""
    with kafka_python(cluster) as client:
        described = client.describe_cluster()
    return {b["broker_id"]: b.get("is_fenced", False) for b in described["brokers"]}


def test_a_scaled_in_cluster_upgraded_from_4_3_finalizes_the_new_release(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    """Scale-in unregisters the removed broker (or the controller would refuse the new levels, naming
    it); then a rolling upgrade with a producer at acks=all, each broker stopped only after its
    controlled shutdown, and the finalized levels of the new release."""
    cluster = new_kafka_cluster(brokers=4, version="4.3.2")
    topic = cluster.topic("orders", partitions=6)
    with AckedTraffic(cluster.bootstrap_servers, topic) as traffic:
        traffic.wait_for_acks(100)
        scaled = run_workflow(
            SCALE,
            spec=cluster.spec,
            params={"brokers": 3, "from_brokers": 4, "remove_node_ids": [4], "poll_seconds": 1},
            backend=cluster.backend,
            bootstrap_servers=cluster.bootstrap_servers,
        )
        assert registrations(cluster) == {1: False, 2: False, 3: False}, "broker 4 is unregistered"

        run = upgrade(cluster, scaled.spec, scaled.bootstrap_servers)
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set(), "no acknowledged message lost"

    finalized = finalized_levels(cluster)
    assert finalized[METADATA_VERSION] == release_feature_levels(NEWEST)[METADATA_VERSION]
    assert {name: finalized.get(name) for name in release_feature_levels(NEWEST)} == dict(
        release_feature_levels(NEWEST)
    )
    assert finalized[KRAFT_VERSION] == 1, "a dynamic quorum keeps kraft.version 1"
    for node_id in (1, 2, 3):
        log = broker_log(cluster, node_id)
        # The broker finished its controlled shutdown before it was started on the new release.
        assert log.count("shut down completed (kafka.server.BrokerServer)") == 1, node_id
    assert run.spec.kafka_version == NEWEST
