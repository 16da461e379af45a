"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok standing in for the kubelets of fake nodes, one group of nodes per zone.

    def test_something(kube_cluster: KubeCluster) -> None:
        api = kube_cluster.api_client()            # a kubernetes.client.ApiClient, admin rights
        kube_cluster.kubeconfig_path               # a kubeconfig file for the same, CA and token inline
        kube_cluster.zones                         # ("zone-a", "zone-b", "zone-c")
        kube_cluster.nodes                         # node name -> zone, e.g. "node-zone-a-1": "zone-a"
        kube_cluster.new_namespace("prefix")       # a fresh namespace of the test's own

`kube_cluster` is shared by the whole session: work in namespaces of your own and leave nodes alone.
`start_kube_cluster(workdir, zones=..., nodes_per_zone=...)` starts one of your own (a context
manager). Binaries come from `tests.support.kube_binaries` (built once per machine, cached). Starting
takes about half a minute on a busy two-core machine (most of it the API server's first start), so
share the session's cluster.

What is real: the API server (defaulting, validation, admission, RBAC, server-side apply with field
managers and conflicts, watches, resource versions), the controllers (StatefulSet, ReplicaSet,
garbage collection of owned objects, namespace deletion, PVC protection, PodDisruptionBudget status,
EndpointSlices) and the scheduler (node affinity on `topology.kubernetes.io/zone`, pod anti-affinity,
resources, taints). What kwok fakes: nodes (labelled with their zone, always Ready, heartbeating) and
the kubelet's side of pods: a scheduled pod is marked Running and Ready at once, its containers never
run, probes are never executed, and a pod deleted with a grace period stays Terminating for
POD_SHUTDOWN_SECONDS (a broker's controlled shutdown; a grace period of 0 removes it at once). No
container runtime, no pod network, no volumes are mounted: a PVC is bound by the fake provisioner
below, but nothing is ever written to it.

Storage: a default StorageClass `standard` (volume binding WaitForFirstConsumer, as cloud classes
are) whose provisioner is a thread of this fixture: it answers every claim the scheduler selected a
node for with a PersistentVolume of the requested size in that node's zone, and deletes a released
volume whose reclaim policy is Delete, as a cloud provisioner would.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.support.kafka import free_port
from tests.support.kube_binaries import KubeBinaries, ensure

DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")
ZONE_LABEL = "topology.kubernetes.io/zone"
STORAGE_CLASS = "standard"
PROVISIONER = "kcp.test/fake-provisioner"
START_TIMEOUT_SECONDS = 120
SERVICE_CIDR = "10.96.0.0/16"
# How long a deleted pod stays Terminating: what a broker's controlled shutdown takes, give or take.
# A real kubelet removes the pod when the process exits, which kwok cannot know; removing it at once
# would let a test never see a pod shutting down, and waiting out the grace period (minutes for
# brokers) would make every delete that long.
POD_SHUTDOWN_SECONDS = 5
POD_DELETE_STAGE = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1",
    "kind": "Stage",
    "metadata": {"name": "pod-delete"},
    "spec": {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}]},
        "delay": {"durationMilliseconds": POD_SHUTDOWN_SECONDS * 1000},
        "next": {"delete": True},
    },
}


@dataclass
class KubeCluster:
    kubeconfig_path: Path
    server: str
    zones: tuple[str, ...]
    nodes: dict[str, str]  # node name -> zone
    started_in_seconds: float = 0.0

    def api_client(self) -> k8s.ApiClient:
        """A new client with the cluster's admin credentials (close it, or let it be collected)."""
        return k8s_config.new_client_from_config(config_file=str(self.kubeconfig_path))

    def new_namespace(self, prefix: str = "test") -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        with self.api_client() as api:
            k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        return name


