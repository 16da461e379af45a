"""Kubernetes objects rendered for a cluster: valid for every supported Kubernetes release (the official
schemas, through kubernetes-validate, strict: an unknown field fails), labelled and owned, rack-aware."""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from provisioning import kafka_config, security
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize, SecuritySpec
from provisioning.kubernetes import SUPPORTED_KUBERNETES_VERSIONS
from provisioning.kubernetes import render as k8s
from provisioning.kubernetes.layout import (
    CONTROLLER_ID_BASE,
    DEDICATED_CONTROLLERS_FROM,
    QuorumLayout,
    layout_for_new_cluster,
)
from provisioning.kubernetes.target import KubernetesTarget, VolumeRetention, target_errors
from provisioning.placement import place_brokers

CLUSTER_ID = "5b0e5f52-8f0c-4a57-9d43-0c7f3e9a1b22"
TARGET = KubernetesTarget(
    name="prod-eu",
    namespace="kafka-prod",
    storage_class="fast-ssd",
    image="registry.example.com/kafka:{version}",
    allowed_cidrs=("10.20.0.0/16",),
)


def make_spec(
    brokers: int, racks: tuple[str, ...] = ("eu-west-1a", "eu-west-1b", "eu-west-1c"), **kw: Any
) -> ClusterSpec:
    layout = place_brokers(list(racks), brokers)
    return ClusterSpec(
        cluster_id=kw.pop("cluster_id", CLUSTER_ID),
        name=kw.pop("name", "orders"),
        kafka_version=kw.pop("kafka_version", "4.4.0"),
        brokers=tuple(BrokerSpec(node_id=n, rack=r) for n, r in sorted(layout.items())),
        replication_factor=min(3, len(racks)),
        min_insync_replicas=min(2, len(racks)),
        node_size=NodeSize(cpu=2, memory_mb=8192, disk_gb=250),
        **kw,
    )


def rendered(spec: ClusterSpec, target: KubernetesTarget = TARGET, **kw: Any) -> list[dict[str, Any]]:
    return k8s.render(spec, target, layout_for_new_cluster(spec), **kw)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def _one_of_each_shape() -> list[dict[str, Any]]:
    """One object of every kind and role, from a single-node cluster on a default-like target and a
    large cluster (dedicated controllers, storage class, allowed networks, owner references)."""
    small = rendered(make_spec(1), KubernetesTarget(name="dev", volume_retention=VolumeRetention.RETAIN))
    large = rendered(make_spec(DEDICATED_CONTROLLERS_FROM), owner_uid=str(uuid.uuid4()))
    shapes: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for obj in small + large:
        key = (
            obj["kind"],
            obj["metadata"]["labels"].get(k8s.LABEL_COMPONENT, ""),
            "ownerReferences" in obj["metadata"],
        )
        shapes.setdefault(key, obj)
    return list(shapes.values())


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_every_supported_kubernetes(version: str) -> None:
    # Strict: a field the release does not know fails, as it would under kubectl's field validation.
    objects = _one_of_each_shape()
    # Through the YAML stream users see, so what is validated is what they would apply.
    for obj in yaml.safe_load_all(k8s.to_yaml(objects)):
        kubernetes_validate.validate(obj, f"{version}.0", strict=True)


def test_an_invalid_object_is_caught_by_the_schemas() -> None:
    """The validation above can fail: a misspelt field is refused."""
    sts = by_kind(rendered(make_spec(1)), "StatefulSet")[0]
    sts["spec"]["updateStrategey"] = sts["spec"].pop("updateStrategy")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, f"{SUPPORTED_KUBERNETES_VERSIONS[-1]}.0", strict=True)


