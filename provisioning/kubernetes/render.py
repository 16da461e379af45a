"""Every Kubernetes object a cluster needs, rendered from its spec, its target and its quorum layout.

Pure: no API calls, so a plan (dry run) needs no reachable target. Each broker (and each dedicated
controller) is a StatefulSet of one pod with its own ConfigMap; docs/kubernetes.md explains why this
shape rather than one StatefulSet per rack. Every object carries the cluster's labels, so the backend
finds (and deletes) all of them by one selector, and, once the layout ConfigMap exists, an owner
reference to it, so Kubernetes' garbage collector removes whatever a crashed delete left behind.

Broker configuration comes from `provisioning.kafka_config`, as for `local` and VMs: one source of
truth for listeners, quorum, racks and replication defaults.

A secured cluster (client authentication) gets each node's key and certificate chain in a Secret of
its own, mounted at `TLS_DIR`, which server.properties names (`kafka_config.BrokerTlsFiles`), and the
control plane's SCRAM credential for the storage format in a Secret the pods read into the
environment. The certificates are issued by the backend (`NodeTls`); rendered without them (a plan),
every Secret's values are placeholders, so no plan shows a key or a password.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from provisioning import kafka_config, security
from provisioning.backends.base import ClusterSpec, NodeSize
from provisioning.kubernetes.layout import CONTROLLER_SIZE, QuorumLayout
from provisioning.kubernetes.target import KubernetesTarget, VolumeRetention

CLIENT_PORT = kafka_config.FIXED_CLIENT_PORT
CONTROLLER_PORT = 9093
LISTENER_PORTS = kafka_config.FIXED_LISTENER_PORTS  # a secured cluster's INTERNAL and MTLS listeners
TLS_DIR = "/etc/kafka/tls"  # a secured node's Secret: key, certificate chain, the cluster's CA
ANNOTATION_CERTIFICATE = "kafka-control-plane.io/certificate"  # identity, then the end (epoch seconds)
PLANNED_SECRET = "(issued by the control plane when applied; never shown)"
METRICS_PORT = 9404  # the Prometheus JMX exporter agent of the broker image
DATA_DIR = "/var/lib/kafka/data"
CONFIG_DIR = "/etc/kafka/config"  # the broker image's KAFKA_CONFIG_DIR (broker_image/README.md)
RUNTIME_DIR = "/tmp/kafka"  # where the image writes the final configuration and Kafka's own logs
KAFKA_UID = 1001  # the broker image's user and group
CONFIG_FILE = "server.properties"
# A broker's controlled shutdown hands its partition leaderships over before it exits; killing it
# earlier makes the next start recover its logs and leaves clients without leaders meanwhile.
TERMINATION_GRACE_SECONDS = 300
# Log recovery after an unclean stop can take many minutes on a large disk; liveness must not kill a
# broker that is still recovering, so a startup probe holds it off until the port answers.
STARTUP_PROBE_SECONDS = 30 * 60
PDB_MAX_UNAVAILABLE = 1

MANAGED_BY = "kafka-control-plane"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_CLUSTER = "kafka-control-plane.io/cluster"
LABEL_NODE = "kafka-control-plane.io/node-id"
LABEL_RACK = "kafka-control-plane.io/rack"
ANNOTATION_LAYOUT = "kafka-control-plane.io/layout"

BROKER = "broker"
CONTROLLER = "controller"


def base_name(spec: ClusterSpec) -> str:
    """The prefix of every object's name: readable, unique per cluster (two organizations may both
    have an `orders` cluster in one namespace), short enough that a StatefulSet's pods and their
    controller-revision-hash labels stay within Kubernetes' 63 characters."""
    return f"{spec.name[:32].rstrip('-')}-{uuid.UUID(spec.cluster_id).hex[:8]}"


def cluster_selector(spec: ClusterSpec) -> str:
    """The label selector of every object the cluster owns."""
    return f"{LABEL_CLUSTER}={spec.cluster_id}"


def node_name(spec: ClusterSpec, node_id: int, role: str = BROKER) -> str:
    return f"{base_name(spec)}-{'b' if role == BROKER else 'c'}{node_id}"


