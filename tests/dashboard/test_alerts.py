"""The alerts pages through Django's test client: triage order, filters, acknowledge and resolve
through the alerting actions, the incident's timeline and delivery attempts, and who may do what.

Incidents are opened by the real collector and alerting over `SimulatedKafkaCluster` (see
`monitored_cluster`): three firing (under min ISR, broker down, a stalled consumer) and two pending.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from monitoring.alerting.choices import DeliveryStatus
from monitoring.alerting.models import Delivery, Incident, NotificationChannel
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.support.alerting import run_due_deliveries
from tests.support.http_receiver import HttpReceiver
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(page: str) -> list[tuple[int, str]]:
    return [(int(pk), state) for pk, state in re.findall(r'data-incident="(\d+)" data-state="(\w+)"', page)]


@pytest.fixture
def monitored(tenant: Tenant) -> Cluster:
    return monitored_cluster(tenant)


def incident_of(cluster: Cluster, rule_key: str) -> Incident:
    return Incident.objects.get(cluster=cluster, rule_key=rule_key)


def test_open_alerts_come_firing_then_acknowledged_then_pending(tenant: Tenant, monitored: Cluster) -> None:
    client = signed_in(tenant.admin)
    stalled = incident_of(monitored, "consumer_lag_status")
    client.post(f"/alerts/{stalled.pk}/acknowledge/")

    page = client.get("/alerts/").content.decode()

    states = [state for _, state in listed(page)]
    assert states == ["firing", "firing", "acknowledged", "pending", "pending"]
    # Among pending ones the more severe comes first.
    pending = [Incident.objects.get(pk=pk).severity for pk, state in listed(page) if state == "pending"]
    assert pending == ["warning", "info"]
    assert "Partitions under min.insync.replicas" in page and "group:billing" in page
    assert f'href="/clusters/{monitored.pk}/"' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 4),
        ("state=firing", 2),
        ("state=pending", 2),
        ("severity=info", 1),
        ("state=firing&severity=warning", 0),
        ("state=resolved", 1),
        ("state=all", 5),
        ("state=all&severity=critical", 3),
        ("state=bogus", 4),  # an invalid filter is ignored, not an error page
    ],
)
def test_alerts_filter_by_state_and_severity(
    tenant: Tenant, monitored: Cluster, query: str, expected: int
) -> None:
    client = signed_in(tenant.admin)
    client.post(f"/alerts/{incident_of(monitored, 'broker_down').pk}/resolve/")

    response = client.get(f"/alerts/?{query}")

    assert response.status_code == 200
    assert len(listed(response.content.decode())) == expected


def test_alerts_filter_by_cluster(tenant: Tenant, monitored: Cluster) -> None:
    quiet = create_cluster(tenant, name="quiet")
    client = signed_in(tenant.viewer)

    assert len(listed(client.get(f"/alerts/?cluster={monitored.pk}").content.decode())) == 5
    page = client.get(f"/alerts/?cluster={quiet.pk}").content.decode()
    assert listed(page) == [] and "No alerts match." in page


def test_acknowledge_and_resolve_go_through_the_alerting_actions(tenant: Tenant, monitored: Cluster) -> None:
    client = signed_in(tenant.admin)
    down = incident_of(monitored, "broker_down")

    response = client.post(f"/alerts/{down.pk}/acknowledge/", follow=True)

    down.refresh_from_db()
    assert down.state == "acknowledged" and down.acknowledged_by_name == tenant.admin.username
    assert response.redirect_chain[-1][0] == f"/alerts/{down.pk}/"
    assert AuditEvent.objects.filter(action="incident.acknowledge", actor=tenant.admin).count() == 1
    again = client.post(f"/alerts/{down.pk}/acknowledge/", follow=True).content.decode()
    assert "Only a firing incident can be acknowledged; this one is acknowledged." in again

    response = client.post(f"/alerts/{down.pk}/resolve/", {"next": "/alerts/?state=all"})

    assert response["Location"] == "/alerts/?state=all"
    down.refresh_from_db()
    assert down.state == "resolved" and down.resolved_by_name == tenant.admin.username
    assert client.post(f"/alerts/{down.pk}/resolve/", {"next": "https://evil.example/"})["Location"] == (
        f"/alerts/{down.pk}/"
    )


def test_viewers_see_no_buttons_and_are_refused(tenant: Tenant, monitored: Cluster) -> None:
    client = signed_in(tenant.viewer)
    down = incident_of(monitored, "broker_down")

    assert "Acknowledge</button>" not in client.get("/alerts/").content.decode()
    detail = client.get(f"/alerts/{down.pk}/").content.decode()
    assert "Acknowledge</button>" not in detail and "Resolve</button>" not in detail
    assert client.post(f"/alerts/{down.pk}/acknowledge/").status_code == 403
    assert client.post(f"/alerts/{down.pk}/resolve/").status_code == 403
    down.refresh_from_db()
    assert down.state == "firing"
    assert "Acknowledge</button>" in signed_in(tenant.admin).get("/alerts/").content.decode()


def test_other_organizations_alerts_are_not_found(
    tenant: Tenant, other_tenant: Tenant, monitored: Cluster
) -> None:
    outsider = signed_in(other_tenant.owner)
    down = incident_of(monitored, "broker_down")

    assert listed(outsider.get("/alerts/?state=all").content.decode()) == []
    assert outsider.get(f"/alerts/{down.pk}/").status_code == 404
    assert outsider.post(f"/alerts/{down.pk}/acknowledge/").status_code == 404
    assert outsider.post(f"/alerts/{down.pk}/resolve/").status_code == 404
    assert str(monitored.pk) not in outsider.get("/alerts/").content.decode()  # not even as a filter choice


def test_incident_page_shows_timeline_and_every_delivery_attempt(
    tenant: Tenant, http_receiver: HttpReceiver
) -> None:
    NotificationChannel.objects.create(
        organization=tenant.organization,
        name="hook",
        kind="webhook",
        config={"url": http_receiver.url_for("/hook"), "secret": "whsec-very-secret-signing-key"},
        created_by_name="tests",
    )
    http_receiver.fail_first(1, status=503, body="upstream busy")
    cluster = monitored_cluster(tenant)
    run_due_deliveries(cluster_id=cluster.pk)
    failed = Delivery.objects.get(status=DeliveryStatus.RETRYING)
    incident = failed.incident
    signed_in(tenant.admin).post(f"/alerts/{incident.pk}/acknowledge/")

    page = signed_in(tenant.viewer).get(f"/alerts/{incident.pk}/").content.decode()

    timeline = page[page.index('id="timeline"') : page.index("</ol>")]
    assert re.findall(r'data-event="(\w+)"', timeline) == ["pending", "firing", "note", "acknowledged"]
    assert f"Acknowledged by {tenant.admin.username}" in timeline
    row = page[page.index(f'data-delivery="{failed.pk}"') :].split("</tr>")[0]
    assert "Failed, retrying" in row and ">503<" in row and failed.error in row
    assert "upstream busy" not in page  # what a receiver answers is never stored nor shown
    assert page.count("data-delivery=") == incident.deliveries.count()
    assert "whsec-very-secret-signing-key" not in page
    assert "What to do" in page


def test_the_alert_table_refreshes_from_a_fragment_of_the_same_list(
    tenant: Tenant, monitored: Cluster
) -> None:
    client = signed_in(tenant.admin)

    fragment = client.get("/alerts/?state=firing&live=1").content.decode()

    assert "<html" not in fragment
    assert re.findall(r'data-live-region="([\w-]+)"', fragment) == ["firing-count", "alert-table"]
    assert len(listed(fragment)) == 3
    # Buttons in the refreshed table bring the person back to the page, not to the fragment.
    assert 'name="next" value="/alerts/?state=firing"' in fragment
    page = client.get("/alerts/?state=firing").content.decode()
    assert 'data-live-url="/alerts/?state=firing&amp;live=1"' in page
