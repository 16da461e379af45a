"""Collections that open many incidents at once, as the fleet sweep in which incidents first open
does: each incident opens once and pages every channel its severity reaches, in a number of
statements that does not grow with the incidents; silences and maintenance windows mute what opens
whether or not the collector saw them in force (it looks them up only when it did); and two
evaluations of one cluster racing each other open each incident once and page it once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting import actions, evaluation
from monitoring.alerting.choices import DeliveryEvent, IncidentState, Severity
from monitoring.alerting.models import Delivery, Incident, MaintenanceWindow, NotificationChannel, Silence
from monitoring.collector import collect_cluster
from monitoring.conditions import CONSUMER_LAG_STATUS
from tests.support.alerting import Observer, make_cluster
from tests.support.http_receiver import HttpReceiver
from tests.support.prepared import generic_plans_of, prepared_statements
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import SYSTEM, Tenant, make_tenant

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stalled_groups(count: int, *, seed: int = 0) -> SimulatedKafkaCluster:
    """A healthy cluster whose `count` groups committed once and have no members: once messages
    arrive and a second collection sees the offsets unmoved, each group is STOP (critical)."""
    kafka = SimulatedKafkaCluster.with_brokers(3, seed=seed)
    kafka.create_topic("orders", 3, 3, {"min.insync.replicas": "2"})
    for number in range(count):
        kafka.commit(f"billing-{number}", "orders", number % 3, 0)
    return kafka


def collect_twice(cluster: Cluster, kafka: SimulatedKafkaCluster) -> list[dict[str, Any]]:
    """Collect at T0, let messages arrive, collect again; returns the second collection's statements."""
    collect_cluster(cluster.pk, admin=kafka, now=T0)
    for partition in range(3):
        kafka.produce("orders", partition, 500)
    with CaptureQueriesContext(connection) as queries:
        collect_cluster(cluster.pk, admin=kafka, now=LATER)
    return queries.captured_queries


def channel(organization: Organization, name: str, url: str, min_severity: str) -> NotificationChannel:
    return actions.create_channel(
        organization=organization,
        name=name,
        kind="webhook",
        config={"url": url, "secret": "whsec-storm"},
        min_severity=min_severity,
        enabled=True,
        repeat_interval_seconds=None,
        actor=SYSTEM,
    )


@pytest.fixture
def channels(tenant: Tenant, http_receiver: HttpReceiver) -> list[NotificationChannel]:
    """A pager for critical incidents, a chat for warnings and above, and another organization's
    channel, which must never hear of this one's incidents."""
    other = make_tenant("elsewhere")
    return [
        channel(tenant.organization, "pager", http_receiver.url_for("/pager"), Severity.CRITICAL),
        channel(tenant.organization, "chat", http_receiver.url_for("/chat"), Severity.WARNING),
        channel(other.organization, "theirs", http_receiver.url_for("/theirs"), Severity.INFO),
    ]


def triggers_by_incident(cluster: Cluster) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for incident_id, channel_id in Delivery.objects.filter(
        incident__cluster=cluster, event=DeliveryEvent.TRIGGER
    ).values_list("incident_id", "channel_id"):
        found.setdefault(incident_id, []).append(channel_id)
    return {incident_id: sorted(ids) for incident_id, ids in found.items()}


def statements_on(queries: list[dict[str, Any]], *tables: str) -> list[str]:
    """The statements that read or write one of `tables` (not those that only mention it)."""
    heads = tuple(f'{verb} "{table}"' for verb in ("SELECT", "INSERT INTO", "UPDATE") for table in tables)
    return [q["sql"] for q in queries if q["sql"].startswith(heads)]


