"""Brokers appear under the control plane's node ids, whatever the cluster calls them."""

from __future__ import annotations

from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.kafka_admin.renumbered import RenumberedKafkaAdmin
from tests.support.kafka import DevelopmentBroker
from tests.support.simulator import SimulatedKafkaCluster


def test_the_development_broker_shows_up_as_broker_0(kafka_broker_session: DevelopmentBroker) -> None:
    # The development broker (a real Kafka-protocol broker) always calls itself 111.
    bootstrap = kafka_broker_session.bootstrap_servers
    admin = RenumberedKafkaAdmin(ConfluentKafkaAdmin(bootstrap), {bootstrap: 0})
    try:
        admin.create_topic("renumbered", 2, 1)
        state = admin.describe_cluster()
    finally:
        admin.close()

    assert [b.node_id for b in state.brokers] == [0]
    assert state.controller_id in (0, None)
    (topic,) = [t for t in state.topics if t.name == "renumbered"]
    assert {p.replicas for p in topic.partitions} == {(0,)}
    assert {p.leader for p in topic.partitions} == {0}


def test_ids_sent_to_the_cluster_are_translated_back() -> None:
    # A simulated cluster stands in: throttles cannot be observed on a single-node broker.
    kafka = SimulatedKafkaCluster([(111, "rack-1")])
    broker = kafka.describe_cluster().brokers[0]
    admin = RenumberedKafkaAdmin(kafka, {f"{broker.host}:{broker.port}": 0})

    admin.set_replication_throttle([0], 1_000_000)

    assert kafka.throttles == {111: 1_000_000}
    admin.clear_replication_throttle([0])
    assert kafka.throttles == {}
    (log_dir,) = admin.describe_log_dirs([0])[0]
    assert log_dir.broker_id == 0 and log_dir.path == "/var/lib/kafka/broker-111"


def test_without_a_known_endpoint_nothing_changes() -> None:
    kafka = SimulatedKafkaCluster([(1, "a"), (2, "b")])
    admin = RenumberedKafkaAdmin(kafka, {"elsewhere:9092": 7})

    assert admin.describe_cluster() == kafka.describe_cluster()