def pod_name(spec: ClusterSpec, node_id: int, role: str = BROKER) -> str:
    return f"{node_name(spec, node_id, role)}-0"


def headless_service(spec: ClusterSpec) -> str:
    return f"{base_name(spec)}-nodes"


def bootstrap_service(spec: ClusterSpec) -> str:
    return f"{base_name(spec)}-bootstrap"


def layout_configmap(spec: ClusterSpec) -> str:
    return f"{base_name(spec)}-layout"


def node_host(spec: ClusterSpec, target: KubernetesTarget, node_id: int, role: str = BROKER) -> str:
    """The node's stable DNS name (the StatefulSet's pod under the headless Service)."""
    return f"{pod_name(spec, node_id, role)}.{headless_service(spec)}.{target.namespace}.svc"


def bootstrap_host(spec: ClusterSpec, target: KubernetesTarget) -> str:
    return f"{bootstrap_service(spec)}.{target.namespace}.svc"


def bootstrap_servers(spec: ClusterSpec, target: KubernetesTarget, port: int = CLIENT_PORT) -> str:
    return f"{bootstrap_host(spec, target)}:{port}"


def tls_secret(spec: ClusterSpec, node_id: int, role: str = BROKER) -> str:
    return f"{node_name(spec, node_id, role)}-tls"


def admin_secret(spec: ClusterSpec) -> str:
    return f"{base_name(spec)}-admin"


def certificate_hosts(
    spec: ClusterSpec, target: KubernetesTarget, node_id: int, role: str = BROKER
) -> list[str]:
    """The names a node's certificate serves: its own, and the bootstrap Service's, where clients'
    first connection lands on any broker."""
    own = node_host(spec, target, node_id, role)
    return [own] if role == CONTROLLER else [own, bootstrap_host(spec, target)]


def client_endpoints(spec: ClusterSpec, target: KubernetesTarget) -> tuple[tuple[str, str], ...]:
    """Bootstrap servers per client authentication: the first listener on the client port."""
    return tuple(
        (kafka_config.LISTENER_AUTHENTICATION[listener], bootstrap_servers(spec, target, port))
        for listener, port in kafka_config.fixed_client_ports(spec)
    )


@dataclass(frozen=True)
class NodeTls:
    """A node's certificate as its Secret holds it (`identity`: `security.broker_certificate_identity`
    when it was issued)."""

    identity: str
    certificate: security.BrokerCertificate = field(repr=False)


def labels(spec: ClusterSpec, component: str | None = None, **extra: str) -> dict[str, str]:
    out = {
        LABEL_NAME: "kafka",
        LABEL_INSTANCE: base_name(spec),
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CLUSTER: spec.cluster_id,
    }
    if component is not None:
        out[LABEL_COMPONENT] = component
    out.update(extra)
    return out


def _metadata(
    spec: ClusterSpec,
    target: KubernetesTarget,
    name: str,
    owner: Mapping[str, str] | None,
    component: str | None = None,
    **extra_labels: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": target.namespace,
        "labels": labels(spec, component, **extra_labels),
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["name"], "uid": owner["uid"]}
        ]
    return meta


def _addresses(
    spec: ClusterSpec, target: KubernetesTarget, layout: QuorumLayout
) -> dict[int, kafka_config.NodeAddress]:
    ports = {name: LISTENER_PORTS[name] for name in kafka_config.extra_listeners(spec)}
    addresses = {
        b.node_id: kafka_config.NodeAddress(
            b.node_id,
            node_host(spec, target, b.node_id),
            CLIENT_PORT,
            CONTROLLER_PORT if b.node_id in layout.controllers else None,
            listener_ports=ports,
        )
        for b in spec.brokers
    }
    if layout.dedicated:
        for node_id in layout.controllers:
            host = node_host(spec, target, node_id, CONTROLLER)
            addresses[node_id] = kafka_config.NodeAddress(node_id, host, CLIENT_PORT, CONTROLLER_PORT)
    return addresses


