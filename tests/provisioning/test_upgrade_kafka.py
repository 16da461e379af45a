"""Upgrades on real Apache Kafka: the workflow's steps roll real brokers onto a new release and finalize
its feature levels, and Kafka itself (DescribeFeatures read with a client of its own) shows them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from provisioning.kafka_admin.features import KRAFT_VERSION, METADATA_VERSION, release_feature_levels
from provisioning.workflows.rolling import UPGRADE
from tests.support.apache_kafka import KafkaTestCluster
from tests.support.workflow_runner import run_workflow

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


def upgrade_params(cluster: KafkaTestCluster, version: str) -> dict[str, object]:
    return {
        "kafka_version": version,
        "from_version": cluster.spec.kafka_version,
        "broker_timeout_seconds": 300,
        "poll_seconds": 1,
    }


def test_a_static_quorum_cluster_from_3_9_is_finalized_at_the_new_release(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    cluster = new_kafka_cluster(brokers=1, version="3.9.2")
    # What a 3.9 release finalizes by default: metadata.version alone (kraft.version 0, static quorum).
    assert finalized_levels(cluster) == {METADATA_VERSION: release_feature_levels("3.9.2")[METADATA_VERSION]}

    run = run_workflow(
        UPGRADE,
        spec=cluster.spec,
        params=upgrade_params(cluster, NEWEST),
        backend=cluster.backend,
        bootstrap_servers=cluster.bootstrap_servers,
    )

    assert run.spec.kafka_version == NEWEST
    finalized = finalized_levels(cluster)
    assert finalized == dict(release_feature_levels(NEWEST)), run.log_lines("finalize_features")
    assert KRAFT_VERSION not in finalized, "the static quorum stays static"
    assert run.state["finalized_features"] == finalized
