"""Kubernetes targets and clusters through the REST API against a real API server
(tests/support/kube_apiserver.py: kube-apiserver, controller-manager and scheduler built from
Kubernetes' Go modules, kwok for kubelets).

Testing a target's connection: the API server's version, the namespace, and what the stored
credentials may do, read by the API server's own RBAC authorizer (SelfSubjectRulesReview and
SelfSubjectAccessReview); refusals (a wrong token: 401) and an unreachable server are answered in
plain words, never as a 500. And one cluster from request to deletion through a real Celery worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from controlplane.targets.models import Target
from provisioning.kubernetes import render
from provisioning.kubernetes.api import KubernetesApi
from provisioning.kubernetes.backend import OWNED_KINDS
from provisioning.kubernetes.target import KubernetesTarget
from tests.support.apache_kafka import wait_for
from tests.support.api_waits import wait_until_ended, wait_until_provisioned
from tests.support.kube_apiserver import KubeCluster
from tests.support.tenants import Tenant, token_client
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def kubeconfig_with(kube_cluster: KubeCluster, **user: Any) -> str:
    """The fixture's kubeconfig signing in as `user` (e.g. token=...)."""
    config = yaml.safe_load(kube_cluster.kubeconfig_path.read_text())
    config["users"] = [{"name": "someone", "user": user}]
    for context in config["contexts"]:
        context["context"]["user"] = "someone"
    return yaml.safe_dump(config)


def service_account_token(kube_cluster: KubeCluster, namespace: str, name: str, rules: list[Any]) -> str:
    """A token of a new service account bound to a Role with these rules in `namespace`."""
    with kube_cluster.api_client() as client:
        core, rbac = k8s.CoreV1Api(client), k8s.RbacAuthorizationV1Api(client)
        core.create_namespaced_service_account(
            namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name))
        )
        rbac.create_namespaced_role(namespace, k8s.V1Role(metadata=k8s.V1ObjectMeta(name=name), rules=rules))
        rbac.create_namespaced_role_binding(
            namespace,
            k8s.V1RoleBinding(
                metadata=k8s.V1ObjectMeta(name=name),
                role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
                subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)],
            ),
        )
        return core.create_namespaced_service_account_token(
            name, namespace, k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))
        ).status.token


