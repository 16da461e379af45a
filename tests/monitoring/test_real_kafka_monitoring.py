"""Monitoring of real Apache Kafka: consumer lag, time lag and Burrow statuses of a real consumer group,
paging through a real Celery worker to a real HTTP receiver, and disk usage from DescribeLogDirs.

The consumer tests share the session's three-broker cluster (they only create their own topic and
group). Unlike the development broker, Apache Kafka counts offsets per record, knows a group's members
and states, and reports the size of each broker's volumes, so these tests check those too.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.test import Client

from controlplane.clusters.models import Cluster
from monitoring.alerting import actions
from monitoring.alerting.choices import IncidentState
from monitoring.alerting.models import Incident
from monitoring.collector import ClusterSnapshot, collect_cluster
from monitoring.conditions import CONSUMER_LAG_STATUS, DISK_USAGE
from monitoring.lag_state import StoredGroup, load_groups
from monitoring.models import ClusterHealth
from monitoring.notifiers import verify_signature
from monitoring.notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from provisioning.backends.local import stop_all
from tests.monitoring.test_exporter import scrape, value
from tests.support.alerting import make_cluster
from tests.support.apache_kafka import KafkaTestCluster, kafka_spec, make_backend, wait_for
from tests.support.http_receiver import HttpReceiver, RecordedRequest
from tests.support.tenants import SYSTEM, Tenant, token_client

pytestmark = [
    pytest.mark.slow,
]

SECRET = "whsec-real-kafka-0123456789"
CLIENT_ID = "billing-app"
# Other processes write to the same filesystem while a test runs.
DISK_TOLERANCE_BYTES = 256 * 2**20


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for number in range(count):
        producer.produce(topic, value=f"order {number}".encode(), partition=0)
    assert producer.flush(30) == 0


def read_and_commit(consumer: Consumer, topic: str, offset: int) -> None:
    """Read partition 0 up to `offset` and commit it; the consumer stays in its group."""

    def read_enough() -> bool:
        message = consumer.poll(0.5)
        return message is not None and message.error() is None and message.offset() >= offset - 1

    wait_for(read_enough, 60, interval=0, what=f"{topic}[0] read up to offset {offset}")
    consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)


def group_member(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": CLIENT_ID,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def commit_as_group(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Commit an offset for an empty group without joining it, as an offset reset tool does."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def stored(cluster: Cluster, group: str) -> StoredGroup:
    return next(g for g in load_groups(cluster.pk) if g.group_id == group)


def arrived(receiver: HttpReceiver, path: str, count: int) -> list[RecordedRequest]:
    def matching() -> list[RecordedRequest]:
        found = [r for r in receiver.requests if r.path == path]
        return found if len(found) >= count else []

    return wait_for(matching, 60, what=f"{count} requests to {path}")


def collect(cluster: Cluster) -> ClusterSnapshot:
    snapshot = collect_cluster(cluster.pk)
    assert snapshot is not None and snapshot.reachable, snapshot
    return snapshot


def test_a_real_consumer_group_is_judged_paged_and_resolved(
    apache_kafka_cluster: KafkaTestCluster,
    tenant: Tenant,
    start_worker: Callable[..., Any],
    http_receiver: HttpReceiver,
) -> None:
    bootstrap = apache_kafka_cluster.bootstrap_servers
    topic, group = unique("orders"), unique("billing")
    apache_kafka_cluster.topic(topic, partitions=1)
    cluster = make_cluster(tenant.organization, name="shared", bootstrap_servers=bootstrap)
    for name, kind, config in (
        ("hook", "webhook", {"url": http_receiver.url_for("/hook"), "secret": SECRET}),
        ("pager", "pagerduty", {"routing_key": "R0UT1NGKEY", "url": http_receiver.url_for("/v2/enqueue")}),
    ):
        actions.create_channel(
            organization=tenant.organization,
            name=name,
            kind=kind,
            config=config,
            min_severity="critical",
            enabled=True,
            repeat_interval_seconds=None,
            actor=SYSTEM,
        )
    start_worker(purge=True)
    client = token_client(tenant.viewer)

    produce(bootstrap, topic, 50)
    member = group_member(bootstrap, group, topic)
    try:
        read_and_commit(member, topic, 20)
        first = collect(cluster)
        # A real group: joined, one member, offsets per record.
        shown = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/{group}/").json()
        assert (shown["state"], shown["members"], shown["total_lag"]) == ("Stable", 1, 30)
        assert shown["status"] == "OK"  # one observation shows no trend yet
        # Its member as DescribeConsumerGroups names it, on the group's dashboard page.
        (seen,) = stored(cluster, group).member_details
        assert (seen.client_id, seen.host, seen.assignment) == (CLIENT_ID, "/127.0.0.1", ((topic, 0),))
        assert shown["member_details"][0]["client_id"] == CLIENT_ID
        browser = Client()
        browser.force_login(tenant.viewer)
        page = browser.get(f"/clusters/{cluster.pk}/groups/{group}/").content.decode()
        assert f'data-client="{CLIENT_ID}"' in page and "/127.0.0.1" in page

        # The member stays but stops committing while messages keep arriving.
        produce(bootstrap, topic, 30)
        second = collect(cluster)
        stalled = stored(cluster, group)
        assert (stalled.status, stalled.total_lag) == ("STALL", 60)
        # Offset 20 arrived before the window began: extrapolated at the window's produce rate (30
        # messages over the span) it is 30 messages, one more span, before the first collection.
        span = (second.collected_at - first.collected_at).total_seconds()
        assert stalled.topics[topic][1] == pytest.approx(2 * span, abs=0.01)
        # The 30 messages count as messages in (and bytes in) of the partition's leader; other
        # partitions (the group's own commits to __consumer_offsets) may add to it, never take away.
        leader = next(p.leader for t in second.state.topics if t.name == topic for p in t.partitions)
        rate = second.broker_rates[leader]
        assert rate.messages_per_second * span >= 30 - 0.01 and rate.bytes_per_second > 30
    finally:
        member.close()

    page = Incident.objects.get(cluster=cluster, rule_key=CONSUMER_LAG_STATUS)
    assert page.state == IncidentState.FIRING and page.subject == f"group:{group}"
    (hook,) = arrived(http_receiver, "/hook", 1)
    assert verify_signature(SECRET, hook.header(TIMESTAMP_HEADER), hook.body, hook.header(SIGNATURE_HEADER))
    assert (hook.json()["event"], hook.json()["dedup_key"]) == ("trigger", page.notification_key)
    (pagerduty,) = arrived(http_receiver, "/v2/enqueue", 1)
    assert pagerduty.json()["event_action"] == "trigger"
    assert pagerduty.json()["payload"]["component"] == f"group:{group}"

    # The member left: nobody can commit, so the group has stopped rather than stalled.
    wait_for(lambda: collect(cluster) and stored(cluster, group).status == "STOP", 60, what="STOP")
    assert client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/{group}/").json()["state"] == "Empty"

    # An operator resets the group's offset backwards: REWIND, which is no reason to page.
    commit_as_group(bootstrap, group, topic, 10)
    collect(cluster)
    assert stored(cluster, group).status == "REWIND"
    page.refresh_from_db()
    assert page.state == IncidentState.RESOLVED
    assert arrived(http_receiver, "/hook", 2)[-1].json()["event"] == "resolve"
    assert arrived(http_receiver, "/v2/enqueue", 2)[-1].json()["event_action"] == "resolve"

    member = group_member(bootstrap, group, topic)
    try:
        read_and_commit(member, topic, 80)
        collect(cluster)
        caught_up = stored(cluster, group)
        assert (caught_up.status, caught_up.total_lag) == ("OK", 0)
    finally:
        member.close()


def test_disk_usage_of_real_brokers_is_what_their_filesystem_says(
    apache_kafka_cluster: KafkaTestCluster, tenant: Tenant
) -> None:
    """The filesystem here is not nearly full, so the alert is made to fire by lowering its threshold
    below the real figure; `test_a_nearly_full_volume_fires_the_default_disk_alert` fills one."""
    cluster = make_cluster(
        tenant.organization, name="shared", bootstrap_servers=apache_kafka_cluster.bootstrap_servers
    )

    snapshot = collect(cluster)

    disks = ClusterHealth.objects.get(pk=cluster.pk).disks
    assert sorted(disks) == ["1", "2", "3"]
    for broker, disk in disks.items():
        stats = os.statvfs(disk["path"])
        assert disk["path"].endswith(f"broker-{broker}/data")
        assert disk["total_bytes"] == stats.f_blocks * stats.f_frsize
        assert abs(disk["usable_bytes"] - stats.f_bavail * stats.f_frsize) < DISK_TOLERANCE_BYTES
    labels = {"organization": tenant.organization.slug, "cluster": "shared", "broker": "2"}
    assert value(scrape(), "kafka_broker_disk_used_percent", **labels) == disks["2"]["used_percent"]

    fullest = max(d.used_percent for d in (snapshot.disks or {}).values())
    actions.set_rule_override(
        organization=tenant.organization,
        cluster=cluster,
        rule_key=DISK_USAGE,
        values={"threshold": max(0.0, fullest - 5), "for_seconds": 0},
        actor=SYSTEM,
    )
    collect(cluster)
    firing = Incident.objects.filter(cluster=cluster, rule_key=DISK_USAGE, state=IncidentState.FIRING)
    assert sorted(firing.values_list("subject", flat=True)) == ["broker:1", "broker:2", "broker:3"]


@pytest.fixture
def kafka_on_small_volume(
    tmp_path: Path, kafka_distributions: Callable[[str], Any], java_home: Path
) -> Iterator[tuple[KafkaTestCluster, Path]]:
    """A one-broker cluster whose data directory is on a 512 MiB tmpfs, a volume that can really be
    filled. Mounting needs root (or CAP_SYS_ADMIN)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(volume)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small filesystem here ({mounted.stderr.strip()}); the disk alert is still "
            "shown firing from real figures, with a lowered threshold, by the test before this one"
        )
    state_dir = volume / "kafka"
    kafka = KafkaTestCluster(
        make_backend(state_dir, kafka_distributions, java_home), kafka_spec(brokers=1, name="small")
    )
    try:
        yield kafka.start(), volume
    finally:
        kafka.delete()
        stop_all(state_dir, grace=0)
        subprocess.run(["umount", "--lazy", str(volume)], check=False)


