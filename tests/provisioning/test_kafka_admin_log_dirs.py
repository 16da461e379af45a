"""`describe_log_dirs`: the size of each broker's log directories, on real Apache Kafka, the development
broker (which does not support the request) and the simulator."""

from __future__ import annotations

import os

import pytest

from provisioning.kafka_admin.base import KafkaAdminError, LogDirUsage
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.apache_kafka import KafkaTestCluster
from tests.support.kafka import TANSU_NODE_ID, DevelopmentBroker
from tests.support.simulator import SimulatedKafkaCluster


def volume(path: str) -> tuple[int, int]:
    """Total and usable bytes of the filesystem holding `path`, as Java's FileStore reports them."""
    stats = os.statvfs(path)
    return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


@pytest.mark.slow
def test_real_kafka_reports_each_brokers_log_directory_with_its_volume_size(
    apache_kafka_cluster: KafkaTestCluster,
) -> None:
    admin = apache_kafka_cluster.admin()
    broker_ids = [broker.node_id for broker in apache_kafka_cluster.spec.brokers]

    usage = admin.describe_log_dirs([*broker_ids, 99])  # 99 is no broker: left out, not an error

    assert sorted(usage) == broker_ids
    for broker_id, (log_dir,) in usage.items():
        assert log_dir.broker_id == broker_id and log_dir.error == ""
        assert log_dir.path.endswith(f"broker-{broker_id}/data")
        total, usable = volume(log_dir.path)
        assert log_dir.total_bytes == total
        # Other processes write to the same filesystem meanwhile.
        assert log_dir.usable_bytes is not None and abs(log_dir.usable_bytes - usable) < 256 * 2**20


@pytest.mark.slow
def test_the_development_broker_refuses_with_what_is_needed(kafka_broker_session: DevelopmentBroker) -> None:
    admin = ConfluentKafkaAdmin(kafka_broker_session.bootstrap_servers, timeout=5.0)
    try:
        with pytest.raises(KafkaAdminError, match=r"Apache Kafka 3\.3 or later"):
            admin.describe_log_dirs([TANSU_NODE_ID])
    finally:
        admin.close()


def test_the_simulator_fills_a_brokers_volume_with_its_replicas_and_other_files() -> None:
    cluster = SimulatedKafkaCluster.with_brokers(3, record_bytes=1000, disk_bytes=10**6)
    cluster.create_topic("orders", 1, 2)
    (replicas,) = [p.replicas for t in cluster.describe_cluster().topics for p in t.partitions]
    cluster.produce("orders", 0, 100)  # 100 kB on each replica
    spare = next(b for b in (1, 2, 3) if b not in replicas)
    cluster.fill_disk(spare, 900_000)
    cluster.fail_broker(replicas[1])

    usage = cluster.describe_log_dirs([1, 2, 3])

    assert sorted(usage) == sorted({replicas[0], spare})
    assert usage[replicas[0]] == (
        LogDirUsage(replicas[0], f"/var/lib/kafka/broker-{replicas[0]}", 10**6, 900_000),
    )
    assert usage[spare][0].usable_bytes == 100_000
