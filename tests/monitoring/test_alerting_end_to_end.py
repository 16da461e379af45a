"""From a real Kafka-protocol broker to a page: collection, evaluation, and delivery by a real Celery
worker to a real HTTP receiver standing in for PagerDuty and a customer's webhook endpoint.

The broker is Tansu (one node, no replication), so what it can show is consumer lag and the whole
cluster going away; broker failures among live brokers are covered with the simulated cluster in
test_alerting_lifecycle.py. Consumers commit with manual partition assignment: a real OffsetCommit
without the ~20 s group join Tansu takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from monitoring.alerting import actions
from monitoring.alerting.choices import DeliveryStatus, IncidentState
from monitoring.alerting.models import Incident
from monitoring.alerting.rules import CLUSTER_UNREACHABLE
from monitoring.collector import collect_cluster
from monitoring.conditions import CONSUMER_LAG_STATUS
from monitoring.notifiers import verify_signature
from monitoring.notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.alerting import make_cluster
from tests.support.http_receiver import HttpReceiver, RecordedRequest
from tests.support.kafka import CONSUMER_CONFIG, PRODUCER_CONFIG, TANSU_NODE_ID, DevelopmentBroker
from tests.support.tenants import SYSTEM, Tenant

SECRET = "whsec-end-to-end-0123456789"
TOPIC, GROUP = "payments", "billing"


def produce(bootstrap: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG})
    for number in range(count):
        producer.produce(TOPIC, value=f"payment {number}".encode(), partition=0)
        assert producer.flush(10) == 0  # one record per batch: Tansu counts offsets per batch


def consume_up_to(bootstrap: str, offset: int) -> None:
    """Read the partition from the start and commit `offset`, as a consumer that then stops."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, **CONSUMER_CONFIG})
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        read = 0
        deadline = time.monotonic() + 30
        while read < offset and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                read += 1
        assert read == offset, f"read {read} of {offset} records in 30 s"
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)
    return result


def arrived(receiver: HttpReceiver, path: str, count: int) -> list[RecordedRequest]:
    def matching() -> list[RecordedRequest]:
        found = [r for r in receiver.requests if r.path == path]
        return found if len(found) >= count else []

    return wait_for(matching, timeout=30, what=f"{count} requests to {path}")


@pytest.mark.slow
def test_a_stopped_consumer_pages_its_catching_up_resolves_and_a_dead_broker_pages(
    start_worker: Any, tenant: Tenant, kafka_broker: DevelopmentBroker, http_receiver: HttpReceiver
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    admin = ConfluentKafkaAdmin(bootstrap, timeout=2.0)
    admin.create_topic(TOPIC, partitions=1, replication_factor=1)
    produce(bootstrap, 10)
    consume_up_to(bootstrap, 4)
    cluster = make_cluster(
        tenant.organization,
        name="payments",
        broker_ids=[TANSU_NODE_ID],
        min_insync_replicas=1,
        bootstrap_servers=bootstrap,
    )
    for name, kind, config, severity in (
        ("hook", "webhook", {"url": http_receiver.url_for("/hook"), "secret": SECRET}, "warning"),
        (
            "pager",
            "pagerduty",
            {"routing_key": "R0UT1NGKEY", "url": http_receiver.url_for("/v2/enqueue")},
            "critical",
        ),
    ):
        actions.create_channel(
            organization=tenant.organization,
            name=name,
            kind=kind,
            config=config,
            min_severity=severity,
            enabled=True,
            repeat_interval_seconds=None,
            actor=SYSTEM,
        )
    start_worker(purge=True)

    # Two collections with the committed offset unmoved and six messages waiting: STALL or STOP.
    collect_cluster(cluster.pk, admin=admin)
    time.sleep(1)
    collect_cluster(cluster.pk, admin=admin)

    lagging = Incident.objects.get(cluster=cluster, rule_key=CONSUMER_LAG_STATUS)
    assert lagging.state == IncidentState.FIRING and lagging.subject == f"group:{GROUP}"
    assert lagging.details["status"] in ("STALL", "STOP") and lagging.details["total_lag"] == 6
    (hook,) = arrived(http_receiver, "/hook", 1)
    assert verify_signature(SECRET, hook.header(TIMESTAMP_HEADER), hook.body, hook.header(SIGNATURE_HEADER))
    assert hook.json()["event"] == "trigger" and hook.json()["dedup_key"] == lagging.notification_key
    assert hook.json()["details"]["status"] == lagging.details["status"]
    (page,) = arrived(http_receiver, "/v2/enqueue", 1)
    assert page.json()["event_action"] == "trigger"
    assert page.json()["dedup_key"] == lagging.notification_key
    assert page.json()["payload"]["severity"] == "critical"
    assert page.json()["payload"]["component"] == f"group:{GROUP}"

    consume_up_to(bootstrap, 10)
    collect_cluster(cluster.pk, admin=admin)

    lagging.refresh_from_db()
    assert lagging.state == IncidentState.RESOLVED
    resolve_hook = arrived(http_receiver, "/hook", 2)[-1].json()
    resolve_page = arrived(http_receiver, "/v2/enqueue", 2)[-1].json()
    assert (resolve_hook["event"], resolve_hook["dedup_key"]) == ("resolve", lagging.notification_key)
    assert (resolve_page["event_action"], resolve_page["dedup_key"]) == ("resolve", lagging.notification_key)

    kafka_broker.kill()
    collect_cluster(cluster.pk, admin=admin)

    down = Incident.objects.get(cluster=cluster, rule_key=CLUSTER_UNREACHABLE)
    assert down.state == IncidentState.FIRING and down.severity == "critical"
    page = arrived(http_receiver, "/v2/enqueue", 3)[-1].json()
    assert (page["event_action"], page["dedup_key"]) == ("trigger", down.notification_key)
    assert page["payload"]["class"] == CLUSTER_UNREACHABLE
    assert "payments" in page["payload"]["summary"]
    wait_for(
        lambda: (
            not down.deliveries.exclude(status=DeliveryStatus.DELIVERED).exists()
            and down.deliveries.count() == 2
        ),
        timeout=30,
        what="both channels' deliveries of the unreachable alert recorded as delivered",
    )
    admin.close()