def _node_config(
    spec: ClusterSpec, target: KubernetesTarget, layout: QuorumLayout, node_id: int, role: str
) -> str:
    where: dict[str, Any] = {
        "addresses": _addresses(spec, target, layout),
        "controllers": layout.controllers,
        "quorum": layout.quorum,
        "log_dir": DATA_DIR,
        "tls": kafka_config.BrokerTlsFiles(TLS_DIR) if spec.security is not None else None,
    }
    if role == CONTROLLER:
        return kafka_config.render_controller_properties(spec, node_id, **where)
    # The client listener binds every interface of the pod; the advertised name is the pod's DNS name.
    return kafka_config.render_server_properties(spec, node_id, bind_host="0.0.0.0", **where)


def _initial_controllers(
    spec: ClusterSpec, target: KubernetesTarget, layout: QuorumLayout, node_id: int
) -> str | None:
    """The `--initial-controllers` value a node is formatted with, if any (the image's entrypoint
    formats the storage only when it is unformatted)."""
    args = kafka_config.storage_format_args(
        spec,
        node_id,
        config_path=f"{CONFIG_DIR}/{CONFIG_FILE}",
        addresses=_addresses(spec, target, layout),
        controllers=layout.controllers,
        quorum=layout.quorum,
    )
    if "--initial-controllers" in args:
        return args[args.index("--initial-controllers") + 1]
    return None


def _quantity_cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _probe(port: int, *, period: int, failures: int) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "periodSeconds": period, "failureThreshold": failures}


@dataclass(frozen=True)
class _Node:
    node_id: int
    role: str  # BROKER (possibly also a controller) or CONTROLLER (dedicated)
    rack: str
    size: NodeSize


def _container(
    spec: ClusterSpec, target: KubernetesTarget, layout: QuorumLayout, node: _Node
) -> dict[str, Any]:
    node_id, role, rack, size = node.node_id, node.role, node.rack, node.size
    is_controller = node_id in layout.controllers
    probe_port = CLIENT_PORT if role == BROKER else CONTROLLER_PORT
    ports = []
    if role == BROKER:
        ports.append({"name": "clients", "containerPort": CLIENT_PORT})
        ports += [
            {"name": listener.lower(), "containerPort": LISTENER_PORTS[listener]}
            for listener in kafka_config.extra_listeners(spec)
        ]
    if is_controller:
        ports.append({"name": "controller", "containerPort": CONTROLLER_PORT})
    ports.append({"name": "metrics", "containerPort": METRICS_PORT})
    heap = kafka_config.heap_mb(size)
    env = [
        {"name": "KAFKA_NODE_ID", "value": str(node_id)},
        {"name": "KAFKA_RACK", "value": rack},
        {"name": "KAFKA_PROCESS_ROLES", "value": "controller" if role == CONTROLLER else "broker"},
        {
            "name": "KAFKA_CLUSTER_ID",
            "valueFrom": {"secretKeyRef": {"name": f"{base_name(spec)}-cluster-id", "key": "cluster.id"}},
        },
        {"name": "KAFKA_CONFIG_DIR", "value": CONFIG_DIR},
        {"name": "KAFKA_RUNTIME_DIR", "value": RUNTIME_DIR},
        {"name": "KAFKA_HEAP_OPTS", "value": f"-Xms{heap}m -Xmx{heap}m"},
    ]
    if (voters := _initial_controllers(spec, target, layout, node_id)) is not None:
        env.append({"name": "KAFKA_INITIAL_CONTROLLERS", "value": voters})
    mounts = [
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "runtime", "mountPath": RUNTIME_DIR},
    ]
    if spec.security is not None:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        if security.SCRAM in spec.security.authentication:
            # The control plane's credential, formatted into a new cluster's first metadata.
            env.append(
                {
                    "name": "KAFKA_ADD_SCRAM",
                    "valueFrom": {"secretKeyRef": {"name": admin_secret(spec), "key": "add-scram"}},
                }
            )
    return {
        "name": "kafka",
        "image": target.image_for(spec.kafka_version),
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": ports,
        "resources": {
            # No CPU limit: CFS throttling stalls request handling and replication for whole periods.
            "requests": {"cpu": _quantity_cpu(size.cpu), "memory": f"{size.memory_mb}Mi"},
            "limits": {"memory": f"{size.memory_mb}Mi"},
        },
        "volumeMounts": mounts,
        "startupProbe": _probe(probe_port, period=10, failures=STARTUP_PROBE_SECONDS // 10),
        "readinessProbe": _probe(probe_port, period=10, failures=3),
        "livenessProbe": _probe(probe_port, period=20, failures=6),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _affinity(spec: ClusterSpec, target: KubernetesTarget, rack: str) -> dict[str, Any]:
    return {
        # The rack is a zone: a broker may only run on a node of that zone, so broker.rack is true.
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": target.topology_key, "operator": "In", "values": [rack]}]}
                ]
            }
        },
        # Preferred, not required: two brokers of one rack on one host never share a partition
        # (replicas are in distinct racks), so packing them is a capacity risk, not a durability one,
        # and a zone with fewer hosts than brokers still schedules.
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {LABEL_CLUSTER: spec.cluster_id}},
                    },
                }
            ]
        },
    }


