"""The kubernetes backend against a real API server (tests/support/kube_apiserver.py: kube-apiserver,
controller-manager and scheduler built from Kubernetes' Go modules, kwok for the kubelets).

Real here: server-side apply, field managers and their conflicts, validation, watches, the StatefulSet
controller creating pods and claims, the scheduler honouring zone affinity, garbage collection. Not
proven here (kwok runs no container): that Kafka starts in these pods; the broker image's own tests run
its entrypoint against the real distribution, and the workflows' Kafka side runs on the simulator.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from provisioning import security
from provisioning.backends.base import (
    BackendUnavailableError,
    BrokerProcessState,
    BrokerSpec,
    ClusterSpec,
    NodeSize,
    SecuritySpec,
)
from provisioning.kafka_admin.base import KafkaUnavailableError
from provisioning.kubernetes import render
from provisioning.kubernetes.api import KubernetesApi, KubernetesApiError
from provisioning.kubernetes.backend import OWNED_KINDS, KubernetesBackend
from provisioning.kubernetes.target import KubernetesTarget, VolumeRetention
from provisioning.placement import place_brokers
from provisioning.workflows import lifecycle, rolling, scaling
from provisioning.workflows.base import StepContext, StepFailed
from tests.support.apache_kafka import wait_for
from tests.support.kube_apiserver import KubeCluster
from tests.support.kube_kafka import PodsAsKafka
from tests.support.simulated_backend import SIMULATION, StandInKafkaCluster, simulated_admin
from tests.support.workflow_runner import run_workflow

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def make_spec(racks: tuple[str, ...], brokers: int, name: str = "orders") -> ClusterSpec:
    layout = place_brokers(list(racks), brokers)
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name=name,
        kafka_version="4.4.0",
        brokers=tuple(BrokerSpec(n, r) for n, r in sorted(layout.items())),
        replication_factor=min(3, len(racks)),
        min_insync_replicas=1,
        node_size=NodeSize(cpu=0.5, memory_mb=1024, disk_gb=1),
    )


@pytest.fixture
def target(kube_cluster: KubeCluster) -> KubernetesTarget:
    return KubernetesTarget(
        name="test",
        namespace=kube_cluster.new_namespace("kafka"),
        kubeconfig=kube_cluster.kubeconfig_path.read_text(),
    )


def ready(backend: KubernetesBackend, spec: ClusterSpec, timeout: float = 120) -> None:
    """Ask until every node's pod runs, as a workflow's polling step does (the backend never waits)."""
    wait_for(
        lambda: all(
            n.state is BrokerProcessState.RUNNING
            for description in [backend.describe(spec)]
            for n in (*description.brokers, *description.controllers)
        ),
        timeout,
        interval=0.5,
        what=f"every pod of {spec.name} ready",
    )


def owned(api: KubernetesApi, spec: ClusterSpec) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (kind, obj["metadata"]["name"]): obj
        for kind in OWNED_KINDS
        for obj in api.list(kind, render.cluster_selector(spec))
    }


def test_a_cluster_applied_twice_restarted_contested_and_deleted(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    """One cluster through its life (one cluster, to keep the suite short): its brokers run in their
    zones, applying it again changes nothing, a restart rolls one pod onto the new template, a field
    another manager took is reported instead of taken back, and deleting it leaves nothing behind."""
    spec = make_spec(kube_cluster.zones, 3)
    events = Recorder()
    backend = KubernetesBackend(target, events=events)
    api = KubernetesApi(target)

    backend.provision(spec)
    ready(backend, spec)

    before = owned(api, spec)
    assert {kind for kind, _ in before} == set(OWNED_KINDS)
    pods = {o["metadata"]["labels"][render.LABEL_NODE]: o for (kind, _), o in before.items() if kind == "Pod"}
    for broker in spec.brokers:
        node = pods[str(broker.node_id)]["spec"]["nodeName"]
        assert kube_cluster.nodes[node] == broker.rack  # racks are zones
    assert len({p["spec"]["nodeName"] for p in pods.values()}) == 3
    layout_uid = before[("ConfigMap", render.layout_configmap(spec))]["metadata"]["uid"]
    sts = before[("StatefulSet", render.node_name(spec, 0))]
    assert sts["metadata"]["ownerReferences"][0]["uid"] == layout_uid
    assert any(line.startswith("applied StatefulSet") for line in events.lines)

    # Applying again changes nothing.
    backend.provision(spec)
    after = owned(api, spec)
    assert after.keys() == before.keys()
    for key, obj in before.items():
        if key[0] in ("Pod", "PersistentVolumeClaim", "StatefulSet"):  # status changes on their own
            assert after[key]["metadata"].get("generation") == obj["metadata"].get("generation"), key
        else:
            assert after[key]["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], key
    description = backend.describe(spec)
    assert description.bootstrap_servers == render.bootstrap_servers(spec, target)
    assert {b.state for b in description.brokers} == {BrokerProcessState.RUNNING}

    _restart_rolls_one_pod(backend, api, spec)
    _conflicts_are_reported(kube_cluster, backend, spec, target)

    deadline = time.monotonic() + 120
    while not backend.delete(spec):  # apply, then poll: as the delete workflow does
        assert time.monotonic() < deadline, owned(api, spec).keys()
        time.sleep(1)
    assert owned(api, spec) == {}

    def volumes_left() -> list[str]:
        with kube_cluster.api_client() as client:
            volumes = k8s.CoreV1Api(client).list_persistent_volume().items
        return [
            v.metadata.name
            for v in volumes
            if v.spec.claim_ref and v.spec.claim_ref.namespace == target.namespace
        ]

    # A released volume is deleted by its provisioner a moment after its claim, as in a cloud.
    deadline = time.monotonic() + 30
    while left := volumes_left():
        assert time.monotonic() < deadline, left
        time.sleep(0.5)


def test_a_secured_clusters_certificates_are_kept_in_secrets_until_rotated(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    """Each node's certificate lives in its Secret, issued once: applying again keeps it (the Secret
    does not change), a rotation's restart gives that node a new one, and its pod mounts it. What kwok
    cannot show (Kafka reading them in the pod) the broker image's tests and the vm backend's real
    hosts do."""
    ca = security.new_certificate_authority("orders")
    spec = replace(
        make_spec(kube_cluster.zones, 2),
        security=SecuritySpec(
            ("scram", "mtls"), ca.certificate_pem, ca.private_key_pem, security.new_password()
        ),
    )
    backend = KubernetesBackend(target)
    api = KubernetesApi(target)
    backend.provision(spec)
    ready(backend, spec)

    def secret(node_id: int) -> dict[str, Any]:
        found = api.get("Secret", render.tls_secret(spec, node_id))
        assert found is not None
        return found

    first = {n: secret(n) for n in (0, 1)}
    for node_id, found in first.items():
        chain = base64.b64decode(found["data"]["broker.crt"]).decode()
        assert security.signed_by(chain, ca.certificate_pem)
        assert found["metadata"]["annotations"][render.ANNOTATION_CERTIFICATE].startswith(
            security.broker_certificate_identity(spec.security)  # type: ignore[arg-type]
        )
        pod = api.get("Pod", render.pod_name(spec, node_id))
        assert pod is not None
        assert {
            "name": "tls",
            "secret": {"secretName": render.tls_secret(spec, node_id), "defaultMode": 0o440},
        } in [
            {k: v for k, v in volume.items() if k in ("name", "secret")} for volume in pod["spec"]["volumes"]
        ]
    assert api.get("Secret", render.admin_secret(spec)) is not None
    backend.provision(spec)
    assert {n: secret(n)["metadata"]["resourceVersion"] for n in (0, 1)} == {
        n: s["metadata"]["resourceVersion"] for n, s in first.items()
    }

    rotated = replace(spec, security=replace(spec.security, certificate_generation=2))  # type: ignore[type-var]
    backend.restart_broker(rotated, 1)
    assert secret(1)["data"]["broker.crt"] != first[1]["data"]["broker.crt"]
    assert (
        secret(1)["metadata"]["annotations"][render.ANNOTATION_CERTIFICATE]
        .split("\n")[0]
        .endswith("generation 2")
    )
    assert (
        secret(0)["metadata"]["resourceVersion"] == first[0]["metadata"]["resourceVersion"]
    )  # its turn comes
    config = dict(backend.connection(spec, "").config)
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.username"] == security.ADMIN_USER
    assert dict(backend.describe(spec).client_endpoints) == {
        "scram": render.bootstrap_servers(spec, target),
        "mtls": render.bootstrap_servers(spec, target, 9095),
    }
    deadline = time.monotonic() + 120
    while not backend.delete(spec):
        assert time.monotonic() < deadline, owned(api, spec).keys()
        time.sleep(1)


def _restart_rolls_one_pod(backend: KubernetesBackend, api: KubernetesApi, spec: ClusterSpec) -> None:
    old = {n: api.get("Pod", render.pod_name(spec, n))["metadata"]["uid"] for n in (0, 1, 2)}  # type: ignore[index]

    backend.restart_broker(replace(spec, kafka_version="4.3.2"), 1)

    # Asked, not done: the pod shuts down, and a roll waits for these states before it looks at Kafka.
    # (kwok, which runs nothing, may already have replaced it: then it is a new pod that runs.)
    restarting = (BrokerProcessState.STOPPED, BrokerProcessState.MISSING, BrokerProcessState.STARTING)
    state = backend.describe(spec).broker(1).state
    current = api.get("Pod", render.pod_name(spec, 1))
    if state is BrokerProcessState.RUNNING:
        assert current is not None and current["metadata"]["uid"] != old[1]
    else:
        assert state in restarting
        if current is not None and current["metadata"]["uid"] == old[1]:
            # A kubelet would give the controlled shutdown its grace period (minutes): end it now.
            api.delete("Pod", render.pod_name(spec, 1), grace_seconds=0)
    ready(backend, spec)
    pods = {n: api.get("Pod", render.pod_name(spec, n)) for n in (0, 1, 2)}
    assert pods[1]["metadata"]["uid"] != old[1]  # type: ignore[index]
    assert pods[1]["spec"]["containers"][0]["image"].endswith(":4.3.2")  # type: ignore[index]
    for n in (0, 2):  # the others keep running on the old template until their turn
        assert pods[n]["metadata"]["uid"] == old[n]  # type: ignore[index]
        assert pods[n]["spec"]["containers"][0]["image"].endswith(":4.4.0")  # type: ignore[index]


def _conflicts_are_reported(
    kube_cluster: KubeCluster, backend: KubernetesBackend, spec: ClusterSpec, target: KubernetesTarget
) -> None:
    pdb = render.base_name(spec)
    with kube_cluster.api_client() as client:
        k8s.PolicyV1Api(client).patch_namespaced_pod_disruption_budget(
            pdb,
            target.namespace,
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": pdb},
                "spec": {"maxUnavailable": 2},
            },
            field_manager="kubectl-edit",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    with pytest.raises(KubernetesApiError) as refused:
        backend.provision(spec)

    assert refused.value.status == 409
    message = str(refused.value)
    assert "kubectl-edit" in message and "maxUnavailable" in message and "another field manager" in message
    current = KubernetesApi(target).get("PodDisruptionBudget", pdb)
    assert current is not None and current["spec"]["maxUnavailable"] == 2  # not forced back


def test_invalid_objects_and_missing_permissions_are_refused_in_plain_words(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    api = KubernetesApi(target)
    with pytest.raises(KubernetesApiError, match=r"as invalid: metadata.name") as invalid:
        api.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name"}, "data": {}})
    assert invalid.value.status == 422
    # A service account without any role: the API server's RBAC answers 403.
    with kube_cluster.api_client() as client:
        core = k8s.CoreV1Api(client)
        core.create_namespaced_service_account(
            target.namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="nobody"))
        )
        token = core.create_namespaced_service_account_token(
            "nobody",
            target.namespace,
            k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
        ).status.token
    kubeconfig = yaml.safe_load(target.kubeconfig)
    kubeconfig["users"] = [{"name": "nobody", "user": {"token": token}}]
    for context in kubeconfig["contexts"]:
        context["context"]["user"] = "nobody"
    powerless = KubernetesTarget(
        name="powerless", namespace=target.namespace, kubeconfig=yaml.safe_dump(kubeconfig)
    )
    with pytest.raises(KubernetesApiError, match="may not do this") as forbidden:
        KubernetesBackend(powerless).provision(make_spec(kube_cluster.zones, 1))
    assert forbidden.value.status == 403
    assert "RBAC" in str(forbidden.value)


def test_scale_in_refuses_a_broker_that_still_holds_replicas(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    spec = make_spec(kube_cluster.zones[:2], 4)
    backend = KubernetesBackend(target)
    backend.provision(spec)
    # Brokers 0-2 are the combined controllers: leaving one out is refused before anything moves.
    without = {n: replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id != n)) for n in (2, 3)}
    assert "are its KRaft controllers" in backend.validate(without[2])["brokers"]
    assert backend.validate(without[3]) == {}
    kafka = StandInKafkaCluster([(b.node_id, b.rack) for b in spec.brokers], cluster_id=spec.cluster_id)
    SIMULATION.clusters[spec.cluster_id] = kafka
    # Only an internal topic is left on broker 3.
    kafka.create_topic_assigned("__consumer_offsets", [[3, 0]])
    ctx = StepContext(
        spec=spec,
        params={"remove_node_ids": [3]},
        state={},
        backend=backend,
        admin_factory=simulated_admin,
        log=lambda message: None,
        started_at=datetime.now(UTC),
        attempt=1,
        bootstrap_servers="simulated:9092",
    )
    try:
        with pytest.raises(StepFailed, match="still hold replicas"):
            scaling.remove_brokers(ctx)
        assert KubernetesApi(target).get("StatefulSet", render.node_name(spec, 3)) is not None

        kafka.delete_topic("__consumer_offsets")
        scaling.remove_brokers(ctx)
        api = KubernetesApi(target)
        assert api.get("StatefulSet", render.node_name(spec, 3)) is None
        assert api.get("StatefulSet", render.node_name(spec, 2)) is not None
    finally:
        SIMULATION.reset()


def test_a_broker_replaced_without_its_disk_gets_a_new_volume(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    spec = make_spec(kube_cluster.zones[:1], 1)
    backend = KubernetesBackend(target)
    backend.provision(spec)
    ready(backend, spec)
    api = KubernetesApi(target)
    selector = f"{render.cluster_selector(spec)},{render.LABEL_NODE}=0"
    (old_claim,) = api.list("PersistentVolumeClaim", selector)
    old_pod = api.get("Pod", render.pod_name(spec, 0))

    deadline = time.monotonic() + 120
    while True:  # the step is retried while the old volume is still going, as the engine would
        try:
            backend.replace_broker(spec, 0, keep_disk=False)
            break
        except BackendUnavailableError:
            assert time.monotonic() < deadline
            time.sleep(1)
    ready(backend, spec)

    (new_claim,) = api.list("PersistentVolumeClaim", selector)
    assert new_claim["metadata"]["uid"] != old_claim["metadata"]["uid"]
    new_pod = api.get("Pod", render.pod_name(spec, 0))
    assert new_pod["metadata"]["uid"] != old_pod["metadata"]["uid"]  # type: ignore[index]
    assert api.get("StatefulSet", render.node_name(spec, 0))["spec"]["replicas"] == 1  # type: ignore[index]


def test_waiting_for_brokers_tells_what_their_pods_are_doing(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    """Apply, then poll: provisioning returns once the objects are applied; the provision workflow's
    waiting step asks the backend what the pods do and logs it once per change, here a pod that no
    node of its zone can take. (Kafka is not reachable: the step says so and keeps waiting.)"""
    spec = make_spec(("zone-nowhere",), 1)
    backend = KubernetesBackend(target)
    backend.provision(spec)  # returns at once: nothing is scheduled yet
    lines: list[str] = []

    def poll(state: dict[str, Any]) -> Any:
        ctx = StepContext(
            spec=spec,
            params={},
            state=state,
            backend=backend,
            admin_factory=lambda spec, bootstrap: unreachable_admin(),
            log=lines.append,
            started_at=datetime.now(UTC),
            attempt=1,
            bootstrap_servers=render.bootstrap_servers(spec, target),
        )
        return lifecycle.wait_for_brokers(ctx)

    outcome = wait_for(
        lambda: (o := poll({})) and "not scheduled" in o.output["waiting_for"] and o,
        60,
        what="the scheduler's refusal",
    )
    assert not outcome.done
    assert outcome.description.broker(0).state is BrokerProcessState.STARTING
    assert "cluster not answering yet" in lines[-1] and "didn't match" in lines[-1], lines
    logged = len(lines)
    assert not poll(dict(outcome.output)).done
    assert len(lines) == logged  # the same reason is not logged again on every poll
    while not backend.delete(spec):
        time.sleep(0.5)


def unreachable_admin() -> Any:
    raise KafkaUnavailableError("no broker answers (kwok runs no Kafka)")


def test_an_upgrade_rolls_the_dedicated_controllers_too(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    """Six brokers get three dedicated controller pods; an upgrade restarts all nine, one pod at a time
    onto the new image: the controller behind the quorum leader first (it serves nothing), then the
    other ready controller, the brokers, and the quorum leader last. Kafka's side is a stand-in that
    reads readiness from the pods (tests/support/kube_kafka.py says what that does not prove)."""
    spec = replace(make_spec(kube_cluster.zones, 6, name="large"), kafka_version="4.3.2")
    backend = KubernetesBackend(target)
    backend.provision(spec)
    ready(backend, spec)
    description = backend.describe(spec)
    assert [c.node_id for c in description.controllers] == [90000, 90001, 90002]
    api = KubernetesApi(target)

    def pods() -> dict[int, dict[str, Any]]:
        return {
            int(p["metadata"]["labels"][render.LABEL_NODE]): p
            for p in api.list("Pod", render.cluster_selector(spec))
        }

    before = {n: p["metadata"]["uid"] for n, p in pods().items()}
    assert len(before) == 9
    kafka = PodsAsKafka(backend, spec, leader=90001, behind={90002: before[90002]})

    run = run_workflow(
        rolling.UPGRADE,
        spec=spec,
        params={"kafka_version": "4.4.0", "broker_timeout_seconds": 120, "poll_seconds": 0.5},
        backend=backend,
        bootstrap_servers=description.bootstrap_servers,
        admin_factory=lambda spec, bootstrap: kafka,
        timeout=400,
    )

    rolled = [line for line in run.log_lines("upgrade_brokers") if line.startswith("upgrading ")]
    assert rolled[0] == (
        "upgrading controller 90002 first: controller 90002 has not caught up with the quorum leader, "
        "so it serves nothing"
    ), rolled
    assert rolled[1] == "upgrading controller 90000 (a dedicated controller)", rolled
    assert [line.split()[2] for line in rolled[2:8]] == ["0", "1", "2", "3", "4", "5"], rolled
    assert rolled[8] == "upgrading controller 90001 (the active controller)", rolled
    assert kafka.most_not_running <= 1  # never two pods down at once
    after = pods()
    for node_id, pod in after.items():
        assert pod["metadata"]["uid"] != before[node_id], node_id  # each pod replaced once...
        assert pod["spec"]["containers"][0]["image"].endswith(":4.4.0"), node_id  # ...onto the new image
    for sts in api.list("StatefulSet", render.cluster_selector(spec)):
        assert sts["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":4.4.0")
    assert run.spec.kafka_version == "4.4.0"
    assert any(
        "feature levels of Kafka 4.4.0 finalized" in line for line in run.log_lines("finalize_features")
    )
    while not backend.delete(spec):
        time.sleep(0.5)


def test_a_target_that_retains_volumes_keeps_them_when_its_cluster_is_deleted(
    kube_cluster: KubeCluster, target: KubernetesTarget
) -> None:
    """volume_retention retain: deleting the cluster removes every object but the brokers' volume claims,
    which stay bound to their volumes for an administrator (the default, delete, is proven above)."""
    retaining = replace(target, volume_retention=VolumeRetention.RETAIN)
    spec = make_spec(kube_cluster.zones[:2], 2)
    backend = KubernetesBackend(retaining)
    backend.provision(spec)
    ready(backend, spec)
    api = KubernetesApi(retaining)
    claims = {c["metadata"]["uid"] for c in api.list("PersistentVolumeClaim", render.cluster_selector(spec))}
    assert len(claims) == 2

    wait_for(lambda: backend.delete(spec), 120, interval=1, what="every object but the claims gone")

    left = owned(api, spec)
    assert {kind for kind, _ in left} == {"PersistentVolumeClaim"}, left.keys()
    assert {c["metadata"]["uid"] for c in left.values()} == claims
    assert all(c["status"]["phase"] == "Bound" for c in left.values())
    with kube_cluster.api_client() as client:
        volumes = {
            v.spec.claim_ref.uid: v
            for v in k8s.CoreV1Api(client).list_persistent_volume().items
            if v.spec.claim_ref
        }
    assert all(volumes[uid].status.phase == "Bound" for uid in claims)
    # Still there a while later: nothing (no owner, no garbage collector) takes them afterwards.
    time.sleep(3)
    assert {
        c["metadata"]["uid"] for c in api.list("PersistentVolumeClaim", render.cluster_selector(spec))
    } == claims
    for name in [c["metadata"]["name"] for c in left.values()]:
        api.delete("PersistentVolumeClaim", name)
