"""Topics on the development broker (Tansu): a real Kafka-protocol broker behind the same API, for
what it supports (create, read, change configs, delete); what it does not support (adding partitions)
is refused with its own reason, and nothing is recorded."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from controlplane.clusters.models import Cluster
from controlplane.dataplane.models import Topic
from tests.dataplane.conftest import topics_url
from tests.support.alerting import make_cluster
from tests.support.kafka import DevelopmentBroker
from tests.support.tenants import Tenant

pytestmark = [
    pytest.mark.django_db,
]


@pytest.fixture
def cluster(tenant: Tenant, kafka_broker_session: DevelopmentBroker) -> Cluster:
    # The development broker is one node, known to the control plane as broker 0.
    return make_cluster(
        tenant.organization,
        name="dev",
        broker_ids=[0],
        bootstrap_servers=kafka_broker_session.bootstrap_servers,
    )


def test_topics_on_the_development_broker(admin: APIClient, cluster: Cluster) -> None:
    created = admin.post(
        topics_url(cluster),
        {"name": "dev-orders", "partitions": 2, "config": {"retention.ms": "60000"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["replication_factor"] == 1
    assert created.json()["status"] == "ok", created.json()["drift"]

    detail = admin.get(topics_url(cluster, "dev-orders")).json()
    assert [p["replicas"] for p in detail["partition_details"]] == [[{"broker": 0, "rack": "rack-0"}]] * 2

    changed = admin.patch(
        topics_url(cluster, "dev-orders"), {"config": {"retention.ms": "120000"}}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["config"] == {"retention.ms": "120000"}

    grown = admin.patch(topics_url(cluster, "dev-orders"), {"partitions": 4}, format="json")
    assert grown.status_code == 400
    assert "Kafka refused it" in grown.json()["partitions"][0]
    assert Topic.objects.get(name="dev-orders").partitions == 2

    assert admin.delete(topics_url(cluster, "dev-orders")).status_code == 204
    assert admin.get(topics_url(cluster, "dev-orders")).status_code == 404
