"""Collection: a real Kafka-protocol broker (Tansu) and real Celery workers where they can show it.

Tansu is one node without replication, so broker failures, under-replicated, under-min-ISR and
offline partitions are shown with `SimulatedKafkaCluster`, a stand-in for a multi-broker Kafka
cluster (none can run on this machine). The consumer groups on Tansu commit with manual partition
assignment: the commit is a real OffsetCommit, without the ~20 s group join Tansu takes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.db import IntegrityError, connection

from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Broker, Cluster
from controlplane.clusters.specs import ClusterSpec
from controlplane.tenancy.models import Organization
from monitoring import collector, tasks
from monitoring.collector import ClusterSnapshot, collect_cluster
from monitoring.lag import LagStatus, Observation, PartitionWindow, millis
from monitoring.lag_state import (
    StoredGroup,
    decode_groups,
    decode_windows,
    load,
    load_groups,
)
from monitoring.lag_windows import ClusterWindows
from monitoring.models import ClusterHealth, HealthStatus
from provisioning.backends.base import KafkaConnection
from provisioning.kafka_admin.base import KafkaAdmin
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.kafka import CONSUMER_CONFIG, PRODUCER_CONFIG, TANSU_NODE_ID, DevelopmentBroker
from tests.support.prepared import generic_plans_of
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant, make_tenant, token_client
from tests.support.workers import WorkerProcess

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


# -- helpers shared by the monitoring tests ----------------------------------------------------------


def stored_group(cluster: Cluster, group_id: str) -> StoredGroup | None:
    return next((group for group in load_groups(cluster.pk) if group.group_id == group_id), None)


def make_cluster(
    organization: Organization,
    name: str = "orders",
    *,
    node_ids: Iterable[int] = (TANSU_NODE_ID,),
    bootstrap_servers: str = "simulated:9092",
    status: str = ClusterStatus.RUNNING,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> Cluster:
    node_ids = list(node_ids)
    cluster = Cluster.objects.create(
        organization=organization,
        name=name,
        kafka_version="4.3.2",
        backend="local",
        broker_count=len(node_ids),
        racks=["rack-1"],
        node_cpu=1,
        node_memory_mb=2048,
        node_disk_gb=10,
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
        status=status,
        bootstrap_servers=bootstrap_servers,
    )
    Broker.objects.bulk_create(
        [Broker(cluster=cluster, node_id=n, rack="rack-1", state=BrokerState.RUNNING) for n in node_ids]
    )
    return cluster


def produce_one_per_batch(bootstrap_servers: str, topic: str, count: int, partition: int = 0) -> None:
    """`count` records, one batch each: Tansu advances offsets per batch."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, **PRODUCER_CONFIG})
    for number in range(count):
        producer.produce(topic, value=f"message {number}".encode(), partition=partition)
        assert producer.flush(10) == 0


