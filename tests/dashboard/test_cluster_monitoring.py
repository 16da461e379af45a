"""The cluster page's monitoring panels, through Django's test client: health, replicas per broker
by rack, consumer groups and open alerts, and the fragment the page's script refreshes them from.

The data comes from the real collector and alerting over `SimulatedKafkaCluster` (see
`monitored_cluster`), the stand-in for a multi-broker Kafka cluster.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from controlplane.clusters.models import Cluster
from controlplane.dashboard.templatetags import dashboard as dashboard_tags
from monitoring.alerting.models import Incident
from monitoring.collector import collect_cluster
from tests.dashboard.conftest import monitored_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db

LIVE_REGIONS = [
    "firing-count",
    "health",
    "cluster-alerts",
    "replicas",
    "consumer-groups",
    "operation-slot",
    "operations",
]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def region(page: str, name: str) -> str:
    """The HTML of one live region (they do not nest)."""
    match = re.search(rf'<(\w+)[^>]*data-live-region="{name}".*?</\1>', page, re.S)
    assert match, f"no region {name}"
    return match.group(0)


def rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', html)


@pytest.fixture
def monitored(tenant: Tenant) -> Cluster:
    return monitored_cluster(tenant)


def test_health_panel_shows_status_reason_counts_and_topic_problems(
    tenant: Tenant, monitored: Cluster
) -> None:
    page = signed_in(tenant.viewer).get(f"/clusters/{monitored.pk}/").content.decode()

    health = region(page, "health")
    assert 'data-status="critical"' in health
    assert "Topic audit has 2 partitions with fewer in-sync replicas than min.insync.replicas" in health
    stats = dict(
        re.findall(r'data-stat="([\w-]+)">\s*<span class="stat-value">(.*?)</span>\s*<span', health, re.S)
    )
    assert re.sub(r"<[^>]+>", "", stats["brokers-up"]) == "5/6"
    assert (stats["offline"], stats["under-min-isr"], stats["under-replicated"]) == ("0", "2", "5")
    assert "broker 6</span>" in health  # listed as down
    # Worst topic first: audit refuses writes, orders is only under-replicated.
    assert rows(health, "data-topic") == ["audit", "orders"]
    assert "Broker 6 is expected but not registered with the cluster" in health


def test_replicas_per_broker_are_grouped_by_rack(tenant: Tenant, monitored: Cluster) -> None:
    page = signed_in(tenant.viewer).get(f"/clusters/{monitored.pk}/").content.decode()

    chart = region(page, "replicas")
    racks = re.findall(r'data-rack="([^"]+)"', chart)
    assert racks == ["rack-0", "rack-1", "rack-2"]
    rack_2 = chart[chart.index('data-rack="rack-2"') :]
    assert re.findall(r'data-broker="(\d+)" data-replicas="(\d+)"', rack_2) == [("3", "3"), ("6", "5")]
    broker_6 = rack_2[rack_2.index('data-broker="6"') :]
    # Broker 6 is down: all five of its replicas are drawn out of sync.
    assert 'replica-out" style="width: 100.0%"' in broker_6
    assert "badge-crashed" in broker_6.split("</div>")[0]


def test_consumer_groups_show_status_sentence_lag_and_time_lag(tenant: Tenant, monitored: Cluster) -> None:
    page = signed_in(tenant.viewer).get(f"/clusters/{monitored.pk}/").content.decode()

    groups = region(page, "consumer-groups")
    assert rows(groups, "data-group") == ["billing", "search", "mirror"]
    billing = groups[groups.index('data-group="billing"') : groups.index('data-group="search"')]
    assert "badge-stall" in billing and ">STALL<" in billing
    assert "the consumer is stuck at offset 120" in billing
    assert ">2,280<" in billing and ">2 min 51 s<" in billing
    assert "badge-warn" in groups and "badge-ok" in groups


def test_open_alerts_of_the_cluster_are_listed_firing_first(tenant: Tenant, monitored: Cluster) -> None:
    page = signed_in(tenant.viewer).get(f"/clusters/{monitored.pk}/").content.decode()

    alerts = region(page, "cluster-alerts")
    listed = [int(pk) for pk in rows(alerts, "data-incident")]
    states = [Incident.objects.get(pk=pk).state for pk in listed]
    assert states == ["firing", "firing", "firing", "pending", "pending"]
    assert region(page, "firing-count").endswith(">3</span>")
    assert f'data-history-url="/api/v1/clusters/{monitored.pk}/metrics-history/"' in page


def test_the_live_fragment_renders_the_same_regions(tenant: Tenant, monitored: Cluster) -> None:
    client = signed_in(tenant.viewer)

    fragment = client.get(f"/clusters/{monitored.pk}/monitoring/").content.decode()

    assert re.findall(r'data-live-region="([\w-]+)"', fragment) == LIVE_REGIONS
    assert "<html" not in fragment
    page = client.get(f"/clusters/{monitored.pk}/").content.decode()
    assert region(fragment, "consumer-groups") == region(page, "consumer-groups")


def test_an_unreachable_cluster_is_unknown_and_keeps_its_last_counts(
    tenant: Tenant, monitored: Cluster
) -> None:
    simulated = SimulatedKafkaCluster.with_brokers(6)
    simulated.set_reachable(False)
    collect_cluster(monitored.pk, admin=simulated, now=timezone.now())

    health = region(signed_in(tenant.viewer).get(f"/clusters/{monitored.pk}/").content.decode(), "health")

    assert 'data-status="unknown"' in health
    assert "The cluster could not be reached" in health
    assert "Counts below are from the last collection that reached the cluster" in health
    assert rows(health, "data-topic") == ["audit", "orders"]


def test_a_cluster_never_collected_says_so(tenant: Tenant, cluster: Cluster) -> None:
    page = signed_in(tenant.viewer).get(f"/clusters/{cluster.pk}/").content.decode()

    assert 'data-status="unknown"' in region(page, "health")
    assert "Not collected yet." in page
    assert "Shown after the first collection that reaches the cluster." in region(page, "replicas")
    assert "No consumer groups have committed offsets" in region(page, "consumer-groups")
    assert "Nothing open." in region(page, "cluster-alerts")


def test_other_organizations_and_anonymous_visitors_see_nothing(
    tenant: Tenant, other_tenant: Tenant, monitored: Cluster
) -> None:
    outsider = signed_in(other_tenant.owner)

    assert outsider.get(f"/clusters/{monitored.pk}/").status_code == 404
    assert outsider.get(f"/clusters/{monitored.pk}/monitoring/").status_code == 404
    assert "nav-count" in outsider.get("/").content.decode()
    assert 'title="0 firing" hidden' in outsider.get("/").content.decode()
    assert Client().get(f"/clusters/{monitored.pk}/monitoring/").status_code == 302


def test_time_lags_beyond_any_timedelta_still_read_as_durations() -> None:
    # A consumer at offset 0 of a log at 2**60 that barely grows extrapolates to a time lag of
    # billions of years: shown as such, not an OverflowError that breaks the page.
    assert dashboard_tags.seconds(3.8e18) == "43981481481481 d 11 h"
    assert dashboard_tags.seconds(65) == "1 min 05 s"
    assert dashboard_tags.seconds(None) == "—"