# --- certificates and credentials ------------------------------------------------------------------------


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    names: tuple[str, ...] = (),
    addresses: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if names or addresses:
        sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write_credentials(workdir: Path) -> dict[str, Path | str]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate("kcp-test-ca", ca_key)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    server = _certificate(
        "kube-apiserver",
        server_key,
        issuer=(ca, ca_key),
        names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        addresses=("127.0.0.1", service_ip),
    )
    service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = secrets.token_urlsafe(32)
    files = {
        "ca": workdir / "ca.crt",
        "server_cert": workdir / "apiserver.crt",
        "server_key": workdir / "apiserver.key",
        "service_account_key": workdir / "sa.key",
        "tokens": workdir / "tokens.csv",
    }
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["server_cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files["server_key"].write_bytes(_pem_key(server_key))
    files["service_account_key"].write_bytes(_pem_key(service_account_key))
    # Every component signs in as a member of system:masters: the tests need a working cluster, not
    # each component's least privilege.
    files["tokens"].write_text(f'{token},kcp-admin,kcp-admin,"system:masters"\n')
    for path in files.values():
        path.chmod(0o600)
    return {**files, "token": token}


def _write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        # The CA inline, not as a path: a target stores its kubeconfig as text, used by other processes.
        "clusters": [
            {
                "name": "kcp-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "kcp-admin", "user": {"token": token}}],
        "contexts": [{"name": "kcp-test", "context": {"cluster": "kcp-test", "user": "kcp-admin"}}],
        "current-context": "kcp-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


# --- processes --------------------------------------------------------------------------------------------


class _Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.started.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        # One by one, last started first: an API server whose etcd is already gone waits for it.
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait(predicate, timeout: float, what: str, processes: _Processes) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        processes.check()
        try:
            result = predicate()
        except Exception as exc:  # not up yet
            last = exc
        else:
            if result:
                return result
        time.sleep(0.2)
    raise RuntimeError(f"{what} not within {timeout} s (last error: {last})")


def _api_ready(server: str, ca: Path, token: str) -> bool:
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return response.status == 200


def _write_kwok_stages(binaries: KubeBinaries, path: Path) -> Path:
    """kwok's stages as built, with the pod deletion of this fixture (POD_SHUTDOWN_SECONDS)."""
    stages = [
        stage
        for stage in yaml.safe_load_all(binaries.kwok_stages.read_text())
        if stage and stage["metadata"]["name"] != "pod-delete"
    ]
    path.write_text(yaml.safe_dump_all([*stages, POD_DELETE_STAGE]))
    return path


def _fake_node(name: str, zone: str) -> k8s.V1Node:
    resources = {"cpu": "64", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(
            name=name,
            labels={
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                ZONE_LABEL: zone,
                "type": "kwok",
            },
            annotations={"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        ),
        status=k8s.V1NodeStatus(allocatable=resources, capacity=resources),
    )


def _node_ready(node: k8s.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


# --- the fake volume provisioner ----------------------------------------------------------------------------


class _FakeProvisioner(threading.Thread):
    """Binds claims of the `standard` class with volumes in the selected node's zone, and deletes
    released volumes whose reclaim policy is Delete."""

    def __init__(self, cluster: KubeCluster) -> None:
        super().__init__(name="fake-provisioner", daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.cluster.api_client() as api:
            core = k8s.CoreV1Api(api)
            while not self.stopping.is_set():
                # The API server stopping, a conflict: look again next time.
                with contextlib.suppress(Exception):
                    self._pass(core)
                self.stopping.wait(0.5)

    def _pass(self, core: k8s.CoreV1Api) -> None:
        for claim in core.list_persistent_volume_claim_for_all_namespaces().items:
            annotations = claim.metadata.annotations or {}
            node = annotations.get("volume.kubernetes.io/selected-node")
            if (
                claim.status.phase != "Pending"
                or claim.spec.volume_name
                or claim.spec.storage_class_name != STORAGE_CLASS
                or node is None
            ):
                continue
            zone = self.cluster.nodes.get(node, "")
            name = f"pvc-{claim.metadata.uid}"
            volume = k8s.V1PersistentVolume(
                metadata=k8s.V1ObjectMeta(
                    name=name,
                    labels={ZONE_LABEL: zone},
                    annotations={"pv.kubernetes.io/provisioned-by": PROVISIONER},
                ),
                spec=k8s.V1PersistentVolumeSpec(
                    capacity={"storage": claim.spec.resources.requests["storage"]},
                    access_modes=claim.spec.access_modes,
                    persistent_volume_reclaim_policy="Delete",
                    storage_class_name=STORAGE_CLASS,
                    host_path=k8s.V1HostPathVolumeSource(path=f"/kcp-fake-volumes/{name}"),
                    claim_ref=k8s.V1ObjectReference(
                        namespace=claim.metadata.namespace, name=claim.metadata.name, uid=claim.metadata.uid
                    ),
                    node_affinity=k8s.V1VolumeNodeAffinity(
                        required=k8s.V1NodeSelector(
                            node_selector_terms=[
                                k8s.V1NodeSelectorTerm(
                                    match_expressions=[
                                        k8s.V1NodeSelectorRequirement(
                                            key=ZONE_LABEL, operator="In", values=[zone]
                                        )
                                    ]
                                )
                            ]
                        )
                    ),
                ),
            )
            with contextlib.suppress(k8s.ApiException):
                core.create_persistent_volume(volume)
        for volume in core.list_persistent_volume().items:
            provisioned_here = (volume.metadata.annotations or {}).get(
                "pv.kubernetes.io/provisioned-by"
            ) == PROVISIONER
            if (
                provisioned_here
                and volume.status.phase == "Released"
                and volume.spec.persistent_volume_reclaim_policy == "Delete"
            ):
                with contextlib.suppress(k8s.ApiException):
                    core.delete_persistent_volume(volume.metadata.name)


def _create_storage_class(api: k8s.ApiClient) -> None:
    k8s.StorageV1Api(api).create_storage_class(
        k8s.V1StorageClass(
            metadata=k8s.V1ObjectMeta(
                name=STORAGE_CLASS, annotations={"storageclass.kubernetes.io/is-default-class": "true"}
            ),
            provisioner=PROVISIONER,
            reclaim_policy="Delete",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
        )
    )


# --- the cluster ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def start_kube_cluster(
    workdir: Path,
    *,
    zones: tuple[str, ...] = DEFAULT_ZONES,
    nodes_per_zone: int = 2,
    binaries: KubeBinaries | None = None,
) -> Iterator[KubeCluster]:
    binaries = binaries or ensure()
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = _write_credentials(workdir)
    token = str(credentials["token"])
    processes = _Processes(workdir)
    try:
        etcd_client, etcd_peer = free_port(), free_port()
        processes.start(
            "etcd",
            [
                str(binaries.path("etcd")),
                "--name=kcp-test",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=kcp-test=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",  # throwaway data: durability only costs time here
                "--log-level=warn",
            ],
        )
        api_port = free_port()
        server = f"https://127.0.0.1:{api_port}"
        processes.start(
            "kube-apiserver",
            [
                str(binaries.path("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={credentials['server_cert']}",
                f"--tls-private-key-file={credentials['server_key']}",
                f"--client-ca-file={credentials['ca']}",
                f"--token-auth-file={credentials['tokens']}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={credentials['service_account_key']}",
                f"--service-account-signing-key-file={credentials['service_account_key']}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                "--profiling=false",
                # The `kubernetes` Service's endpoints would have to be a non-loopback address.
                "--endpoint-reconciler-type=none",
                "--v=0",
            ],
        )
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, Path(credentials["ca"]), token)
        _wait(
            lambda: _api_ready(server, Path(credentials["ca"]), token),
            START_TIMEOUT_SECONDS,
            "kube-apiserver ready",
            processes,
        )
        processes.start(
            "kube-controller-manager",
            [
                str(binaries.path("kube-controller-manager")),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={credentials['service_account_key']}",
                f"--root-ca-file={credentials['ca']}",
                "--use-service-account-credentials=false",
                "--v=0",
            ],
        )
        processes.start(
            "kube-scheduler",
            [
                str(binaries.path("kube-scheduler")),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=0",
            ],
        )
        processes.start(
            "kwok",
            [
                str(binaries.path("kwok")),
                f"--config={_write_kwok_stages(binaries, workdir / 'kwok-stages.yaml')}",
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=true",
                "--cidr=10.244.0.1/16",
                "--node-ip=127.0.0.1",
                "--node-lease-duration-seconds=40",
            ],
        )
        nodes = {f"node-{zone}-{i}": zone for zone in zones for i in range(1, nodes_per_zone + 1)}
        cluster = KubeCluster(kubeconfig_path=kubeconfig, server=server, zones=tuple(zones), nodes=nodes)
        with cluster.api_client() as api:
            core = k8s.CoreV1Api(api)
            for name, zone in nodes.items():
                core.create_node(_fake_node(name, zone))
            _create_storage_class(api)
            _wait(
                lambda: sum(_node_ready(n) for n in core.list_node().items) == len(nodes),
                START_TIMEOUT_SECONDS,
                "every fake node Ready",
                processes,
            )
            # Pods can be admitted only once the controller-manager made the default service account.
            _wait(
                lambda: core.read_namespaced_service_account("default", "default"),
                START_TIMEOUT_SECONDS,
                "the default service account",
                processes,
            )
        provisioner = _FakeProvisioner(cluster)
        provisioner.start()
        cluster.started_in_seconds = round(time.monotonic() - started, 1)
        try:
            yield cluster
        finally:
            provisioner.stopping.set()
            provisioner.join(timeout=5)
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with start_kube_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        print(f"\nKubernetes control plane started in {cluster.started_in_seconds} s", flush=True)
        yield cluster
