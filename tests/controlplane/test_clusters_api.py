"""The clusters API: creation and its validation rules, tenancy, conflicts and malformed input.

These tests stop at the database: no worker runs, so operations stay pending (on_commit callbacks do
not fire inside a test transaction). The end-to-end path with a real worker is in test_end_to_end.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Broker, Cluster, ClusterSecurity
from controlplane.clusters.specs import get_backend
from controlplane.operations.models import Operation
from tests.support.tenants import Tenant, token_client

CLUSTERS = "/api/v1/clusters/"


def create(tenant: Tenant, **body: Any):
    return token_client(tenant.admin).post(CLUSTERS, {"name": "orders", "brokers": 1, **body}, format="json")


def test_create_answers_202_with_the_cluster_and_its_operation(tenant: Tenant) -> None:
    response = create(tenant)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["name"] == "orders"
    assert body["backend"] == "local"
    assert body["brokers"] == 1
    assert body["replication_factor"] == 1
    assert body["min_insync_replicas"] == 1
    assert body["racks"] == ["rack-1"]
    assert body["status"] == "requested"
    assert body["operation"]["kind"] == "provision"
    assert body["operation"]["state"] == "pending"
    assert [s["name"] for s in body["operation"]["steps"]] == [
        "validate_spec",
        "start_brokers",
        "wait_for_brokers",
    ]
    assert response["Location"].endswith(f"/api/v1/operations/{body['operation']['id']}/")
    assert Broker.objects.filter(cluster_id=body["id"]).count() == 1


def test_create_records_an_audit_event_with_the_source_address(tenant: Tenant) -> None:
    response = create(tenant, name="audited")

    event = AuditEvent.objects.get(action="cluster.create", target_id=response.json()["id"])
    assert event.actor_name == tenant.admin.username
    assert event.source_address == "127.0.0.1"
    assert event.organization == tenant.organization


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"brokers": 1, "replication_factor": 2, "racks": ["a"]},
            "replication_factor",
            "needs at least 2 brokers",
        ),
        (
            {"brokers": 3, "replication_factor": 2, "min_insync_replicas": 3, "racks": ["a", "b", "c"]},
            "min_insync_replicas",
            "cannot exceed the replication factor",
        ),
        (
            {"brokers": 2, "replication_factor": 2, "racks": ["a", "b", "c"]},
            "racks",
            "need at least 3 brokers",
        ),
        ({"brokers": 4}, "brokers", "multiple of 3"),
        (
            {"brokers": 4, "replication_factor": 3, "racks": ["a", "b"]},
            "racks",
            "losing that rack could lose",
        ),
        ({"brokers": 2, "replication_factor": 2, "racks": ["a", "a"]}, "racks", "distinct"),
        ({"name": "Orders_1"}, "name", "DNS-1123"),
        ({"name": "-orders"}, "name", "DNS-1123"),
        ({"kafka_version": "2.0.0"}, "kafka_version", "Unknown Kafka version"),
        ({"node_size": {"cpu": 0.1, "memory_mb": 2048, "disk_gb": 10}}, "node_size", "greater than or equal"),
        ({"node_size": {"cpu": 1, "memory_mb": 2048, "disk_gb": 0}}, "node_size", "greater than or equal"),
        ({"brokers": 0}, "brokers", "greater than or equal to 1"),
        ({"brokers": 3}, "brokers", "install Java 17"),
        ({"backend": "kubernetes"}, "target", "no kubernetes target"),
        ({"backend": "mainframe"}, "backend", "not a valid choice"),
        ({"unknown_field": 1}, "unknown_field", "Unknown field"),
    ],
)
def test_invalid_requests_get_a_specific_field_message(
    tenant: Tenant, body: dict[str, Any], field: str, words: str
) -> None:
    response = create(tenant, **body)

    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json()[field])
    assert not Cluster.objects.exists()
    assert not Operation.objects.exists()


def test_duplicate_name_is_refused(tenant: Tenant) -> None:
    assert create(tenant).status_code == 202

    response = create(tenant)

    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]
    assert Cluster.objects.count() == 1


def test_same_name_in_another_organization_is_fine(tenant: Tenant, other_tenant: Tenant) -> None:
    assert create(tenant).status_code == 202
    assert create(other_tenant).status_code == 202


def test_a_second_change_while_an_operation_runs_answers_409_naming_it(tenant: Tenant) -> None:
    created = create(tenant).json()

    response = token_client(tenant.admin).delete(f"{CLUSTERS}{created['id']}/")

    assert response.status_code == 409
    assert response.json()["operation"] == created["operation"]["id"]
    assert created["operation"]["id"] in response.json()["detail"]
    assert Cluster.objects.get(pk=created["id"]).status == "requested"


def test_delete_after_provisioning_answers_202(tenant: Tenant) -> None:
    created = create(tenant).json()
    Operation.objects.filter(pk=created["operation"]["id"]).update(state="succeeded")
    Cluster.objects.filter(pk=created["id"]).update(status="running")

    response = token_client(tenant.admin).delete(f"{CLUSTERS}{created['id']}/")

    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    assert response.json()["operation"]["kind"] == "delete"


def test_a_deleted_cluster_is_gone_for_clients_and_kept_for_the_record(tenant: Tenant) -> None:
    """Terraform reads a 404 after a finished delete as "gone"; the record stays listed on request."""
    created = create(tenant).json()
    Cluster.objects.filter(pk=created["id"]).update(status="deleted")
    client = token_client(tenant.admin)
    url = f"{CLUSTERS}{created['id']}/"

    assert client.get(url).status_code == 404
    assert client.patch(url, {"self_healing": False}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    listed = client.get(CLUSTERS, {"status": "deleted"}).json()["results"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert client.get(f"/api/v1/operations/{created['operation']['id']}/").status_code == 200


class TestTenancy:
    """Allowed and denied cases share one setup: a cluster of Acme's."""

    @pytest.fixture
    def cluster_id(self, tenant: Tenant) -> str:
        return create(tenant).json()["id"]

    def test_members_see_their_clusters(self, tenant: Tenant, cluster_id: str) -> None:
        for user in (tenant.owner, tenant.admin, tenant.viewer):
            listing = token_client(user).get(CLUSTERS).json()
            assert [c["id"] for c in listing["results"]] == [cluster_id]
            assert token_client(user).get(f"{CLUSTERS}{cluster_id}/").status_code == 200

    def test_another_organization_gets_404(self, other_tenant: Tenant, cluster_id: str) -> None:
        client = token_client(other_tenant.owner)
        assert client.get(CLUSTERS).json()["results"] == []
        assert client.get(f"{CLUSTERS}{cluster_id}/").status_code == 404
        assert client.delete(f"{CLUSTERS}{cluster_id}/").status_code == 404
        assert (
            client.patch(f"{CLUSTERS}{cluster_id}/", {"self_healing": False}, format="json").status_code
            == 404
        )
        assert client.get(f"{CLUSTERS}{cluster_id}/operations/").status_code == 404

    def test_viewer_may_read_but_not_write(self, tenant: Tenant, cluster_id: str) -> None:
        client = token_client(tenant.viewer)
        assert client.post(CLUSTERS, {"name": "x", "brokers": 1}, format="json").status_code == 403
        assert client.delete(f"{CLUSTERS}{cluster_id}/").status_code == 403
        assert (
            client.patch(f"{CLUSTERS}{cluster_id}/", {"self_healing": False}, format="json").status_code
            == 403
        )
        operation_id = Operation.objects.get(cluster_id=cluster_id).id
        assert client.post(f"/api/v1/operations/{operation_id}/cancel/").status_code == 403
        assert Cluster.objects.get(pk=cluster_id).self_healing is True

    def test_no_or_bad_token_answers_401(self, cluster_id: str) -> None:
        from rest_framework.test import APIClient

        assert APIClient().get(CLUSTERS).status_code == 401
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer kcp_not-a-real-token")
        assert client.get(CLUSTERS).status_code == 401

    def test_revoked_token_stops_working(self, tenant: Tenant) -> None:
        client = token_client(tenant.admin)
        token_id = client.get("/api/v1/tokens/").json()["results"][0]["id"]
        assert client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
        assert client.get(CLUSTERS).status_code == 401


