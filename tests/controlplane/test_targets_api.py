"""Targets through the API: registered per organization, kubeconfig encrypted at rest and never returned,
settings checked as Kubernetes would, removal refused while clusters run there; and the plan of a
cluster before anything is applied (dry run, manifests), which needs no reachable target."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from django.db import connection

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from controlplane.operations.models import Operation
from controlplane.targets.models import Placement, Target
from tests.support.tenants import Tenant, token_client

pytestmark = pytest.mark.django_db

KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": "https://192.0.2.10:6443"}}],
        "users": [{"name": "cp", "user": {"token": "s3cret-token-value"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "cp"}}],
        "current-context": "prod",
    }
)


def register(tenant: Tenant, **body: Any):
    payload = {"name": "prod-eu", "kubeconfig": KUBECONFIG, "settings": {"namespace": "kafka-prod"}, **body}
    return token_client(tenant.admin).post("/api/v1/targets/", payload, format="json")


def test_a_target_is_registered_and_its_kubeconfig_never_returned_nor_stored_in_clear(tenant: Tenant) -> None:
    response = register(tenant)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["authentication"] == "kubeconfig"
    assert body["settings"]["namespace"] == "kafka-prod"
    assert body["settings"]["topology_key"] == "topology.kubernetes.io/zone"
    assert "s3cret" not in json.dumps(body)
    listed = token_client(tenant.viewer).get("/api/v1/targets/").json()
    assert "s3cret" not in json.dumps(listed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM targets_target")
        (stored,) = cursor.fetchone()
    assert "s3cret" not in str(stored) and "enc:v1:" in str(stored)
    assert Target.objects.get().credentials["kubeconfig"] == KUBECONFIG
    event = AuditEvent.objects.get(action="target.register")
    assert "s3cret" not in json.dumps(event.details)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"settings": {"namespace": "Kafka_Prod"}}, "namespace"),
        ({"settings": {"topology_key": "not a key"}}, "topology_key"),
        ({"settings": {"allowed_cidrs": ["10.0.0.1/8"]}}, "allowed_cidrs"),
        ({"settings": {"context": "staging"}}, "settings"),
        ({"kubeconfig": "just: text"}, "kubeconfig"),
        ({"kubeconfig": "", "in_cluster": False}, "kubeconfig"),
        ({"in_cluster": True}, "kubeconfig"),  # both at once
        ({"name": "Prod EU"}, "name"),
    ],
)
def test_bad_targets_get_a_field_message(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    response = register(tenant, **body)
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())
    assert not Target.objects.exists()


def test_targets_are_per_organization_and_viewers_cannot_register(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    target = register(tenant).json()
    assert token_client(other_tenant.admin).get(f"/api/v1/targets/{target['id']}/").status_code == 404
    assert token_client(other_tenant.admin).get("/api/v1/targets/").json()["count"] == 0
    viewer = token_client(tenant.viewer).post(
        "/api/v1/targets/", {"name": "x", "in_cluster": True}, format="json"
    )
    assert viewer.status_code == 403


def test_settings_change_without_sending_the_kubeconfig_again(tenant: Tenant) -> None:
    target = register(tenant).json()
    response = token_client(tenant.admin).patch(
        f"/api/v1/targets/{target['id']}/", {"settings": {"storage_class": "fast-ssd"}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["settings"]["storage_class"] == "fast-ssd"
    assert response.json()["settings"]["namespace"] == "kafka-prod"
    assert Target.objects.get().credentials["kubeconfig"] == KUBECONFIG


def create_cluster(tenant: Tenant, query: str = "", **body: Any):
    payload = {
        "name": "orders",
        "backend": "kubernetes",
        "brokers": 3,
        "racks": ["eu-1a", "eu-1b", "eu-1c"],
        **body,
    }
    return token_client(tenant.admin).post(f"/api/v1/clusters/{query}", payload, format="json")


def test_a_dry_run_without_any_target_renders_for_the_default_one_and_saves_nothing(tenant: Tenant) -> None:
    response = create_cluster(tenant, "?dry_run=true")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "orders" and body["brokers"] == 3 and body["target"] == "default"
    assert body["placement"] == {"0": "eu-1a", "1": "eu-1b", "2": "eu-1c"}
    objects = list(yaml.safe_load_all(body["manifests"]))
    assert {o["kind"] for o in objects} >= {"StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    assert {o["metadata"]["namespace"] for o in objects} == {"kafka"}  # settings.KUBERNETES_NAMESPACE
    zones = {
        o["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0]
        for o in objects
        if o["kind"] == "StatefulSet"
    }
    assert zones == {"eu-1a", "eu-1b", "eu-1c"}
    assert "combined" in body["summary"]
    assert not Cluster.objects.exists() and not Operation.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="cluster").exists()


def test_a_dry_run_on_a_registered_target_needs_no_reachable_api_server(tenant: Tenant) -> None:
    register(tenant)  # its server, 192.0.2.10, is a documentation address nobody answers on
    body = create_cluster(tenant, "?dry_run=true", brokers=6).json()
    assert body["target"] == "prod-eu"
    objects = list(yaml.safe_load_all(body["manifests"]))
    assert {o["metadata"]["namespace"] for o in objects} == {"kafka-prod"}
    assert "dedicated controller" in body["summary"]


def test_a_secured_dry_run_renders_the_secrets_as_placeholders(tenant: Tenant) -> None:
    body = create_cluster(tenant, "?dry_run=true", client_authentication=["scram", "mtls"]).json()
    objects = list(yaml.safe_load_all(body["manifests"]))
    secrets = [o for o in objects if o["kind"] == "Secret" and "stringData" in o]
    assert len(secrets) == 4  # the admin credential, a certificate per broker
    assert "PRIVATE KEY" not in body["manifests"]
    bad = create_cluster(tenant, "?dry_run=true", client_authentication=["scram", "scram"])
    assert bad.status_code == 400 and "client_authentication" in bad.json()


def test_a_dry_run_refuses_what_creating_would_refuse(tenant: Tenant) -> None:
    response = create_cluster(tenant, "?dry_run=true", config={"log.dirs": "/elsewhere"})
    assert response.status_code == 400
    assert "data directories are assigned by the backend" in response.json()["config"][0]
    assert (
        token_client(tenant.admin).post("/api/v1/clusters/?dry_run=maybe", {}, format="json").status_code
        == 400
    )


def test_creating_on_kubernetes_needs_a_registered_target(tenant: Tenant) -> None:
    response = create_cluster(tenant)
    assert response.status_code == 400
    assert "no kubernetes target" in response.json()["target"][0]
    assert not Cluster.objects.exists()


def test_a_cluster_is_placed_on_its_target_and_shows_its_manifests(tenant: Tenant) -> None:
    target = register(tenant).json()
    response = create_cluster(tenant)
    assert response.status_code == 202, response.content
    cluster = Cluster.objects.get()
    assert Placement.objects.get(cluster=cluster).target.name == "prod-eu"

    manifests = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.id}/manifests/")

    assert manifests.status_code == 200, manifests.content
    body = manifests.json()
    assert body["target"] == "prod-eu"
    assert body["placement"] == {"0": "eu-1a", "1": "eu-1b", "2": "eu-1c"}
    names = {o["metadata"]["name"] for o in yaml.safe_load_all(body["manifests"])}
    assert any(name.startswith(f"orders-{cluster.id.hex[:8]}") for name in names)
    # The target cannot go while the cluster runs there.
    refused = token_client(tenant.admin).delete(f"/api/v1/targets/{target['id']}/")
    assert refused.status_code == 409
    assert Target.objects.exists()


def test_a_local_clusters_plan_has_no_manifests(tenant: Tenant) -> None:
    body = (
        token_client(tenant.admin)
        .post("/api/v1/clusters/?dry_run=true", {"name": "dev", "brokers": 1}, format="json")
        .json()
    )
    assert body["manifests"] == "" and body["target"] == "default"
    assert body["artifacts"]
