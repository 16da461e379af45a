"""`ConfluentKafkaAdmin` against a real Kafka-protocol broker (Tansu, see `tests.support.kafka`).

Tansu is a single node without replication, partition reassignment or leader election. For those calls
these tests check what a real broker answers (refusal, an empty listing) and what the adapter writes
(throttled-replica lists); moves, elections and throttles taking effect are covered only by the
simulator tests, because no multi-broker Kafka can run here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType

from provisioning.kafka_admin.base import (
    KafkaAdminError,
    KafkaUnavailableError,
    TopicAlreadyExistsError,
)
from provisioning.kafka_admin.confluent import (
    FOLLOWER_THROTTLED_REPLICAS,
    LEADER_THROTTLED_REPLICAS,
    ConfluentKafkaAdmin,
    kafka_python_config,
)
from tests.support.kafka import CONSUMER_CONFIG, PRODUCER_CONFIG, TANSU_NODE_ID, DevelopmentBroker

# Tansu holds a group's first join back for about half the session timeout; this bounds the wait.
GROUP_JOIN_DEADLINE = 45.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(kafka_broker_session: DevelopmentBroker) -> Iterator[ConfluentKafkaAdmin]:
    client = ConfluentKafkaAdmin(kafka_broker_session.bootstrap_servers, timeout=5.0)
    yield client
    client.close()


def produce_one_per_batch(servers: str, topic: str, counts: dict[int, int]) -> None:
    """Tansu gives a batch one offset; flushing after each message makes offsets count messages."""
    producer = Producer({"bootstrap.servers": servers, **PRODUCER_CONFIG})
    for partition, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=f"m{i}".encode(), partition=partition)
            assert producer.flush(10) == 0


def topic_configs(broker: DevelopmentBroker, topic: str) -> dict[str, str | None]:
    client = broker.admin_client()  # must outlive the future: a released client cancels its requests
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return {name: entry.value for name, entry in future.result(timeout=10).items()}


@pytest.mark.slow
def test_describe_cluster_shows_the_broker_and_new_topics(
    admin: ConfluentKafkaAdmin, kafka_broker_session: DevelopmentBroker
) -> None:
    strict, plain = unique("orders"), unique("audit")
    admin.create_topic(strict, partitions=3, replication_factor=1, config={"min.insync.replicas": "2"})
    admin.create_topic(plain, partitions=1, replication_factor=1)

    state = admin.describe_cluster()

    assert state.cluster_id == kafka_broker_session.cluster_id
    assert state.controller_id == TANSU_NODE_ID
    assert [(b.node_id, b.host, b.port) for b in state.brokers] == [
        (TANSU_NODE_ID, "127.0.0.1", kafka_broker_session.port)
    ]
    topics = {t.name: t for t in state.topics}
    assert [(p.partition, p.leader, p.replicas, p.isr) for p in topics[strict].partitions] == [
        (i, TANSU_NODE_ID, (TANSU_NODE_ID,), (TANSU_NODE_ID,)) for i in range(3)
    ]
    assert topics[strict].min_insync_replicas == 2
    # Tansu reports only configs set explicitly; Kafka's default applies to the rest.
    assert topics[plain].min_insync_replicas == 1
    assert not topics[plain].internal
    assert state.assignment()[(strict, 1)] == [TANSU_NODE_ID]


@pytest.mark.slow
def test_creating_an_existing_topic_is_reported_as_such(admin: ConfluentKafkaAdmin) -> None:
    name = unique("dup")
    admin.create_topic(name, partitions=1, replication_factor=1)

    with pytest.raises(TopicAlreadyExistsError, match=name):
        admin.create_topic(name, partitions=1, replication_factor=1)


@pytest.mark.slow
def test_consumer_group_commits_and_end_offsets(
    admin: ConfluentKafkaAdmin, kafka_broker_session: DevelopmentBroker
) -> None:
    servers = kafka_broker_session.bootstrap_servers
    topic, group = unique("payments"), unique("billing")
    admin.create_topic(topic, partitions=2, replication_factor=1)
    produce_one_per_batch(servers, topic, {0: 5, 1: 2})

    consumer = Consumer({"bootstrap.servers": servers, "group.id": group, **CONSUMER_CONFIG})
    try:
        consumer.subscribe([topic])
        seen: dict[int, int] = {}
        deadline = time.monotonic() + GROUP_JOIN_DEADLINE
        while sum(seen.values()) < 7 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            seen[message.partition()] = seen.get(message.partition(), 0) + 1
            if message.partition() == 0 and message.offset() == 2:
                # Stop partition 0 short of its end so that the group lags there.
                consumer.commit(message=message, asynchronous=False)
            elif message.partition() == 1:
                consumer.commit(message=message, asynchronous=False)
        assert seen == {0: 5, 1: 2}, f"the group did not consume everything within {GROUP_JOIN_DEADLINE} s"

        live = {g.group_id: g for g in admin.list_consumer_groups()}
        assert live[group].committed == {(topic, 0): 3, (topic, 1): 2}
        assert live[group].state == "Stable"
    finally:
        consumer.close()

    after_close = {g.group_id: g for g in admin.list_consumer_groups()}
    assert after_close[group].state == "Empty"
    assert after_close[group].members == 0
    assert after_close[group].committed == {(topic, 0): 3, (topic, 1): 2}
    assert admin.end_offsets([(topic, 0), (topic, 1)]) == {(topic, 0): 5, (topic, 1): 2}


@pytest.mark.slow
def test_end_offsets_leave_out_partitions_that_do_not_exist(admin: ConfluentKafkaAdmin) -> None:
    topic = unique("sparse")
    admin.create_topic(topic, partitions=1, replication_factor=1)

    assert admin.end_offsets([(topic, 0), (topic, 7), (unique("missing"), 0)]) == {(topic, 0): 0}
    assert admin.end_offsets([]) == {}


@pytest.mark.slow
def test_reassignment_is_refused_by_a_broker_without_it_and_throttle_lists_are_cleared(
    admin: ConfluentKafkaAdmin, kafka_broker_session: DevelopmentBroker
) -> None:
    topic = unique("moving")
    admin.create_topic(topic, partitions=2, replication_factor=1)

    # Tansu lists every partition with nothing adding or removing: nothing is moving.
    assert admin.list_partition_reassignments() == {}
    with pytest.raises(KafkaAdminError, match="does not support alter partition reassignments") as raised:
        admin.alter_partition_reassignments({(topic, 1): [TANSU_NODE_ID]})
    assert not isinstance(raised.value, KafkaUnavailableError)

    # The throttled-replica lists were written before the move was requested, as Kafka's own tool does.
    assert topic_configs(kafka_broker_session, topic)[LEADER_THROTTLED_REPLICAS] == f"1:{TANSU_NODE_ID}"
    admin.set_replication_throttle([TANSU_NODE_ID], 10_000_000)

    admin.clear_replication_throttle([TANSU_NODE_ID], [topic])

    configs = topic_configs(kafka_broker_session, topic)
    assert not configs.get(LEADER_THROTTLED_REPLICAS)
    assert not configs.get(FOLLOWER_THROTTLED_REPLICAS)


@pytest.mark.slow
def test_preferred_leader_election_refused_by_the_broker_is_an_error(admin: ConfluentKafkaAdmin) -> None:
    topic = unique("leaders")
    admin.create_topic(topic, partitions=1, replication_factor=1)

    admin.elect_preferred_leaders([])  # nothing asked, nothing sent (empty would mean "all partitions")
    with pytest.raises(KafkaAdminError, match="not supported") as raised:
        admin.elect_preferred_leaders([(topic, 0)])
    assert not isinstance(raised.value, KafkaUnavailableError)


def test_invalid_reassignment_targets_are_rejected_before_anything_is_sent() -> None:
    # Nothing listens on this address; a request would end in KafkaUnavailableError instead.
    admin = ConfluentKafkaAdmin("127.0.0.1:9", timeout=1.0)
    try:
        with pytest.raises(KafkaAdminError, match="distinct broker ids"):
            admin.alter_partition_reassignments({("t", 0): [1, 1]})
        with pytest.raises(KafkaAdminError, match="distinct broker ids"):
            admin.alter_partition_reassignments({("t", 0): []})
        with pytest.raises(KafkaAdminError, match="must be positive"):
            admin.set_replication_throttle([1], 0)
    finally:
        admin.close()


@pytest.mark.slow
def test_a_stopped_broker_is_reported_unavailable(kafka_broker: DevelopmentBroker) -> None:
    admin = ConfluentKafkaAdmin(kafka_broker.bootstrap_servers, timeout=1.0)
    try:
        admin.create_topic("before-stop", partitions=1, replication_factor=1)
        assert admin.end_offsets([("before-stop", 0)]) == {("before-stop", 0): 0}
        kafka_broker.stop()

        for call in (
            admin.describe_cluster,
            admin.list_consumer_groups,
            lambda: admin.end_offsets([("before-stop", 0)]),
            admin.list_partition_reassignments,
            lambda: admin.create_topic("after-stop", partitions=1, replication_factor=1),
            lambda: admin.set_replication_throttle([TANSU_NODE_ID], 1000),
        ):
            with pytest.raises(KafkaUnavailableError, match=kafka_broker.bootstrap_servers):
                call()

        # The same client works again once the broker is back (memory storage: it starts empty).
        kafka_broker.start()
        assert admin.describe_cluster().controller_id == TANSU_NODE_ID
    finally:
        admin.close()


def test_security_settings_are_translated_for_the_reassignment_client() -> None:
    assert kafka_python_config(
        {
            "security.protocol": "sasl_ssl",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "operator",
            "sasl.password": "secret",
            "ssl.ca.location": "/etc/kafka/ca.pem",
            "ssl.endpoint.identification.algorithm": "none",
            "client.id": "control-plane",
            "statistics.interval.ms": "0",
        }
    ) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "operator",
        "sasl_plain_password": "secret",
        "ssl_cafile": "/etc/kafka/ca.pem",
        "ssl_check_hostname": False,
        "client_id": "control-plane",
    }
    with pytest.raises(KafkaAdminError, match=r"sasl\.kerberos\.keytab"):
        kafka_python_config({"sasl.kerberos.keytab": "/etc/krb5.keytab"})


def test_a_broker_without_finalized_features_has_nothing_to_raise(admin: ConfluentKafkaAdmin) -> None:
    # The development broker (a real Kafka-protocol broker) answers DescribeFeatures with nothing
    # finalized; finalizing on real Kafka is tested in test_upgrade_kafka.
    assert admin.finalized_features() == {}
    assert admin.update_features("4.4.0") == {}
