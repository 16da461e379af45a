"""A broker's page and a consumer group's page through Django's test client, on the simulated
six-broker cluster of `monitored_cluster` (a multi-broker cluster cannot run for every test; the
members' client ids and hosts from real Apache Kafka are proven in
tests/monitoring/test_real_kafka_monitoring.py)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from monitoring import assignment
from monitoring.models import ClusterHealth
from tests.dashboard.conftest import monitored_cluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitored(tenant: Tenant) -> Cluster:
    return monitored_cluster(tenant)


def page_of(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def rows(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"')[1].split("</table>")[0]
    return body.split("<tr")[2:]


def test_a_broker_page_says_where_it_is_what_it_holds_and_how_full_it_is(
    tenant: Tenant, monitored: Cluster
) -> None:
    monitored.brokers.filter(node_id=2).update(endpoint="10.0.1.12:9092")
    known = assignment.load(monitored.pk)
    held = {tp for tp, replicas in known.replicas.items() if 2 in replicas}
    led = {tp for tp, leader in known.leaders.items() if leader == 2}
    assert led and led < held

    html = page_of(tenant.viewer, f"/clusters/{monitored.pk}/brokers/2/")

    assert 'data-role="rack">rack-1<' in html and "10.0.1.12:9092" in html and "Running" in html
    assert re.search(r'data-stat="leaders"><span class="stat-value">' + str(len(led)) + "<", html)
    assert re.search(r'data-stat="replicas"><span class="stat-value">' + str(len(held)) + "<", html)
    listed = rows(html, "broker-partitions")
    assert len(listed) == len(held)
    # Partitions it leads come first.
    assert all('data-led="yes"' in row for row in listed[: len(led)])
    assert "% used" in html and "/var/lib/kafka/broker-2" in html


def test_a_dead_broker_is_down_and_reports_no_disk(tenant: Tenant, monitored: Cluster) -> None:
    html = page_of(tenant.viewer, f"/clusters/{monitored.pk}/brokers/6/")
    assert ">down<" in html and "not reported" in html


def test_a_consumer_group_page_has_every_partition_its_members_and_its_history(
    tenant: Tenant, monitored: Cluster
) -> None:
    html = page_of(tenant.viewer, f"/clusters/{monitored.pk}/groups/billing/")

    (orders_0,) = rows(html, "group-partitions")
    assert 'data-status="STALL"' in orders_0
    assert 'data-role="committed">120<' in orders_0 and 'data-role="end">2,400<' in orders_0
    assert 'data-role="lag">2,280<' in orders_0 and 'data-role="time-lag">2 min 51 s<' in orders_0
    assert "billing-consumer-1" in orders_0 and "/10.0.0.1" in orders_0
    members = rows(html, "group-members")
    assert [re.search(r'data-client="([^"]+)"', m).group(1) for m in members] == [
        "billing-consumer-1",
        "billing-consumer-2",
    ]
    assert "/10.0.0.2" in members[1] and ">none<" in members[1]
    history = re.findall(r'<li data-status="(\w+)"', html.split('id="status-history"')[1].split("</ol>")[0])
    assert history[0] == "STALL" and len(history) >= 2
    assert 'data-group="billing"' in html


def test_pages_of_what_is_not_there_are_404s(
    tenant: Tenant, other_tenant: Tenant, monitored: Cluster
) -> None:
    mine, theirs = Client(), Client()
    mine.force_login(tenant.viewer)
    theirs.force_login(other_tenant.owner)
    assert mine.get(f"/clusters/{monitored.pk}/brokers/99/").status_code == 404
    assert mine.get(f"/clusters/{monitored.pk}/groups/nobody/").status_code == 404
    assert theirs.get(f"/clusters/{monitored.pk}/brokers/1/").status_code == 404
    assert theirs.get(f"/clusters/{monitored.pk}/groups/billing/").status_code == 404
    Cluster.objects.filter(pk=monitored.pk).update(status=ClusterStatus.DELETED)
    assert mine.get(f"/clusters/{monitored.pk}/groups/billing/").status_code == 404


def test_the_cluster_page_links_to_brokers_and_groups(tenant: Tenant, monitored: Cluster) -> None:
    html = page_of(tenant.viewer, f"/clusters/{monitored.pk}/")
    assert f'href="/clusters/{monitored.pk}/groups/billing/"' in html
    assert f'href="/clusters/{monitored.pk}/brokers/3/"' in html
    assert 'id="broker-chart" data-kind="brokers"' in html and "endcomment" not in html


def test_an_assignment_stored_before_leaders_reads_without_them(tenant: Tenant, monitored: Cluster) -> None:
    ClusterHealth.objects.filter(pk=monitored.pk).update(assignment='{"v":1,"c":1,"p":[["orders",0,[2,3]]]}')
    known = assignment.load(monitored.pk)
    assert known.replicas == {("orders", 0): [2, 3]} and known.leaders == {}
    html = page_of(tenant.viewer, f"/clusters/{monitored.pk}/brokers/2/")
    assert 'data-led="no"' in html and "none" in rows(html, "broker-partitions")[0]


def test_every_group_is_listed_worst_first_and_filtered(tenant: Tenant) -> None:
    cluster = monitored_cluster(tenant, quiet_groups=30)
    url = f"/clusters/{cluster.pk}/groups/"

    everything = page_of(tenant.viewer, url)
    stalled = page_of(tenant.viewer, f"{url}?status=STALL")
    quiet = page_of(tenant.viewer, f"{url}?q=QUIET-2")

    listed = re.findall(r'<tr data-group="([^"]+)"', everything)
    assert len(listed) == 33 and listed[:2] == ["billing", "search"]
    assert re.findall(r'<tr data-group="([^"]+)"', stalled) == ["billing"]
    assert re.findall(r'<tr data-group="([^"]+)"', quiet) == ["quiet-2"] + [f"quiet-2{n}" for n in range(10)]
    cluster_page = page_of(tenant.viewer, f"/clusters/{cluster.pk}/")
    assert f'href="{url}">every consumer group</a>' in cluster_page
