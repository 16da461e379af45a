"""The data plane's dashboard pages in a real Chromium, on the simulated six-broker cluster over three
racks with SCRAM and mTLS: a topic created and grown through the forms, a user created with its
password shown once and an ACL rule added; every page fits 1366x900 and 390x844 without scrolling
sideways and axe-core finds no serious or critical violation (`check_page`). One walk, one login."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from controlplane.clusters.models import Cluster
from controlplane.dataplane.models import AclRule, Topic
from tests.support.browser import check_page, log_in
from tests.support.simulated_backend import StandInKafkaCluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_topics_users_and_acls_through_the_pages(
    page: Page, tenant: Tenant, secured: Cluster, kafka: StandInKafkaCluster
) -> None:
    kafka.create_topic("legacy", 2, 2)  # created outside the control plane: read only
    log_in(page, tenant.admin)
    base = f"/clusters/{secured.pk}"

    page.goto(f"{base}/")
    expect(page.locator('[data-role="client-config"]')).to_contain_text("SASL_SSL")
    check_page(page, "dataplane-cluster-detail")

    page.goto(f"{base}/new-topic/")
    page.get_by_label("Name").fill("orders!")
    page.get_by_role("button", name="Create topic").click()
    expect(page.locator('[data-field="name"] .field-error')).to_contain_text("letters, digits")
    check_page(page, "dataplane-topic-form-errors")
    page.get_by_label("Name").fill("orders")
    page.get_by_label("Partitions", exact=True).fill("6")
    page.get_by_label("Config overrides").fill("retention.ms=3600000")
    page.get_by_role("button", name="Create topic").click()
    expect(page.locator("#partition-table tbody tr")).to_have_count(6)

    page.get_by_label("Partitions", exact=True).fill("9")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#partition-table tbody tr")).to_have_count(9)
    assert Topic.objects.get(name="orders").partitions == 9
    check_page(page, "dataplane-topic-detail")

    page.goto(f"{base}/topics/")
    expect(page.locator('[data-topic="legacy"]')).to_be_visible()
    check_page(page, "dataplane-topic-list")
    page.goto(f"{base}/topics/orders/delete/")
    check_page(page, "dataplane-topic-delete")

    page.goto(f"{base}/users/")
    page.get_by_label("Name", exact=True).fill("alice")
    page.get_by_label("Produce, bytes/s").first.fill("1048576")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#new-password")).to_have_value(kafka.scram_password("alice") or "missing")
    page.get_by_label("Principal").fill("User:alice")
    page.get_by_label("Resource name").fill("orders")
    page.get_by_label("Write", exact=True).check()
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("#acl-table tbody tr")).to_have_count(1)
    assert AclRule.objects.get().operations == ["write"]
    check_page(page, "dataplane-users")
