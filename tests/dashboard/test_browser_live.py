"""The cluster page follows operations it did not start: one requested through the API appears
without a reload, and the operations table follows it to its end; a consumer group's and a broker's
pages follow new collections without a reload; the operations page, and a deleted cluster, at both
sizes through `check_page`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
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
from monitoring.collector import collect_cluster
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.support.alerting import make_cluster
from tests.support.browser import check_page, log_in
from tests.support.simulator import SimulatedKafkaCluster
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


def test_group_and_broker_pages_follow_new_collections(page: Page, tenant: Tenant) -> None:
    # The simulator stands in for a three-broker cluster: the collector reads it as it reads Kafka.
    cluster = make_cluster(tenant.organization, name="live", brokers=3)
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=5)
    simulated.create_topic("orders", 3, 3)
    simulated.set_group_state("billing", "Stable", members=1)
    simulated.produce("orders", 0, 500)
    simulated.commit("billing", "orders", 0, 100)
    start = timezone.now() - timedelta(minutes=2)
    collect_cluster(cluster.pk, admin=simulated, now=start)
    log_in(page, tenant.viewer)

    page.goto(f"/clusters/{cluster.pk}/groups/billing/")
    committed = page.locator('tr[data-partition="orders-0"] [data-role="committed"]')
    expect(committed).to_have_text("100")
    page.evaluate("window.stillTheSamePage = true")
    simulated.commit("billing", "orders", 0, 450)
    collect_cluster(cluster.pk, admin=simulated, now=start + timedelta(seconds=30))
    expect(committed).to_have_text("450")
    expect(page.locator('tr[data-partition="orders-0"] [data-role="lag"]')).to_have_text("50")

    page.goto(f"/clusters/{cluster.pk}/brokers/2/")
    out_of_sync = page.locator('[data-stat="out-of-sync"] .stat-value')
    expect(out_of_sync).to_have_text("0")
    page.evaluate("window.stillTheSamePage = true")
    simulated.fail_broker(2)
    collect_cluster(cluster.pk, admin=simulated, now=start + timedelta(seconds=60))
    expect(out_of_sync).to_have_text("3")  # its replicas of orders' three partitions fell out of the ISR
    expect(page.locator(".page-header h1")).to_contain_text("down")
    assert page.evaluate("window.stillTheSamePage") is True
