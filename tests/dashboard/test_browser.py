"""The dashboard in a real Chromium against a live server.

No Celery worker runs here: a new cluster stays `requested` with its provisioning operation pending.
To see live progress, the test moves that operation forward with the operations engine's own actions,
as a worker would, and watches the open page follow without a reload.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from controlplane.celery import app as celery_app
from controlplane.clusters.actions import sync_cluster_description
from controlplane.clusters.models import Cluster
from controlplane.operations.actions import (
    append_log,
    claim_operation,
    mark_step_running,
    mark_step_succeeded,
    record_step_progress,
)
from controlplane.operations.models import Operation
from controlplane.operations.outcomes import record_operation_started
from provisioning.backends.base import BrokerProcessState, BrokerStatus, ClusterDescription
from tests.dashboard.conftest import create_cluster
from tests.support.browser import log_in
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path("/tmp/kcp-dashboard-cluster-detail.png")


@pytest.fixture(autouse=True)
def no_leftover_tasks() -> Iterator[None]:
    yield
    # Creating a cluster queues its provisioning task; no worker of this test will run it.
    celery_app.control.purge()


def advance_provisioning(operation: Operation) -> None:
    """What a worker would record: step 1 done, step 2 half way."""
    lease = claim_operation(operation.pk, stale_after=timedelta(minutes=1))
    record_operation_started(operation.pk)
    first, second, _ = operation.steps.all()
    mark_step_running(first, lease)
    append_log(operation.pk, "layout accepted: 1 broker in rack-1", step=first)
    mark_step_succeeded(first, lease, output={}, progress=None)
    mark_step_running(second, lease)
    record_step_progress(second, lease, done=1, total=2, output={})
    append_log(operation.pk, "starting broker 0", step=second)


def test_create_a_cluster_and_watch_its_operation_live(page: Page, tenant: Tenant) -> None:
    log_in(page, tenant.admin)
    page.get_by_role("link", name="New cluster").first.click()

    page.get_by_label("Name").fill("payments")
    page.get_by_label("Brokers").fill("1")
    preview = page.locator("#placement-preview")
    expect(preview.locator("[data-rack]")).to_have_count(1)
    expect(preview.locator('[data-rack="rack-1"] [data-broker="0"]')).to_be_visible()
    page.get_by_role("button", name="Create cluster").click()

    page.wait_for_url(re.compile(r"/clusters/[0-9a-f-]{36}/$"))
    expect(page.locator('[data-role="cluster-status"]')).to_have_text("Requested")
    expect(page.locator('[data-role="op-state"]')).to_have_text("Pending")
    expect(page.locator('[data-role="op-progress-label"]')).to_have_text("0%")
    cluster = Cluster.objects.get(name="payments")
    assert page.url.endswith(f"/clusters/{cluster.pk}/")

    page.evaluate("window.stillTheSamePage = true")
    advance_provisioning(Operation.objects.get(cluster=cluster))

    expect(page.locator('[data-role="op-progress-label"]')).to_have_text("50%")
    expect(page.locator('[data-role="op-state"]')).to_have_text("Running")
    expect(page.locator('[data-role="cluster-status"]')).to_have_text("Provisioning")
    expect(page.locator('[data-step="0"] [data-role="step-state"]')).to_have_text("Succeeded")
    expect(page.locator('[data-step="1"] [data-role="step-progress"]')).to_have_text("1 / 2")
    expect(page.locator('[data-role="op-log"]')).to_contain_text("starting broker 0")
    assert page.evaluate("window.stillTheSamePage") is True

    page.get_by_role("link", name="Clusters").first.click()
    row = page.locator('tr[data-cluster="payments"]')
    expect(row).to_contain_text("Provisioning")
    expect(row).to_contain_text("Provision · running")


def test_a_layout_that_cannot_be_balanced_is_explained_next_to_the_field(page: Page, tenant: Tenant) -> None:
    log_in(page, tenant.admin)
    page.goto("/clusters/new/")

    page.get_by_label("Name").fill("uneven")
    page.get_by_label("Brokers").fill("4")
    page.get_by_label("Racks").fill("az-a, az-b, az-c")
    page.get_by_label("Replication factor").fill("3")
    expect(page.locator("#placement-preview")).to_contain_text("cannot be spread evenly over 3 racks")
    page.get_by_role("button", name="Create cluster").click()

    expect(page.locator('[data-field="brokers"] .field-error')).to_have_text(
        "4 brokers cannot be spread evenly over 3 racks; use a multiple of 3 (e.g. 3, 6, 9)."
    )
    assert not Cluster.objects.exists()

    page.get_by_label("Brokers").fill("6")
    expect(page.locator('#placement-preview [data-rack="az-a"]')).to_contain_text("broker 3")
    expect(page.locator('#placement-preview [data-rack="az-c"]')).to_contain_text("broker 5")


def test_an_api_token_is_shown_once_and_can_be_revoked(page: Page, tenant: Tenant) -> None:
    log_in(page, tenant.viewer)
    page.get_by_role("link", name="API tokens").click()

    page.get_by_label("Name").fill("ci-deploys")
    page.get_by_role("button", name="Create token").click()

    secret = page.locator("#new-token-value")
    expect(secret).to_have_value(re.compile(r"^kcp_"))
    raw = secret.input_value()
    page.locator("#new-token").get_by_role("button", name="Copy").click()
    expect(page.locator("#new-token").get_by_role("button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == raw

    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)
    assert raw not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-token="ci-deploys"]').get_by_role("button", name="Revoke").click()
    expect(page.locator('tr[data-token="ci-deploys"]')).to_contain_text("Revoked")


def test_cluster_detail_page_renders_the_rack_chart(page: Page, tenant: Tenant) -> None:
    """Also leaves a screenshot in /tmp for a person to look at."""
    cluster = create_cluster(
        tenant, name="events", brokers=6, racks=["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    )
    states = [BrokerProcessState.RUNNING] * 4 + [BrokerProcessState.STARTING, BrokerProcessState.CRASHED]
    sync_cluster_description(
        cluster_id=cluster.pk,
        description=ClusterDescription(
            bootstrap_servers="10.0.1.10:9092,10.0.2.10:9092,10.0.3.10:9092",
            brokers=tuple(
                BrokerStatus(
                    node_id=i,
                    rack=cluster.racks[i % 3],
                    endpoint=f"10.0.{i % 3 + 1}.{10 + i}:9092",
                    state=state,
                )
                for i, state in enumerate(states)
            ),
        ),
    )
    operation = Operation.objects.get(cluster=cluster)
    lease = claim_operation(operation.pk, stale_after=timedelta(minutes=1))
    record_operation_started(operation.pk)
    first, second, _ = operation.steps.all()
    mark_step_running(first, lease)
    append_log(
        operation.pk,
        "6 brokers over 3 racks: eu-west-1a [0, 3], eu-west-1b [1, 4], eu-west-1c [2, 5]",
        step=first,
    )
    mark_step_succeeded(first, lease, output={}, progress=None)
    mark_step_running(second, lease)
    record_step_progress(second, lease, done=4, total=6, output={})
    append_log(operation.pk, "4 of 6 brokers running", step=second)

    log_in(page, tenant.admin)
    page.goto(f"/clusters/{cluster.pk}/")

    chart = page.locator(".rack-chart")
    expect(chart.locator(".rack-row")).to_have_count(3)
    expect(chart.locator('[data-rack="eu-west-1b"] .broker-seg')).to_have_count(2)
    expect(chart.locator('.broker-seg[data-broker="5"]')).to_have_class(re.compile("broker-crashed"))
    expect(page.locator("#bootstrap-servers")).to_have_value("10.0.1.10:9092,10.0.2.10:9092,10.0.3.10:9092")
    expect(page.get_by_role("button", name="Cancel operation")).to_be_visible()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
