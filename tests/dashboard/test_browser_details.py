"""A broker's and a consumer group's page in a real Chromium, reached from the cluster page, each at
both sizes through `check_page` (no sideways scrolling, no serious axe violation). The data comes from
the real collector over `SimulatedKafkaCluster` (see `monitored_cluster`)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from monitoring import assignment
from tests.dashboard.conftest import monitored_cluster
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_MS = 3600_000


def leader_of(cluster: object, partition: tuple[str, int]) -> int | None:
    return assignment.load(cluster.pk).leaders[partition]  # type: ignore[attr-defined]


def test_from_the_cluster_page_to_a_group_and_a_broker(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    log_in(page, tenant.viewer)
    page.goto(f"/clusters/{cluster.pk}/")

    page.locator("#consumer-groups").get_by_role("link", name="billing").click()
    page.wait_for_url(f"**/clusters/{cluster.pk}/groups/billing/")
    expect(page.locator('#group-partitions tr[data-partition="orders-0"] [data-role="lag"]')).to_have_text(
        "2,280"
    )
    expect(
        page.locator('#group-members tr[data-client="billing-consumer-2"] [data-role="host"]')
    ).to_have_text("/10.0.0.2")
    # The chart spans the whole hour asked for, though the cluster has only minutes of history.
    chart = page.locator("#lag-chart svg")
    expect(chart.locator('.series[data-group="billing"] polyline')).to_have_count(1)
    span = int(chart.get_attribute("data-until")) - int(chart.get_attribute("data-since"))
    assert span == HOUR_MS
    check_page(page, "group-detail")

    page.goto(f"/clusters/{cluster.pk}/groups/")
    page.get_by_label("Status").select_option("WARN")
    expect(page.locator("#group-table tbody tr")).to_have_count(1)
    expect(page.locator('#group-table tr[data-group="search"]')).to_be_visible()
    check_page(page, "group-list")

    # Messages in, bytes in and disk per broker beside the lag chart, each over the range chosen.
    page.goto(f"/clusters/{cluster.pk}/")
    brokers = page.locator("#broker-chart")
    leader = leader_of(cluster, ("orders", 0))
    expect(brokers.locator(f'svg g[data-broker="{leader}"] polyline')).to_have_count(1)
    expect(brokers.locator("svg")).to_have_attribute("aria-label", "Messages in per broker over the last 1h")
    brokers.get_by_role("button", name="Bytes in").click()
    expect(brokers.locator("svg")).to_have_attribute("aria-label", "Bytes in per broker over the last 1h")
    brokers.get_by_role("button", name="Disk").click()
    brokers.get_by_role("button", name="6h").click()
    expect(brokers.locator("svg")).to_have_attribute("aria-label", "Disk used per broker over the last 6h")
    svg = brokers.locator("svg")
    assert int(svg.get_attribute("data-until")) - int(svg.get_attribute("data-since")) == 6 * HOUR_MS
    expect(brokers.locator("svg g.series")).to_have_count(6)  # broker 6 too, until it died
    check_page(page, "cluster-detail-charts")

    page.locator("#replicas").get_by_role("link", name="broker 2").click()
    page.wait_for_url(f"**/clusters/{cluster.pk}/brokers/2/")
    expect(page.locator('[data-role="rack"]')).to_have_text("rack-1")
    expect(page.locator('#broker-partitions tr[data-led="yes"]').first).to_be_visible()
    # Its own chart draws it alone.
    expect(page.locator('#broker-chart svg g[data-broker="2"]')).to_have_count(1)
    expect(page.locator("#broker-chart svg g.series")).to_have_count(1)
    check_page(page, "broker-detail")
