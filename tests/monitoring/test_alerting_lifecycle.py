"""The alert lifecycle driven by snapshots at chosen moments (a fake clock).

Health comes from `SimulatedKafkaCluster`, because the real test broker (Tansu) is a single node and
cannot show a dead broker among live ones, an under-replicated or an offline partition. Notifications
go to a real HTTP receiver on loopback; deliveries run in this process (`run_due_deliveries`), and
the path through a real Celery worker is covered in test_delivery.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.clusters.models import Cluster
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from monitoring.alerting import actions, housekeeping
from monitoring.alerting.choices import DeliveryEvent, DeliveryStatus, IncidentState
from monitoring.alerting.evaluation import evaluate_cluster, notification_key
from monitoring.alerting.models import (
    Delivery,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    RuleOverrideRecord,
    Silence,
)
from monitoring.alerting.rules import CLUSTER_UNREACHABLE
from monitoring.conditions import (
    BROKER_DOWN,
    CONSUMER_LAG_STATUS,
    MAX_DEDUP_KEY_LENGTH,
    OFFLINE_PARTITIONS,
    UNDER_MIN_ISR,
    UNDER_REPLICATED,
)
from tests.support.alerting import Observer, make_cluster, run_due_deliveries, unreachable_snapshot
from tests.support.http_receiver import HttpReceiver
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import SYSTEM, Tenant

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return make_cluster(tenant.organization, name="payments", brokers=3, min_insync_replicas=2)


@pytest.fixture
def sim() -> SimulatedKafkaCluster:
    kafka = SimulatedKafkaCluster.with_brokers(3)
    kafka.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
    return kafka


@pytest.fixture
def observe(cluster: Cluster, sim: SimulatedKafkaCluster) -> Callable[[float], None]:
    """Collect the simulated cluster at `seconds` after T0 and evaluate it."""
    observer = Observer(cluster, sim)

    def run(seconds: float) -> None:
        evaluate_cluster(cluster.pk, observer.snapshot(at(seconds)))

    return run


@pytest.fixture
def webhook(tenant: Tenant, http_receiver: HttpReceiver) -> NotificationChannel:
    return actions.create_channel(
        organization=tenant.organization,
        name="ops-webhook",
        kind="webhook",
        config={"url": http_receiver.url_for("/hook"), "secret": "s3cret-signing-key"},
        min_severity="warning",
        enabled=True,
        repeat_interval_seconds=3600,
        actor=SYSTEM,
    )


def incidents(rule: str | None = None) -> list[Incident]:
    found = Incident.objects.order_by("pk")
    return list(found.filter(rule_key=rule) if rule else found)


def sent_events(receiver: HttpReceiver) -> list[tuple[str, str]]:
    return [(r.json()["event"], r.json()["dedup_key"]) for r in receiver.requests]


def test_a_healthy_cluster_opens_nothing(observe: Callable[[float], None]) -> None:
    observe(0)
    observe(10)

    assert incidents() == []


def test_a_rule_with_a_for_duration_is_pending_until_it_has_held_that_long(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    # Broker 3 is restored at once but its replicas need time to rejoin the ISR: under-replicated
    # only, a rule with for = 300 s.
    sim.rejoin_delay_seconds = 10_000
    sim.restart_broker(3)

    observe(0)
    (incident,) = incidents(UNDER_REPLICATED)
    assert incident.state == IncidentState.PENDING
    assert incident.first_seen_at == at(0) and incident.fired_at is None

    observe(299)
    incident.refresh_from_db()
    assert incident.state == IncidentState.PENDING
    assert not Delivery.objects.exists()

    observe(300)
    incident.refresh_from_db()
    assert incident.state == IncidentState.FIRING
    assert incident.fired_at == at(300)
    assert incident.last_notified_at == at(300)
    (trigger,) = Delivery.objects.all()
    assert (trigger.channel_id, trigger.event, trigger.dedup_key) == (
        webhook.pk,
        DeliveryEvent.TRIGGER,
        incident.notification_key,
    )


def test_a_condition_that_clears_while_pending_never_notifies(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None], webhook: NotificationChannel
) -> None:
    sim.rejoin_delay_seconds = 10_000
    sim.restart_broker(3)
    observe(0)
    sim.advance(10_001)

    observe(60)

    (incident,) = incidents(UNDER_REPLICATED)
    assert incident.state == IncidentState.RESOLVED and incident.fired_at is None
    assert not Delivery.objects.exists()


def test_broker_down_fires_at_once_and_resolves_with_a_resolve_notice_on_the_same_key(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
    http_receiver: HttpReceiver,
) -> None:
    sim.fail_broker(2)
    observe(0)

    (down,) = incidents(BROKER_DOWN)
    assert down.state == IncidentState.FIRING and down.subject == "broker:2"
    assert down.dedup_key == f"kcp:{cluster.pk}:broker_down:broker:2"
    assert down.notification_key == f"{down.dedup_key}/1"
    run_due_deliveries(at(0))

    sim.restore_broker(2)
    sim.advance(sim.rejoin_delay_seconds + 1)
    observe(20)
    run_due_deliveries(at(20))

    down.refresh_from_db()
    assert down.state == IncidentState.RESOLVED and down.resolved_at == at(20)
    assert down.resolved_by_name == "system:alerting"
    assert ("trigger", down.notification_key) in sent_events(http_receiver)
    assert ("resolve", down.notification_key) in sent_events(http_receiver)


def test_firing_again_after_a_resolve_is_a_new_incident_with_a_new_notification_key(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None], webhook: NotificationChannel
) -> None:
    sim.fail_broker(2)
    observe(0)
    sim.restore_broker(2)
    sim.advance(sim.rejoin_delay_seconds + 1)
    observe(10)
    sim.fail_broker(2)
    observe(20)

    first, second = incidents(BROKER_DOWN)
    assert first.state == IncidentState.RESOLVED and second.state == IncidentState.FIRING
    assert first.dedup_key == second.dedup_key
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.notification_key != second.notification_key
    keys = [d.dedup_key for d in Delivery.objects.filter(event=DeliveryEvent.TRIGGER).order_by("pk")]
    assert keys == [first.notification_key, second.notification_key]


def test_notification_keys_stay_within_pagerdutys_limit_and_unique() -> None:
    longest = "k" * MAX_DEDUP_KEY_LENGTH
    keys = {notification_key(longest, n) for n in range(1, 200)}

    assert len(keys) == 199
    assert all(len(key) <= MAX_DEDUP_KEY_LENGTH for key in keys)
    assert notification_key("kcp:c:rule:subject", 3) == "kcp:c:rule:subject/3"


def test_an_acknowledged_incident_stops_repeating_and_resolves_with_a_notice(
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
    tenant: Tenant,
    http_receiver: HttpReceiver,
) -> None:
    from controlplane.audit.actions import Actor

    sim.fail_broker(1)
    observe(0)
    run_due_deliveries(at(0))
    (incident,) = incidents(BROKER_DOWN)

    incident = actions.acknowledge_incident(incident=incident, actor=Actor(user=tenant.admin))
    run_due_deliveries()
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert incident.acknowledged_by == tenant.admin
    observe(10)
    incident.refresh_from_db()
    assert incident.state == IncidentState.ACKNOWLEDGED

    assert housekeeping.repeat_notifications(at(10 + 7200)) == 0

    sim.restore_broker(1)
    sim.advance(sim.rejoin_delay_seconds + 1)
    observe(20)
    run_due_deliveries()
    events = [event for event, key in sent_events(http_receiver) if key == incident.notification_key]
    assert events == ["trigger", "acknowledge", "resolve"]
    with pytest.raises(actions.IncidentStateConflict):
        actions.acknowledge_incident(incident=incident, actor=Actor(user=tenant.admin))


def test_an_unacknowledged_incident_is_sent_again_after_the_channels_repeat_interval(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None], webhook: NotificationChannel
) -> None:
    sim.fail_broker(1)
    observe(0)
    run_due_deliveries(at(0))
    (incident,) = incidents(BROKER_DOWN)

    assert housekeeping.repeat_notifications(at(3599)) == 0
    assert housekeeping.repeat_notifications(at(3600)) == 1
    assert housekeeping.repeat_notifications(at(3601)) == 0  # the repeat is queued, not yet sent

    triggers = Delivery.objects.filter(incident=incident, event=DeliveryEvent.TRIGGER)
    assert triggers.count() == 2
    assert {d.dedup_key for d in triggers} == {incident.notification_key}


def test_channels_are_routed_by_minimum_severity(
    tenant: Tenant, sim: SimulatedKafkaCluster, observe: Callable[[float], None], http_receiver: HttpReceiver
) -> None:
    pager = actions.create_channel(
        organization=tenant.organization,
        name="pager",
        kind="pagerduty",
        config={"routing_key": "R0UT1NG", "url": http_receiver.url_for("/v2/enqueue")},
        min_severity="critical",
        enabled=True,
        repeat_interval_seconds=None,
        actor=SYSTEM,
    )
    chat = actions.create_channel(
        organization=tenant.organization,
        name="chat",
        kind="slack",
        config={"webhook_url": http_receiver.url_for("/slack")},
        min_severity="warning",
        enabled=True,
        repeat_interval_seconds=None,
        actor=SYSTEM,
    )
    RuleOverrideRecord.objects.create(
        organization=tenant.organization, rule_key=UNDER_REPLICATED, for_seconds=0, updated_by_name="t"
    )
    sim.rejoin_delay_seconds = 10_000
    sim.restart_broker(3)  # under-replicated: a warning

    observe(0)

    assert list(Delivery.objects.values_list("channel_id", flat=True)) == [chat.pk]
    assert pager.deliveries.count() == 0


def test_a_silence_records_the_incident_without_notifying_and_it_notifies_once_the_silence_ends(
    tenant: Tenant,
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    silence = Silence.objects.create(
        organization=tenant.organization,
        cluster=cluster,
        rule_key=BROKER_DOWN,
        subject="broker:*",
        starts_at=at(-60),
        ends_at=at(30),
        comment="replacing the disk of broker 2",
        created_by_name="tests",
    )
    sim.fail_broker(2)
    observe(0)

    (incident,) = incidents(BROKER_DOWN)
    assert incident.state == IncidentState.FIRING
    assert incident.silenced and incident.silence_id == silence.pk
    assert not Delivery.objects.exists()

    housekeeping.lift_ended_mutes(at(31))

    incident.refresh_from_db()
    assert not incident.silenced and incident.silence_id is None
    assert incident.last_notified_at == at(31)
    assert Delivery.objects.get().event == DeliveryEvent.TRIGGER


def test_a_silence_only_mutes_what_its_matchers_match(
    tenant: Tenant, cluster: Cluster, sim: SimulatedKafkaCluster, observe: Callable[[float], None]
) -> None:
    Silence.objects.create(
        organization=tenant.organization,
        rule_key=BROKER_DOWN,
        subject="broker:3",
        starts_at=at(-60),
        ends_at=at(600),
        comment="broker 3 is being rebuilt",
        created_by_name="tests",
    )
    sim.fail_broker(2)
    sim.fail_broker(3)

    observe(0)

    muted = {i.subject: i.silenced for i in incidents(BROKER_DOWN)}
    assert muted == {"broker:2": False, "broker:3": True}


def test_a_maintenance_window_mutes_everything_on_its_cluster_only(
    tenant: Tenant,
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    other = make_cluster(tenant.organization, name="other")
    MaintenanceWindow.objects.create(
        cluster=cluster, starts_at=at(-1), ends_at=at(3600), comment="OS patching", created_by_name="tests"
    )
    sim.fail_broker(1)
    sim.fail_broker(2)  # partitions hosted only by 1 and 2 fall under min ISR: critical, never suppressed

    observe(0)
    evaluate_cluster(other.pk, unreachable_snapshot(other, at(0)))

    here = Incident.objects.filter(cluster=cluster)
    assert here.filter(rule_key=UNDER_MIN_ISR).exists()
    assert all(i.silenced and i.maintenance_window_id for i in here)
    assert not Delivery.objects.filter(incident__cluster=cluster).exists()
    assert Delivery.objects.filter(incident__cluster=other).count() == 1


def test_a_running_rolling_restart_suppresses_urp_and_broker_down_but_not_offline_or_under_min_isr(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    Operation.objects.create(
        cluster=cluster, kind=OperationKind.RESTART, state=OperationState.RUNNING, requested_by_name="tests"
    )
    sim.create_topic("single", 3, 1)
    sim.fail_broker(1)

    observe(0)

    by_rule: dict[str, list[Incident]] = {}
    for incident in incidents():
        by_rule.setdefault(incident.rule_key, []).append(incident)
    assert all(i.suppressed_by_operation for i in by_rule[BROKER_DOWN])
    assert all(i.suppressed_by_operation for i in by_rule.get(UNDER_REPLICATED, []))
    offline = by_rule[OFFLINE_PARTITIONS]
    assert offline and not any(i.suppressed_by_operation for i in offline)
    notified = set(Delivery.objects.values_list("incident__rule_key", flat=True))
    assert notified == {OFFLINE_PARTITIONS}


def test_suppression_ends_with_the_operation_and_a_condition_that_outlasts_it_notifies(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    operation = Operation.objects.create(
        cluster=cluster,
        kind=OperationKind.REPLACE_BROKER,
        state=OperationState.RUNNING,
        params={"broker_id": 2},
        requested_by_name="tests",
    )
    sim.fail_broker(2)
    sim.fail_broker(3)  # not part of the operation: pages

    observe(0)

    down = {i.subject: i for i in incidents(BROKER_DOWN)}
    assert down["broker:2"].suppressed_by_operation and not down["broker:3"].suppressed_by_operation
    assert Delivery.objects.filter(incident=down["broker:2"]).count() == 0
    assert Delivery.objects.filter(incident=down["broker:3"]).count() == 1

    Operation.objects.filter(pk=operation.pk).update(state=OperationState.FAILED)
    observe(10)

    down["broker:2"].refresh_from_db()
    assert not down["broker:2"].suppressed_by_operation
    assert Delivery.objects.filter(incident=down["broker:2"]).count() == 1


def test_an_unreachable_cluster_pages_and_leaves_other_incidents_as_they_were(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    sim.fail_broker(2)
    observe(0)

    evaluate_cluster(cluster.pk, unreachable_snapshot(cluster, at(10), "timed out after 10 s"))

    (unreachable,) = incidents(CLUSTER_UNREACHABLE)
    assert unreachable.state == IncidentState.FIRING and unreachable.severity == "critical"
    assert "timed out after 10 s" in unreachable.summary
    assert Incident.objects.get(rule_key=BROKER_DOWN).state == IncidentState.FIRING

    sim.restore_broker(2)
    sim.advance(sim.rejoin_delay_seconds + 1)
    observe(20)

    assert Incident.objects.get(rule_key=CLUSTER_UNREACHABLE).state == IncidentState.RESOLVED
    assert Incident.objects.get(rule_key=BROKER_DOWN).state == IncidentState.RESOLVED


def test_consumer_stall_fires_and_catching_up_resolves(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None], webhook: NotificationChannel
) -> None:
    sim.produce("orders", 0, 500)
    sim.commit("billing", "orders", 0, 100)
    sim.set_group_state("billing", "Stable", members=1)

    observe(0)
    observe(10)

    (stalled,) = incidents(CONSUMER_LAG_STATUS)
    assert stalled.state == IncidentState.FIRING and stalled.subject == "group:billing"
    assert stalled.details["status"] == "STALL"

    sim.commit("billing", "orders", 0, 500)
    observe(20)

    stalled.refresh_from_db()
    assert stalled.state == IncidentState.RESOLVED


def test_a_cluster_override_changes_the_rule_for_that_cluster_only(
    tenant: Tenant, cluster: Cluster, sim: SimulatedKafkaCluster, observe: Callable[[float], None]
) -> None:
    RuleOverrideRecord.objects.create(
        organization=tenant.organization,
        cluster=cluster,
        rule_key=BROKER_DOWN,
        enabled=False,
        updated_by_name="tests",
    )
    sim.fail_broker(2)

    observe(0)

    assert incidents(BROKER_DOWN) == []


def test_evaluating_a_healthy_cluster_is_a_handful_of_queries(
    cluster: Cluster, sim: SimulatedKafkaCluster, observe: Callable[[float], None]
) -> None:
    observe(0)
    snapshot = Observer(cluster, sim).snapshot(at(10))

    with CaptureQueriesContext(connection) as queries:
        evaluate_cluster(cluster.pk, snapshot)

    statements = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(statements) == 3, statements


def test_many_conditions_are_written_in_a_constant_number_of_statements(
    tenant: Tenant, webhook: NotificationChannel
) -> None:
    big = make_cluster(tenant.organization, name="big", brokers=30)
    kafka = SimulatedKafkaCluster.with_brokers(30)
    observer = Observer(big, kafka)
    for node_id in range(1, 21):
        kafka.fail_broker(node_id)

    with CaptureQueriesContext(connection) as first:
        evaluate_cluster(big.pk, observer.snapshot(at(0)))
    assert Incident.objects.filter(rule_key=BROKER_DOWN).count() == 20
    for node_id in range(1, 21):
        kafka.restore_broker(node_id)
    kafka.advance(kafka.rejoin_delay_seconds + 1)
    with CaptureQueriesContext(connection) as second:
        evaluate_cluster(big.pk, observer.snapshot(at(10)))

    assert Incident.objects.filter(state=IncidentState.RESOLVED).count() == 20
    statements = first.captured_queries + second.captured_queries
    assert len(statements) < 30, [q["sql"][:80] for q in statements]


def test_a_lost_sending_attempt_is_recorded_as_failed_and_retried(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None], webhook: NotificationChannel
) -> None:
    sim.fail_broker(1)
    observe(0)
    Delivery.objects.update(status=DeliveryStatus.SENDING, started_at=at(0))

    assert housekeeping.recover_lost_deliveries(at(600)) >= 1

    first, retry = Delivery.objects.order_by("pk")
    assert first.status == DeliveryStatus.RETRYING and "lost" in first.error
    assert (
        retry.status == DeliveryStatus.PENDING and retry.attempt == 2 and retry.first_attempt_id == first.pk
    )


def test_incidents_of_a_deleted_cluster_are_resolved(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    sim.fail_broker(1)
    observe(0)
    Cluster.objects.filter(pk=cluster.pk).update(status="deleted")

    open_count = Incident.objects.count()

    assert housekeeping.resolve_incidents_of_deleted_clusters(at(60)) == open_count

    assert not Incident.objects.exclude(state=IncidentState.RESOLVED).exists()
    down = Incident.objects.get(rule_key=BROKER_DOWN)
    assert Delivery.objects.filter(incident=down, event=DeliveryEvent.RESOLVE).count() == 1


def test_an_open_incidents_numbers_are_refreshed_once_a_minute_not_on_every_collection(
    sim: SimulatedKafkaCluster, observe: Callable[[float], None]
) -> None:
    sim.produce("orders", 0, 500)
    sim.commit("billing", "orders", 0, 100)
    sim.set_group_state("billing", "Stable", members=1)
    observe(0)
    observe(10)
    (stalled,) = incidents(CONSUMER_LAG_STATUS)
    assert stalled.details["total_lag"] == 400 and stalled.values_at == at(10)

    sim.produce("orders", 0, 100)
    observe(20)
    stalled.refresh_from_db()
    assert stalled.details["total_lag"] == 400

    observe(70)
    stalled.refresh_from_db()
    assert stalled.details["total_lag"] == 500 and stalled.values_at == at(70)


def test_housekeeping_prunes_history_past_its_retention_and_keeps_open_incidents(
    cluster: Cluster,
    sim: SimulatedKafkaCluster,
    observe: Callable[[float], None],
    webhook: NotificationChannel,
) -> None:
    sim.fail_broker(1)
    observe(0)
    sim.restore_broker(1)
    sim.advance(sim.rejoin_delay_seconds + 1)
    observe(10)
    sim.fail_broker(2)
    observe(20)
    resolved = Incident.objects.filter(state=IncidentState.RESOLVED).count()
    assert resolved > 0

    assert housekeeping.prune_history(at(20) + housekeeping.retention() - timedelta(seconds=11)) == 0
    assert housekeeping.prune_history(at(20) + housekeeping.retention()) == resolved
    assert not Incident.objects.filter(state=IncidentState.RESOLVED).exists()
    assert Incident.objects.filter(
        rule_key=BROKER_DOWN, subject="broker:2", state=IncidentState.FIRING
    ).exists()
    assert not Delivery.objects.filter(incident__state=IncidentState.RESOLVED).exists()