def consume_and_commit(
    bootstrap_servers: str, group: str, topic: str, count: int, partition: int = 0
) -> None:
    """Read `count` records of one partition as consumer group `group` and commit after them."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group, **CONSUMER_CONFIG})
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        offsets: list[int] = []
        deadline = time.monotonic() + 30
        while len(offsets) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                offsets.append(message.offset())
        assert len(offsets) == count, f"read {len(offsets)} of {count} records in 30 s"
        consumer.commit(offsets=[TopicPartition(topic, partition, offsets[-1] + 1)], asynchronous=False)
    finally:
        consumer.close()


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def quick_admin(spec: ClusterSpec, connection: KafkaConnection) -> KafkaAdmin:
    """KAFKA_ADMIN_FACTORY for tests that stop the broker: fail after 2 s rather than 10 s."""
    return ConfluentKafkaAdmin(connection.bootstrap_servers, timeout=2.0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- a real broker ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lag_of_a_real_consumer_group_is_collected_and_shown(
    tenant: Tenant, kafka_broker_session: DevelopmentBroker
) -> None:
    bootstrap = kafka_broker_session.bootstrap_servers
    topic, group = unique("payments"), unique("billing")
    ConfluentKafkaAdmin(bootstrap).create_topic(topic, partitions=1, replication_factor=1)
    produce_one_per_batch(bootstrap, topic, 10)
    consume_and_commit(bootstrap, group, topic, 4)
    cluster = make_cluster(tenant.organization, bootstrap_servers=bootstrap)

    snapshot = collect_cluster(cluster.pk, now=T0)

    assert snapshot is not None and snapshot.reachable, snapshot
    stored = stored_group(cluster, group)
    assert (stored.total_lag, stored.max_lag, stored.status) == (6, 6, "OK")
    client = token_client(tenant.viewer)
    groups = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/").json()["results"]
    shown = next(g for g in groups if g["group_id"] == group)
    assert shown["total_lag"] == 6
    assert shown["summary"] == (
        f"Group {group} is consuming normally across 1 partitions; 6 messages wait in total."
    )
    assert shown["partitions"][0]["summary"] == (
        "Too early to judge: 6 messages wait and one observation shows no trend yet."
    )
    assert (shown["partitions"][0]["committed_offset"], shown["partitions"][0]["end_offset"]) == (4, 10)

    # Nobody commits any more: the stored window carries the first observation into the second
    # collection, and Burrow sees a group that stopped.
    collect_cluster(cluster.pk, now=T0 + timedelta(seconds=10))

    shown = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/{group}/").json()
    assert shown["status"] == "STOP"
    assert shown["partitions"][0]["summary"] == (
        "No consumer is connected and the group committed nothing for 10 s while 6 messages wait."
    )
    health = client.get(f"/api/v1/clusters/{cluster.pk}/health/").json()
    assert health["status"] == "ok"
    assert health["brokers"]["up"] == 1
    assert health["topics"][topic]["partitions"] == 1


@pytest.mark.slow
def test_a_stopped_broker_makes_health_unknown_with_the_reason(
    tenant: Tenant, kafka_broker: DevelopmentBroker, settings: Any
) -> None:
    settings.KAFKA_ADMIN_FACTORY = "tests.monitoring.test_collect.quick_admin"
    cluster = make_cluster(tenant.organization, bootstrap_servers=kafka_broker.bootstrap_servers)
    first = collect_cluster(cluster.pk, now=T0)
    assert first is not None and first.reachable

    kafka_broker.stop()
    snapshot = collect_cluster(cluster.pk, now=T0 + timedelta(seconds=10))

    assert snapshot is not None and not snapshot.reachable
    assert kafka_broker.bootstrap_servers in snapshot.error
    health = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/health/").json()
    assert health["status"] == "unknown"
    # Nothing listens on its port any more: the refusal is the answer, without waiting for a timeout.
    assert health["reason"].startswith("The cluster could not be reached: every bootstrap address refused")
    assert health["collected_at"] == "2026-03-02T08:00:10Z"
    assert health["succeeded_at"] == "2026-03-02T08:00:00Z"  # the counts shown are from then
    assert health["brokers"]["up"] == 1


@pytest.mark.slow
def test_scheduled_collection_runs_on_a_real_worker(
    tenant: Tenant, kafka_broker_session: DevelopmentBroker, start_worker: Callable[..., WorkerProcess]
) -> None:
    bootstrap = kafka_broker_session.bootstrap_servers
    topic, group = unique("audit"), unique("archiver")
    ConfluentKafkaAdmin(bootstrap).create_topic(topic, partitions=1, replication_factor=1)
    produce_one_per_batch(bootstrap, topic, 5)
    consume_and_commit(bootstrap, group, topic, 2)
    cluster = make_cluster(tenant.organization, bootstrap_servers=bootstrap)
    unreachable = make_cluster(tenant.organization, "gone", bootstrap_servers=f"127.0.0.1:{_closed_port()}")
    start_worker(purge=True, KAFKA_ADMIN_FACTORY="tests.monitoring.test_collect.quick_admin")

    tasks.schedule_collections.delay()

    stored = wait_for(
        lambda: stored_group(cluster, group),
        timeout=60,
        what="the worker to store the group",
    )
    assert stored.total_lag == 3
    wait_for(
        lambda: (
            ClusterHealth.objects.filter(pk=unreachable.pk, status=HealthStatus.UNKNOWN)
            .exclude(collected_at=None)
            .exists()
        ),
        timeout=60,
        what="the unreachable cluster's collection",
    )
    assert ClusterHealth.objects.get(pk=cluster.pk).status == HealthStatus.OK
    assert "could not be reached" in ClusterHealth.objects.get(pk=unreachable.pk).reason


def _closed_port() -> int:
    from tests.support.kafka import free_port

    return free_port()


# -- a simulated multi-broker cluster -----------------------------------------------------------------


def simulated_three_brokers() -> SimulatedKafkaCluster:
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=7)
    simulated.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
    simulated.create_topic("clicks", 3, 1)
    return simulated


def test_broker_failures_show_as_replication_counts(tenant: Tenant) -> None:
    simulated = simulated_three_brokers()
    topics = {t.name: t for t in simulated.describe_cluster().topics}
    on_broker_2 = sum(1 for p in topics["orders"].partitions if 2 in p.replicas)
    clicks_on = {p.partition: p.replicas[0] for p in topics["clicks"].partitions}
    cluster = make_cluster(
        tenant.organization, node_ids=[1, 2, 3], replication_factor=3, min_insync_replicas=2
    )
    collect_cluster(cluster.pk, admin=simulated, now=T0)
    assert ClusterHealth.objects.get(pk=cluster.pk).status == HealthStatus.OK

    simulated.fail_broker(2)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))

    health = ClusterHealth.objects.get(pk=cluster.pk)
    assert health.status == HealthStatus.CRITICAL
    assert health.brokers_up == 2
    assert health.under_replicated_partitions == on_broker_2 == 6
    assert health.at_min_isr_partitions == 6
    assert health.under_min_isr_partitions == 0
    assert health.offline_partitions == sum(1 for b in clicks_on.values() if b == 2)
    assert sorted(map(tuple, health.under_replicated)) == [("orders", p) for p in range(6)]

    simulated.fail_broker(3)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=20))

    body = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/health/").json()
    assert body["status"] == "critical"
    assert body["brokers"] == {
        "up": 1,
        "expected": [1, 2, 3],
        "registered": [1],
        "down": [2, 3],
        "unexpected": [],
    }
    assert body["totals"]["under_min_isr"] == 6
    assert body["totals"]["offline"] == sum(1 for b in clicks_on.values() if b in (2, 3))
    assert body["topics"]["orders"]["under_min_isr"] == 6
    # Its replicas of orders and of its clicks partition (offline) are all out of sync.
    assert body["broker_counts"]["2"]["out_of_sync_replicas"] == 6 + list(clicks_on.values()).count(2)
    kinds = {f["kind"] for f in body["findings"]}
    assert {"broker_down", "under_min_isr", "under_replicated"} <= kinds
    # Partitions nobody can use explain the status before brokers and replicas do.
    assert body["reason"].startswith("Topic clicks has ")
    assert "without a live leader" in body["reason"]


def test_lag_windows_persist_between_collections(tenant: Tenant) -> None:
    simulated = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated.set_group_state("reporting", "Stable", members=2)

    # The consumer commits, but the producers write faster: Burrow's WARN.
    for step in range(5):
        simulated.produce("clicks", 0, 100)
        simulated.commit("reporting", "clicks", 0, step * 50)
        collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 * step))
    group = stored_group(cluster, "reporting")
    assert group.status == "WARN"
    assert group.total_lag == 500 - 200
    assert len(load(cluster.pk)[1]["reporting"][("clicks", 0)].observations) == 5

    # It stops committing while its members stay: STALL, once no commit is left in the window.
    for step in range(5, 15):
        simulated.produce("clicks", 0, 10)
        collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 * step))
    group = stored_group(cluster, "reporting")
    assert group.status == "STALL"
    assert group.summary.startswith("Group reporting is stalled (STALL) on clicks[0]")


def test_groups_gone_from_the_cluster_are_removed(tenant: Tenant) -> None:
    simulated = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated.commit("short-lived", "orders", 0, 0)
    collect_cluster(cluster.pk, admin=simulated, now=T0)
    assert stored_group(cluster, "short-lived") is not None

    # The simulator cannot delete a group; a new simulated cluster has none.
    collect_cluster(cluster.pk, admin=simulated_three_brokers(), now=T0 + timedelta(seconds=10))

    assert load_groups(cluster.pk) == []


def test_an_unreachable_cluster_keeps_its_windows_and_counts(tenant: Tenant) -> None:
    simulated = simulated_three_brokers()
    simulated.produce("clicks", 1, 30)
    simulated.commit("etl", "clicks", 1, 10)
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    collect_cluster(cluster.pk, admin=simulated, now=T0)

    simulated.set_reachable(False)
    snapshot = collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))

    assert snapshot is not None and snapshot.error == "simulated cluster simulated-7 is unreachable"
    health = ClusterHealth.objects.get(pk=cluster.pk)
    assert (health.status, health.brokers_up, health.succeeded_at) == (HealthStatus.UNKNOWN, 3, T0)
    group = stored_group(cluster, "etl")
    windows = load(cluster.pk)[1]
    assert (group.total_lag, len(windows["etl"][("clicks", 1)].observations)) == (20, 1)


def test_each_collection_is_handed_to_alerting(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[tuple[uuid.UUID, ClusterSnapshot, str]] = []

    def evaluate_cluster(cluster_id: uuid.UUID, snapshot: ClusterSnapshot) -> None:
        # Alerting may read what the collection stored.
        received.append((cluster_id, snapshot, ClusterHealth.objects.get(pk=cluster_id).status))

    monkeypatch.setattr(collector, "_alerting_entry_point", lambda: evaluate_cluster)
    simulated = simulated_three_brokers()
    simulated.commit("etl", "orders", 2, 0)
    cluster = make_cluster(tenant.organization, "payments", node_ids=[1, 2, 3], min_insync_replicas=2)

    collect_cluster(cluster.pk, admin=simulated, now=T0)
    simulated.set_reachable(False)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))

    (first_id, first, first_status), (_, second, second_status) = received
    assert first_id == cluster.pk
    assert (first.cluster_name, first.collected_at, first.reachable, first_status) == (
        "payments",
        T0,
        True,
        HealthStatus.OK,
    )
    assert first.expected_broker_ids == frozenset({1, 2, 3}) and first.min_insync_replicas == 2
    assert [g.group_id for g in first.groups] == ["etl"]
    assert first.health is not None and first.health.registered_brokers == frozenset({1, 2, 3})
    assert (second.reachable, second.health, second.groups, second_status) == (
        False,
        None,
        (),
        HealthStatus.UNKNOWN,
    )


# -- scheduling -----------------------------------------------------------------------------------------


def claim_and_collect(at: datetime) -> set[uuid.UUID]:
    """One beat tick and the collections it enqueues, run here instead of on a worker."""
    claimed = collector.claim_due_clusters(at)
    for cluster_id in claimed:
        collect_cluster(cluster_id, admin=simulated_three_brokers(), now=at)
    return set(claimed)


def test_due_clusters_are_claimed_once_per_interval(tenant: Tenant) -> None:
    every_10 = make_cluster(tenant.organization, "every-10")
    every_30 = make_cluster(tenant.organization, "every-30")
    Cluster.objects.filter(pk=every_30.pk).update(collection_interval_seconds=30)
    make_cluster(tenant.organization, "provisioning", status=ClusterStatus.PROVISIONING)
    make_cluster(tenant.organization, "no-address", bootstrap_servers="")

    assert claim_and_collect(T0) == {every_10.pk, every_30.pk}
    assert claim_and_collect(T0 + timedelta(seconds=5)) == set()
    # Within a second of due counts as due, so a 10 s interval on a 5 s tick stays 10 s.
    assert claim_and_collect(T0 + timedelta(seconds=9.5)) == {every_10.pk}
    assert claim_and_collect(T0 + timedelta(seconds=20)) == {every_10.pk}
    assert claim_and_collect(T0 + timedelta(seconds=30)) == {every_10.pk, every_30.pk}


def test_a_cluster_still_queued_is_not_enqueued_again(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization)
    assert collector.claim_due_clusters(T0) == [cluster.pk]

    # The workers fell behind: the collection has not run when the cluster is due again.
    assert collector.claim_due_clusters(T0 + timedelta(seconds=20)) == []
    collect_cluster(cluster.pk, admin=simulated_three_brokers(), now=T0 + timedelta(seconds=25))
    assert collector.claim_due_clusters(T0 + timedelta(seconds=30)) == [cluster.pk]
    # That one is lost with its worker: the cluster is enqueued again once the lease has passed.
    lease = collector.collection_lease()
    assert collector.claim_due_clusters(T0 + timedelta(seconds=30) + lease) == []
    assert collector.claim_due_clusters(T0 + timedelta(seconds=31) + lease) == [cluster.pk]


def test_a_cluster_being_collected_is_not_claimed_or_collected_again(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization)
    collector.claim_due_clusters(T0)
    ClusterHealth.objects.filter(pk=cluster.pk).update(collecting_until=T0 + timedelta(minutes=3))

    assert collector.claim_due_clusters(T0 + timedelta(seconds=10)) == []
    assert (
        collect_cluster(cluster.pk, admin=simulated_three_brokers(), now=T0 + timedelta(seconds=10)) is None
    )
    # A lease left by a worker that died expires.
    assert collector.claim_due_clusters(T0 + timedelta(minutes=4)) == [cluster.pk]


def test_clusters_not_collected_are_skipped(tenant: Tenant) -> None:
    failed = make_cluster(tenant.organization, status=ClusterStatus.FAILED)

    assert collect_cluster(failed.pk, admin=simulated_three_brokers(), now=T0) is None
    assert collect_cluster(uuid.uuid4(), now=T0) is None


# -- stored windows -------------------------------------------------------------------------------------


def test_windows_survive_storage_unchanged() -> None:
    at = [millis(T0 + timedelta(seconds=10 * i)) for i in range(4)]
    windows = ClusterWindows()
    for i, stamp in enumerate(at):
        billing = {("orders", 0): 100 + i}
        if i >= 2:  # joined later, and its offsets are not all known
            billing[("orders", 1)] = -1 if i == 2 else 3
        windows = windows.record(
            [("billing", billing), ("audit", {("audit.log", 7): i}), ("idle", {})],
            {("orders", 0): 200 + i, ("orders", 1): 5, ("audit.log", 7): 9}
            if i != 3
            else {("orders", 0): 203},
            stamp,
        )

    decoded = ClusterWindows.decode(windows.encode())

    assert (
        decoded.windows_by_group()
        == windows.windows_by_group()
        == {
            "billing": {
                ("orders", 0): PartitionWindow.of(
                    [Observation(t, 100 + i, 200 + i) for i, t in enumerate(moments(at))]
                ),
                ("orders", 1): PartitionWindow.of(
                    [
                        Observation(T0 + timedelta(seconds=20), None, 5),
                        Observation(T0 + timedelta(seconds=30), 3, None),
                    ]
                ),
            },
            "audit": {
                ("audit.log", 7): PartitionWindow.of(
                    [Observation(t, i, 9 if i < 3 else None) for i, t in enumerate(moments(at))]
                ),
            },
        }
    )
    assert decoded.size == 10 and decoded.max_age_ms == 3_600_000
    for nothing in (b"", None, b"KCPW\x03garbage", windows.encode()[:-8], '{"v": 99}', "not json"):
        assert ClusterWindows.decode(nothing).windows_by_group() == {}


def moments(stamps: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(stamp / 1000, UTC) for stamp in stamps]


def test_windows_stored_as_json_by_earlier_versions_are_read() -> None:
    """After an upgrade the first collection of each cluster continues the windows stored before."""
    t = [millis(T0 + timedelta(seconds=10 * i)) for i in range(3)]
    stored = (
        f'{{"v":2,"size":10,"max_age":3600.0,"t":[{t[0]},{t[1]},{t[2]}],"g":{{'
        f'"billing":[["orders",0,0,[100,101,102],[200,201,202]],["orders",1,1,[null,3],[5,null]]],'
        f'"audit":[["audit.log",7,[0,2],[1,2],[2,9],[null,{t[1]}]],["empty",0,0,[],[]]]}}}}'
    )

    for data in (stored, stored.encode()):  # the column's text, then its bytes after the migration
        windows = ClusterWindows.decode(data).windows_by_group()
        assert windows["billing"] == {
            ("orders", 0): PartitionWindow(times=t, committed=[100, 101, 102], ends=[200, 201, 202]),
            ("orders", 1): PartitionWindow(times=t[1:], committed=[None, 3], ends=[5, None]),
        }
        # A gap keeps the newest run of observations; commit times, which no collection records, go.
        assert windows["audit"] == {
            ("audit.log", 7): PartitionWindow(times=t[2:], committed=[2], ends=[9]),
            ("empty", 0): PartitionWindow(),
        }
    assert decode_windows(stored) == ClusterWindows.decode(stored).windows_by_group()


def test_stored_windows_keep_their_format() -> None:
    """Windows written by one version are read by the next: the stored bytes must not drift."""
    t = [millis(T0 + timedelta(seconds=10 * i)) for i in range(2)]
    windows = ClusterWindows().record([("g", {("t", 0): 5})], {("t", 0): 9}, t[0])
    windows = windows.record([("g", {("t", 0): 6, ("t", 1): -1})], {("t", 0): 9}, t[1], size=3)

    header = b'{"size":3,"max_age_ms":3600000,"columns":2,"keys":[["g","t",0],["g","t",1]]}'
    stamps = "00ac8fad9c010000" + "10d38fad9c010000"  # the two collection times, epoch ms
    starts = "0000000000000000" + "0100000000000000"  # each row's first column
    committed = "0500000000000000" + "0600000000000000" + "ffffffffffffffff" * 2
    ends = "0900000000000000" * 2 + "ffffffffffffffff" * 2
    assert windows.encode().hex() == (
        b"KCPW\x03".hex() + "4c000000" + header.hex() + stamps + starts + committed + ends
    )


@pytest.mark.django_db
def test_windows_are_compressed_with_lz4_where_postgresql_has_it() -> None:
    """pglz, the default, costs several times lz4's CPU on a document rewritten every collection."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL is built without lz4")
        cursor.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'monitoring_lagstate'::regclass AND attname IN ('groups', 'windows')"
        )
        assert [row[0] for row in cursor.fetchall()] == ["l", "l"]


