"""Delivering incident events: retries with backoff, every attempt recorded, order per channel, and
channels that never hold each other up. Receivers are real HTTP servers on loopback; the last tests
run the delivery tasks in a real Celery worker on Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from controlplane.audit.actions import Actor
from controlplane.clusters.models import Cluster
from monitoring.alerting import actions, tasks
from monitoring.alerting.choices import DeliveryEvent, DeliveryStatus
from monitoring.alerting.delivery import DEFAULT_MAX_ATTEMPTS, backoff_seconds
from monitoring.alerting.evaluation import evaluate_cluster
from monitoring.alerting.models import Delivery, Incident, NotificationChannel
from monitoring.notifiers import verify_signature
from monitoring.notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.alerting import Observer, make_cluster, run_due_deliveries, unreachable_snapshot
from tests.support.http_receiver import HttpReceiver
from tests.support.kafka import free_port
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import SYSTEM, Tenant
from tests.support.workers import WorkerProcess

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
SECRET = "whsec-test-0123456789"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def channel(
    tenant: Tenant, name: str, kind: str, config: dict[str, Any], **options: Any
) -> NotificationChannel:
    return actions.create_channel(
        organization=tenant.organization,
        name=name,
        kind=kind,
        config=config,
        min_severity=options.get("min_severity", "warning"),
        enabled=True,
        repeat_interval_seconds=None,
        actor=SYSTEM,
    )


def webhook(tenant: Tenant, url: str, name: str = "hook") -> NotificationChannel:
    return channel(tenant, name, "webhook", {"url": url, "secret": SECRET})


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return make_cluster(tenant.organization, name="payments")


def fire_broker_down(cluster: Cluster, seconds: float = 0) -> Incident:
    kafka = SimulatedKafkaCluster.with_brokers(3)
    kafka.fail_broker(2)
    evaluate_cluster(cluster.pk, Observer(cluster, kafka).snapshot(at(seconds)))
    return Incident.objects.get(cluster=cluster, rule_key="broker_down")


def attempts(channel: NotificationChannel) -> list[Delivery]:
    return list(channel.deliveries.order_by("pk"))


def test_a_failing_receiver_is_retried_with_doubling_backoff_and_every_attempt_is_recorded(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    hook = webhook(tenant, http_receiver.url_for("/hook"))
    http_receiver.fail_first(2, status=503)
    fire_broker_down(cluster)

    run_due_deliveries(at(0))
    run_due_deliveries(at(1.9))  # the second attempt is not due yet
    assert len(http_receiver.requests) == 1
    run_due_deliveries(at(2))
    run_due_deliveries(at(6))

    rows = attempts(hook)
    assert [(d.attempt, d.status, d.response_code) for d in rows] == [
        (1, DeliveryStatus.RETRYING, 503),
        (2, DeliveryStatus.RETRYING, 503),
        (3, DeliveryStatus.DELIVERED, 200),
    ]
    assert [d.due_at for d in rows] == [at(0), at(0 + backoff_seconds(1)), at(2 + backoff_seconds(2))]
    assert {d.first_attempt_id for d in rows[1:]} == {rows[0].pk}
    assert "503" in rows[0].error
    assert len(http_receiver.requests) == 3
    assert len({r.header("X-KCP-Delivery") for r in http_receiver.requests}) == 3


def test_a_permanent_rejection_is_not_retried(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    hook = webhook(tenant, http_receiver.url_for("/hook"))
    http_receiver.respond_with(400, "bad request")
    fire_broker_down(cluster)

    run_due_deliveries(at(0))
    run_due_deliveries(at(3600))

    (only,) = attempts(hook)
    assert (only.status, only.response_code) == (DeliveryStatus.FAILED, 400)
    assert only.error == "receiver answered 400 Bad Request"


def test_retry_after_from_the_receiver_is_honoured(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    hook = webhook(tenant, http_receiver.url_for("/hook"))
    http_receiver.fail_first(1, status=429, headers={"Retry-After": "30"})
    fire_broker_down(cluster)

    run_due_deliveries(at(0))

    first, second = attempts(hook)
    assert first.status == DeliveryStatus.RETRYING
    assert second.due_at == at(30)


def test_retries_stop_after_the_last_allowed_attempt(
    tenant: Tenant, cluster: Cluster, allow_loopback_receivers: None
) -> None:
    dead = webhook(tenant, f"http://127.0.0.1:{free_port()}/closed")
    fire_broker_down(cluster)

    for hour in range(DEFAULT_MAX_ATTEMPTS + 2):
        run_due_deliveries(at(3600 * hour))

    rows = attempts(dead)
    assert len(rows) == DEFAULT_MAX_ATTEMPTS
    assert [d.status for d in rows] == [DeliveryStatus.RETRYING] * (DEFAULT_MAX_ATTEMPTS - 1) + [
        DeliveryStatus.FAILED
    ]
    assert all(d.error == "could not connect to the receiver" for d in rows)


def test_the_webhook_is_signed_with_the_channel_secret(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    webhook(tenant, http_receiver.url_for("/hook"))
    incident = fire_broker_down(cluster)

    run_due_deliveries(at(0))

    (request,) = http_receiver.requests
    timestamp, signature = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert not verify_signature("another-secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body.replace(b"broker", b"BROKER"), signature)
    body = request.json()
    assert body["event"] == "trigger" and body["dedup_key"] == incident.notification_key
    assert body["rule"] == "broker_down" and body["subject"] == "broker:2" and body["cluster"] == "payments"
    assert body["details"]["incident"] == incident.pk


def test_pagerduty_gets_trigger_acknowledge_and_resolve_with_one_dedup_key(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    channel(
        tenant,
        "pager",
        "pagerduty",
        {"routing_key": "R0UT1NGKEY", "url": http_receiver.url_for("/v2/enqueue")},
        min_severity="critical",
    )
    http_receiver.respond_with(202, '{"status":"success"}')
    kafka = SimulatedKafkaCluster.with_brokers(3)
    observer = Observer(cluster, kafka)
    kafka.fail_broker(2)
    evaluate_cluster(cluster.pk, observer.snapshot(at(0)))
    run_due_deliveries(at(0))
    incident = Incident.objects.get(rule_key="broker_down")

    actions.acknowledge_incident(incident=incident, actor=Actor(user=tenant.admin))
    run_due_deliveries()
    kafka.restore_broker(2)
    kafka.advance(kafka.rejoin_delay_seconds + 1)
    evaluate_cluster(cluster.pk, observer.snapshot(at(60)))
    run_due_deliveries()

    events = [r.json() for r in http_receiver.requests]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {incident.notification_key}
    assert {e["routing_key"] for e in events} == {"R0UT1NGKEY"}
    assert events[0]["payload"]["severity"] == "critical"
    assert events[0]["payload"]["source"] == "payments"
    assert events[0]["payload"]["class"] == "broker_down"


def test_a_resolve_supersedes_a_trigger_still_waiting_for_its_retry(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    hook = webhook(tenant, http_receiver.url_for("/hook"))
    http_receiver.fail_first(1, status=503)
    incident = fire_broker_down(cluster)
    run_due_deliveries(at(0))

    actions.resolve_incident(incident=incident, actor=Actor(user=tenant.admin))
    run_due_deliveries()

    statuses = [(d.event, d.status) for d in attempts(hook)]
    assert statuses == [
        (DeliveryEvent.TRIGGER, DeliveryStatus.RETRYING),
        (DeliveryEvent.TRIGGER, DeliveryStatus.SUPERSEDED),
        (DeliveryEvent.RESOLVE, DeliveryStatus.DELIVERED),
    ]
    assert [r.json()["event"] for r in http_receiver.requests] == ["trigger", "resolve"]


def test_a_disabled_channel_records_its_pending_attempt_as_failed(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver
) -> None:
    hook = webhook(tenant, http_receiver.url_for("/hook"))
    fire_broker_down(cluster)
    actions.update_channel(channel=hook, changes={"enabled": False}, actor=SYSTEM)

    run_due_deliveries(at(0))

    (only,) = attempts(hook)
    assert only.status == DeliveryStatus.FAILED and "disabled" in only.error
    assert http_receiver.requests == []


def test_test_notifications_reach_pagerduty_as_a_trigger_resolved_at_once(
    tenant: Tenant, http_receiver: HttpReceiver
) -> None:
    pager = channel(
        tenant,
        "pager",
        "pagerduty",
        {"routing_key": "R0UT1NGKEY", "url": http_receiver.url_for("/v2/enqueue")},
    )
    http_receiver.respond_with(202, "{}")

    row = actions.send_test_notification(channel=pager, actor=Actor(user=tenant.admin))
    run_due_deliveries()

    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED and row.event == DeliveryEvent.TEST
    actions_sent = [(r.json()["event_action"], r.json()["dedup_key"]) for r in http_receiver.requests]
    assert actions_sent == [("trigger", row.dedup_key), ("resolve", row.dedup_key)]


# Through a real Celery worker on Redis.


@pytest.fixture
def second_receiver(allow_loopback_receivers: None) -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.slow
def test_a_worker_retries_a_flaky_channel_until_it_succeeds_while_a_dead_one_holds_nobody_up(
    start_worker: Any,
    tenant: Tenant,
    http_receiver: HttpReceiver,
    second_receiver: HttpReceiver,
) -> None:
    cluster = make_cluster(tenant.organization, name="payments")
    flaky = webhook(tenant, http_receiver.url_for("/flaky"), name="flaky")
    http_receiver.fail_first(2, status=503)
    dead = webhook(tenant, f"http://127.0.0.1:{free_port()}/closed", name="dead")
    healthy = channel(
        tenant,
        "pager",
        "pagerduty",
        {"routing_key": "R0UT1NGKEY", "url": second_receiver.url_for("/v2/enqueue")},
    )
    worker: WorkerProcess = start_worker(purge=True)

    # Committed at once (transactional test): the deliveries are queued on Redis for the worker.
    evaluate_cluster(cluster.pk, unreachable_snapshot(cluster, datetime.now(UTC)))
    incident = Incident.objects.get(cluster=cluster)

    (page,) = second_receiver.wait_for_requests(1, timeout=30)
    assert page.json()["event_action"] == "trigger"
    assert page.json()["dedup_key"] == incident.notification_key
    assert page.json()["payload"]["class"] == "cluster_unreachable"

    # Backoff doubles from two seconds: the flaky channel's third attempt comes about six seconds in.
    requests = http_receiver.wait_for_requests(3, timeout=60)
    assert [r.json()["dedup_key"] for r in requests] == [incident.notification_key] * 3
    last = requests[-1]
    assert verify_signature(SECRET, last.header(TIMESTAMP_HEADER), last.body, last.header(SIGNATURE_HEADER))
    wait_until(
        lambda: flaky.deliveries.filter(status=DeliveryStatus.DELIVERED).exists(),
        timeout=30,
        what="the flaky channel's successful attempt recorded",
    )
    assert [(d.attempt, d.status, d.response_code) for d in attempts(flaky)] == [
        (1, DeliveryStatus.RETRYING, 503),
        (2, DeliveryStatus.RETRYING, 503),
        (3, DeliveryStatus.DELIVERED, 200),
    ]
    assert healthy.deliveries.get().status == DeliveryStatus.DELIVERED

    dead_attempts = attempts(dead)
    assert len(dead_attempts) >= 2
    assert all(d.error == "could not connect to the receiver" for d in dead_attempts[:-1])
    assert not dead.deliveries.filter(status=DeliveryStatus.DELIVERED).exists()
    assert worker.process.poll() is None


def test_an_evaluation_hands_its_deliveries_over_in_one_message(
    tenant: Tenant, cluster: Cluster, http_receiver: HttpReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    """A collection whose evaluation pages through several channels sends one Celery message, which
    the notification workers fan out into one task per attempt: a fleet sweep that opens thousands of
    incidents must not pay a message per notification."""
    hooks = [webhook(tenant, http_receiver.url_for(f"/hook-{n}"), name=f"hook-{n}") for n in range(3)]
    with (
        mock.patch.object(tasks.dispatch_deliveries, "delay") as handed_over,
        mock.patch.object(tasks.deliver_notification, "apply_async") as sent_one_by_one,
        django_capture_on_commit_callbacks(execute=True),
    ):
        fire_broker_down(cluster)
    ids = sorted(d.pk for hook in hooks for d in attempts(hook))
    assert len(ids) == 3
    handed_over.assert_called_once()
    assert sorted(handed_over.call_args.args[0]) == ids
    sent_one_by_one.assert_not_called()

    with mock.patch.object(tasks.deliver_notification, "apply_async") as fanned_out:
        tasks.dispatch_deliveries(ids)
    assert sorted(call.args[0][0] for call in fanned_out.call_args_list) == ids