def test_a_nearly_full_volume_fires_the_default_disk_alert(
    kafka_on_small_volume: tuple[KafkaTestCluster, Path], tenant: Tenant
) -> None:
    """A ballast file fills the broker's volume to 90%: the default threshold (85% used) fires, and
    freeing the space resolves it. Not shown: several log directories per broker (JBOD), and a volume
    filled by Kafka's own segments rather than by another file."""
    kafka, volume = kafka_on_small_volume
    cluster = make_cluster(
        tenant.organization,
        name="small",
        brokers=1,
        min_insync_replicas=1,
        bootstrap_servers=kafka.bootstrap_servers,
    )
    actions.set_rule_override(
        organization=tenant.organization,
        cluster=cluster,
        rule_key=DISK_USAGE,
        values={"for_seconds": 0},  # the default waits 5 minutes; the threshold stays the default
        actor=SYSTEM,
    )
    collect(cluster)
    assert not Incident.objects.filter(cluster=cluster, rule_key=DISK_USAGE).exists()

    stats = os.statvfs(volume)
    ballast = volume / "ballast"
    with ballast.open("wb") as file:
        # Leave a tenth of the volume usable.
        os.posix_fallocate(file.fileno(), 0, (stats.f_bavail - stats.f_blocks // 10) * stats.f_frsize)
    collect(cluster)

    incident = Incident.objects.get(cluster=cluster, rule_key=DISK_USAGE)
    assert incident.state == IncidentState.FIRING and incident.subject == "broker:1"
    assert 85 < incident.value < 95

    ballast.unlink()
    collect(cluster)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
