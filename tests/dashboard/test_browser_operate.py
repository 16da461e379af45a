"""Operating a cluster from the dashboard in a real Chromium: the form, the confirmation saying what
will happen, and the operation followed on the cluster page; each page at both sizes through
`check_page` (no sideways scrolling, no serious axe violation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from controlplane.celery import app as celery_app
from controlplane.clusters.specs import get_backend
from controlplane.operations.models import Operation
from tests.dashboard.conftest import monitored_cluster
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def multi_broker_backend(settings: Any) -> Iterator[None]:
    settings.LOCAL_ENGINE = "kafka"  # validated as Apache Kafka clusters; nothing is started
    get_backend.cache_clear()
    yield
    get_backend.cache_clear()
    celery_app.control.purge()


def test_scale_from_the_cluster_page_after_seeing_what_it_will_do(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    log_in(page, tenant.admin)
    page.goto(f"/clusters/{cluster.pk}/")

    page.locator("#operate").get_by_role("link", name="Scale").click()
    check_page(page, "operate-scale-form")
    page.get_by_label("Brokers").fill("8")
    page.get_by_role("button", name="Review").click()
    expect(page.locator('[data-field="brokers"] .field-error')).to_contain_text("cannot be spread evenly")

    page.get_by_label("Brokers").fill("9")
    page.get_by_role("button", name="Review").click()
    expect(page.locator('[data-role="preview-summary"]')).to_have_text("Scale out from 6 to 9 brokers.")
    expect(page.locator('#rack-changes tr[data-rack="rack-1"] [data-role="added"]')).to_have_text(
        "+ broker 8"
    )
    expect(page.locator('[data-role="moves"]')).to_contain_text("replica move")
    check_page(page, "operate-scale-confirm")
    assert not Operation.objects.filter(cluster=cluster).exists()

    page.get_by_role("button", name="Scale").click()
    page.wait_for_url(f"**/clusters/{cluster.pk}/")
    expect(page.get_by_role("status")).to_contain_text("Scale of payments started.")
    expect(page.locator("#operation [data-role='op-state']")).to_have_text("Pending")
    assert Operation.objects.get(cluster=cluster).params["add_node_ids"] == [7, 8, 9]


def test_restart_and_replace_confirmations_fit_a_phone(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    log_in(page, tenant.admin)

    page.goto(f"/clusters/{cluster.pk}/operate/restart/")
    expect(page.locator('[data-role="order"] li')).to_have_count(6)
    check_page(page, "operate-restart-confirm")

    page.goto(f"/clusters/{cluster.pk}/operate/replace-broker/")
    page.get_by_label("Broker").select_option("4")
    page.get_by_role("button", name="Review").click()
    expect(page.locator('[data-role="preview-summary"]')).to_contain_text("Broker 4's data is not kept")
    check_page(page, "operate-replace-confirm")
