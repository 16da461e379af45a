"""The cluster page follows operations it did not start: one requested through the API appears
without a reload, and the operations table follows it to its end; the operations page, and a
deleted cluster, at both sizes through `check_page`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from controlplane.celery import app as celery_app
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.operations.actions import (
    claim_operation,
    mark_step_running,
    mark_step_succeeded,
    succeed_operation,
)
from controlplane.operations.models import Operation
from controlplane.operations.outcomes import record_operation_started
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.support.browser import check_page, log_in
from tests.support.tenants import Tenant, token_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_leftover_tasks() -> Iterator[None]:
    yield
    celery_app.control.purge()  # requests queue their operation; no worker runs here


def run_to_the_end(operation: Operation) -> None:
    """What a worker records for an operation that goes well."""
    lease = claim_operation(operation.pk, stale_after=timedelta(minutes=1))
    assert lease is not None
    record_operation_started(operation.pk)
    for step in operation.steps.all():
        mark_step_running(step, lease)
        mark_step_succeeded(step, lease, output={}, progress=None)
    succeed_operation(operation.pk, lease)


def test_an_operation_started_through_the_api_appears_and_is_followed(page: Page, tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    log_in(page, tenant.viewer)
    page.goto(f"/clusters/{cluster.pk}/")
    expect(page.locator("#operation")).to_have_count(0)
    page.evaluate("window.stillTheSamePage = true")

    answer = token_client(tenant.admin).post(f"/api/v1/clusters/{cluster.pk}/restart/", {}, format="json")
    assert answer.status_code == 202
    operation = Operation.objects.get(cluster=cluster)

    panel = page.locator("#operation")
    expect(panel.locator('[data-role="op-state"]')).to_have_text("Pending")
    row = page.locator(f'#cluster-operations tr[data-operation="{operation.pk}"]')
    expect(row.locator('[data-role="state"]')).to_have_text("Pending")

    run_to_the_end(operation)
    expect(panel.locator('[data-role="op-state"]')).to_have_text("Succeeded")
    expect(row.locator('[data-role="state"]')).to_have_text("Succeeded")
    expect(row.locator('[data-role="progress"]')).to_have_text("100%")
    assert page.evaluate("window.stillTheSamePage") is True


def test_operations_page_and_a_deleted_cluster_fit_and_pass_axe(page: Page, tenant: Tenant) -> None:
    create_cluster(tenant, name="orders")
    gone = monitored_cluster(tenant, name="old")
    Cluster.objects.filter(pk=gone.pk).update(status=ClusterStatus.DELETED)
    log_in(page, tenant.admin)

    page.goto("/operations/")
    expect(page.locator("#operation-table tbody tr")).to_have_count(1)
    page.get_by_label("Kind").select_option("provision")
    page.wait_for_url("**/operations/?*kind=provision*")
    check_page(page, "operation-list")

    page.goto(f"/clusters/{gone.pk}/")
    expect(page.locator('[data-role="deleted"]')).to_be_visible()
    check_page(page, "cluster-deleted")

    page.goto("/?name=ord")
    expect(page.locator("#cluster-table tbody tr")).to_have_count(1)
    check_page(page, "cluster-list-search")
