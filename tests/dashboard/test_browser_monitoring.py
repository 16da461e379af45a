"""The monitoring and on-call side of the dashboard in a real Chromium against a live server.

The cluster's data comes from the real collector and alerting run over `SimulatedKafkaCluster` (see
`monitored_cluster`), the stand-in for a multi-broker Kafka cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from controlplane.audit.actions import Actor
from controlplane.celery import app as celery_app
from monitoring.alerting.actions import resolve_incident
from monitoring.alerting.models import Incident
from monitoring.models import ClusterHealth, HealthStatus
from tests.dashboard.conftest import monitored_cluster
from tests.support.browser import log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

CLUSTER_SCREENSHOT = Path("/tmp/kcp-dashboard-cluster-monitoring.png")
ALERTS_SCREENSHOT = Path("/tmp/kcp-dashboard-alerts.png")
ALERT_SCREENSHOT = Path("/tmp/kcp-dashboard-alert-detail.png")


@pytest.fixture(autouse=True)
def no_leftover_tasks() -> Iterator[None]:
    yield
    # Incidents and acknowledgements queue notification tasks after commit; no worker runs here.
    celery_app.control.purge()


def test_acknowledge_an_alert_and_see_its_state_change(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    stalled = Incident.objects.get(cluster=cluster, rule_key="consumer_lag_status")
    log_in(page, tenant.admin)

    expect(page.locator('[data-live-region="firing-count"]').first).to_have_text("3")
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Alerts")).click()
    rows = page.locator("#alert-table tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.nth(0)).to_have_attribute("data-state", "firing")
    expect(rows.nth(4)).to_have_attribute("data-state", "pending")
    page.screenshot(path=str(ALERTS_SCREENSHOT), full_page=True)

    page.locator(f'tr[data-incident="{stalled.pk}"]').get_by_role("link", name=re.compile("billing")).click()
    page.wait_for_url(f"**/alerts/{stalled.pk}/")
    expect(page.locator('[data-role="incident-state"]')).to_have_text("Firing")
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.locator('[data-role="incident-state"]')).to_have_text("Acknowledged")
    expect(page.locator("#timeline")).to_contain_text(f"Acknowledged by {tenant.admin.username}")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.locator('[data-live-region="firing-count"]').first).to_have_text("2")
    page.screenshot(path=str(ALERT_SCREENSHOT), full_page=True)
    stalled.refresh_from_db()
    assert stalled.state == "acknowledged" and stalled.acknowledged_by == tenant.admin

    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Alerts")).click()
    expect(page.locator(f'tr[data-incident="{stalled.pk}"]')).to_have_attribute("data-state", "acknowledged")

    # Someone else resolves an alert: the open list follows without a reload.
    page.evaluate("window.stillTheSamePage = true")
    down = Incident.objects.get(cluster=cluster, rule_key="broker_down")
    resolve_incident(incident=down, actor=Actor(user=tenant.owner))
    expect(page.locator(f'tr[data-incident="{down.pk}"]')).to_have_count(0)
    expect(page.locator('[data-live-region="firing-count"]').first).to_have_text("1")
    assert page.evaluate("window.stillTheSamePage") is True


def test_cluster_page_draws_lag_and_follows_health_live(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant, quiet_groups=8)
    log_in(page, tenant.viewer)
    page.goto(f"/clusters/{cluster.pk}/")

    chart = page.locator("#lag-chart svg")
    expect(chart).to_be_visible()
    billing = chart.locator('g[data-group="billing"] polyline')
    expect(billing).to_have_count(1)
    expect(billing).to_have_attribute("data-points", "6")
    assert len(billing.get_attribute("points").split()) == 6
    legend = page.locator('#lag-chart [data-role="legend"]')
    expect(legend.locator('li[data-group="search"]')).to_be_visible()
    # Eight groups at most are drawn: the worst ones, which the table lists first.
    expect(legend.locator("li[data-group]")).to_have_count(8)
    expect(legend).to_contain_text("+3 more groups not drawn")
    expect(page.locator("#health")).to_have_attribute("data-status", "critical")
    expect(page.locator('#replicas [data-broker="6"]')).to_contain_text("down")
    expect(page.locator('#consumer-groups tr[data-group="billing"]')).to_contain_text("STALL")
    page.screenshot(path=str(CLUSTER_SCREENSHOT), full_page=True)

    page.locator("#lag-chart").get_by_role("button", name="Time lag").click()
    expect(chart).to_have_attribute("aria-label", re.compile("^Time lag"))

    # What the next collection would store once the cluster recovers; the open page follows it.
    ClusterHealth.objects.filter(cluster=cluster).update(
        status=HealthStatus.OK, reason="6 brokers up and all 9 partitions fully replicated."
    )
    expect(page.locator("#health")).to_have_attribute("data-status", "ok")
    expect(page.locator('[data-role="health-reason"]')).to_have_text(
        "6 brokers up and all 9 partitions fully replicated."
    )
