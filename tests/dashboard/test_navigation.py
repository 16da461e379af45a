"""The operations page across clusters, cluster list search and filters, and a deleted cluster that
looks deleted; through Django's test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from controlplane.audit.actions import Actor
from controlplane.clusters.actions import request_cluster_delete
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.operations.models import Operation
from tests.dashboard.conftest import create_cluster, monitored_cluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(page: str, attribute: str) -> list[str]:
    return [chunk.split('"')[0] for chunk in page.split(f'<tr {attribute}="')[1:]]


def test_operations_page_lists_every_visible_cluster_and_filters(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    orders = create_cluster(tenant, name="orders")
    payments = create_cluster(tenant, name="payments")
    hidden = create_cluster(other_tenant, name="secret")
    Operation.objects.filter(cluster=payments, kind="provision").update(state="cancelled")
    request_cluster_delete(cluster=payments, actor=Actor(user=tenant.admin))
    client = signed_in(tenant.viewer)

    everything = client.get("/operations/").content.decode()
    deletes = client.get("/operations/", {"kind": "delete"}).content.decode()
    pending = client.get("/operations/", {"state": "pending", "cluster": str(orders.pk)}).content.decode()
    wrong = client.get("/operations/", {"state": "sleeping"})

    ids = {str(op.pk): op for op in Operation.objects.all()}
    assert {ids[i].cluster for i in rows(everything, "data-operation")} == {orders, payments}
    assert str(Operation.objects.get(cluster=hidden).pk) not in everything
    assert [ids[i].kind for i in rows(deletes, "data-operation")] == ["delete"]
    assert [ids[i].cluster for i in rows(pending, "data-operation")] == [orders]
    assert wrong.status_code == 200 and "Select a valid choice" in wrong.content.decode()


def test_cluster_list_searches_and_filters(tenant: Tenant) -> None:
    healthy = monitored_cluster(tenant, name="payments")
    create_cluster(tenant, name="orders")
    gone = create_cluster(tenant, name="old-orders")
    Cluster.objects.filter(pk=gone.pk).update(status=ClusterStatus.DELETED)
    client = signed_in(tenant.viewer)

    def listed(**query: str) -> list[str]:
        return rows(client.get("/", query).content.decode(), "data-cluster")

    assert listed() == ["orders", "payments"]
    assert listed(name="ORD") == ["orders"]
    assert listed(status="deleted") == ["old-orders"]
    assert listed(health="critical") == [healthy.name]
    assert listed(backend="kubernetes") == []
    assert "No cluster matches" in client.get("/", {"name": "nothing"}).content.decode()


def test_a_deleted_cluster_looks_deleted(tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant)
    Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.DELETED, bootstrap_servers="")
    client = signed_in(tenant.admin)

    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    live = client.get(f"/clusters/{cluster.pk}/monitoring/").content.decode()

    assert 'data-role="deleted"' in page and "Its brokers and their data are gone" in page
    for alive in (
        "bootstrap-servers",
        'id="health"',
        'id="consumer-groups"',
        'id="lag-chart"',
        'id="operate"',
    ):
        assert alive not in page, alive
    assert 'id="health"' not in live and 'id="consumer-groups"' not in live
    assert 'id="cluster-operations"' in page
