"""The Targets page in a real Chromium: an admin registers a Kubernetes target (a field refused with the
API's message first, the pasted kubeconfig not shown again), tests its connection and reads the report,
and removes it after a confirmation; the page at both sizes through `check_page` (no sideways
scrolling, no serious axe violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from controlplane.targets.models import Target
from tests.dashboard.test_targets import TOKEN, kubeconfig
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_registers_tests_and_removes_a_target(page: Page, tenant: Tenant) -> None:
    log_in(page, tenant.admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Targets").click()
    expect(page.get_by_role("heading", name="Targets", level=1)).to_be_visible()
    check_page(page, "target-list-empty")

    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("Kubeconfig").fill(kubeconfig("https://127.0.0.1:1"))  # nothing listens there
    page.get_by_label("Namespace").fill("Kafka_Lab")
    page.get_by_role("button", name="Register target").click()
    expect(page.locator('[data-field="namespace"] .field-error')).to_contain_text("lowercase letters")
    expect(page.get_by_label("Kubeconfig")).to_have_value("")  # a credential is not shown again
    assert TOKEN not in page.content()

    page.get_by_label("Kubeconfig").fill(kubeconfig("https://127.0.0.1:1"))
    page.get_by_label("Namespace").fill("kafka-lab")
    page.get_by_role("button", name="Register target").click()
    row = page.locator('tr[data-target="lab"]')
    expect(row).to_contain_text("kafka-lab")

    row.get_by_role("button", name="Test connection").click()
    report = page.locator("#connection-report")
    expect(report).to_contain_text("Needs attention")
    expect(report.locator('[data-check="api_server"]')).to_contain_text("did not answer")
    check_page(page, "target-list")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-target="lab"]').get_by_role("button", name="Remove").click()
    expect(page.locator('tr[data-target="lab"]')).to_have_count(0)
    assert not Target.objects.exists()
