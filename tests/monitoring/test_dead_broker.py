"""A broker that died but is still registered, on real Apache Kafka.

Until its session times out (`broker.session.timeout.ms`) the controller keeps a dead broker
registered: Metadata lists it and may name it as the controller (a KRaft cluster names a random
registered broker), and every request that has to reach it waits out its timeout. The cluster itself
still answers. The test cluster's session timeout is raised so that this window lasts long enough to
look at it several times.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from monitoring.collector import collect_cluster
from monitoring.lag_state import load_groups
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.alerting import make_cluster
from tests.support.apache_kafka import KafkaTestCluster, wait_for
from tests.support.tenants import Tenant

pytestmark = pytest.mark.slow

DEAD = 3
# Long enough for the checks below on a busy machine; Kafka's default is 9 s.
SESSION_TIMEOUT_MS = 120_000
ATTEMPTS = 8


def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    def committed() -> bool:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
            return True
        finally:
            consumer.close()

    wait_for(committed, 60, what="a commit (the group coordinator is elected on first use)")


def test_a_dead_broker_still_registered_leaves_the_cluster_reachable(
    new_kafka_cluster: Callable[..., KafkaTestCluster], tenant: Tenant
) -> None:
    kafka = new_kafka_cluster(brokers=3, config=(("broker.session.timeout.ms", str(SESSION_TIMEOUT_MS)),))
    topic = kafka.topic("orders", partitions=3)
    commit(kafka.bootstrap_servers, "billing", topic, 0)
    cluster = make_cluster(tenant.organization, bootstrap_servers=kafka.bootstrap_servers)
    first = collect_cluster(cluster.pk)
    assert first is not None and first.reachable and not first.lag_error
    assert [g.group_id for g in load_groups(cluster.pk)] == ["billing"]

    kafka.kill(DEAD)

    # Admin clients that take the dead broker for the controller, where DescribeCluster and the
    # topics' DescribeConfigs go first. librdkafka sometimes moves on by itself, often not: several
    # such clients make the test see the case it is about.
    def admin_routed_to_the_dead_broker() -> ConfluentKafkaAdmin | None:
        admin = kafka.admin()
        return admin if admin._client().list_topics(timeout=5).controller_id == DEAD else None

    for _ in range(ATTEMPTS):
        admin = wait_for(
            admin_routed_to_the_dead_broker, 60, interval=0, what="Metadata naming the dead broker"
        )
        state = admin.describe_cluster()
        assert [b.node_id for b in state.brokers] == [1, 2, 3]  # still registered
        assert {t.name: t.min_insync_replicas for t in state.topics}[topic] == 2
        admin.close()
    assert sorted(admin.describe_log_dirs([1, 2, 3])) == [1, 2]

    # Collections: the cluster answers, so it is reachable; the group listing, which asks every
    # broker, cannot finish, so lag is not judged and the stored group stays as it was.
    snapshot = collect_cluster(cluster.pk)
    assert snapshot is not None and snapshot.reachable, snapshot.error
    assert snapshot.health is not None and snapshot.health.registered_brokers == {1, 2, 3}
    assert snapshot.disks is not None and sorted(snapshot.disks) == [1, 2]
    assert snapshot.lag_error and snapshot.groups == ()
    assert [g.group_id for g in load_groups(cluster.pk)] == ["billing"]