def test_the_collection_statements_are_prepared_and_planned_once(tenant: Tenant, settings: Any) -> None:
    """Planning the cluster read cost PostgreSQL more than running it, on every collection."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    simulated = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated.set_group_state("reporting", "Stable", members=1)
    simulated.commit("reporting", "clicks", 0, 0)
    read, health, lag = (
        'SELECT c."name"',
        'UPDATE "monitoring_clusterhealth" SET "status"',
        ('INSERT INTO "monitoring_lagstate"'),
    )
    before = {statement: generic_plans_of(statement) for statement in (read, health, lag)}

    for step in range(3):
        assert collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 * step))
    # Each collection ran each statement once, prepared, on the plan made once for the session.
    assert {statement: generic_plans_of(statement) - before[statement] for statement in before} == {
        read: 3,
        health: 3,
        lag: 3,
    }
    assert group_status(cluster, "reporting") == "OK"

    settings.DATABASE_PREPARED_STATEMENTS = False
    assert collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=40))
    assert generic_plans_of(read) - before[read] == 3


@pytest.mark.django_db(transaction=True)
def test_a_collection_whose_writes_fail_stores_nothing_and_the_next_one_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collection's writes go to PostgreSQL together (`collection_sql.pipelined`), so an error
    surfaces at their end rather than at its statement: the transaction must still roll back whole,
    the lease be released and the connection stay usable."""
    tenant = make_tenant("Acme")
    simulated = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated.set_group_state("reporting", "Stable", members=1)
    simulated.commit("reporting", "clicks", 0, 0)
    assert collect_cluster(cluster.pk, admin=simulated, now=T0)

    def failing_history(snapshot: ClusterSnapshot) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO monitoring_clustersample (cluster_id) VALUES (NULL)")

    monkeypatch.setattr(collector.history, "record_samples", failing_history)
    simulated.produce("clicks", 0, 50)
    with pytest.raises(IntegrityError):
        collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))

    health = ClusterHealth.objects.get(pk=cluster.pk)
    assert (health.collected_at, health.collecting_until) == (T0, None)
    assert stored_group(cluster, "reporting").total_lag == 0
    monkeypatch.undo()
    assert collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=20))
    assert stored_group(cluster, "reporting").total_lag == 50


def group_status(cluster: Cluster, group_id: str) -> str | None:
    group = stored_group(cluster, group_id)
    return group.status if group else None


def test_stored_groups_keep_their_format() -> None:
    """Groups written by earlier versions are read by later ones; an unknown format reads as none."""
    text = (
        '{"v":1,"g":[["billing","Stable",2,"WARN","Group billing is falling behind.",40,30,12.5,'
        '{"orders":[40,12.5]}]]}'
    )

    (group,) = decode_groups(text, T0)

    assert group == StoredGroup(
        group_id="billing",
        state="Stable",
        members=2,
        status="WARN",
        summary="Group billing is falling behind.",
        total_lag=40,
        max_lag=30,
        time_lag_seconds=12.5,
        topics={"orders": [40, 12.5]},
        collected_at=T0,
    )
    assert group.status_rank == LagStatus.WARN.rank
    assert decode_groups('{"v":99,"g":[[1]]}', T0) == decode_groups("", T0) == []