def test_a_collection_opening_many_incidents_pages_each_once_on_every_channel_it_reaches(
    tenant: Tenant, channels: list[NotificationChannel]
) -> None:
    pager, chat, theirs = channels
    few = make_cluster(tenant.organization, name="few")
    many = make_cluster(tenant.organization, name="many")

    few_statements = collect_twice(few, stalled_groups(2, seed=1))
    many_statements = collect_twice(many, stalled_groups(12, seed=2))

    for cluster, groups in ((few, 2), (many, 12)):
        opened = Incident.objects.filter(cluster=cluster, rule_key=CONSUMER_LAG_STATUS)
        assert opened.count() == groups
        assert {(i.state, i.severity, i.last_notified_at) for i in opened} == {
            (IncidentState.FIRING, Severity.CRITICAL, LATER)
        }
        # Critical: the pager and the chat, once each; never another organization's channel.
        assert triggers_by_incident(cluster) == {i.pk: sorted([pager.pk, chat.pk]) for i in opened}
    assert not theirs.deliveries.exists()
    # Six times the incidents and deliveries, the same statements: one insert for the incidents,
    # one for the deliveries, whatever their number.
    assert len(many_statements) == len(few_statements), [q["sql"][:70] for q in many_statements]
    assert len(statements_on(many_statements, "alerting_incident")) <= 4
    assert len(statements_on(many_statements, "alerting_delivery")) == 1


def test_silences_and_maintenance_windows_mute_what_collections_open(
    tenant: Tenant, channels: list[NotificationChannel]
) -> None:
    silenced, maintained, lapsed, plain = (
        make_cluster(tenant.organization, name=name) for name in ("silenced", "maintained", "lapsed", "plain")
    )
    Silence.objects.create(
        organization=tenant.organization,
        cluster=silenced,
        rule_key=CONSUMER_LAG_STATUS,
        subject="group:billing-1*",
        starts_at=at(-60),
        ends_at=at(3600),
        comment="billing consumers are being redeployed",
        created_by_name="tests",
    )
    MaintenanceWindow.objects.create(
        cluster=maintained,
        starts_at=at(-60),
        ends_at=at(3600),
        comment="OS patching",
        created_by_name="tests",
    )
    # In force neither at the collection: over before it, or not yet begun.
    Silence.objects.create(
        organization=tenant.organization,
        cluster=lapsed,
        starts_at=at(-600),
        ends_at=at(5),
        comment="over",
        created_by_name="tests",
    )
    MaintenanceWindow.objects.create(
        cluster=lapsed, starts_at=at(600), ends_at=at(3600), comment="next week", created_by_name="tests"
    )

    statements = {
        cluster.name: collect_twice(cluster, stalled_groups(3, seed=n))
        for n, cluster in enumerate((silenced, maintained, lapsed, plain))
    }

    everything = {"group:billing-0": False, "group:billing-1": False, "group:billing-2": False}
    assert muted(silenced) == {**everything, "group:billing-1": True}
    assert muted(maintained) == dict.fromkeys(everything, True)
    assert muted(lapsed) == muted(plain) == everything
    assert [len(triggers_by_incident(c)) for c in (silenced, maintained, lapsed, plain)] == [2, 0, 3, 3]
    # Mutes are looked up only where the collector saw one in force.
    looked_up = {
        name: bool(statements_on(queries, "alerting_silence", "alerting_maintenancewindow"))
        for name, queries in statements.items()
    }
    assert looked_up == {"silenced": True, "maintained": True, "lapsed": False, "plain": False}


def test_an_organization_wide_silence_mutes_every_clusters_collections(
    tenant: Tenant, channels: list[NotificationChannel]
) -> None:
    first, second = (make_cluster(tenant.organization, name=name) for name in ("first", "second"))
    Silence.objects.create(
        organization=tenant.organization,
        subject="group:billing-2",
        starts_at=at(-60),
        ends_at=at(3600),
        comment="billing-2 is retired",
        created_by_name="tests",
    )

    for n, cluster in enumerate((first, second)):
        collect_twice(cluster, stalled_groups(3, seed=n))
        assert muted(cluster) == {"group:billing-0": False, "group:billing-1": False, "group:billing-2": True}
        assert len(triggers_by_incident(cluster)) == 2


