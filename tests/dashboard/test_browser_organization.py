"""An organization's members and audit log in a real Chromium: an owner adds a member, changes their
role and removes them (after a confirmation), then reads what happened in the audit log; an owner
invites someone by email (received by a real SMTP server) who opens the link in another browser and
joins; each page at both sizes through `check_page` (no sideways scrolling, no serious axe violation)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from controlplane.tenancy.models import Membership
from tests.support.browser import check_page, log_in
from tests.support.smtp_receiver import SmtpReceiver
from tests.support.tenants import Tenant, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_owner_manages_members_and_reads_the_audit_log(page: Page, tenant: Tenant) -> None:
    make_user("dana")
    log_in(page, tenant.owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Organization").click()
    expect(page.get_by_role("heading", name="Acme", level=1)).to_be_visible()
    check_page(page, "member-list")

    page.get_by_label("Username").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator('[data-field="username"] .field-error')).to_contain_text("No account named")
    expect(page.get_by_label("Username")).to_have_value("nobody")

    page.get_by_label("Username").fill("dana")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Add member").click()
    row = page.locator('tr[data-member="dana"]')
    expect(row).to_have_attribute("data-role", "admin")

    row.get_by_label("Role of dana").select_option("viewer")
    row.get_by_role("button", name="Change").click()
    expect(page.locator('tr[data-member="dana"]')).to_have_attribute("data-role", "viewer")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-member="dana"]').get_by_role("button", name="Remove dana").click()
    expect(page.locator('tr[data-member="dana"]')).to_have_count(0)
    assert not Membership.objects.filter(user__username="dana").exists()

    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Audit log").click()
    removal = page.locator('tr[data-action="membership.remove"]')
    expect(removal).to_contain_text(tenant.owner.get_username())
    expect(removal).to_contain_text("127.0.0.1")
    check_page(page, "audit-log")


def test_a_viewer_sees_the_members_without_a_control(page: Page, tenant: Tenant) -> None:
    log_in(page, tenant.viewer)
    page.goto(f"/organizations/{tenant.organization.slug}/members/")
    expect(page.locator(f'tr[data-member="{tenant.owner.get_username()}"]')).to_contain_text("Owner")
    expect(page.locator("main form[method='post']")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    check_page(page, "member-list-viewer")


def test_an_invited_person_joins_through_the_emailed_link(
    page: Page, browser: Browser, tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    log_in(page, tenant.owner)
    page.goto(f"/organizations/{tenant.organization.slug}/members/")
    page.get_by_label("Email address").fill("dana@example.com")
    page.get_by_label("Invite as").select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator('tr[data-invitation="dana@example.com"]')).to_contain_text("Admin")
    check_page(page, "member-list-invitations")

    (mail,) = smtp_receiver.wait_for(1)
    link = re.search(r"https?://\S+/invitations/\S+/", mail.body)
    assert link, mail.body
    newcomer = browser.new_context(viewport=page.viewport_size).new_page()
    newcomer.goto(link[0])
    expect(newcomer.get_by_role("heading", name="Create your account")).to_be_visible()
    check_page(newcomer, "invitation-accept")
    newcomer.get_by_label("Username").fill("dana")
    newcomer.get_by_label("Password", exact=True).fill("blue-kafka-meadow-42")
    newcomer.get_by_label("Password confirmation").fill("blue-kafka-meadow-42")
    newcomer.get_by_role("button", name="Create account and join").click()
    expect(newcomer.locator('tr[data-member="dana"]')).to_have_attribute("data-role", "admin")
    newcomer.context.close()
