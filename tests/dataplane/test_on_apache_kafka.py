"""The data plane on real Apache Kafka, driven through the REST API as a user (or Terraform) drives it,
with a real Celery worker; what is checked is asked of Kafka itself (the Admin API with the control
plane's credential, real clients with the users' credentials), not of the control plane's records.

One secured three-rack cluster (a SCRAM and an mTLS listener) carries the whole sequence, each step a
function below, ordered so that no step undoes what a later one needs: topics created once for a
retried request, grown rack-aware, refused a decrease, changed outside and reverted; users
authenticating with SCRAM and with a certificate, allowed and denied by ACLs, throttled by a quota,
their passwords rotated, deleted; viewers refused; deletion protection; and last the brokers'
certificates rotated by an operation while clients keep working.
"""

from __future__ import annotations

import json
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from django.contrib.auth import get_user_model

from controlplane.dataplane.tasks import check_topic_drift
from provisioning import security
from provisioning.kafka_admin.base import ClusterState
from tests.support.apache_kafka import wait_for
from tests.support.operated_kafka import ControlPlane, OperatedCluster
from tests.support.tenants import token_client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

RACKS = ("a", "b", "c")
# A broker measures a client's rate over its quota window (11 one-second samples; a fresh client's
# rate over at least 10 s), so the payload, sent at once to the one broker leading the quota test's
# single partition, must exceed 10 s of the quota: this much makes a throttle of a few seconds.
QUOTA_BYTES_PER_SECOND = 16 * 1024
QUOTA_PAYLOAD = 256 * 1024


def url(cluster: OperatedCluster, kind: str, name: str = "", action: str = "") -> str:
    return (
        f"/api/v1/clusters/{cluster.id}/{kind}/"
        + (f"{name}/" if name else "")
        + (f"{action}/" if action else "")
    )


def replicas_by_rack(state: ClusterState, topic: str) -> list[list[str | None]]:
    racks = {b.node_id: b.rack for b in state.brokers}
    found = next(t for t in state.topics if t.name == topic)
    return [sorted(racks[r] for r in p.replicas) for p in found.partitions]


def admin_client(cluster: OperatedCluster) -> AdminClient:
    """Kafka's Admin API with the control plane's credential, as an operator at a console uses it."""
    return AdminClient({**cluster.client_config(), "bootstrap.servers": cluster.bootstrap_servers})


