"""The monitoring API's scoping, listing and schema. Collections run against `SimulatedKafkaCluster`,
a stand-in for a multi-broker Kafka cluster (none can run here)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml
from rest_framework.test import APIClient

from monitoring.collector import collect_cluster
from tests.monitoring.test_collect import T0, make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant, token_client


def collected_cluster(tenant: Tenant) -> Any:
    """Three groups: `app.payments-v2` stalled, `search` slow (WARN), `mirror` caught up."""
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=5)
    simulated.create_topic("events", 2, 3)
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated.set_group_state("app.payments-v2", "Stable", members=1)
    simulated.set_group_state("search", "Stable", members=3)
    for step in range(3):
        simulated.produce("events", 0, 100)
        simulated.commit("app.payments-v2", "events", 0, 5)
        simulated.commit("search", "events", 0, 20 * (step + 1))
        simulated.commit("mirror", "events", 1, 0)
        collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 * step))
    return cluster


def test_consumer_groups_are_listed_worst_first_with_their_sentences(tenant: Tenant) -> None:
    cluster = collected_cluster(tenant)
    client = token_client(tenant.viewer)

    body = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/").json()

    assert [(g["group_id"], g["status"]) for g in body["results"]] == [
        ("app.payments-v2", "STALL"),
        ("search", "WARN"),
        ("mirror", "OK"),
    ]
    stalled = body["results"][0]
    assert stalled["summary"] == (
        "Group app.payments-v2 is stalled (STALL) on events[0]: the consumer is stuck at offset 5: "
        "it has not moved for 20 s while 295 messages wait."
    )
    assert (stalled["state"], stalled["members"], stalled["total_lag"]) == ("Stable", 1, 295)
    assert stalled["topics"] == {"events": {"lag": 295, "time_lag_seconds": stalled["time_lag_seconds"]}}
    assert stalled["partitions"][0]["status"] == "STALL"
    # Its member as the cluster named it (the simulator makes members up).
    assert stalled["member_details"] == [
        {
            "member_id": "app.payments-v2-1-00000001",
            "client_id": "app.payments-v2-consumer-1",
            "host": "/10.0.0.1",
            "assignment": [{"topic": "events", "partition": 0}],
        }
    ]

    only_warn = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/", {"status": "WARN"}).json()
    assert [g["group_id"] for g in only_warn["results"]] == ["search"]
    assert client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/", {"status": "BAD"}).status_code == 400

    # Group ids with dots are addressable.
    one = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/app.payments-v2/")
    assert one.status_code == 200 and one.json()["status"] == "STALL"
    assert client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/nobody/").status_code == 404


def test_other_organizations_clusters_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    cluster = collected_cluster(tenant)
    outsider = token_client(other_tenant.owner)

    for path in ("health/", "metrics-history/", "consumer-groups/", "consumer-groups/search/"):
        assert outsider.get(f"/api/v1/clusters/{cluster.pk}/{path}").status_code == 404, path
        assert APIClient().get(f"/api/v1/clusters/{cluster.pk}/{path}").status_code in (401, 403), path
        assert token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/{path}").status_code == 200
    assert outsider.get("/api/v1/clusters/not-a-uuid/health/").status_code == 404
    assert outsider.get("/api/v1/clusters/not-a-uuid/consumer-groups/").status_code == 404


def test_health_of_a_cluster_not_collected_yet_is_unknown(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization)

    body = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/health/").json()

    assert (body["status"], body["reason"], body["collected_at"]) == ("unknown", "Not collected yet.", None)
    assert body["findings"] == [] and body["topics"] == {}


def test_monitoring_endpoints_are_in_the_openapi_schema(tenant: Tenant) -> None:
    schema = yaml.safe_load(token_client(tenant.viewer).get("/api/schema/").content)

    paths = schema["paths"]
    assert paths["/api/v1/clusters/{id}/health/"]["get"]["summary"] == "Get a cluster's health"
    history = paths["/api/v1/clusters/{id}/metrics-history/"]["get"]
    assert {p["name"] for p in history["parameters"]} >= {"series", "since", "until", "group"}
    groups = paths["/api/v1/clusters/{cluster_pk}/consumer-groups/"]["get"]
    assert {p["name"] for p in groups["parameters"]} >= {"status", "limit", "offset"}
