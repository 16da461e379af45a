"""A collection hands alerting what it read along with the cluster row (`ClusterFacts`): the
organization, whether any rule override, open incident or open broker anomaly exists. Alerting and
self-healing skip the queries those answer, and must still behave exactly as if they had asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.clusters.choices import AnomalyState
from controlplane.clusters.models import BrokerAnomaly, Cluster
from controlplane.dashboard.panels import health_panel
from monitoring.alerting.choices import OPEN_STATES, IncidentState
from monitoring.alerting.models import Incident, RuleOverrideRecord
from monitoring.collector import collect_cluster
from monitoring.conditions import BROKER_DOWN, UNDER_REPLICATED
from monitoring.models import ClusterHealth
from tests.support.alerting import make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def kafka() -> SimulatedKafkaCluster:
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=3)
    simulated.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
    simulated.commit("billing", "orders", 0, 0)
    return simulated


def broker_down_incidents(cluster: Cluster) -> list[str]:
    return list(
        Incident.objects.filter(cluster=cluster, rule_key=BROKER_DOWN).values_list("state", flat=True)
    )


def test_a_broker_that_returns_resolves_its_incident_and_anomaly(
    tenant: Tenant, kafka: SimulatedKafkaCluster
) -> None:
    cluster = make_cluster(tenant.organization)
    Cluster.objects.filter(pk=cluster.pk).update(self_healing=False)  # the anomaly stays open
    collect_cluster(cluster.pk, admin=kafka, now=T0)
    assert broker_down_incidents(cluster) == []

    kafka.fail_broker(2)
    collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=10))
    assert broker_down_incidents(cluster) == [IncidentState.FIRING]
    assert BrokerAnomaly.objects.get(cluster=cluster).state == AnomalyState.OPEN

    kafka.restore_broker(2)
    kafka.advance(kafka.rejoin_delay_seconds + 1)
    collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=20))
    assert broker_down_incidents(cluster) == [IncidentState.RESOLVED]
    assert BrokerAnomaly.objects.get(cluster=cluster).state == AnomalyState.RESOLVED


def test_organization_and_cluster_overrides_apply_to_collections(
    tenant: Tenant, kafka: SimulatedKafkaCluster
) -> None:
    quiet = make_cluster(tenant.organization, name="quiet")
    loud = make_cluster(tenant.organization, name="loud")
    RuleOverrideRecord.objects.create(
        organization=tenant.organization, rule_key=BROKER_DOWN, enabled=False, updated_by_name="alice"
    )
    RuleOverrideRecord.objects.create(
        organization=tenant.organization,
        cluster=loud,
        rule_key=BROKER_DOWN,
        enabled=True,
        updated_by_name="bob",
    )
    kafka.fail_broker(1)

    collect_cluster(quiet.pk, admin=kafka, now=T0)
    collect_cluster(loud.pk, admin=kafka, now=T0)

    assert broker_down_incidents(quiet) == []
    assert broker_down_incidents(loud) == [IncidentState.FIRING]


def test_collecting_a_healthy_cluster_is_five_statements(
    tenant: Tenant, kafka: SimulatedKafkaCluster
) -> None:
    cluster = make_cluster(tenant.organization)
    collect_cluster(cluster.pk, admin=kafka, now=T0)

    with CaptureQueriesContext(connection) as queries:
        collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=10))

    statements = [q["sql"].split()[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The cluster with its brokers, windows and facts, the lease; then health, lag
    # state and a history point in one transaction. Alerting and self-healing need nothing more.
    assert statements == ["SELECT", "UPDATE", "UPDATE", "INSERT", "INSERT"], statements
    assert not Incident.objects.filter(cluster=cluster, state__in=OPEN_STATES).exists()


def test_the_health_status_and_the_dashboard_judge_by_the_rules_alerting_pages_with(
    tenant: Tenant, kafka: SimulatedKafkaCluster
) -> None:
    """One severity wherever a problem shows: overrides of the organization and of the cluster
    change the stored health status and the dashboard's topic severities as they change pages."""
    cluster = make_cluster(tenant.organization)
    RuleOverrideRecord.objects.create(
        organization=tenant.organization, rule_key=BROKER_DOWN, severity="warning", updated_by_name="alice"
    )
    kafka.fail_broker(2)  # broker down, every partition under-replicated and at min.insync.replicas

    def seen() -> tuple[str, dict[str, str], str]:
        health = ClusterHealth.objects.get(cluster=cluster)
        paged = dict(
            Incident.objects.filter(cluster=cluster, state__in=OPEN_STATES).values_list(
                "rule_key", "severity"
            )
        )
        (topic,) = health_panel(cluster).topics
        return health.status, paged, topic.severity

    collect_cluster(cluster.pk, admin=kafka, now=T0)
    # The catalogue says a broker down is critical; this organization pages it as a warning.
    status, paged, topic_severity = seen()
    assert (status, paged[BROKER_DOWN], topic_severity) == ("warning", "warning", "warning")

    RuleOverrideRecord.objects.create(
        organization=tenant.organization,
        cluster=cluster,
        rule_key=UNDER_REPLICATED,
        severity="critical",
        for_seconds=0,
        updated_by_name="bob",
    )
    collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=10))
    status, paged, topic_severity = seen()
    assert (status, paged[UNDER_REPLICATED], topic_severity) == ("critical", "critical", "critical")
