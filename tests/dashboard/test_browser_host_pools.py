"""A host pool registered from the Targets page in a real Chromium: the kind's own fields shown once
"VM host pool" is chosen, a bad line refused with its message, the pasted key not shown again, the
pool listed with its hosts, and its connection test naming each host that does not answer; the page
at both sizes through `check_page` (no sideways scrolling, no serious axe violation)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from controlplane.targets.models import Target
from tests.dashboard.test_host_pools import HOST_KEY
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_registers_and_tests_a_host_pool(
    page: Page, tenant: Tenant, ssh_key: str, settings: Any
) -> None:
    settings.VM_CONNECT_TIMEOUT_SECONDS = 1
    log_in(page, tenant.admin)
    page.goto("/targets/")
    page.get_by_label("Name", exact=True).fill("dc1")
    page.get_by_label("Kind").select_option("vm")
    hosts = page.get_by_label("Hosts", exact=True)
    expect(hosts).to_be_visible()
    expect(page.get_by_label("Kubeconfig")).to_be_hidden()
    hosts.fill("kafka-1 192.0.2.1\nkafka-2 192.0.2.2 b")
    page.get_by_label("SSH private key").fill(ssh_key)
    page.get_by_label("Host keys (known_hosts)").fill(f"192.0.2.1 {HOST_KEY}\n192.0.2.2 {HOST_KEY}\n")
    page.get_by_role("button", name="Register target").click()
    expect(page.locator('[data-field="hosts"] .field-error')).to_contain_text(
        "Line 1: give name, address and rack"
    )
    expect(page.get_by_label("SSH private key")).to_have_value("")  # a credential is not shown again
    assert ssh_key.splitlines()[1] not in page.content()

    page.get_by_label("Kind").select_option("vm")
    page.get_by_label("Hosts", exact=True).fill("kafka-1 192.0.2.1 a\nkafka-2 192.0.2.2 b")
    page.get_by_label("SSH private key").fill(ssh_key)
    page.get_by_label("Host keys (known_hosts)").fill(f"192.0.2.1 {HOST_KEY}\n192.0.2.2 {HOST_KEY}\n")
    page.get_by_role("button", name="Register target").click()
    row = page.locator('tr[data-target="dc1"]')
    expect(row).to_contain_text("kafka-1 192.0.2.1 (a), kafka-2 192.0.2.2 (b)")
    expect(row).to_contain_text("an SSH key")
    assert Target.objects.get().kind == "vm"

    row.get_by_role("button", name="Test connection").click()
    report = page.locator("#connection-report")
    expect(report).to_contain_text("Needs attention")
    expect(report.locator('[data-check="host kafka-1"]')).to_contain_text("kafka-1 (192.0.2.1)")
    check_page(page, "target-list-host-pool")