def muted(cluster: Cluster) -> dict[str, bool]:
    return {i.subject: i.silenced for i in Incident.objects.filter(cluster=cluster)}


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_racing_open_each_incident_once_and_page_it_once(
    tenant: Tenant, channels: list[NotificationChannel], caplog: pytest.LogCaptureFixture
) -> None:
    """Two evaluations of one cluster (a slow collection overlapping the next) both find nothing open
    and both insert: the second waits on the unique index of open incidents, fails, and evaluates
    again, finding the first one's incidents already routed."""
    pager, chat, _ = channels
    cluster = make_cluster(tenant.organization, name="raced")
    kafka = stalled_groups(4)
    observer = Observer(cluster, kafka)
    observer.snapshot(T0)
    for partition in range(3):
        kafka.produce("orders", partition, 500)
    snapshot = observer.snapshot(LATER)

    # Both evaluations pass their look at open incidents before either inserts.
    both_looked = threading.Barrier(2, timeout=30)
    looked_up = evaluation.active_mutes
    waited: set[int] = set()

    def after_both_looked(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            both_looked.wait()
        return looked_up(*args, **kwargs)

    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            evaluation.evaluate_cluster(cluster.pk, snapshot)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()  # this thread's connection, back to the pool

    caplog.set_level("INFO", logger=evaluation.__name__)
    with mock.patch.object(evaluation, "active_mutes", after_both_looked):
        threads = [threading.Thread(target=evaluate) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert "concurrent evaluation opened the same incident" in caplog.text  # they did race

    opened = Incident.objects.filter(cluster=cluster, rule_key=CONSUMER_LAG_STATUS)
    assert sorted(opened.values_list("subject", "sequence")) == [(f"group:billing-{n}", 1) for n in range(4)]
    pages = Counter(
        Delivery.objects.filter(incident__cluster=cluster).values_list("incident_id", "channel_id", "event")
    )
    assert pages == {(i.pk, c.pk, DeliveryEvent.TRIGGER): 1 for i in opened for c in (pager, chat)}


def test_the_evaluation_statements_are_prepared_once_whatever_the_number_of_incidents(
    tenant: Tenant, channels: list[NotificationChannel]
) -> None:
    """Compiling the evaluation's statements through the ORM cost more CPU than running them, and
    each length of an `IN` list of keys or ids was a statement of its own: on PostgreSQL each is one
    statement, prepared once and run on its generic plan, for two incidents as for five."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    beginnings = {
        "open incidents": 'SELECT "id", "cluster_id", "rule_key"',
        "last sequences": 'SELECT "dedup_key", MAX("sequence")',
        "channels": 'SELECT "id", "min_severity", "enabled"',
        "resolve": 'UPDATE "alerting_incident" SET "state" = $1, "resolved_at"',
        "triggers sent": 'SELECT "id", "incident_id", "channel_id", "status"',
    }
    before = {name: generic_plans_of(beginning) for name, beginning in beginnings.items()}

    for n, groups in enumerate((2, 5)):
        cluster = make_cluster(tenant.organization, name=f"stalled-{groups}")
        kafka = stalled_groups(groups, seed=n)
        collect_cluster(cluster.pk, admin=kafka, now=T0)
        for partition in range(3):
            kafka.produce("orders", partition, 500)
        collect_cluster(cluster.pk, admin=kafka, now=LATER)  # opens the incidents and pages them
        for number in range(groups):
            kafka.commit(f"billing-{number}", "orders", number % 3, 500)
        collect_cluster(cluster.pk, admin=kafka, now=LATER + timedelta(seconds=10))  # resolves them
        assert Counter(Incident.objects.filter(cluster=cluster).values_list("state", flat=True)) == {
            IncidentState.RESOLVED: groups
        }

    # Two evaluations per cluster read the open incidents; the first opened, the second resolved,
    # reading once where the triggers went (for the resolves, and the unsent triggers they supersede).
    assert {
        name: (len(prepared_statements(beginning)), generic_plans_of(beginning) - before[name])
        for name, beginning in beginnings.items()
    } == {
        "open incidents": (1, 4),
        "last sequences": (1, 2),
        "channels": (1, 2),
        "resolve": (1, 2),
        "triggers sent": (1, 2),
    }