def topic_configs(cluster: OperatedCluster, topic: str) -> dict[str, str]:
    """Configs set on the topic itself, as Kafka reports them."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = admin_client(cluster)  # held until the answer: librdkafka fails requests of a dropped handle
    entries = admin.describe_configs([resource])[resource].result(timeout=20)
    return {name: e.value for name, e in entries.items() if e.source == 1}  # DYNAMIC_TOPIC_CONFIG


def listener(cluster: OperatedCluster, authentication: str) -> dict[str, Any]:
    config = cluster.info()["client_config"]
    return next(item for item in config["listeners"] if item["authentication"] == authentication)


@dataclass
class Produced:
    errors: list[KafkaError | None] = field(default_factory=list)
    throttle_ms: list[int] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(error is None for error in self.errors)

    def first_error(self) -> KafkaError | None:
        return next((error for error in self.errors if error is not None), None)


def produce(
    settings: dict[str, Any], topic: str, *, count: int = 1, size: int = 16, partition: int | None = None
) -> Produced:
    """Produce `count` messages and wait for every answer; broker throttle times as the client saw them."""
    result = Produced()

    def stats(text: str) -> None:
        result.throttle_ms.extend(b["throttle"]["max"] for b in json.loads(text)["brokers"].values())

    producer = Producer(
        {
            **settings,
            "message.timeout.ms": 30_000,
            "linger.ms": 5,
            "statistics.interval.ms": 200,
            "stats_cb": stats,
        }
    )
    extra = {} if partition is None else {"partition": partition}
    for _ in range(count):
        producer.produce(
            topic, b"x" * size, on_delivery=lambda error, _: result.errors.append(error), **extra
        )
        producer.poll(0)
    producer.flush(60)
    producer.poll(0.5)  # one more statistics round after the last answer
    return result


def scram_client(cluster: OperatedCluster, user: str, password: str) -> dict[str, Any]:
    endpoint = listener(cluster, "scram")
    return {
        "bootstrap.servers": endpoint["bootstrap_servers"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.pem": cluster.info()["client_config"]["ca_pem"],
    }


def test_the_data_plane_of_a_secured_three_rack_cluster(control_plane: ControlPlane) -> None:
    started = time.monotonic()
    cluster = control_plane.create_cluster(
        name="dataplane", brokers=3, racks=list(RACKS), client_authentication=["scram", "mtls"]
    )
    print(f"\nsecured cluster provisioned in {time.monotonic() - started:.0f} s")

    created_once_for_a_retried_request(cluster)
    grown_rack_aware(cluster)
    a_decrease_is_refused_and_nothing_changes(cluster)
    kafkas_own_refusal_is_a_400(cluster)
    drift_made_with_the_admin_api_is_reported_then_reverted(cluster)
    alice = a_scram_user_writes_where_its_acl_allows_and_nowhere_else(cluster)
    a_certificate_user_authenticates_over_mtls(cluster)
    a_quota_throttles_its_user(cluster, alice)
    after_rotation_the_old_password_fails(cluster, alice)
    viewers_see_but_cannot_change(cluster)
    deletion_protection_holds(cluster)
    rotated_broker_certificates_keep_clients_working(cluster)


def created_once_for_a_retried_request(cluster: OperatedCluster) -> None:
    """A create retried with the same Idempotency-Key answers the same topic; Kafka has one, placed
    with one replica in each rack. The control plane reached the cluster with its own credential."""
    client = cluster.plane.client
    body = {"name": "orders", "partitions": 6, "config": {"retention.ms": "86400000"}}
    first = client.post(url(cluster, "topics"), body, format="json", HTTP_IDEMPOTENCY_KEY="tf-orders-1")
    retry = client.post(url(cluster, "topics"), body, format="json", HTTP_IDEMPOTENCY_KEY="tf-orders-1")

    assert first.status_code == 201, first.content
    assert retry.status_code == 201 and retry.json()["id"] == first.json()["id"]
    state = cluster.state()
    assert [t.name for t in state.topics if not t.name.startswith("__")] == ["orders"]
    assert replicas_by_rack(state, "orders") == [list(RACKS)] * 6
    assert topic_configs(cluster, "orders") == {"retention.ms": "86400000"}


def grown_rack_aware(cluster: OperatedCluster) -> None:
    response = cluster.plane.client.patch(url(cluster, "topics", "orders"), {"partitions": 9}, format="json")

    assert response.status_code == 200, response.content
    state = cluster.state()
    assert replicas_by_rack(state, "orders") == [list(RACKS)] * 9
    orders = next(t for t in state.topics if t.name == "orders")
    assert sorted(Counter(p.replicas[0] for p in orders.partitions).values()) == [3, 3, 3]
    detail = cluster.plane.client.get(url(cluster, "topics", "orders")).json()
    assert detail["status"] == "ok" and len(detail["partition_details"]) == 9
    assert {r["rack"] for r in detail["partition_details"][8]["replicas"]} == set(RACKS)


def a_decrease_is_refused_and_nothing_changes(cluster: OperatedCluster) -> None:
    before = next(t for t in cluster.state().topics if t.name == "orders")

    response = cluster.plane.client.patch(url(cluster, "topics", "orders"), {"partitions": 3}, format="json")

    assert response.status_code == 400
    assert "Partitions can only grow" in response.json()["partitions"][0]
    after = next(t for t in cluster.state().topics if t.name == "orders")
    assert [p.replicas for p in after.partitions] == [p.replicas for p in before.partitions]


def kafkas_own_refusal_is_a_400(cluster: OperatedCluster) -> None:
    """A value the config table lets through but this cluster refuses: tiered storage is not enabled."""
    response = cluster.plane.client.patch(
        url(cluster, "topics", "orders"), {"config": {"remote.storage.enable": "true"}}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "Kafka refused it" in response.json()["config"][0]
    assert "remote.storage.enable" not in topic_configs(cluster, "orders")


def drift_made_with_the_admin_api_is_reported_then_reverted(cluster: OperatedCluster) -> None:
    resource = ConfigResource(
        ResourceType.TOPIC,
        "orders",
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin = admin_client(cluster)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=20)

    reported = cluster.plane.client.get(url(cluster, "topics", "orders")).json()

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
    assert cluster.plane.client.get(url(cluster, "topics", "orders")).json()["status"] == "ok"


def a_scram_user_writes_where_its_acl_allows_and_nowhere_else(cluster: OperatedCluster) -> str:
    client = cluster.plane.client
    assert (
        client.post(url(cluster, "topics"), {"name": "payments", "partitions": 3}, format="json").status_code
        == 201
    )
    created = client.post(
        url(cluster, "users"), {"name": "alice", "mechanism": "SCRAM-SHA-512"}, format="json"
    )
    assert created.status_code == 201, created.content
    granted = client.post(
        url(cluster, "acls"),
        {
            "principal": "User:alice",
            "resource_type": "topic",
            "resource_name": "orders",
            "pattern_type": "literal",
            "operations": ["write", "describe"],
            "permission": "allow",
            "host": "*",
        },
        format="json",
    )
    assert granted.status_code == 201, granted.content
    alice = scram_client(cluster, "alice", created.json()["password"])

    since = time.monotonic()
    wait_for(lambda: produce(alice, "orders").delivered == 1, 60, what="alice writing to orders")
    print(f"SCRAM user created through the API produced after {time.monotonic() - since:.1f} s")

    denied = produce(alice, "payments").first_error()
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    listed = client.get(url(cluster, "acls")).json()["results"]
    assert [(rule["principal"], rule["operations"], rule["status"]) for rule in listed] == [
        ("User:alice", ["write", "describe"], "ok")
    ]
    return created.json()["password"]


def a_certificate_user_authenticates_over_mtls(cluster: OperatedCluster) -> None:
    client = cluster.plane.client
    created = client.post(url(cluster, "users"), {"name": "bob", "mechanism": "mTLS"}, format="json")
    assert created.status_code == 201, created.content
    client.post(
        url(cluster, "acls"),
        {
            "principal": "User:bob",
            "resource_type": "topic",
            "resource_name": "pay",
            "pattern_type": "prefixed",
            "operations": ["write"],
            "permission": "allow",
        },
        format="json",
    )
    body = created.json()
    bob = {
        "bootstrap.servers": listener(cluster, "mtls")["bootstrap_servers"],
        "security.protocol": "SSL",
        "ssl.ca.pem": body["ca_pem"],
        "ssl.certificate.pem": body["certificate_pem"],
        "ssl.key.pem": body["private_key_pem"],
    }

    wait_for(lambda: produce(bob, "payments").delivered == 1, 60, what="bob writing to payments over mTLS")
    denied = produce(bob, "orders").first_error()
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # A certificate from another CA is not let in at all.
    stranger = security.new_certificate_authority("elsewhere")
    forged = security.issue_certificate(
        stranger.certificate_pem, stranger.private_key_pem, "bob", valid_for=timedelta(days=1)
    )
    refused = produce(
        {**bob, "ssl.certificate.pem": forged.certificate_pem, "ssl.key.pem": forged.private_key_pem},
        "payments",
    )
    assert refused.delivered == 0


def a_quota_throttles_its_user(cluster: OperatedCluster, alice_password: str) -> None:
    """The same load from two users of one topic partition: the one with a produce quota is throttled
    by the broker (throttle time reported to the client), the other is not."""
    client = cluster.plane.client
    assert (
        client.post(url(cluster, "topics"), {"name": "metrics", "partitions": 1}, format="json").status_code
        == 201
    )
    created = client.post(
        url(cluster, "users"),
        {"name": "carol", "quota": {"producer_byte_rate": QUOTA_BYTES_PER_SECOND}},
        format="json",
    )
    assert created.status_code == 201, created.content
    for principal in ("User:alice", "User:carol"):
        client.post(
            url(cluster, "acls"),
            {
                "principal": principal,
                "resource_type": "topic",
                "resource_name": "metrics",
                "operations": ["write"],
            },
            format="json",
        )
    alice = scram_client(cluster, "alice", alice_password)
    carol = scram_client(cluster, "carol", created.json()["password"])
    wait_for(lambda: produce(carol, "metrics").delivered == 1, 60, what="carol writing to metrics")
    wait_for(lambda: produce(alice, "metrics").delivered == 1, 60, what="alice writing to metrics")

    count = QUOTA_PAYLOAD // 4096
    unthrottled = produce(alice, "metrics", count=count, size=4096, partition=0)
    throttled = produce(carol, "metrics", count=count, size=4096, partition=0)

    print(
        f"max throttle time: unthrottled {max(unthrottled.throttle_ms)} ms, quota {max(throttled.throttle_ms)} ms"
    )
    assert unthrottled.delivered == throttled.delivered == count
    assert max(unthrottled.throttle_ms) == 0
    assert max(throttled.throttle_ms) > 0


def after_rotation_the_old_password_fails(cluster: OperatedCluster, old_password: str) -> None:
    rotated = cluster.plane.client.post(url(cluster, "users", "alice", "rotate"), {}, format="json")
    assert rotated.status_code == 200, rotated.content
    new = scram_client(cluster, "alice", rotated.json()["password"])
    old = scram_client(cluster, "alice", old_password)

    wait_for(lambda: produce(new, "orders").delivered == 1, 60, what="the new password working")
    failed = produce({**old, "message.timeout.ms": 10_000}, "orders").first_error()
    assert failed is not None and failed.code() in (KafkaError._AUTHENTICATION, KafkaError._MSG_TIMED_OUT), (
        failed
    )


def viewers_see_but_cannot_change(cluster: OperatedCluster) -> None:
    viewer = token_client(get_user_model().objects.get(username="operators-viewer"))

    assert viewer.get(url(cluster, "topics", "orders")).status_code == 200
    assert viewer.get(url(cluster, "users")).status_code == 200
    assert viewer.post(url(cluster, "topics"), {"name": "mine"}, format="json").status_code == 403
    assert (
        viewer.patch(url(cluster, "topics", "orders"), {"partitions": 12}, format="json").status_code == 403
    )
    assert viewer.post(url(cluster, "users"), {"name": "mallory"}, format="json").status_code == 403
    assert viewer.post(url(cluster, "users", "alice", "rotate"), {}, format="json").status_code == 403
    assert (
        viewer.post(f"/api/v1/clusters/{cluster.id}/rotate-certificates/", {}, format="json").status_code
        == 403
    )
    assert len(next(t for t in cluster.state().topics if t.name == "orders").partitions) == 9
    assert "mallory" not in cluster.plane.client.get(url(cluster, "users")).content.decode()


def deletion_protection_holds(cluster: OperatedCluster) -> None:
    client = cluster.plane.client
    client.patch(url(cluster, "topics", "payments"), {"deletion_protected": True}, format="json")

    refused = client.delete(url(cluster, "topics", "payments"))

    assert refused.status_code == 409
    assert "payments" in {t.name for t in cluster.state().topics}
    client.patch(url(cluster, "topics", "payments"), {"deletion_protected": False}, format="json")
    assert client.delete(url(cluster, "topics", "payments")).status_code == 204
    assert client.get(url(cluster, "topics", "payments")).status_code == 404
    assert "payments" not in {t.name for t in cluster.state().topics}


def served_certificates(cluster: OperatedCluster) -> set[str]:
    """The certificate each broker presents on its SCRAM listener (PEM)."""
    found = set()
    for server in listener(cluster, "scram")["bootstrap_servers"].split(","):
        host, port = server.rsplit(":", 1)
        found.add(ssl.get_server_certificate((host, int(port))))
    return found


def rotated_broker_certificates_keep_clients_working(cluster: OperatedCluster) -> None:
    before = served_certificates(cluster)
    started = time.monotonic()

    operation = cluster.operate("rotate-certificates", timeout=600)

    print(f"certificates rotated in {time.monotonic() - started:.0f} s")
    assert operation["kind"] == "rotate_certificates"
    after = served_certificates(cluster)
    assert len(after) == 3 and not after & before
    ca = cluster.info()["client_config"]["ca_pem"]
    assert all(security.signed_by(certificate, ca) for certificate in after)
    carol_password = cluster.plane.client.post(
        url(cluster, "users", "carol", "rotate"), {}, format="json"
    ).json()["password"]
    carol = scram_client(cluster, "carol", carol_password)
    wait_for(lambda: produce(carol, "metrics").delivered == 1, 60, what="a client after the rotation")