def test_patch_changes_allowed_settings_only(tenant: Tenant) -> None:
    cluster_id = create(tenant).json()["id"]
    client = token_client(tenant.admin)

    ok = client.patch(f"{CLUSTERS}{cluster_id}/", {"self_healing": False}, format="json")
    refused = client.patch(f"{CLUSTERS}{cluster_id}/", {"brokers": 9, "name": "renamed"}, format="json")

    assert ok.status_code == 200 and ok.json()["self_healing"] is False
    assert refused.status_code == 400
    assert set(refused.json()) == {"brokers", "name"}
    assert Cluster.objects.get(pk=cluster_id).name == "orders"


def test_list_filters_by_status_and_backend(tenant: Tenant) -> None:
    create(tenant, name="one")
    create(tenant, name="two")
    Cluster.objects.filter(name="two").update(status="running")
    client = token_client(tenant.admin)

    assert [c["name"] for c in client.get(CLUSTERS, {"status": "running"}).json()["results"]] == ["two"]
    assert len(client.get(CLUSTERS, {"backend": "local"}).json()["results"]) == 2
    assert client.get(CLUSTERS, {"status": "bogus"}).status_code == 400


class TestMalformedInput:
    def test_invalid_json_is_a_400(self, tenant: Tenant) -> None:
        response = token_client(tenant.admin).generic(
            "POST", CLUSTERS, '{"name": "orders", ', content_type="application/json"
        )
        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]

    def test_wrong_content_type_is_a_415(self, tenant: Tenant) -> None:
        response = token_client(tenant.admin).generic(
            "POST", CLUSTERS, "name=orders", content_type="text/plain"
        )
        assert response.status_code == 415

    def test_oversized_body_is_a_413(self, tenant: Tenant) -> None:
        body = json.dumps({"name": "orders", "brokers": 1, "config": {"x": "y" * 400_000}})
        response = token_client(tenant.admin).generic("POST", CLUSTERS, body, content_type="application/json")
        assert response.status_code == 413

    @pytest.mark.parametrize("body", ['["orders"]', '"orders"', "null", '{"name": 5, "brokers": "many"}'])
    def test_wrong_shapes_are_400(self, tenant: Tenant, body: str) -> None:
        response = token_client(tenant.admin).generic("POST", CLUSTERS, body, content_type="application/json")
        assert response.status_code == 400
        assert not Cluster.objects.exists()

    def test_a_non_uuid_id_is_a_404(self, tenant: Tenant) -> None:
        assert token_client(tenant.admin).get(f"{CLUSTERS}not-a-uuid/").status_code == 404


