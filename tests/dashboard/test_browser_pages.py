"""Every dashboard page in a real Chromium at a desktop and a phone size: nothing scrolls sideways and
axe-core finds no serious or critical violation (`check_page`). Screenshots of each page are left in
`tests.support.browser.SCREENSHOTS` for a person to look at.

One test walks the pages in turn: a login and a data set serve them all, which keeps the walk cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from controlplane.celery import app as celery_app
from controlplane.operations.models import Operation
from monitoring.alerting.models import Incident, MaintenanceWindow, NotificationChannel, Silence
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_leftover_tasks() -> Iterator[None]:
    yield
    celery_app.control.purge()


def on_call_objects(tenant: Tenant, cluster_id: object) -> None:
    now = timezone.now()
    NotificationChannel.objects.create(
        organization=tenant.organization,
        name="pager",
        kind="pagerduty",
        config={"routing_key": "R0UT1NGKEY"},
        created_by_name="tests",
    )
    Silence.objects.create(
        organization=tenant.organization,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
        comment="deploying",
        created_by_name="tests",
    )
    MaintenanceWindow.objects.create(
        cluster_id=cluster_id,
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        comment="disk swap",
        created_by_name="tests",
    )


def test_every_page_fits_a_phone_and_passes_axe(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    requested = create_cluster(tenant, name="orders", brokers=3, racks=["a", "b", "c"])
    on_call_objects(tenant, cluster.pk)
    incident = Incident.objects.filter(cluster=cluster).first()
    operation = Operation.objects.get(cluster=requested)

    page.goto("/login/")
    check_page(page, "login")
    log_in(page, tenant.admin)

    pages = {
        "cluster-list": "/",
        "cluster-create": "/clusters/new/",
        "cluster-detail": f"/clusters/{cluster.pk}/",
        "cluster-requested": f"/clusters/{requested.pk}/",
        "cluster-delete": f"/clusters/{cluster.pk}/delete/",
        "operation-detail": f"/operations/{operation.pk}/",
        "alert-list": "/alerts/",
        "alert-detail": f"/alerts/{incident.pk}/",
        "channel-list": "/oncall/channels/",
        "silence-list": "/oncall/silences/",
        "maintenance-list": "/oncall/maintenance/",
        "token-list": "/tokens/",
        "not-found": "/clusters/00000000-0000-0000-0000-000000000000/",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        check_page(page, name)

    # The first Tab reaches the skip link, which moves the focus past the navigation.
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_api_docs_render_without_the_internet(page: Page, tenant: Tenant, live_server: object) -> None:
    own = str(live_server.url)  # type: ignore[attr-defined]
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(own):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    log_in(page, tenant.viewer)
    page.goto("/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_text("Kafka Control Plane API").first).to_be_visible()
    assert outside == []
