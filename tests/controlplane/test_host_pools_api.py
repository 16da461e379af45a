"""VM host pools through the API (on PostgreSQL): registering a pool (SSH key and host keys encrypted,
never returned; every bad field named), planning a `vm` cluster on it without reaching any host, and
the hosts clusters get: rack-aware, refused with what is missing, never given twice (also not to two
requests at once), more on scale-out, another of the rack for a replacement, freed when brokers or
the cluster go, and not removable from the pool while in use."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import yaml
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from controlplane.clusters.actions import record_brokers_removed
from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Broker, Cluster, ClusterSecurity
from controlplane.operations.choices import OperationState
from controlplane.operations.models import Operation
from controlplane.operations.outcomes import apply_operation_outcome
from controlplane.targets.models import HostAllocation, Placement, Target
from tests.support.tenants import Tenant, token_client

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def hosts(*racks: str) -> list[dict[str, Any]]:
    # Documentation addresses (TEST-NET-1): nothing answers there, so nothing here reaches a host.
    return [
        {"name": f"kafka-{i}", "address": f"192.0.2.{i}", "rack": rack} for i, rack in enumerate(racks, 1)
    ]


def known_hosts(entries: list[dict[str, Any]]) -> str:
    return "".join(f"{h['address']} {HOST_KEY}\n" for h in entries)


def register_pool(tenant: Tenant, ssh_key: str, racks: tuple[str, ...] = ("a", "b", "c"), **body: Any):
    entries = hosts(*racks)
    payload = {
        "name": "dc1",
        "kind": "vm",
        "settings": {"hosts": entries, "racks": sorted(set(racks))},
        "ssh_private_key": ssh_key,
        "known_hosts": known_hosts(entries),
        **body,
    }
    payload = {field: value for field, value in payload.items() if value is not None}  # None: left out
    return token_client(tenant.admin).post("/api/v1/targets/", payload, format="json")


def create_cluster(tenant: Tenant, query: str = "", **body: Any):
    payload = {"name": "orders", "backend": "vm", "brokers": 3, "racks": ["a", "b", "c"], **body}
    return token_client(tenant.admin).post(f"/api/v1/clusters/{query}", payload, format="json")


def allocations(cluster_name: str = "orders") -> dict[int, str]:
    return dict(
        HostAllocation.objects.filter(broker__cluster__name=cluster_name).values_list(
            "broker__node_id", "host"
        )
    )


def serving(cluster_id: str) -> Cluster:
    Cluster.objects.filter(pk=cluster_id).update(status=ClusterStatus.RUNNING)
    Operation.objects.filter(cluster_id=cluster_id).update(state=OperationState.SUCCEEDED)
    Broker.objects.filter(cluster_id=cluster_id).update(state=BrokerState.RUNNING)
    return Cluster.objects.get(pk=cluster_id)


@pytest.mark.django_db
def test_a_pool_is_registered_with_its_key_and_host_keys_never_returned_nor_stored_in_clear(
    tenant: Tenant, ssh_key: str
) -> None:
    response = register_pool(tenant, ssh_key)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "vm" and body["authentication"] == "ssh_key"
    assert [h["rack"] for h in body["settings"]["hosts"]] == ["a", "b", "c"]
    assert (
        body["settings"]["hosts"][0]["ssh_user"] == "root" and body["settings"]["hosts"][0]["ssh_port"] == 22
    )
    secret = ssh_key.splitlines()[1]
    assert secret not in json.dumps(body) and HOST_KEY.split()[1] not in json.dumps(body)
    assert secret not in json.dumps(token_client(tenant.viewer).get("/api/v1/targets/").json())
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM targets_target")
        (stored,) = cursor.fetchone()
    assert secret not in str(stored) and "enc:v1:" in str(stored)
    assert Target.objects.get().credentials["ssh_private_key"] == ssh_key


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"hosts": [{"name": "x", "address": "300.1.2.3", "rack": "a"}]}, "hosts", "neither an IP address"),
        (
            {"hosts": [*hosts("a"), {"name": "kafka-1", "address": "192.0.2.9", "rack": "a"}]},
            "hosts",
            "twice",
        ),
        ({"hosts": hosts("a", "z")}, "hosts", "unknown rack 'z'"),
        ({"hosts": []}, "hosts", "at least one host"),
        ({"service_manager": "upstart"}, "service_manager", "upstart"),
        ({"surprise": 1}, "surprise", "Unknown field"),
    ],
)
def test_bad_pools_get_a_field_message(
    tenant: Tenant, ssh_key: str, change: dict[str, Any], field: str, words: str
) -> None:
    entries = hosts("a", "b", "c")
    payload = {
        "name": "dc1",
        "kind": "vm",
        "settings": {"hosts": entries, "racks": ["a", "b", "c"], **change},
        "ssh_private_key": ssh_key,
        "known_hosts": known_hosts(entries),
    }
    response = token_client(tenant.admin).post("/api/v1/targets/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["settings"] and words in json.dumps(response.json())
    assert not Target.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credentials", "field", "words"),
    [
        ({"ssh_private_key": None}, "ssh_private_key", "Give the SSH private key"),
        (
            {"ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"},
            "ssh_private_key",
            "Not a private key",
        ),
        ({"known_hosts": None}, "known_hosts", "public keys"),
        ({"known_hosts": f"192.0.2.1 {HOST_KEY}\n"}, "known_hosts", "No host key for kafka-2, kafka-3"),
        ({"in_cluster": True}, "kubeconfig", "SSH key"),
    ],
)
def test_bad_credentials_get_a_field_message(
    tenant: Tenant, ssh_key: str, credentials: dict[str, str], field: str, words: str
) -> None:
    response = register_pool(tenant, ssh_key, **credentials)
    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()[field])
    assert not Target.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_shows_the_inventory_and_each_brokers_configuration_without_reaching_a_host(
    tenant: Tenant, ssh_key: str
) -> None:
    register_pool(tenant, ssh_key, racks=("a", "b", "c", "a"))
    response = create_cluster(tenant, "?dry_run=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["target"] == "dc1" and body["placement"] == {"0": "a", "1": "b", "2": "c"}
    inventory = yaml.safe_load(body["artifacts"]["inventory.yml"])["all"]
    assert set(inventory["children"]) >= {"kafka", "kafka_controllers", "rack_a", "rack_b", "rack_c"}
    assert {name: v["kafka_rack"] for name, v in inventory["hosts"].items()} == {
        "kafka-1": "a",
        "kafka-2": "b",
        "kafka-3": "c",
    }
    assert "ssh_private_key" not in body["artifacts"]["inventory.yml"]
    properties = body["artifacts"]["broker-1/server.properties"]
    assert "broker.rack=b" in properties and "node.id=1" in properties
    assert "advertised.listeners=PLAINTEXT://192.0.2.2:9092" in properties
    assert "broker 0 on kafka-1 (192.0.2.1, rack a)" in body["summary"]
    assert not Cluster.objects.exists() and not HostAllocation.objects.exists()


@pytest.mark.django_db
def test_a_secured_vm_clusters_plan_shows_its_listeners_and_no_secret(tenant: Tenant, ssh_key: str) -> None:
    register_pool(tenant, ssh_key)
    bad = create_cluster(tenant, client_authentication=["kerberos"])
    assert bad.status_code == 400 and "client_authentication" in bad.json(), bad.content
    created = create_cluster(tenant, client_authentication=["scram", "mtls"])
    assert created.status_code == 202, created.content
    cluster = Cluster.objects.get(pk=created.json()["id"])
    stored = ClusterSecurity.objects.get(cluster=cluster)

    plan = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/manifests/").json()
    shown = json.dumps(plan)
    assert "PRIVATE KEY" not in shown and stored.secrets["admin_password"] not in shown
    assert "SCRAM://192.0.2.2:9092" in plan["artifacts"]["broker-1/server.properties"]
    assert "client certificates on port 9095" in plan["summary"]


@pytest.mark.django_db
def test_a_vm_cluster_without_a_pool_is_refused_naming_what_to_do(tenant: Tenant) -> None:
    for query in ("", "?dry_run=true"):
        response = create_cluster(tenant, query)
        assert response.status_code == 400, response.content
        assert "register one" in json.dumps(response.json()["target"])


@pytest.mark.django_db
def test_clusters_get_hosts_rack_aware_and_a_pool_too_small_is_refused_naming_the_racks(
    tenant: Tenant, ssh_key: str
) -> None:
    register_pool(tenant, ssh_key, racks=("a", "b", "c", "a", "b", "c"))
    response = create_cluster(tenant)
    assert response.status_code == 202, response.content
    assert allocations() == {0: "kafka-1", 1: "kafka-2", 2: "kafka-3"}
    placement = Placement.objects.get()
    assert placement.layout == {"controllers": [0, 1, 2], "quorum": "dynamic"}

    refused = create_cluster(tenant, name="payments", brokers=6)
    assert refused.status_code == 400, refused.content
    assert refused.json()["brokers"] == [
        "Host pool dc1: rack a needs 2 free hosts, the pool has 1; rack b needs 2 free hosts, the pool has 1; "
        "rack c needs 2 free hosts, the pool has 1."
    ]
    assert create_cluster(tenant, name="payments").status_code == 202
    assert sorted(allocations("payments").values()) == ["kafka-4", "kafka-5", "kafka-6"]
    viewer = token_client(tenant.viewer)
    pool = viewer.get("/api/v1/targets/").json()["results"][0]
    assert pool["hosts_in_use"]["kafka-1"] == "broker 0 of cluster orders"
    assert pool["hosts_in_use"]["kafka-6"] == "broker 2 of cluster payments"
    # The list reads every pool's hosts in one query, however many pools there are.
    with CaptureQueriesContext(connection) as one_pool:
        viewer.get("/api/v1/targets/")
    register_pool(tenant, ssh_key, name="dc2")
    with CaptureQueriesContext(connection) as two_pools:
        assert len(viewer.get("/api/v1/targets/").json()["results"]) == 2
    assert len(two_pools) == len(one_pool)
    # The plan of an existing cluster is its inventory on the hosts it holds.
    cluster = Cluster.objects.get(name="payments")
    plan = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/manifests/").json()
    inventory = yaml.safe_load(plan["artifacts"]["inventory.yml"])["all"]
    assert sorted(inventory["hosts"]) == ["kafka-4", "kafka-5", "kafka-6"]
    assert "broker 0 on kafka-4 (192.0.2.4, rack a)" in plan["summary"]
    assert create_cluster(tenant, name="third", brokers=3).status_code == 400
    assert not Cluster.objects.filter(name="third").exists()


@pytest.mark.django_db
def test_scale_out_takes_more_hosts_scale_in_and_replacement_free_them_and_delete_frees_all(
    tenant: Tenant, ssh_key: str
) -> None:
    register_pool(tenant, ssh_key, racks=("a", "b", "c", "a", "b", "c", "a"))
    cluster = create_cluster(tenant).json()
    client = token_client(tenant.admin)
    serving(cluster["id"])

    scaled = client.post(f"/api/v1/clusters/{cluster['id']}/scale/", {"brokers": 6}, format="json")
    assert scaled.status_code == 202, scaled.content
    assert allocations() == {
        0: "kafka-1",
        1: "kafka-2",
        2: "kafka-3",
        3: "kafka-4",
        4: "kafka-5",
        5: "kafka-6",
    }
    serving(cluster["id"])
    too_many = client.post(f"/api/v1/clusters/{cluster['id']}/scale/", {"brokers": 9}, format="json")
    assert too_many.status_code == 400
    assert "rack b needs 1 free host, the pool has 0" in json.dumps(too_many.json())

    # A broker replaced without its disk gets another free host of its rack; the old one keeps its
    # host until its broker record goes.
    replaced = client.post(
        f"/api/v1/clusters/{cluster['id']}/replace-broker/", {"node_id": 3, "keep_disk": False}, format="json"
    )
    assert replaced.status_code == 202, replaced.content
    assert allocations()[6] == "kafka-7" and allocations()[3] == "kafka-4"
    record_brokers_removed(cluster_id=cluster["id"], node_ids=[3])
    assert 3 not in allocations() and "kafka-4" not in allocations().values()
    serving(cluster["id"])
    lacking = client.post(
        f"/api/v1/clusters/{cluster['id']}/replace-broker/", {"node_id": 4, "keep_disk": False}, format="json"
    )
    assert lacking.status_code == 400 and "rack b needs 1 free host" in json.dumps(lacking.json())

    deleted = client.delete(f"/api/v1/clusters/{cluster['id']}/")
    assert deleted.status_code == 202
    operation = Operation.objects.get(pk=deleted.json()["operation"]["id"])
    Operation.objects.filter(pk=operation.pk).update(state=OperationState.SUCCEEDED)
    apply_operation_outcome(operation.pk)
    assert not HostAllocation.objects.exists()
    assert Broker.objects.filter(cluster_id=cluster["id"]).exists()  # the history stays


@pytest.mark.django_db
def test_hosts_in_use_cannot_leave_the_pool_nor_change_rack_but_free_ones_can(
    tenant: Tenant, ssh_key: str
) -> None:
    target = register_pool(tenant, ssh_key, racks=("a", "b", "c", "c")).json()
    create_cluster(tenant)
    client = token_client(tenant.admin)
    url = f"/api/v1/targets/{target['id']}/"
    entries = hosts("a", "b", "c", "c")

    gone = client.patch(url, {"settings": {"hosts": entries[1:], "racks": ["a", "b", "c"]}}, format="json")
    assert gone.status_code == 409, gone.content
    assert "host kafka-1 runs broker 0 of cluster orders" in gone.json()["detail"]
    moved = [{**entries[0], "rack": "b"}, *entries[1:]]
    assert (
        client.patch(url, {"settings": {"hosts": moved, "racks": ["a", "b", "c"]}}, format="json").status_code
        == 409
    )

    shrunk = client.patch(url, {"settings": {"hosts": entries[:3], "racks": ["a", "b", "c"]}}, format="json")
    assert shrunk.status_code == 200, shrunk.content
    assert [h["name"] for h in Target.objects.get().config["hosts"]] == ["kafka-1", "kafka-2", "kafka-3"]
    assert client.delete(url).status_code == 409  # clusters run there


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_never_get_the_same_host(tenant: Tenant, ssh_key: str) -> None:
    register_pool(tenant, ssh_key)  # room for exactly one three-rack cluster
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def create(name: str) -> None:
        try:
            start.wait()
            answers[name] = create_cluster(tenant, name=name).status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [202, 400], answers
    winner = next(name for name, code in answers.items() if code == 202)
    assert sorted(allocations(winner).values()) == ["kafka-1", "kafka-2", "kafka-3"]
    assert HostAllocation.objects.count() == 3
    assert list(Cluster.objects.values_list("name", flat=True)) == [winner]


@pytest.mark.django_db
def test_testing_a_pools_connection_names_each_host_that_does_not_answer(
    tenant: Tenant, ssh_key: str, settings: Any
) -> None:
    settings.VM_CONNECT_TIMEOUT_SECONDS = 1
    target = register_pool(tenant, ssh_key).json()
    response = token_client(tenant.admin).post(f"/api/v1/targets/{target['id']}/test-connection/")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"]] == ["host kafka-1", "host kafka-2", "host kafka-3"]
    for check in report["checks"]:
        assert not check["ok"] and ("SSH failed" in check["message"] or "did not answer" in check["message"])
    assert "kafka-1 (192.0.2.1)" in report["summary"]
