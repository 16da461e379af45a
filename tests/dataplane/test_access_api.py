"""Users, their quotas and ACL rules through the REST API, on a simulated secured cluster: secrets shown
once and stored encrypted, rotation, quotas, ACL rules read back as written, what deleting a user takes
along, roles and tenants. Authentication itself is proven on real Apache Kafka (test_on_apache_kafka)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from controlplane.clusters.models import Cluster, ClusterSecurity
from controlplane.dataplane.models import AclRule, KafkaUser
from provisioning import security
from provisioning.kafka_admin.base import AclEntry
from tests.support.simulated_backend import StandInKafkaCluster
from tests.support.tenants import Tenant, token_client

pytestmark = pytest.mark.django_db


def users_url(cluster: Cluster, name: str = "", action: str = "") -> str:
    url = f"/api/v1/clusters/{cluster.id}/users/"
    return url + (f"{name}/" if name else "") + (f"{action}/" if action else "")


def acls_url(cluster: Cluster, rule_id: str = "") -> str:
    return f"/api/v1/clusters/{cluster.id}/acls/" + (f"{rule_id}/" if rule_id else "")


def add_user(client: APIClient, cluster: Cluster, **body: Any) -> Any:
    return client.post(users_url(cluster), {"name": "alice", **body}, format="json")


WRITE_ORDERS = {
    "principal": "User:alice",
    "resource_type": "topic",
    "resource_name": "orders",
    "pattern_type": "literal",
    "operations": ["write", "describe"],
    "permission": "allow",
    "host": "*",
}


def add_acl(client: APIClient, cluster: Cluster, **changes: Any) -> Any:
    return client.post(acls_url(cluster), {**WRITE_ORDERS, **changes}, format="json")


class TestUsers:
    def test_a_scram_user_gets_its_password_once(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        created = add_user(admin, secured, mechanism="SCRAM-SHA-512")

        assert created.status_code == 201, created.content
        body = created.json()
        password = body["password"]
        assert len(password) >= 24 and body["principal"] == "User:alice"
        assert kafka.scram_password("alice") == password
        shown = admin.get(users_url(secured, "alice")).json()
        assert "password" not in shown and password not in str(shown)
        assert password not in str(admin.get(users_url(secured)).json())
        with connection.cursor() as cursor:
            cursor.execute("SELECT credentials::text FROM dataplane_kafkauser")
            (stored,) = cursor.fetchone()
        assert password not in stored and "enc:v1:" in stored

    def test_a_supplied_password_is_used(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        created = add_user(admin, secured, password="correct horse battery staple")

        assert created.json()["password"] == "correct horse battery staple"
        assert kafka.scram_password("alice") == "correct horse battery staple"

    def test_an_mtls_user_gets_a_certificate_of_the_clusters_ca(
        self, admin: APIClient, secured: Cluster
    ) -> None:
        created = add_user(admin, secured, mechanism="mTLS")

        assert created.status_code == 201, created.content
        body = created.json()
        ca = ClusterSecurity.objects.get(cluster=secured).ca_certificate_pem
        assert body["ca_pem"] == ca
        assert security.signed_by(body["certificate_pem"], ca)
        assert "PRIVATE KEY" in body["private_key_pem"]
        serial, _, _ = security.certificate_facts(body["certificate_pem"])
        assert body["certificate_serial"] == f"{serial:x}" and body["certificate_expires_at"]
        assert "private_key_pem" not in admin.get(users_url(secured, "alice")).json()

    def test_rotation_replaces_the_password(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        old = add_user(admin, secured).json()["password"]

        rotated = admin.post(users_url(secured, "alice", "rotate"), {}, format="json")

        assert rotated.status_code == 200, rotated.content
        assert rotated.json()["password"] != old
        assert kafka.scram_password("alice") == rotated.json()["password"]

    def test_quotas_are_set_changed_and_removed(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        add_user(admin, secured, quota={"producer_byte_rate": 1048576, "request_percentage": 50.0})
        assert kafka.user_quotas() == {"alice": {"producer_byte_rate": 1048576.0, "request_percentage": 50.0}}

        changed = admin.patch(
            users_url(secured, "alice"),
            {"quota": {"producer_byte_rate": None, "consumer_byte_rate": 2048}},
            format="json",
        )

        assert changed.status_code == 200, changed.content
        assert changed.json()["quota"] == {
            "producer_byte_rate": None,
            "consumer_byte_rate": 2048,
            "request_percentage": 50.0,
        }
        assert kafka.user_quotas() == {"alice": {"consumer_byte_rate": 2048.0, "request_percentage": 50.0}}

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"name": "al ice"}, "name", "letters, digits"),
            ({"name": "kcp-admin"}, "name", "control plane's own"),
            ({"name": "*"}, "name", "letters, digits"),
            ({"password": "short"}, "password", "12 to 256"),
            ({"mechanism": "PLAIN"}, "mechanism", "not a valid choice"),
            ({"quota": {"producer_byte_rate": 0}}, "quota", "greater than or equal to 1"),
            ({"quota": {"bytes": 1}}, "quota", "Unknown field"),
            ({"mechanism": "mTLS", "password": "long enough password"}, "password", "Only SCRAM"),
        ],
    )
    def test_bad_input_is_400(
        self, admin: APIClient, secured: Cluster, body: dict, field: str, message: str
    ) -> None:
        response = add_user(admin, secured, **body)

        assert response.status_code == 400
        assert message in str(response.json()[field])
        assert not KafkaUser.objects.exists()

    def test_a_mechanism_the_cluster_has_no_listener_for_is_400(
        self, admin: APIClient, cluster: Cluster
    ) -> None:
        from tests.dataplane.conftest import secure

        secure(cluster, "scram")

        response = add_user(admin, cluster, mechanism="mTLS")

        assert response.status_code == 400
        assert "has no mtls listener" in response.json()["mechanism"][0]

    def test_a_taken_name_is_409(self, admin: APIClient, secured: Cluster) -> None:
        add_user(admin, secured)
        assert add_user(admin, secured).status_code == 409

    def test_a_cluster_without_authentication_has_no_users_or_acls(
        self, admin: APIClient, cluster: Cluster
    ) -> None:
        for response in (add_user(admin, cluster), add_acl(admin, cluster)):
            assert response.status_code == 409
            assert "without authentication" in response.json()["detail"]

    def test_deleting_a_user_takes_its_credential_quotas_and_acls_along(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        add_user(admin, secured, quota={"producer_byte_rate": 1000})
        add_acl(admin, secured)
        outside = AclEntry("User:alice", "*", "group", "g", "literal", "read", "allow")
        kafka.create_acls([outside])  # granted with the Admin API directly
        add_user(admin, secured, name="bob")
        add_acl(admin, secured, principal="User:bob")

        assert admin.delete(users_url(secured, "alice")).status_code == 204

        assert admin.get(users_url(secured, "alice")).status_code == 404
        assert kafka.scram_password("alice") is None
        assert "alice" not in kafka.user_quotas()
        assert {e.principal for e in kafka.describe_acls()} == {"User:bob"}
        assert list(AclRule.objects.values_list("principal", flat=True)) == ["User:bob"]


class TestAcls:
    def test_a_rule_is_read_back_as_written(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        add_user(admin, secured)

        created = add_acl(admin, secured)

        assert created.status_code == 201, created.content
        listed = admin.get(acls_url(secured)).json()["results"]
        assert len(listed) == 1
        assert {key: listed[0][key] for key in WRITE_ORDERS} == WRITE_ORDERS
        assert listed[0]["status"] == "ok"
        assert listed[0]["user"] == str(KafkaUser.objects.get(name="alice").pk)
        assert {(e.principal, e.resource_name, e.operation) for e in kafka.describe_acls()} == {
            ("User:alice", "orders", "write"),
            ("User:alice", "orders", "describe"),
        }

    def test_a_binding_removed_outside_shows(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        rule = add_acl(admin, secured).json()
        kafka.delete_acls([AclEntry("User:alice", "*", "topic", "orders", "literal", "write", "allow")])

        assert admin.get(acls_url(secured, rule["id"])).json()["status"] == "missing"

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"principal": "alice"}, "principal", "User:<name>"),
            ({"principal": "Group:ops"}, "principal", "User:<name>"),
            ({"operations": ["idempotent_write"]}, "operations", "cannot be granted on a topic"),
            ({"operations": []}, "operations", "at least 1"),
            ({"operations": ["read", "read"]}, "operations", "each operation once"),
            ({"resource_type": "cluster", "resource_name": "mine"}, "resource_name", "kafka-cluster"),
            (
                {
                    "resource_type": "cluster",
                    "resource_name": "kafka-cluster",
                    "pattern_type": "prefixed",
                    "operations": ["describe"],
                },
                "pattern_type",
                "literally",
            ),
            ({"resource_name": "*", "pattern_type": "prefixed"}, "resource_name", "literal pattern"),
            ({"host": "example.com"}, "host", "one IP address"),
            ({"permission": "maybe"}, "permission", "not a valid choice"),
            ({"resource_type": "schema"}, "resource_type", "not a valid choice"),
        ],
    )
    def test_rules_follow_kafkas_terms(
        self,
        admin: APIClient,
        secured: Cluster,
        kafka: StandInKafkaCluster,
        changes: dict,
        field: str,
        message: str,
    ) -> None:
        response = add_acl(admin, secured, **changes)

        assert response.status_code == 400
        assert message in str(response.json()[field])
        assert kafka.describe_acls() == []

    def test_the_same_rule_twice_is_409(self, admin: APIClient, secured: Cluster) -> None:
        add_acl(admin, secured)

        response = add_acl(admin, secured, operations=["describe", "write"])

        assert response.status_code == 409

    def test_deleting_a_rule_keeps_bindings_another_rule_grants(
        self, admin: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        first = add_acl(admin, secured).json()
        add_acl(admin, secured, operations=["describe", "read"])

        assert admin.delete(acls_url(secured, first["id"])).status_code == 204

        assert sorted(e.operation for e in kafka.describe_acls()) == ["describe", "read"]
        assert admin.get(acls_url(secured, first["id"])).status_code == 404


class TestAccess:
    def test_viewers_see_but_cannot_change(
        self, admin: APIClient, viewer: APIClient, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        add_user(admin, secured)
        rule = add_acl(admin, secured).json()

        assert viewer.get(users_url(secured)).status_code == 200
        assert viewer.get(acls_url(secured)).status_code == 200
        for response in (
            add_user(viewer, secured, name="mallory"),
            viewer.post(users_url(secured, "alice", "rotate"), {}, format="json"),
            viewer.patch(users_url(secured, "alice"), {"quota": {"producer_byte_rate": 1}}, format="json"),
            viewer.delete(users_url(secured, "alice")),
            add_acl(viewer, secured, principal="User:*"),
            viewer.delete(acls_url(secured, rule["id"])),
        ):
            assert response.status_code == 403
        assert list(KafkaUser.objects.values_list("name", flat=True)) == ["alice"]
        assert AclRule.objects.count() == 1

    def test_other_organizations_see_nothing(
        self, other_tenant: Tenant, admin: APIClient, secured: Cluster
    ) -> None:
        add_user(admin, secured)
        rule = add_acl(admin, secured).json()
        stranger = token_client(other_tenant.owner)

        for response in (
            stranger.get(users_url(secured)),
            stranger.get(users_url(secured, "alice")),
            stranger.post(users_url(secured, "alice", "rotate"), {}, format="json"),
            stranger.get(acls_url(secured, rule["id"])),
            stranger.delete(acls_url(secured, rule["id"])),
        ):
            assert response.status_code == 404