def test_every_object_is_labelled_owned_and_in_the_targets_namespace() -> None:
    spec = make_spec(3)
    owner = str(uuid.uuid4())
    objects = rendered(spec, owner_uid=owner)
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "kafka-prod"
        assert meta["labels"][k8s.LABEL_CLUSTER] == CLUSTER_ID
        assert meta["labels"][k8s.LABEL_MANAGED_BY] == "kafka-control-plane"
        assert len(meta["name"]) <= 52  # a StatefulSet's revision label adds 11 characters to 63
        if meta["name"] == k8s.layout_configmap(spec):
            assert "ownerReferences" not in meta  # the owner of everything else
        else:
            assert meta["ownerReferences"] == [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": k8s.layout_configmap(spec), "uid": owner}
            ]
    # Objects Kubernetes makes from templates (pods, volume claims) carry the labels too, so one
    # selector finds everything the cluster has.
    for sts in by_kind(objects, "StatefulSet"):
        assert sts["spec"]["template"]["metadata"]["labels"][k8s.LABEL_CLUSTER] == CLUSTER_ID
        assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"][k8s.LABEL_CLUSTER] == CLUSTER_ID
    # A plan (no owner known yet) has no owner references.
    assert all("ownerReferences" not in o["metadata"] for o in rendered(spec))


def test_racks_map_to_zones_and_broker_rack() -> None:
    spec = make_spec(6, racks=("eu-west-1a", "eu-west-1b"))
    objects = rendered(spec, KubernetesTarget(name="t", topology_key="example.com/rack"))
    configs = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    for broker in spec.brokers:
        sts = next(
            o
            for o in by_kind(objects, "StatefulSet")
            if o["metadata"]["name"] == k8s.node_name(spec, broker.node_id)
        )
        pod = sts["spec"]["template"]["spec"]
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert term["matchExpressions"] == [
            {"key": "example.com/rack", "operator": "In", "values": [broker.rack]}
        ]
        anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        config = properties(configs[k8s.node_name(spec, broker.node_id)]["data"]["server.properties"])
        assert config["broker.rack"] == broker.rack
        assert config["node.id"] == str(broker.node_id)
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["KAFKA_NODE_ID"] == str(broker.node_id)
        assert env["KAFKA_RACK"] == broker.rack


def test_a_small_cluster_has_combined_controllers_named_in_every_config() -> None:
    spec = make_spec(3)
    layout = layout_for_new_cluster(spec)
    assert not layout.dedicated
    assert layout.controllers == kafka_config.choose_controllers(spec.brokers)
    assert "combined" in layout.explanation()
    objects = k8s.render(spec, TARGET, layout)
    assert len(by_kind(objects, "StatefulSet")) == 3
    for cm in by_kind(objects, "ConfigMap"):
        if "server.properties" not in cm["data"]:
            continue
        config = properties(cm["data"]["server.properties"])
        hosts = config["controller.quorum.bootstrap.servers"].split(",")
        assert hosts == [
            f"{k8s.node_host(spec, TARGET, n)}:{k8s.CONTROLLER_PORT}" for n in layout.controllers
        ]
        assert config["listeners"].startswith("PLAINTEXT://0.0.0.0:9092")
        node_id = int(config["node.id"])
        assert config["advertised.listeners"] == f"PLAINTEXT://{k8s.node_host(spec, TARGET, node_id)}:9092"