def _secret(meta: dict[str, Any], values: Mapping[str, str] | None, keys: Iterable[str]) -> dict[str, Any]:
    """A Secret of `values`; without them (a plan) of placeholders, in plain text."""
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
    if values is None:
        secret["stringData"] = dict.fromkeys(keys, PLANNED_SECRET)
    else:
        secret["data"] = {key: _b64(value) for key, value in values.items()}
    return secret


def _tls_secret(
    spec: ClusterSpec,
    target: KubernetesTarget,
    node: _Node,
    owner: Mapping[str, str] | None,
    issued: NodeTls | None,
) -> dict[str, Any]:
    assert spec.security is not None
    meta = _metadata(
        spec,
        target,
        tls_secret(spec, node.node_id, node.role),
        owner,
        node.role,
        **{LABEL_NODE: str(node.node_id), LABEL_RACK: node.rack},
    )
    values = None
    if issued is not None:
        meta["annotations"] = {ANNOTATION_CERTIFICATE: f"{issued.identity}\n{issued.certificate.not_after}"}
        values = {
            kafka_config.TLS_KEY_FILE: issued.certificate.private_key_pem,
            kafka_config.TLS_CHAIN_FILE: issued.certificate.chain_pem,
            kafka_config.TLS_CA_FILE: spec.security.ca_certificate_pem,
        }
    keys = (kafka_config.TLS_KEY_FILE, kafka_config.TLS_CHAIN_FILE, kafka_config.TLS_CA_FILE)
    return _secret(meta, values, keys)


def _node_objects(
    spec: ClusterSpec,
    target: KubernetesTarget,
    layout: QuorumLayout,
    node: _Node,
    owner: Mapping[str, str] | None,
    tls: Mapping[tuple[str, int], NodeTls] | None = None,
) -> list[dict[str, Any]]:
    """The node's ConfigMap, StatefulSet, and on a secured cluster first its certificate's Secret
    (`tls`: by role and node id, as the backend issued them; None in a plan)."""
    node_id, role, rack, size = node.node_id, node.role, node.rack, node.size
    name = node_name(spec, node_id, role)
    node_labels = {LABEL_NODE: str(node_id), LABEL_RACK: rack}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, target, name, owner, role, **node_labels),
        "data": {CONFIG_FILE: _node_config(spec, target, layout, node_id, role)},
    }
    pod_labels = labels(spec, role, **node_labels)
    retention = "Retain" if target.volume_retention is VolumeRetention.RETAIN else "Delete"
    claim: dict[str, Any] = {
        "metadata": {"name": "data", "labels": labels(spec, role, **node_labels)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{size.disk_gb}Gi"}},
        },
    }
    if target.storage_class:
        claim["spec"]["storageClassName"] = target.storage_class
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(spec, target, name, owner, role, **node_labels),
        "spec": {
            "serviceName": headless_service(spec),
            "replicas": 1,
            "selector": {"matchLabels": {LABEL_CLUSTER: spec.cluster_id, LABEL_NODE: str(node_id)}},
            # The control plane rolls pods itself, one at a time under its safety rules: a changed
            # template takes effect when it deletes the pod, never all brokers at once.
            "updateStrategy": {"type": "OnDelete"},
            # Scaling this StatefulSet to zero is how a broker is replaced without its disk.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention, "whenScaled": "Delete"},
            "volumeClaimTemplates": [claim],
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": base_name(spec),
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": KAFKA_UID,
                        "runAsGroup": KAFKA_UID,
                        "fsGroup": KAFKA_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "affinity": _affinity(spec, target, rack),
                    "containers": [_container(spec, target, layout, node)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": name}},
                        {"name": "runtime", "emptyDir": {}},
                        # Owned by root with the pod's fsGroup (Kafka's group): readable by Kafka alone.
                        *(
                            [
                                {
                                    "name": "tls",
                                    "secret": {
                                        "secretName": tls_secret(spec, node_id, role),
                                        "defaultMode": 0o440,
                                    },
                                }
                            ]
                            if spec.security is not None
                            else []
                        ),
                    ],
                },
            },
        },
    }
    if spec.security is None:
        return [config_map, statefulset]
    issued = None if tls is None else tls[(role, node_id)]
    return [_tls_secret(spec, target, node, owner, issued), config_map, statefulset]


