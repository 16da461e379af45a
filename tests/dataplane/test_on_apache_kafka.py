"""The data plane on real Apache Kafka, driven through the REST API as a user (or Terraform) drives it,
with a real Celery worker; what is checked is asked of Kafka itself (Admin API), not of the control
plane's records.

One three-rack cluster carries the whole sequence, each step a function below: topics created (once, for
a retried request), grown rack-aware, refused a decrease, changed outside the control plane and
reverted, protected from deletion, then deleted.
"""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from django.contrib.auth import get_user_model

from controlplane.dataplane.tasks import check_topic_drift
from provisioning.kafka_admin.base import ClusterState
from tests.support.apache_kafka import wait_for
from tests.support.operated_kafka import ControlPlane, OperatedCluster
from tests.support.tenants import token_client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning"),
]

RACKS = ("a", "b", "c")


def topics(cluster: OperatedCluster, name: str = "") -> str:
    return f"/api/v1/clusters/{cluster.id}/topics/" + (f"{name}/" if name else "")


def replicas_by_rack(state: ClusterState, topic: str) -> list[list[str | None]]:
    racks = {b.node_id: b.rack for b in state.brokers}
    found = next(t for t in state.topics if t.name == topic)
    return [sorted(racks[r] for r in p.replicas) for p in found.partitions]


def topic_configs(cluster: OperatedCluster, topic: str) -> dict[str, str]:
    """Configs set on the topic itself, as Kafka reports them."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=20)
    return {name: e.value for name, e in entries.items() if e.source == 1}  # DYNAMIC_TOPIC_CONFIG


def test_topics_on_a_three_rack_cluster(control_plane: ControlPlane) -> None:
    cluster = control_plane.create_cluster(name="topics", brokers=3, racks=list(RACKS))

    created_once_for_a_retried_request(cluster)
    grown_rack_aware(cluster)
    a_decrease_is_refused_and_nothing_changes(cluster)
    kafkas_own_refusal_is_a_400(cluster)
    drift_made_with_the_admin_api_is_reported_then_reverted(cluster)
    viewers_see_but_cannot_change(cluster)
    deletion_protection_holds(cluster)


def created_once_for_a_retried_request(cluster: OperatedCluster) -> None:
    """A create retried with the same Idempotency-Key answers the same topic; Kafka has one, placed
    with one replica in each rack."""
    client = cluster.plane.client
    body = {"name": "orders", "partitions": 6, "config": {"retention.ms": "86400000"}}
    first = client.post(topics(cluster), body, format="json", HTTP_IDEMPOTENCY_KEY="tf-orders-1")
    retry = client.post(topics(cluster), body, format="json", HTTP_IDEMPOTENCY_KEY="tf-orders-1")

    assert first.status_code == 201, first.content
    assert retry.status_code == 201 and retry.json()["id"] == first.json()["id"]
    state = cluster.state()
    assert [t.name for t in state.topics if not t.name.startswith("__")] == ["orders"]
    assert replicas_by_rack(state, "orders") == [list(RACKS)] * 6
    assert topic_configs(cluster, "orders") == {"retention.ms": "86400000"}


def grown_rack_aware(cluster: OperatedCluster) -> None:
    response = cluster.plane.client.patch(topics(cluster, "orders"), {"partitions": 9}, format="json")

    assert response.status_code == 200, response.content
    state = cluster.state()
    assert replicas_by_rack(state, "orders") == [list(RACKS)] * 9
    orders = next(t for t in state.topics if t.name == "orders")
    assert sorted(Counter(p.replicas[0] for p in orders.partitions).values()) == [3, 3, 3]
    detail = cluster.plane.client.get(topics(cluster, "orders")).json()
    assert detail["status"] == "ok" and len(detail["partition_details"]) == 9
    assert {r["rack"] for r in detail["partition_details"][8]["replicas"]} == set(RACKS)


def a_decrease_is_refused_and_nothing_changes(cluster: OperatedCluster) -> None:
    before = next(t for t in cluster.state().topics if t.name == "orders")

    response = cluster.plane.client.patch(topics(cluster, "orders"), {"partitions": 3}, format="json")

    assert response.status_code == 400
    assert "Partitions can only grow" in response.json()["partitions"][0]
    after = next(t for t in cluster.state().topics if t.name == "orders")
    assert [p.replicas for p in after.partitions] == [p.replicas for p in before.partitions]


def kafkas_own_refusal_is_a_400(cluster: OperatedCluster) -> None:
    """A value the config table lets through but this cluster refuses: tiered storage is not enabled."""
    response = cluster.plane.client.patch(
        topics(cluster, "orders"), {"config": {"remote.storage.enable": "true"}}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "Kafka refused it" in response.json()["config"][0]
    assert "remote.storage.enable" not in topic_configs(cluster, "orders")


def drift_made_with_the_admin_api_is_reported_then_reverted(cluster: OperatedCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    resource = ConfigResource(
        ResourceType.TOPIC,
        "orders",
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=20)

    reported = cluster.plane.client.get(topics(cluster, "orders")).json()

    assert reported["status"] == "drifted"
    assert {(d["field"], d["desired"], d["actual"]) for d in reported["drift"]} == {
        ("config.retention.ms", "86400000", "1000"),
        ("config.cleanup.policy", None, "compact"),
    }
    policy = cluster.plane.client.patch(
        f"/api/v1/clusters/{cluster.id}/", {"drift_policy": "revert"}, format="json"
    )
    assert policy.status_code == 200, policy.content
    check_topic_drift.delay(cluster.id)  # what beat schedules; the worker runs it
    wait_for(
        lambda: topic_configs(cluster, "orders") == {"retention.ms": "86400000"}, 60, what="drift reverted"
    )
    assert cluster.plane.client.get(topics(cluster, "orders")).json()["status"] == "ok"


def viewers_see_but_cannot_change(cluster: OperatedCluster) -> None:
    viewer = token_client(get_user_model().objects.get(username="operators-viewer"))

    assert viewer.get(topics(cluster, "orders")).status_code == 200
    assert viewer.post(topics(cluster), {"name": "mine"}, format="json").status_code == 403
    assert viewer.patch(topics(cluster, "orders"), {"partitions": 12}, format="json").status_code == 403
    assert viewer.delete(topics(cluster, "orders")).status_code == 403
    assert len(next(t for t in cluster.state().topics if t.name == "orders").partitions) == 9


def deletion_protection_holds(cluster: OperatedCluster) -> None:
    client = cluster.plane.client
    client.patch(topics(cluster, "orders"), {"deletion_protected": True}, format="json")

    refused = client.delete(topics(cluster, "orders"))

    assert refused.status_code == 409
    assert "orders" in {t.name for t in cluster.state().topics}
    client.patch(topics(cluster, "orders"), {"deletion_protected": False}, format="json")
    deleted = client.delete(topics(cluster, "orders"))
    assert deleted.status_code == 204
    assert client.get(topics(cluster, "orders")).status_code == 404
    assert "orders" not in {t.name for t in cluster.state().topics}
