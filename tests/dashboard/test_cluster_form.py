"""The new-cluster form: the API's rules and messages, the placement preview, and who may use it."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import get_backend
from controlplane.operations.models import Operation
from controlplane.targets.actions import register_target
from controlplane.targets.models import Placement
from controlplane.tenancy.actions import set_membership
from controlplane.tenancy.models import Role
from tests.support.tenants import SYSTEM, Tenant, token_client

pytestmark = pytest.mark.django_db

NEW = "/clusters/new/"
NODE_SIZE_FIELDS = {"cpu": "node_cpu", "memory_mb": "node_memory_mb", "disk_gb": "node_disk_gb"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**body: Any) -> dict[str, str]:
    """What a person would type for an API request body."""
    data: dict[str, Any] = {
        "name": "orders",
        "organization": "acme",
        "backend": "local",
        "kafka_version": settings.DEFAULT_KAFKA_VERSION,
        "brokers": "1",
        "node_cpu": "1",
        "node_memory_mb": "2048",
        "node_disk_gb": "10",
        "self_healing": "on",
    }
    for key, value in body.items():
        if key == "racks":
            data["racks"] = ", ".join(value)
        elif key == "node_size":
            data.update({NODE_SIZE_FIELDS[k]: str(v) for k, v in value.items()})
        else:
            data[key] = str(value)
    return data


def api_messages(errors: dict[str, Any], form_fields: Any = None) -> dict[str, list[str]]:
    """The API's 400 body keyed by form field (messages about fields the form has not: the form's own)."""
    by_field: dict[str, list[str]] = {}
    for key, value in errors.items():
        if key == "node_size":
            for sub_key, messages in value.items():
                by_field[NODE_SIZE_FIELDS[sub_key]] = messages
        elif form_fields is not None and key not in form_fields:
            by_field.setdefault("__all__", []).extend(value)
        else:
            by_field[key] = value
    return by_field


def as_json_number(value: Any) -> Any:
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


@pytest.mark.parametrize(
    "body",
    [
        {"brokers": 4, "racks": ["a", "b", "c"], "replication_factor": 3},
        {"brokers": 1, "replication_factor": 2, "racks": ["a"]},
        {"brokers": 3, "replication_factor": 2, "min_insync_replicas": 3, "racks": ["a", "b", "c"]},
        {"brokers": 2, "replication_factor": 2, "racks": ["a", "b", "c"]},
        {"brokers": 4, "replication_factor": 3, "racks": ["a", "b"]},
        {"brokers": 2, "replication_factor": 2, "racks": ["a", "a"]},
        {"name": "Orders_1"},
        {"name": ""},
        {"kafka_version": "2.0.0"},
        {"node_size": {"cpu": "0.1"}},
        {"node_size": {"disk_gb": "0"}},
        {"brokers": "0"},
        {"brokers": "three"},
        {"brokers": 3},
        {"backend": "kubernetes"},
    ],
    ids=lambda body: ",".join(f"{k}={v}" for k, v in body.items()),
)
def test_form_shows_the_apis_field_messages(tenant: Tenant, body: dict[str, Any]) -> None:
    # The API takes JSON numbers where the form takes the digits typed into it.
    api_body = {"name": "orders", "brokers": 1, **{k: as_json_number(v) for k, v in body.items()}}
    if "node_size" in body:
        node_size = {k: as_json_number(v) for k, v in body["node_size"].items()}
        api_body["node_size"] = {"cpu": 1, "memory_mb": 2048, "disk_gb": 10, **node_size}
    api = token_client(tenant.admin).post("/api/v1/clusters/", api_body, format="json")
    assert api.status_code == 400, api.content

    response = signed_in(tenant.admin).post(NEW, form_data(**body))

    assert response.status_code == 200
    assert response.context["form"].errors == api_messages(api.json(), response.context["form"].fields)
    for messages in api_messages(api.json()).values():
        for message in messages:
            assert message.replace("'", "&#x27;") in response.content.decode()
    assert not Cluster.objects.exists()


def test_a_replication_factor_above_the_brokers_is_reported_on_that_field_alone(tenant: Tenant) -> None:
    """Racks left empty default to one per replica; they are not blamed for the factor."""
    api = token_client(tenant.admin).post(
        "/api/v1/clusters/", {"name": "orders", "brokers": 1, "replication_factor": 3}, format="json"
    )
    response = signed_in(tenant.admin).post(NEW, form_data(replication_factor=3))

    expected = {"replication_factor": ["Replication factor 3 needs at least 3 brokers; this cluster has 1."]}
    assert api.json() == expected
    assert response.context["form"].errors == expected


def test_the_forms_defaults_create_a_cluster_on_the_default_backend(tenant: Tenant) -> None:
    """Here `local` runs the single-node development broker, so the default is one broker."""
    client = signed_in(tenant.admin)
    form = client.get(NEW).context["form"]
    data = {name: value for name, value in form.initial_values().items() if value is not None}
    data["name"] = "defaults"
    data["self_healing"] = "on"

    response = client.post(NEW, data)

    assert response.status_code == 302, response.context["form"].errors
    assert Cluster.objects.get(name="defaults").broker_count == 1


def test_with_apache_kafka_the_form_suggests_three_brokers_over_three_racks(tenant: Tenant, settings) -> None:
    settings.LOCAL_ENGINE = "kafka"
    get_backend.cache_clear()
    response = signed_in(tenant.admin).get(NEW)
    get_backend.cache_clear()
    assert response.context["preview"].racks == [("rack-1", [0]), ("rack-2", [1]), ("rack-3", [2])]


def test_a_valid_form_creates_the_cluster_and_opens_it(tenant: Tenant) -> None:
    response = signed_in(tenant.admin).post(NEW, form_data(name="payments"), follow=True)

    cluster = Cluster.objects.get(name="payments")
    assert response.redirect_chain[-1][0] == f"/clusters/{cluster.pk}/"
    assert b"Cluster payments requested" in response.content
    assert (cluster.status, cluster.broker_count, cluster.racks, cluster.replication_factor) == (
        "requested",
        1,
        ["rack-1"],
        1,
    )
    assert Operation.objects.get(cluster=cluster).state == "pending"
    assert AuditEvent.objects.get(action="cluster.create").actor_name == tenant.admin.username


def test_a_taken_name_is_reported_on_the_name(tenant: Tenant) -> None:
    client = signed_in(tenant.admin)
    client.post(NEW, form_data())

    response = client.post(NEW, form_data())

    assert "already exists in Acme" in response.context["form"].errors["name"][0]
    assert Cluster.objects.count() == 1


def test_form_offers_the_configured_kafka_versions_and_a_default_placement(tenant: Tenant) -> None:
    response = signed_in(tenant.admin).get(NEW)

    page = response.content.decode()
    for version in settings.KAFKA_VERSIONS:
        assert f'<option value="{version}"' in page
    assert f'<option value="{settings.DEFAULT_KAFKA_VERSION}" selected' in page
    assert "(not configured)" not in page  # every backend is, vm included
    # The development broker runs one broker, so the default layout is one broker in one rack.
    assert response.context["preview"].racks == [("rack-1", [0])]
    # One organization: nothing to choose.
    assert 'type="hidden" name="organization" value="acme"' in page


def test_preview_shows_the_placement_without_creating_anything(tenant: Tenant) -> None:
    response = signed_in(tenant.admin).post(
        NEW, form_data(brokers=6, racks=["az-a", "az-b", "az-c"], preview="1")
    )

    assert response.context["preview"].racks == [("az-a", [0, 3]), ("az-b", [1, 4]), ("az-c", [2, 5])]
    assert 'data-rack="az-b"' in response.content.decode()
    assert not Cluster.objects.exists()


def test_placement_fragment_follows_the_layout_fields(tenant: Tenant) -> None:
    client = signed_in(tenant.admin)

    good = client.get(
        "/clusters/new/placement/", {"brokers": "4", "racks": "x, y", "replication_factor": "2"}
    )
    bad = client.get("/clusters/new/placement/", {"brokers": "4", "racks": "a,b,c"})
    typo = client.get("/clusters/new/placement/", {"brokers": "four"})

    assert good.context["preview"].racks == [("x", [0, 2]), ("y", [1, 3])]
    assert "<!DOCTYPE" not in good.content.decode()
    assert "cannot be spread evenly over 3 racks" in bad.content.decode()
    assert "Brokers: A valid integer is required." in typo.content.decode()


def test_only_organizations_the_user_may_write_to_are_offered(tenant: Tenant, other_tenant: Tenant) -> None:
    set_membership(organization=other_tenant.organization, user=tenant.admin, role=Role.ADMIN, actor=SYSTEM)
    client = signed_in(tenant.admin)

    form = client.get(NEW).context["form"]
    assert [slug for slug, _ in form.fields["organization"].choices] == ["acme", "globex"]

    created = client.post(NEW, form_data(organization="globex"))
    assert created.status_code == 302
    assert Cluster.objects.get().organization == other_tenant.organization

    set_membership(organization=other_tenant.organization, user=tenant.admin, role=Role.VIEWER, actor=SYSTEM)
    refused = client.post(NEW, form_data(name="other", organization="globex"))
    assert "organization" in refused.context["form"].errors
    assert Cluster.objects.count() == 1


def test_preview_shows_the_kubernetes_objects_beside_the_placement(tenant: Tenant) -> None:
    """No target registered: a preview renders for the default one; creating would need a target."""
    body = form_data(backend="kubernetes", brokers="3", racks=["eu-1a", "eu-1b", "eu-1c"])
    response = signed_in(tenant.admin).post(NEW, {**body, "preview": "1"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Kubernetes objects it gets" in page
    assert "kind: StatefulSet" in page and "topology.kubernetes.io/zone" in page
    assert response.context["preview"].racks == [("eu-1a", [0]), ("eu-1b", [1]), ("eu-1c", [2])]
    assert not Cluster.objects.exists()


def test_the_form_places_a_kubernetes_cluster_on_the_target_chosen(tenant: Tenant) -> None:
    """With two Kubernetes targets a request must name one: the form offers them, an unknown name gets
    the API's message on the field, and the chosen one is where the cluster goes."""
    for name, namespace in (("prod-eu", "kafka-eu"), ("prod-us", "kafka-us")):
        register_target(
            organization=tenant.organization,
            name=name,
            kind="kubernetes",
            config={"namespace": namespace},
            credentials={},
            actor=SYSTEM,
        )
    client = signed_in(tenant.admin)
    body = form_data(backend="kubernetes", brokers="3", racks=["eu-1a", "eu-1b", "eu-1c"])
    assert '<option value="prod-us">prod-us</option>' in client.get(NEW).content.decode()

    unnamed = client.post(NEW, body)
    assert "several kubernetes targets; name one" in " ".join(unnamed.context["form"].errors["target"])
    unknown = client.post(NEW, {**body, "target": "staging"})
    assert "no target named 'staging'" in " ".join(unknown.context["form"].errors["target"])
    preview = client.post(NEW, {**body, "target": "prod-us", "preview": "1"})
    assert "namespace: kafka-us" in preview.content.decode()

    created = client.post(NEW, {**body, "target": "prod-us"})

    assert created.status_code == 302, created.context["form"].errors
    assert Placement.objects.get(cluster=Cluster.objects.get()).target.name == "prod-us"