def render_layout_configmap(
    spec: ClusterSpec, target: KubernetesTarget, layout: QuorumLayout
) -> dict[str, Any]:
    """The cluster's record: its quorum layout, read back on every later render, and the owner of
    every other object."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, target, layout_configmap(spec), None, "layout"),
        "data": {"layout.json": layout.to_json(), "kafka-version": spec.kafka_version},
    }


def render(
    spec: ClusterSpec,
    target: KubernetesTarget,
    layout: QuorumLayout,
    *,
    owner_uid: str | None = None,
    tls: Mapping[tuple[str, int], NodeTls] | None = None,
) -> list[dict[str, Any]]:
    """Every object of the cluster, in the order they are applied (the layout ConfigMap first). A
    secured cluster's Secrets hold `tls` and its admin credential; placeholders when `tls` is None."""
    owner = {"name": layout_configmap(spec), "uid": owner_uid} if owner_uid else None
    base = base_name(spec)
    selector = {LABEL_CLUSTER: spec.cluster_id}
    objects: list[dict[str, Any]] = [render_layout_configmap(spec, target, layout)]
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _metadata(spec, target, f"{base}-cluster-id", owner),
            "type": "Opaque",
            "data": {"cluster.id": _b64(kafka_config.kraft_cluster_id(spec.cluster_id))},
        }
    )
    if format_args := kafka_config.admin_credential_format_args(spec):
        objects.append(
            _secret(
                _metadata(spec, target, admin_secret(spec), owner),
                None if tls is None else {"add-scram": format_args[1]},
                ["add-scram"],
            )
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(spec, target, base, owner),
            # Brokers never call the Kubernetes API: their rack comes from the spec.
            "automountServiceAccountToken": False,
        }
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(spec, target, headless_service(spec), owner),
            "spec": {
                "clusterIP": "None",
                # The quorum must find its members before any of them is ready.
                "publishNotReadyAddresses": True,
                "selector": selector,
                "ports": [
                    {"name": "clients", "port": CLIENT_PORT, "targetPort": CLIENT_PORT},
                    {"name": "controller", "port": CONTROLLER_PORT, "targetPort": CONTROLLER_PORT},
                    *(
                        {
                            "name": name.lower(),
                            "port": LISTENER_PORTS[name],
                            "targetPort": LISTENER_PORTS[name],
                        }
                        for name in kafka_config.extra_listeners(spec)
                    ),
                ],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(spec, target, bootstrap_service(spec), owner),
            "spec": {
                "type": "ClusterIP",
                "selector": {**selector, LABEL_COMPONENT: BROKER},
                "ports": [
                    {"name": "clients", "port": CLIENT_PORT, "targetPort": CLIENT_PORT},
                    *(
                        {
                            "name": name.lower(),
                            "port": LISTENER_PORTS[name],
                            "targetPort": LISTENER_PORTS[name],
                        }
                        for name in kafka_config.client_listeners(spec)[1:]
                    ),
                ],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(spec, target, base, owner),
            "spec": {"maxUnavailable": PDB_MAX_UNAVAILABLE, "selector": {"matchLabels": selector}},
        }
    )
    objects.append(_network_policy(spec, target, owner))
    if layout.dedicated:
        for node_id, rack in layout.controller_racks:
            objects += _node_objects(
                spec, target, layout, _Node(node_id, CONTROLLER, rack, CONTROLLER_SIZE), owner, tls
            )
    for broker in sorted(spec.brokers, key=lambda b: b.node_id):
        objects += _node_objects(
            spec, target, layout, _Node(broker.node_id, BROKER, broker.rack, spec.node_size), owner, tls
        )
    return objects


