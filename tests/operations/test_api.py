"""The operation endpoints: scale, restart, replace-broker, upgrade and anomalies.

Validation, conflicts and tenancy; what the operations then do is in the other modules here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from controlplane.clusters.actions import request_restart
from controlplane.clusters.models import Broker, Cluster
from controlplane.operations.models import Operation
from tests.operations.conftest import ClusterFactory
from tests.support.tenants import SYSTEM, Tenant, token_client

ENDPOINTS = {
    "scale": {"brokers": 9},
    "restart": {},
    "replace-broker": {"node_id": 1, "keep_disk": True},
    "upgrade": {"kafka_version": "4.3.2"},
}


def url(cluster: Cluster, action: str) -> str:
    return f"/api/v1/clusters/{cluster.id}/{action}/"


@pytest.fixture
def cluster(simulated_cluster: ClusterFactory) -> Cluster:
    return simulated_cluster(brokers=6)[0]


@pytest.mark.parametrize(
    ("action", "body", "kind", "steps"),
    [
        (
            "scale",
            {"brokers": 9},
            "scale",
            ["add_brokers", "wait_for_new_brokers", "plan_moves", "set_throttle", "execute_moves"],
        ),
        ("scale", {"brokers": 3}, "scale", ["plan_moves", "set_throttle", "execute_moves", "clear_throttle"]),
        ("restart", {}, "restart", ["restart_brokers", "elect_leaders"]),
        ("replace-broker", {"node_id": 4, "keep_disk": True}, "replace_broker", ["replace_in_place"]),
        (
            "replace-broker",
            {"node_id": 4, "keep_disk": False},
            "replace_broker",
            ["start_replacement", "wait_for_replacement", "plan_moves"],
        ),
        ("upgrade", {"kafka_version": "4.3.2"}, "upgrade", ["check_upgrade", "upgrade_brokers"]),
    ],
)
def test_each_operation_answers_202_with_the_cluster_and_its_operation(
    tenant: Tenant, cluster: Cluster, action: str, body: dict[str, Any], kind: str, steps: list[str]
) -> None:
    response = token_client(tenant.admin).post(url(cluster, action), body, format="json")

    assert response.status_code == 202, response.content
    payload = response.json()
    assert payload["id"] == str(cluster.id)
    assert payload["status"] == "running"
    operation = payload["operation"]
    assert (operation["kind"], operation["state"], operation["params"] | body) == (
        kind,
        "pending",
        operation["params"],
    )
    names = [s["name"] for s in operation["steps"]]
    assert names[: len(steps)] == steps
    assert response["Location"].endswith(f"/api/v1/operations/{operation['id']}/")
    assert payload["active_operation"] == operation["id"]


def test_scale_records_the_new_layout_before_it_runs(tenant: Tenant, cluster: Cluster) -> None:
    out = token_client(tenant.admin).post(url(cluster, "scale"), {"brokers": 9}, format="json").json()

    assert out["brokers"] == 9
    added = {(b["node_id"], b["rack"], b["state"]) for b in out["broker_nodes"] if b["node_id"] >= 6}
    assert added == {(6, "rack-1", "pending"), (7, "rack-2", "pending"), (8, "rack-3", "pending")}
    assert out["operation"]["params"]["add_node_ids"] == [6, 7, 8]


@pytest.mark.parametrize(
    ("action", "body", "field", "words"),
    [
        ("scale", {"brokers": 6}, "brokers", "already has 6 brokers"),
        ("scale", {"brokers": 7}, "brokers", "use a multiple of 3 (e.g. 6 or 9)"),
        ("scale", {"brokers": 2}, "brokers", "3 racks need at least 3 brokers"),
        ("scale", {"brokers": 0}, "brokers", "greater than or equal to 1"),
        ("scale", {"brokers": 501}, "brokers", "less than or equal to 500"),
        ("scale", {"nodes": 9}, "nodes", "Unknown field"),
        ("scale", {}, "brokers", "required"),
        ("restart", {"force": True}, "force", "Unknown field"),
        (
            "replace-broker",
            {"node_id": 42, "keep_disk": True},
            "node_id",
            "has no broker 42; its brokers are 0, 1, 2",
        ),
        ("replace-broker", {"node_id": 1}, "keep_disk", "required"),
        ("upgrade", {"kafka_version": "4.2.2"}, "kafka_version", "already runs Kafka 4.2.2"),
        ("upgrade", {"kafka_version": "3.9.2"}, "kafka_version", "Downgrades are refused (4.2.2 → 3.9.2)"),
        ("upgrade", {"kafka_version": "9.9.9"}, "kafka_version", "Unknown Kafka version '9.9.9'"),
    ],
)
def test_invalid_requests_get_a_specific_400(
    tenant: Tenant, cluster: Cluster, action: str, body: dict[str, Any], field: str, words: str
) -> None:
    response = token_client(tenant.admin).post(url(cluster, action), body, format="json")

    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json()[field], ensure_ascii=False)
    assert not Operation.objects.filter(cluster=cluster).exclude(kind="provision").exists()
    assert Broker.objects.filter(cluster=cluster).count() == 6


def test_scale_in_below_the_replication_factor_in_use_is_refused(
    tenant: Tenant, simulated_cluster: ClusterFactory
) -> None:
    cluster, kafka = simulated_cluster(brokers=6, replication_factor=2, min_insync_replicas=1, topics=())
    kafka.create_topic("wide", 3, 4)

    response = token_client(tenant.admin).post(url(cluster, "scale"), {"brokers": 3}, format="json")

    assert response.status_code == 400
    assert (
        "Some partitions have 4 replicas, so at least 4 brokers must remain" in response.json()["brokers"][0]
    )


def test_a_scale_in_with_unevenly_filled_racks_is_refused(tenant: Tenant, cluster: Cluster) -> None:
    Broker.objects.filter(cluster=cluster, node_id__in=[2, 5]).update(rack="rack-1")

    response = token_client(tenant.admin).post(url(cluster, "scale"), {"brokers": 3}, format="json")

    assert response.status_code == 400
    assert (
        "not spread evenly over the racks (rack-1: 4, rack-2: 2, rack-3: 0)" in response.json()["brokers"][0]
    )


@pytest.mark.parametrize("action", sorted(ENDPOINTS))
def test_while_an_operation_runs_every_change_answers_409_naming_it(
    tenant: Tenant, cluster: Cluster, action: str
) -> None:
    running = request_restart(cluster=cluster, actor=SYSTEM)

    response = token_client(tenant.admin).post(url(cluster, action), ENDPOINTS[action], format="json")

    assert response.status_code == 409
    assert response.json()["operation"] == str(running.id)
    assert str(running.id) in response.json()["detail"]
    assert Operation.objects.filter(cluster=cluster).exclude(kind="provision").count() == 1


@pytest.mark.parametrize("status", ["failed", "deleted", "provisioning"])
def test_a_cluster_that_is_not_serving_cannot_be_changed(
    tenant: Tenant, cluster: Cluster, status: str
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(status=status)

    response = token_client(tenant.admin).post(url(cluster, "restart"), {}, format="json")

    assert response.status_code == 409
    assert f"is {status}; only a running or degraded cluster can be changed" in response.json()["detail"]


class TestTenancy:
    """Allowed and denied cases share one setup: a running cluster of Acme's."""

    @pytest.mark.parametrize("action", sorted(ENDPOINTS))
    def test_viewers_get_403(self, tenant: Tenant, cluster: Cluster, action: str) -> None:
        response = token_client(tenant.viewer).post(url(cluster, action), ENDPOINTS[action], format="json")

        assert response.status_code == 403
        assert not Operation.objects.filter(cluster=cluster).exclude(kind="provision").exists()

    @pytest.mark.parametrize("action", sorted(ENDPOINTS))
    def test_other_organizations_get_404(self, other_tenant: Tenant, cluster: Cluster, action: str) -> None:
        response = token_client(other_tenant.owner).post(
            url(cluster, action), ENDPOINTS[action], format="json"
        )

        assert response.status_code == 404

    def test_anomalies_are_listed_for_members_only(
        self, tenant: Tenant, other_tenant: Tenant, cluster: Cluster
    ) -> None:
        from django.utils import timezone

        from controlplane.clusters.actions import record_broker_unreachable

        Cluster.objects.filter(pk=cluster.pk).update(self_healing=False)
        record_broker_unreachable(cluster.id, 3, seen_at=timezone.now(), detail="missing from metadata")

        listed = token_client(tenant.viewer).get(url(cluster, "anomalies"))

        assert listed.status_code == 200
        [anomaly] = listed.json()["results"]
        assert (anomaly["node_id"], anomaly["state"], anomaly["source"], anomaly["operation"]) == (
            3,
            "open",
            "monitoring",
            None,
        )
        assert anomaly["detail"] == "missing from metadata"
        assert token_client(other_tenant.owner).get(url(cluster, "anomalies")).status_code == 404

    def test_an_open_anomaly_can_be_ignored_by_a_writer_once(self, tenant: Tenant, cluster: Cluster) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from controlplane.clusters.actions import heal_broker_anomalies, record_broker_unreachable
        from controlplane.clusters.models import BrokerAnomaly

        Cluster.objects.filter(pk=cluster.pk).update(self_healing=False)
        anomaly = record_broker_unreachable(cluster.id, 3, seen_at=timezone.now(), detail="gone")
        ignore = url(cluster, f"anomalies/{anomaly.pk}/ignore")

        assert token_client(tenant.viewer).post(ignore).status_code == 403
        answered = token_client(tenant.admin).post(ignore)
        again = token_client(tenant.admin).post(ignore)

        assert answered.status_code == 200 and answered.json()["state"] == "ignored"
        assert again.status_code == 409
        # Long past the self-healing delay, with self-healing on: an ignored anomaly is still left alone.
        BrokerAnomaly.objects.filter(pk=anomaly.pk).update(detected_at=timezone.now() - timedelta(hours=1))
        Cluster.objects.filter(pk=cluster.pk).update(self_healing=True)
        assert heal_broker_anomalies(cluster_id=cluster.id) == []
        assert token_client(tenant.admin).post(url(cluster, "anomalies/999999/ignore")).status_code == 404


def test_openapi_schema_describes_the_operation_endpoints(client: Any, db: None) -> None:
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)

    for action in ENDPOINTS:
        post = schema["paths"][f"/api/v1/clusters/{{id}}/{action}/"]["post"]
        assert {"202", "400", "403", "404", "409"} <= set(post["responses"]), action
        assert post["summary"]
    assert "200" in schema["paths"]["/api/v1/clusters/{id}/anomalies/"]["get"]["responses"]