def test_a_large_cluster_has_dedicated_controllers_one_per_rack() -> None:
    spec = make_spec(DEDICATED_CONTROLLERS_FROM)
    layout = layout_for_new_cluster(spec)
    assert layout.dedicated
    assert layout.controllers == (CONTROLLER_ID_BASE, CONTROLLER_ID_BASE + 1, CONTROLLER_ID_BASE + 2)
    assert sorted(rack for _, rack in layout.controller_racks) == spec.racks
    assert "dedicated" in layout.explanation()
    objects = k8s.render(spec, TARGET, layout)
    controllers = [
        o
        for o in by_kind(objects, "StatefulSet")
        if o["metadata"]["labels"][k8s.LABEL_COMPONENT] == "controller"
    ]
    assert len(controllers) == 3
    for sts in controllers:
        container = sts["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["KAFKA_PROCESS_ROLES"] == "controller"
        assert env["KAFKA_INITIAL_CONTROLLERS"].count("@") == 3  # formatted with the voter set
        assert [p["name"] for p in container["ports"]] == ["controller", "metrics"]
    for cm in by_kind(objects, "ConfigMap"):
        if "server.properties" in cm["data"]:
            config = properties(cm["data"]["server.properties"])
            expected = "controller" if int(config["node.id"]) >= CONTROLLER_ID_BASE else "broker"
            assert config["process.roles"] == expected
    # The bootstrap Service reaches brokers only: clients never talk to controllers.
    bootstrap = next(
        o for o in by_kind(objects, "Service") if o["metadata"]["name"] == k8s.bootstrap_service(spec)
    )
    assert bootstrap["spec"]["selector"][k8s.LABEL_COMPONENT] == "broker"
    # The layout is recorded and read back unchanged.
    record = next(o for o in objects if o["metadata"]["name"] == k8s.layout_configmap(spec))
    assert QuorumLayout.from_json(record["data"]["layout.json"]) == layout


def test_sizes_volumes_probes_and_scraping_follow_the_node_size_and_target() -> None:
    spec = make_spec(3)
    objects = rendered(spec)
    sts = by_kind(objects, "StatefulSet")[0]
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Delete",
    }
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "250Gi"
    assert claim["storageClassName"] == "fast-ssd"
    pod = sts["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(k8s.METRICS_PORT)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/kafka:4.4.0"
    assert container["resources"] == {
        "requests": {"cpu": "2000m", "memory": "8192Mi"},
        "limits": {"memory": "8192Mi"},
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KAFKA_HEAP_OPTS"] == "-Xms4096m -Xmx4096m"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"] == {"port": 9092}
    retained = rendered(spec, KubernetesTarget(name="t", volume_retention=VolumeRetention.RETAIN))
    assert (
        by_kind(retained, "StatefulSet")[0]["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"]
        == "Retain"
    )
    assert (
        "storageClassName"
        not in by_kind(retained, "StatefulSet")[0]["spec"]["volumeClaimTemplates"][0]["spec"]
    )


def test_cluster_wide_objects() -> None:
    spec = make_spec(3)
    objects = rendered(spec)
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    (secret,) = by_kind(objects, "Secret")
    import base64

    assert base64.b64decode(secret["data"]["cluster.id"]).decode() == kafka_config.kraft_cluster_id(
        CLUSTER_ID
    )
    (policy,) = by_kind(objects, "NetworkPolicy")
    quorum_rule, client_rule, _metrics = policy["spec"]["ingress"]
    assert {"port": k8s.CONTROLLER_PORT} in quorum_rule["ports"]
    assert quorum_rule["from"] == [{"podSelector": {"matchLabels": {k8s.LABEL_CLUSTER: CLUSTER_ID}}}]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in client_rule["from"]
    assert client_rule["ports"] == [{"port": k8s.CLIENT_PORT}]
    headless = next(o for o in by_kind(objects, "Service") if o["spec"].get("clusterIP") == "None")
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert k8s.bootstrap_servers(spec, TARGET) == f"{k8s.bootstrap_service(spec)}.kafka-prod.svc:9092"


def test_names_stay_unique_and_short_for_long_cluster_names() -> None:
    long_a = make_spec(3, name="a" * 40)
    long_b = make_spec(3, name="a" * 40, cluster_id=str(uuid.uuid4()))
    assert k8s.base_name(long_a) != k8s.base_name(long_b)
    assert len(k8s.pod_name(long_a, 499)) <= 63


def test_the_yaml_stream_is_one_document_per_object() -> None:
    objects = rendered(make_spec(3))
    text = k8s.to_yaml(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert "server.properties: |" in text  # configuration readable as a block, not one escaped line


def secured(spec: ClusterSpec, *authentication: str) -> ClusterSpec:
    ca = security.new_certificate_authority(spec.name)
    return replace(
        spec,
        security=SecuritySpec(
            authentication, ca.certificate_pem, ca.private_key_pem, security.new_password()
        ),
    )


def issued(spec: ClusterSpec) -> dict[tuple[str, int], k8s.NodeTls]:
    """Every node's certificate, as the backend issues them when applying."""
    assert spec.security is not None
    identity = security.broker_certificate_identity(spec.security)
    return {
        (node.role, node.node_id): k8s.NodeTls(
            identity,
            security.issue_broker_certificate(
                spec.security, k8s.certificate_hosts(spec, TARGET, node.node_id, node.role)
            ),
        )
        for node in k8s.nodes(spec, layout_for_new_cluster(spec))
    }


@pytest.mark.parametrize("brokers", [3, DEDICATED_CONTROLLERS_FROM])
def test_a_secured_cluster_mounts_each_nodes_certificate_and_its_plan_shows_no_secret(brokers: int) -> None:
    spec = secured(make_spec(brokers), "scram", "mtls")
    assert spec.security is not None
    plan = k8s.to_yaml(rendered(spec))
    assert "PRIVATE KEY" not in plan and spec.security.admin_password not in plan
    assert k8s.PLANNED_SECRET in plan

    objects = rendered(spec, tls=issued(spec))
    for obj in yaml.safe_load_all(k8s.to_yaml(objects)):
        kubernetes_validate.validate(obj, f"{SUPPORTED_KUBERNETES_VERSIONS[-1]}.0", strict=True)
    secrets = {o["metadata"]["name"]: o for o in by_kind(objects, "Secret")}
    broker = by_kind(objects, "StatefulSet")[-1]
    pod = broker["spec"]["template"]["spec"]
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    secret = secrets[tls_volume["secret"]["secretName"]]
    key = base64.b64decode(secret["data"]["broker.key"]).decode()
    chain = base64.b64decode(secret["data"]["broker.crt"]).decode()
    assert "PRIVATE KEY" in key and security.signed_by(chain, spec.security.ca_certificate_pem)
    node_id = int(broker["metadata"]["labels"][k8s.LABEL_NODE])
    served = x509.load_pem_x509_certificate(chain.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert served.value.get_values_for_type(x509.DNSName) == k8s.certificate_hosts(spec, TARGET, node_id)
    assert tls_volume["secret"]["defaultMode"] == 0o440  # root's, with Kafka's group (fsGroup)
    container = pod["containers"][0]
    assert {"name": "tls", "mountPath": k8s.TLS_DIR, "readOnly": True} in container["volumeMounts"]
    assert {p["containerPort"] for p in container["ports"]} >= {9092, 9094, 9095}
    config = properties(by_kind(objects, "ConfigMap")[-1]["data"]["server.properties"])
    assert config["ssl.keystore.key"] == f"${{tls:{k8s.TLS_DIR}:broker.key}}"
    assert "PLAINTEXT" not in config["listener.security.protocol.map"]
    scram = next(e for e in container["env"] if e["name"] == "KAFKA_ADD_SCRAM")["valueFrom"]["secretKeyRef"]
    credential = base64.b64decode(secrets[scram["name"]]["data"][scram["key"]]).decode()
    assert spec.security.admin_password in credential
    bootstrap = next(
        s for s in by_kind(objects, "Service") if s["metadata"]["name"] == k8s.bootstrap_service(spec)
    )
    assert [p["port"] for p in bootstrap["spec"]["ports"]] == [9092, 9095]
    assert dict(k8s.client_endpoints(spec, TARGET)) == {
        "scram": k8s.bootstrap_servers(spec, TARGET),
        "mtls": k8s.bootstrap_servers(spec, TARGET, 9095),
    }


def test_specs_kubernetes_cannot_place_are_refused() -> None:
    assert "racks" in k8s.spec_errors(make_spec(2, racks=("zone a", "zone-b")))
    assert k8s.spec_errors(make_spec(3)) == {}
    assert target_errors(TARGET) == {}
    bad = KubernetesTarget(name="t", namespace="Kafka", topology_key="bad key", allowed_cidrs=("10.0.0.1/8",))
    assert set(target_errors(bad)) == {"namespace", "topology_key", "allowed_cidrs"}
