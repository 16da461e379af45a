"""Host pools on the Targets page through Django's test client: registered through the API's checks
(messages on the form's fields), the SSH key never rendered, the hosts listed with their racks."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from controlplane.clusters.models import Cluster
from controlplane.targets.models import Target
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pool_form(ssh_key: str, **values: Any) -> dict[str, Any]:
    return {
        "name": "dc1",
        "kind": "vm",
        "hosts": "kafka-1 192.0.2.1 a\nkafka-2 192.0.2.2 b admin 2222\n\nkafka-3 192.0.2.3 c",
        "racks": "a, b, c",
        "ssh_private_key": ssh_key,
        "known_hosts": "".join(f"192.0.2.{i} {HOST_KEY}\n" for i in (1, 3))
        + f"[192.0.2.2]:2222 {HOST_KEY}\n",
        "service_manager": "systemd",
        "kafka_user": "kafka",
        "java_home": "",
        **values,
    }


def test_a_host_pool_is_registered_from_the_targets_page(tenant: Tenant, ssh_key: str) -> None:
    client = signed_in(tenant.admin)
    response = client.post("/targets/", pool_form(ssh_key))
    assert response.status_code == 302, response.content.decode()[-3000:]
    target = Target.objects.get()
    assert target.kind == "vm"
    assert [(h["name"], h["rack"], h["ssh_user"], h["ssh_port"]) for h in target.config["hosts"]] == [
        ("kafka-1", "a", "root", 22),
        ("kafka-2", "b", "admin", 2222),
        ("kafka-3", "c", "root", 22),
    ]
    assert target.credentials["ssh_private_key"] == ssh_key
    page = client.get("/targets/").content.decode()
    assert "kafka-1 192.0.2.1 (a), kafka-2 192.0.2.2 (b), kafka-3 192.0.2.3 (c)" in page
    assert "an SSH key, checking each host" in page
    assert ssh_key.splitlines()[1] not in page and HOST_KEY.split()[1] not in page


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"hosts": "kafka-1 192.0.2.1"}, "hosts", "Line 1: give name, address and rack"),
        ({"hosts": "kafka-1 192.0.2.1 z"}, "hosts", "unknown rack"),
        ({"hosts": ""}, "hosts", "at least one host"),
        ({"ssh_private_key": ""}, "ssh_private_key", "Give the SSH private key"),
        ({"known_hosts": f"192.0.2.1 {HOST_KEY}\n"}, "known_hosts", "No host key for kafka-2, kafka-3"),
    ],
)
def test_a_bad_pool_shows_the_apis_message_on_its_field(
    tenant: Tenant, ssh_key: str, values: dict[str, Any], field: str, words: str
) -> None:
    response = signed_in(tenant.admin).post("/targets/", pool_form(ssh_key, **values))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field]), errors
    assert ssh_key.splitlines()[1] not in response.content.decode()
    assert not Target.objects.exists()


def test_the_new_cluster_forms_preview_shows_a_pools_hosts_inventory_and_configurations(
    tenant: Tenant, ssh_key: str
) -> None:
    client = signed_in(tenant.admin)
    assert client.post("/targets/", pool_form(ssh_key)).status_code == 302
    body = {
        "name": "orders",
        "organization": tenant.organization.slug,
        "backend": "vm",
        "kafka_version": settings.DEFAULT_KAFKA_VERSION,
        "brokers": "3",
        "racks": "a, b, c",
        "node_cpu": "1",
        "node_memory_mb": "2048",
        "node_disk_gb": "10",
        "preview": "1",
    }
    page = client.post("/clusters/new/", body).content.decode()
    assert "broker 0 on kafka-1 (192.0.2.1, rack a)" in page
    assert "inventory.yml" in page and "rack_b:" in page
    assert "broker-2/server.properties" in page and "broker.rack=c" in page
    assert not Cluster.objects.exists()