def register(tenant: Tenant, name: str, kubeconfig: str, namespace: str) -> str:
    response = token_client(tenant.admin).post(
        "/api/v1/targets/",
        {"name": name, "kubeconfig": kubeconfig, "settings": {"namespace": namespace}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def connection_report(tenant: Tenant, target_id: str) -> dict[str, Any]:
    response = token_client(tenant.admin).post(f"/api/v1/targets/{target_id}/test-connection/")
    assert response.status_code == 200, response.content
    return response.json()


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_a_target_with_full_rights_passes_and_says_what_it_found(
    kube_cluster: KubeCluster, tenant: Tenant, other_tenant: Tenant
) -> None:
    namespace = kube_cluster.new_namespace("kafka")
    target_id = register(tenant, "lab", kube_cluster.kubeconfig_path.read_text(), namespace)

    report = connection_report(tenant, target_id)

    assert report["ok"] is True, report
    assert report["server_version"].startswith("v1.37"), report
    found = checks(report)
    assert found["api_server"]["ok"] and report["server_version"] in found["api_server"]["message"]
    assert found["namespace"] == {"name": "namespace", "ok": True, "message": f"namespace {namespace} exists"}
    assert found["permissions"]["ok"] and report["missing_permissions"] == {}
    assert report["summary"].startswith("Clusters can be placed on this target")

    # Another organization's target does not exist for it; a viewer may not use the credentials.
    assert (
        token_client(other_tenant.admin).post(f"/api/v1/targets/{target_id}/test-connection/").status_code
        == 404
    )
    assert (
        token_client(tenant.viewer).post(f"/api/v1/targets/{target_id}/test-connection/").status_code == 403
    )


def test_missing_namespace_and_permissions_are_named(kube_cluster: KubeCluster, tenant: Tenant) -> None:
    namespace = kube_cluster.new_namespace("kafka")
    # A role that may only read configuration and run StatefulSets: no Services, Secrets, and so on.
    token = service_account_token(
        kube_cluster,
        namespace,
        "half-rights",
        [
            k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"]),
            k8s.V1PolicyRule(api_groups=["apps"], resources=["statefulsets"], verbs=["*"]),
            k8s.V1PolicyRule(
                api_groups=[""], resources=["pods", "persistentvolumeclaims"], verbs=["get", "list", "delete"]
            ),
        ],
    )
    target_id = register(tenant, "half", kubeconfig_with(kube_cluster, token=token), namespace)

    report = connection_report(tenant, target_id)

    assert report["ok"] is False
    found = checks(report)
    assert found["api_server"]["ok"]
    # Reading namespaces is not granted (a Role cannot grant it), nor needed: not a failure.
    assert (
        found["namespace"]["ok"] and "cannot be read with these credentials" in found["namespace"]["message"]
    )
    missing = report["missing_permissions"]
    assert missing["ConfigMap"] == ["delete", "create", "patch"]
    assert missing["NetworkPolicy"] == ["get", "list", "delete", "create", "patch"]
    assert "StatefulSet" not in missing and "Pod" not in missing and "PersistentVolumeClaim" not in missing
    message = found["permissions"]["message"]
    assert "may not delete, create, patch configmaps" in message
    assert "networkpolicies.networking.k8s.io" in message and "Grant a Role" in message
    assert report["summary"] == message

    # The administrator's token on a namespace that is not there.
    gone = register(tenant, "nowhere", kube_cluster.kubeconfig_path.read_text(), "not-created-yet")
    report = connection_report(tenant, gone)
    assert report["ok"] is False
    assert checks(report)["namespace"]["message"].startswith("namespace not-created-yet does not exist")
    assert checks(report)["permissions"]["ok"]


def test_a_wrong_token_and_an_unreachable_server_are_plain_findings(
    kube_cluster: KubeCluster, tenant: Tenant
) -> None:
    target_id = register(tenant, "stale", kubeconfig_with(kube_cluster, token="not-a-valid-token"), "kafka")

    report = connection_report(tenant, target_id)

    assert report["ok"] is False and report["server_version"] == ""
    (check,) = report["checks"]
    assert check["name"] == "api_server" and not check["ok"]
    assert "did not accept its credentials" in check["message"] and "Unauthorized" in check["message"]
    assert "not-a-valid-token" not in str(report)

    config = yaml.safe_load(kube_cluster.kubeconfig_path.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    closed = register(tenant, "closed", yaml.safe_dump(config), "kafka")
    report = connection_report(tenant, closed)
    assert report["ok"] is False
    message = report["checks"][0]["message"]
    assert "(https://127.0.0.1:1) did not answer: Failed to establish a new connection" in message
    assert "Connection refused" in message and "Max retries" not in message  # urllib3's wrapping gone
    assert Target.objects.filter(organization=tenant.organization).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_kubernetes_cluster_from_request_to_deletion_through_a_worker(
    kube_cluster: KubeCluster, tenant: Tenant, start_worker: Callable[..., WorkerProcess]
) -> None:
    """Through the REST API and a real Celery worker on Redis: a cluster with client authentication
    placed on a registered target is applied to the real API server (each broker's certificate in a
    Secret), the provision workflow waits until its pods are ready and ends `running`, a certificate
    rotation (a rolling restart) gives each broker a new certificate and replaces its pods one at a time,
    and deleting it leaves no object, claim or volume behind.

    Kafka's side is tests/support/kube_kafka.py's stand-in, which says a broker is registered exactly
    while its pod is ready: kwok runs no Kafka in the pods. (A real Kafka cluster on loopback would
    answer the workflow whatever the pods did, which proves less.) Not proven here, therefore: that the
    brokers in these pods form a Kafka cluster, and that the control plane reaches them through the
    bootstrap Service."""
    start_worker(purge=True, KAFKA_ADMIN_FACTORY="tests.support.kube_kafka.pods_as_kafka")
    namespace = kube_cluster.new_namespace("kafka")
    register(tenant, "lab", kube_cluster.kubeconfig_path.read_text(), namespace)
    client = token_client(tenant.admin)

    created = client.post(
        "/api/v1/clusters/",
        {
            "name": "orders",
            "backend": "kubernetes",
            "target": "lab",
            "brokers": 3,
            "racks": list(kube_cluster.zones),
            "client_authentication": ["scram", "mtls"],
        },
        format="json",
    )
    assert created.status_code == 202, created.content
    cluster_url = f"/api/v1/clusters/{created.json()['id']}/"
    operation_url = f"/api/v1/operations/{created.json()['operation']['id']}/"
    cluster = wait_until_provisioned(client, cluster_url, timeout=180)
    operation = client.get(operation_url).json()
    assert cluster["status"] == "running", operation
    assert operation["state"] == "succeeded"
    messages = [line["message"] for line in operation["log"]]
    assert any(m.startswith("applied StatefulSet") for m in messages)  # the backend's own lines
    assert any(m.startswith("all 3 broker(s) registered") for m in messages)
    assert {b["state"] for b in cluster["broker_nodes"]} == {"running"}
    assert all(b["endpoint"].endswith(f".{namespace}.svc:9092") for b in cluster["broker_nodes"])
    assert cluster["bootstrap_servers"].endswith(f".{namespace}.svc:9092")
    listeners = {item["authentication"]: item for item in cluster["client_config"]["listeners"]}
    assert listeners["mtls"]["bootstrap_servers"].endswith(f".{namespace}.svc:9095")

    target = KubernetesTarget(
        name="lab", namespace=namespace, kubeconfig=kube_cluster.kubeconfig_path.read_text()
    )
    api = KubernetesApi(target)
    pods = api.list("Pod", f"{render.LABEL_CLUSTER}={cluster['id']}")
    zones = {kube_cluster.nodes[p["spec"]["nodeName"]] for p in pods}
    assert len(pods) == 3 and zones == set(kube_cluster.zones)  # one broker per zone

    # A certificate rotation through the API, a rolling restart: each broker's Secret gets a new
    # certificate and each pod is replaced once, one at a time, the controller last.
    def certificates() -> dict[str, str]:
        return {
            s["metadata"]["name"]: s["data"]["broker.crt"]
            for s in api.list("Secret", f"{render.LABEL_CLUSTER}={cluster['id']}")
            if "broker.crt" in s.get("data", {})
        }

    issued = certificates()
    assert len(issued) == 3
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
    restarted = client.post(f"{cluster_url}rotate-certificates/", {}, format="json")
    assert restarted.status_code == 202, restarted.content
    restart_url = f"/api/v1/operations/{restarted.json()['operation']['id']}/"
    restart = wait_until_ended(client, restart_url, timeout=180, what="the certificate rotation")
    assert restart["state"] == "succeeded", restart
    rotated = certificates()
    assert rotated.keys() == issued.keys() and not set(rotated.values()) & set(issued.values())
    after = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in api.list("Pod", f"{render.LABEL_CLUSTER}={cluster['id']}")
    }
    assert after.keys() == before.keys() and not set(after.values()) & set(before.values())
    rolled = [line["message"] for line in restart["log"] if line["message"].startswith("restarting broker")]
    assert [m.split()[2] for m in rolled] == ["1", "2", "0"], rolled  # the stand-in's controller, 0, last
    deletions = [
        line["message"]
        for line in restart["log"]
        if "deleted; its StatefulSet starts it again" in line["message"]
    ]
    assert len(deletions) == 3, deletions  # the backend's own lines

    deleted = client.delete(cluster_url)
    assert deleted.status_code == 202, deleted.content
    wait_for(lambda: client.get(cluster_url).status_code == 404, 120, interval=1, what="deletion")
    assert [k for k in OWNED_KINDS if api.list(k, f"{render.LABEL_CLUSTER}={cluster['id']}")] == []

    def volumes_left() -> list[str]:
        with kube_cluster.api_client() as admin:
            volumes = k8s.CoreV1Api(admin).list_persistent_volume().items
        return [
            v.metadata.name for v in volumes if v.spec.claim_ref and v.spec.claim_ref.namespace == namespace
        ]

    # A released volume is deleted by its provisioner a moment after its claim, as in a cloud.
    wait_for(lambda: not volumes_left(), 30, interval=0.5, what="the volumes to go")
