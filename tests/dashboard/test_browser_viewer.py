"""A viewer in a real Chromium: no page offers them a control that changes anything of their
organization, and every such POST, forged from the same signed-in browser with a valid CSRF token
(so that only the role check can refuse it), answers 403 and writes nothing: the audit log, which
every change writes to, stays as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from controlplane.audit.models import AuditEvent
from controlplane.celery import app as celery_app
from controlplane.operations.models import Operation
from controlplane.tenancy.models import Membership
from monitoring.alerting.models import Incident, MaintenanceWindow, NotificationChannel, Silence
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.dashboard.test_browser_pages import on_call_objects
from tests.support.browser import log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_leftover_tasks() -> Iterator[None]:
    yield
    celery_app.control.purge()


def test_a_viewer_sees_no_mutating_control_and_a_forged_post_is_refused(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    requested = create_cluster(tenant, name="orders", brokers=3, racks=["a", "b", "c"])
    on_call_objects(tenant, cluster.pk)
    operation = Operation.objects.get(cluster=requested)
    incident = Incident.objects.filter(cluster=cluster).first()
    channel = NotificationChannel.objects.get(organization=tenant.organization)
    silence = Silence.objects.get(organization=tenant.organization)
    window = MaintenanceWindow.objects.get(cluster=cluster)
    member = Membership.objects.get(user=tenant.admin)
    slug = tenant.organization.slug
    log_in(page, tenant.viewer)

    pages = [
        "/",
        f"/clusters/{cluster.pk}/",
        f"/clusters/{requested.pk}/",
        f"/clusters/{cluster.pk}/groups/billing/",
        f"/clusters/{cluster.pk}/brokers/1/",
        "/operations/",
        f"/operations/{operation.pk}/",
        "/alerts/",
        f"/alerts/{incident.pk}/",
        "/oncall/channels/",
        "/oncall/silences/",
        "/oncall/maintenance/",
        f"/organizations/{slug}/members/",
    ]
    for path in pages:
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        # GET forms (filters) only; the header's log-out form is outside main.
        assert page.locator("main form[method='post']").count() == 0, path
        assert (
            page.locator("main a[href$='/delete/'], main a[href*='/operate/'], main a[href$='/new/']").count()
            == 0
        ), path

    forged = {
        "/clusters/new/": {"name": "forged", "brokers": "1"},
        f"/clusters/{cluster.pk}/delete/": {"confirm_name": cluster.name},
        f"/clusters/{cluster.pk}/settings/": {"self_healing": "false"},
        f"/clusters/{cluster.pk}/operate/scale/": {"brokers": "9", "confirm": "1"},
        f"/clusters/{cluster.pk}/operate/restart/": {"confirm": "1"},
        f"/clusters/{cluster.pk}/operate/replace-broker/": {"node_id": "1", "confirm": "1"},
        f"/clusters/{cluster.pk}/operate/upgrade/": {"kafka_version": "4.4.0", "confirm": "1"},
        f"/operations/{operation.pk}/cancel/": {},
        f"/alerts/{incident.pk}/acknowledge/": {},
        f"/alerts/{incident.pk}/resolve/": {},
        "/oncall/channels/": {"name": "forged", "kind": "webhook", "url": "https://example.com/"},
        f"/oncall/channels/{channel.pk}/enabled/": {"enabled": "false"},
        f"/oncall/channels/{channel.pk}/test/": {},
        "/oncall/silences/": {"duration": "1h", "comment": "forged"},
        f"/oncall/silences/{silence.pk}/expire/": {},
        "/oncall/maintenance/": {"cluster": str(cluster.pk), "duration": "1h"},
        f"/oncall/maintenance/{window.pk}/end/": {},
        f"/organizations/{slug}/members/": {"username": tenant.viewer.get_username(), "role": "owner"},
        f"/organizations/{slug}/members/{member.pk}/role/": {"role": "viewer"},
        f"/organizations/{slug}/members/{member.pk}/remove/": {},
    }
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    audited = AuditEvent.objects.count()
    operations = Operation.objects.count()
    for path, form in forged.items():
        response = page.request.post(
            path, form=form, headers={"X-CSRFToken": token, "Referer": page.url}, max_redirects=0
        )
        assert response.status == 403, (path, response.status)
        # The role check refused it, not the CSRF check (whose page says the form was not this site's).
        assert "did not come from this page" not in response.text(), path
    assert AuditEvent.objects.count() == audited
    assert Operation.objects.count() == operations
    assert Membership.objects.get(pk=member.pk).role == "admin"