def test_cancelling_a_pending_provision_fails_the_cluster_with_a_reason(tenant: Tenant) -> None:
    created = create(tenant).json()

    response = token_client(tenant.admin).post(f"/api/v1/operations/{created['operation']['id']}/cancel/")

    assert response.status_code == 202
    assert response.json()["state"] == "cancelled"
    assert {s["state"] for s in response.json()["steps"]} == {"cancelled"}
    cluster = Cluster.objects.get(pk=created["id"])
    assert cluster.status == "failed"
    assert "cancelled" in cluster.status_reason
    again = token_client(tenant.admin).post(f"/api/v1/operations/{created['operation']['id']}/cancel/")
    assert again.status_code == 409


def test_openapi_schema_describes_the_api(client: Any, db: None) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/api/v1/clusters/" in schema["paths"]
    create_op = schema["paths"]["/api/v1/clusters/"]["post"]
    assert {"202", "400", "403", "409"} <= set(create_op["responses"])
    assert "/api/v1/operations/{id}/cancel/" in schema["paths"]


def test_a_retried_create_with_its_idempotency_key_creates_one_cluster(tenant: Tenant) -> None:
    client = token_client(tenant.admin)
    body = {"name": "orders", "brokers": 1}

    first = client.post("/api/v1/clusters/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-orders")
    again = client.post("/api/v1/clusters/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-orders")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["operation"]["id"] == first.json()["operation"]["id"]
    assert Cluster.objects.filter(organization=tenant.organization).count() == 1


def test_client_authentication_on_the_development_broker_is_refused(tenant: Tenant) -> None:
    response = create(tenant, client_authentication=["scram"])

    assert response.status_code == 400
    assert "development broker cannot authenticate" in response.json()["client_authentication"][0]
    assert not Cluster.objects.exists()


def test_a_secured_cluster_gets_its_own_ca_and_a_client_configuration(
    tenant: Tenant, settings: Any, tmp_path: Any
) -> None:
    settings.LOCAL_ENGINE = "kafka"  # validated as Apache Kafka; no worker runs, so nothing starts
    settings.LOCAL_BACKEND_STATE_DIR = tmp_path
    get_backend.cache_clear()

    response = create(tenant, brokers=3, client_authentication=["mtls", "scram"])

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["client_authentication"] == ["scram", "mtls"]
    config = body["client_config"]
    stored = ClusterSecurity.objects.get(cluster_id=body["id"])
    assert config["ca_pem"] == stored.ca_certificate_pem
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert [listener["authentication"] for listener in config["listeners"]] == ["scram", "mtls"]
    assert "sasl.jaas.config=" in config["listeners"][0]["java"]
    assert stored.secrets["admin_password"] not in response.content.decode()
    assert "PRIVATE KEY" not in response.content.decode()


@pytest.mark.parametrize(
    ("methods", "message"),
    [(["kerberos"], "not a valid choice"), (["scram", "scram"], "each method once"), ("scram", "list")],
)
def test_client_authentication_is_a_list_of_known_methods(tenant: Tenant, methods: Any, message: str) -> None:
    response = create(tenant, client_authentication=methods)

    assert response.status_code == 400
    assert message in str(response.json()["client_authentication"])
