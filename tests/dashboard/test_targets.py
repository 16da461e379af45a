"""The Targets page through Django's test client: registering a Kubernetes target through the API's
checks (its messages per field), the kubeconfig never rendered, testing a connection, removal refused
while clusters run there; viewers see the list only (a forged POST is a 403), another organization's
target is a 404. (The connection test's findings on a real API server: tests/controlplane/
test_kubernetes_targets.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.test import Client

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.targets.actions import register_target
from controlplane.targets.models import Placement, Target
from tests.dashboard.conftest import create_cluster
from tests.support.tenants import SYSTEM, Tenant

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-kube-token-0001"


def kubeconfig(server: str = "https://192.0.2.10:6443") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "prod", "cluster": {"server": server}}],
            "users": [{"name": "cp", "user": {"token": TOKEN}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "cp"}}],
            "current-context": "prod",
        }
    )


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(**values: Any) -> dict[str, Any]:
    return {
        "name": "prod-eu",
        "kind": "kubernetes",
        "kubeconfig": kubeconfig(),
        "namespace": "kafka-prod",
        "topology_key": "topology.kubernetes.io/zone",
        "image": "registry.example.com/kafka:{version}",
        "volume_retention": "retain",
        "allowed_cidrs": "10.20.0.0/16, 192.0.2.0/24",
        **values,
    }


def make_target(tenant: Tenant, name: str = "lab", server: str = "https://192.0.2.10:6443") -> Target:
    return register_target(
        organization=tenant.organization,
        name=name,
        kind="kubernetes",
        config={"namespace": "kafka"},
        credentials={"kubeconfig": kubeconfig(server)},
        actor=SYSTEM,
    )


def test_an_admin_registers_a_kubernetes_target_whose_kubeconfig_is_never_shown(tenant: Tenant) -> None:
    client = signed_in(tenant.admin)

    response = client.post("/targets/", form())

    assert response.status_code == 302, response.content.decode()[-2000:]
    target = Target.objects.get()
    assert target.credentials == {"kubeconfig": kubeconfig()}
    assert target.config["namespace"] == "kafka-prod"
    assert target.config["volume_retention"] == "retain"
    assert target.config["allowed_cidrs"] == ["10.20.0.0/16", "192.0.2.0/24"]
    page = client.get("/targets/").content.decode()
    assert 'data-target="prod-eu"' in page and "kafka-prod" in page and "a kubeconfig" in page
    assert TOKEN not in page


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"namespace": "Kafka_Prod"}, "namespace", "lowercase letters"),
        ({"context": "staging"}, "context", "has no context 'staging'"),
        ({"in_cluster": "on"}, "kubeconfig", "one of them"),
        ({"kubeconfig": "just: text"}, "kubeconfig", "Not a kubeconfig"),
        ({"allowed_cidrs": "10.0.0.1/8"}, "allowed_cidrs", "is not a network"),
        ({"name": "Prod EU"}, "name", "slug"),
        ({"kind": "no-such-kind"}, "kind", "not one of the available choices"),
    ],
)
def test_bad_targets_get_the_apis_message_on_their_field(
    tenant: Tenant, values: dict[str, Any], field: str, words: str
) -> None:
    response = signed_in(tenant.admin).post("/targets/", form(**values))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field]), errors
    assert TOKEN not in response.content.decode()  # what was pasted is not rendered back
    assert not Target.objects.exists()


def test_a_name_taken_is_refused(tenant: Tenant) -> None:
    make_target(tenant, "prod-eu")
    response = signed_in(tenant.admin).post("/targets/", form())
    assert "already exists" in " ".join(response.context["form"].errors["name"])


def test_testing_a_connection_shows_the_report_once(tenant: Tenant) -> None:
    target = make_target(tenant, server="https://127.0.0.1:1")  # nothing listens there
    client = signed_in(tenant.admin)

    response = client.post(f"/targets/{target.pk}/test/")

    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Connection test of lab" in page and "Needs attention" in page
    assert 'data-check="api_server"' in page and "did not answer" in page
    assert "Connection test of" not in client.get("/targets/").content.decode()


def test_a_target_in_use_is_not_removed(tenant: Tenant) -> None:
    target = make_target(tenant)
    cluster = create_cluster(tenant)
    Placement.objects.create(cluster=cluster, target=target)
    client = signed_in(tenant.admin)
    assert "Removal is refused while clusters run on it" in client.get("/targets/").content.decode()
    # The cluster's page says where it runs.
    assert (
        '<dt>Target</dt><dd><a href="/targets/">lab</a>'
        in client.get(f"/clusters/{cluster.pk}/").content.decode()
    )

    page = client.post(f"/targets/{target.pk}/delete/", follow=True).content.decode()

    assert "was not removed: 1 cluster(s) run on target lab" in page
    assert Target.objects.filter(pk=target.pk).exists()
    Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.DELETED)
    page = client.post(f"/targets/{target.pk}/delete/", follow=True).content.decode()
    assert "Target lab removed." in page
    assert not Target.objects.exists()


def test_viewers_see_targets_but_change_nothing_and_other_organizations_see_none(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    target = make_target(tenant)
    viewer = signed_in(tenant.viewer)

    page = viewer.get("/targets/").content.decode()

    assert 'data-target="lab"' in page
    assert "Test connection" not in page and "Register target" not in page and "read-only" in page
    assert viewer.post("/targets/", form()).status_code == 403
    assert viewer.post(f"/targets/{target.pk}/test/").status_code == 403
    assert viewer.post(f"/targets/{target.pk}/delete/").status_code == 403
    outsider = signed_in(other_tenant.admin)
    assert 'data-target="lab"' not in outsider.get("/targets/").content.decode()
    assert outsider.post(f"/targets/{target.pk}/test/").status_code == 404
    assert outsider.post(f"/targets/{target.pk}/delete/").status_code == 404
    assert Target.objects.filter(pk=target.pk).exists()