def render_broker(
    spec: ClusterSpec,
    target: KubernetesTarget,
    layout: QuorumLayout,
    node_id: int,
    *,
    owner_uid: str | None,
    tls: Mapping[tuple[str, int], NodeTls] | None = None,
) -> list[dict[str, Any]]:
    """The ConfigMap and StatefulSet of one node (a broker or a dedicated controller), after its
    certificate's Secret on a secured cluster."""
    owner = {"name": layout_configmap(spec), "uid": owner_uid} if owner_uid else None
    return _node_objects(spec, target, layout, node_of(spec, layout, node_id), owner, tls)


def node_of(spec: ClusterSpec, layout: QuorumLayout, node_id: int) -> _Node:
    if node_id in dict(layout.controller_racks):
        return _Node(node_id, CONTROLLER, layout.rack_of_controller(node_id), CONTROLLER_SIZE)
    broker = next(b for b in spec.brokers if b.node_id == node_id)
    return _Node(node_id, BROKER, broker.rack, spec.node_size)


def nodes(spec: ClusterSpec, layout: QuorumLayout) -> list[_Node]:
    """Every node of the cluster: dedicated controllers, then brokers."""
    return [node_of(spec, layout, n) for n, _ in layout.controller_racks if layout.dedicated] + [
        node_of(spec, layout, b.node_id) for b in sorted(spec.brokers, key=lambda b: b.node_id)
    ]


def _network_policy(
    spec: ClusterSpec, target: KubernetesTarget, owner: Mapping[str, str] | None
) -> dict[str, Any]:
    own_pods = {"podSelector": {"matchLabels": {LABEL_CLUSTER: spec.cluster_id}}}
    in_cluster = {"namespaceSelector": {}}
    outside = [{"ipBlock": {"cidr": cidr}} for cidr in target.allowed_cidrs]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, target, base_name(spec), owner),
        "spec": {
            "podSelector": {"matchLabels": {LABEL_CLUSTER: spec.cluster_id}},
            "policyTypes": ["Ingress"],
            "ingress": [
                # The quorum and replication: only the cluster's own pods reach the controller port.
                {
                    "from": [own_pods],
                    "ports": [
                        {"port": CLIENT_PORT},
                        {"port": CONTROLLER_PORT},
                        *({"port": LISTENER_PORTS[name]} for name in kafka_config.extra_listeners(spec)[:1]),
                    ],
                },
                # Clients: any pod of the Kubernetes cluster, plus the control plane's and other
                # clients' networks outside it.
                {
                    "from": [in_cluster, *outside],
                    "ports": [
                        {"port": CLIENT_PORT},
                        *({"port": LISTENER_PORTS[name]} for name in kafka_config.client_listeners(spec)[1:]),
                    ],
                },
                # Prometheus, wherever it runs in the Kubernetes cluster.
                {"from": [in_cluster], "ports": [{"port": METRICS_PORT}]},
            ],
        },
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (server.properties) as literal blocks, readable in a plan."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """One YAML stream, a document per object, as `kubectl apply -f` takes it."""
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)")


def spec_errors(spec: ClusterSpec) -> dict[str, str]:
    """What stops a spec from becoming Kubernetes objects, as spec field -> message."""
    errors = kafka_config.validate_spec(spec)
    if bad := sorted({b.rack for b in spec.brokers if not _LABEL_VALUE.fullmatch(b.rack)}):
        errors["racks"] = (
            f"racks {', '.join(map(repr, bad))} cannot be zones: a rack is the value of the target's "
            "topology label, at most 63 letters, digits, '-', '_' or '.', starting and ending with a "
            "letter or digit"
        )
    if not spec.brokers:
        errors["brokers"] = "a cluster needs at least one broker"
    return errors
