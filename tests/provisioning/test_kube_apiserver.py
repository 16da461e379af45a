"""The tests' Kubernetes control plane (tests/support/kube_apiserver.py) does what the backend's tests
rely on: server-side apply with field managers, a StatefulSet's pod scheduled into the zone its node
affinity requires and made Ready (by kwok: no container runs), its volume claim bound in that zone, and
garbage collection of owned objects. Real kube-apiserver, controller-manager and scheduler; see the
fixture's docstring for what kwok fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from tests.support.kube_apiserver import STORAGE_CLASS, ZONE_LABEL, KubeCluster

pytestmark = pytest.mark.slow

MANAGER = "kafka-control-plane"


def _statefulset(name: str, zone: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": ZONE_LABEL, "operator": "In", "values": [zone]}
                                        ]
                                    }
                                ]
                            }
                        },
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": labels},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        },
                    },
                    "containers": [
                        {
                            "name": "kafka",
                            "image": "kafka-control-plane/kafka:4.4.0",
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/kafka/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }


def _eventually(predicate: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout} s")


def _gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except NotFoundError:
        return True
    return False


def _ready(pod: k8s.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def test_applied_statefulset_runs_in_its_zone_and_is_collected(kube_cluster: KubeCluster) -> None:
    namespace = kube_cluster.new_namespace("smoke")
    zone = kube_cluster.zones[1]
    with kube_cluster.api_client() as api:
        core = k8s.CoreV1Api(api)
        statefulsets = DynamicClient(api).resources.get(api_version="apps/v1", kind="StatefulSet")
        manifest = _statefulset("kafka-b", zone, replicas=2)

        applied = statefulsets.server_side_apply(body=manifest, namespace=namespace, field_manager=MANAGER)
        # Defaulted by the real API server, owned by our field manager.
        assert applied.spec.podManagementPolicy == "OrderedReady"
        assert [m.manager for m in applied.metadata.managedFields] == [MANAGER]
        again = statefulsets.server_side_apply(body=manifest, namespace=namespace, field_manager=MANAGER)
        # Applying twice changes nothing: the spec's generation stays (the resource version may not: the
        # StatefulSet controller writes the status meanwhile).
        assert applied.metadata.generation == again.metadata.generation == 1

        # Someone else setting a field we own is a conflict, not a silent overwrite.
        theirs = {**manifest, "spec": {**manifest["spec"], "replicas": 3}}
        with pytest.raises(ConflictError) as conflict:
            statefulsets.server_side_apply(body=theirs, namespace=namespace, field_manager="kubectl")
        assert "spec.replicas" in str(conflict.value.body)

        def pods_ready() -> list[k8s.V1Pod] | None:
            pods = core.list_namespaced_pod(namespace).items
            return pods if len(pods) == 2 and all(_ready(p) for p in pods) else None

        pods = _eventually(pods_ready, 120, "both pods Ready")
        assert sorted(p.metadata.name for p in pods) == ["kafka-b-0", "kafka-b-1"]
        # Scheduled into the required zone, one per host (anti-affinity), by the real scheduler.
        hosts = {p.spec.node_name for p in pods}
        assert len(hosts) == 2 and all(kube_cluster.nodes[h] == zone for h in hosts)
        claims = core.list_namespaced_persistent_volume_claim(namespace).items
        assert {c.status.phase for c in claims} == {"Bound"}
        assert {c.spec.storage_class_name for c in claims} == {STORAGE_CLASS}
        volumes = {v.metadata.name: v for v in core.list_persistent_volume().items}
        assert {volumes[c.spec.volume_name].metadata.labels[ZONE_LABEL] for c in claims} == {zone}

        # Deleting the owner: the garbage collector removes the pods it owned.
        owner_uid = applied.metadata.uid
        assert all(p.metadata.owner_references[0].uid == owner_uid for p in pods)
        statefulsets.delete(name="kafka-b", namespace=namespace, body={"propagationPolicy": "Foreground"})
        _eventually(lambda: not core.list_namespaced_pod(namespace).items, 120, "pods collected")
        _eventually(
            lambda: _gone(lambda: statefulsets.get(name="kafka-b", namespace=namespace)), 60, "deleted"
        )

        # Deleting the namespace removes what is left (the claims, then their volumes).
        core.delete_namespace(namespace)
        _eventually(
            lambda: namespace not in {n.metadata.name for n in core.list_namespace().items},
            120,
            "namespace gone",
        )
        _eventually(
            lambda: (
                not [
                    v for v in core.list_persistent_volume().items if v.spec.claim_ref.namespace == namespace
                ]
            ),
            60,
            "volumes deleted",
        )
