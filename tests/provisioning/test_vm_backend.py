"""The vm backend without hosts to install on: what it refuses, what it plans (a secured cluster's
too, without a secret in it), how it describes brokers (by whether their client port accepts a
connection: real sockets on loopback), and the pruning of its playbook runs."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.targets.tasks import prune_vm_runs
from provisioning import security
from provisioning.ansible import backend as backend_module
from provisioning.ansible.backend import VmBackend, VmPlacement
from provisioning.ansible.inventory import InventoryHost, Release, secret_variables, tls_identity
from provisioning.ansible.pool import HostPool
from provisioning.backends.base import (
    BackendError,
    BackendUnavailableError,
    BrokerProcessState,
    BrokerSpec,
    ClusterSpec,
    NodeSize,
    SecuritySpec,
)


def _spec(*racks: str) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name="orders",
        kafka_version="4.4.0",
        brokers=tuple(BrokerSpec(node_id, rack) for node_id, rack in enumerate(racks)),
        replication_factor=min(3, len(racks)),
        min_insync_replicas=1,
        node_size=NodeSize(cpu=1, memory_mb=2048, disk_gb=10),
    )


POOL = HostPool(
    "dc1",
    tuple(InventoryHost(f"h{i}", f"192.0.2.{i}", rack) for i, rack in enumerate("abcab", 1)),
    racks=("a", "b", "c"),
)


def test_validation_names_what_the_pool_and_the_cluster_lack() -> None:
    backend = VmBackend(POOL, VmPlacement(taken=frozenset({"h4"})), offline=True)
    assert backend.validate(_spec("a", "b", "c")) == {}
    assert backend.validate(_spec("a", "b", "c", "a", "b", "c")) == {
        "brokers": "Host pool dc1: rack a needs 2 free hosts, the pool has 1; "
        "rack c needs 2 free hosts, the pool has 1."
    }
    # Client authentication is planned before the cluster's CA exists (a dry run).
    secured = replace(_spec("a", "b", "c"), security=SecuritySpec(("scram",), "", "", ""))
    assert backend.validate(secured) == {}
    # A cluster's recorded controllers keep their hosts: removing one is refused.
    recorded = VmBackend(POOL, VmPlacement(hosts=((0, "h1"), (1, "h2"), (2, "h3")), controllers=(0, 1, 2)))
    assert "are KRaft controllers" in recorded.validate(_spec("a", "b"))["brokers"]


def test_the_plan_is_the_inventory_and_each_brokers_configuration_on_the_hosts_it_would_get() -> None:
    plan = VmBackend(POOL, offline=True).plan(_spec("a", "b", "c"))
    inventory = yaml.safe_load(plan.artifacts["inventory.yml"])["all"]
    assert {name: v["kafka_node_id"] for name, v in inventory["hosts"].items()} == {"h1": 0, "h2": 1, "h3": 2}
    assert inventory["hosts"]["h1"]["kafka_service_manager"] == "systemd"
    assert inventory["hosts"]["h1"]["kafka_heap_mb"] == 1024
    assert "node.id=2" in plan.artifacts["broker-2/server.properties"]
    assert plan.summary.startswith("Apache Kafka 4.4.0 on host pool dc1: broker 0 on h1 (192.0.2.1, rack a)")
    assert plan.manifests == ""
    with pytest.raises(BackendError, match="planning only"):
        VmBackend(POOL, offline=True).provision(_spec("a", "b", "c"))


def _secured(spec: ClusterSpec, *authentication: str) -> ClusterSpec:
    ca = security.new_certificate_authority(spec.name)
    return replace(
        spec,
        security=SecuritySpec(
            authentication, ca.certificate_pem, ca.private_key_pem, security.new_password()
        ),
    )


def test_a_secured_plan_names_each_brokers_key_files_and_holds_no_secret() -> None:
    spec = _secured(_spec("a", "b", "c"), "scram", "mtls")
    assert spec.security is not None
    plan = VmBackend(POOL, offline=True).plan(spec)

    for text in plan.artifacts.values():
        assert "PRIVATE KEY" not in text and spec.security.admin_password not in text
    properties = plan.artifacts["broker-1/server.properties"]
    assert "listeners=INTERNAL://192.0.2.2:9094,SCRAM://192.0.2.2:9092,MTLS://192.0.2.2:9095," in properties
    assert "PLAINTEXT" not in properties
    # Kafka reads the key from the file the playbooks write, through its DirectoryConfigProvider.
    assert "ssl.keystore.key=${tls:/etc/kafka/tls:broker.key}\n" in properties
    assert (
        "config.providers.tls.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider"
        in properties
    )
    inventory = yaml.safe_load(plan.artifacts["inventory.yml"])["all"]
    shared, host = inventory["vars"], inventory["hosts"]["h2"]
    assert shared["kafka_secured"] is True
    assert shared["kafka_tools_bootstrap_servers"] == "192.0.2.1:9094,192.0.2.2:9094,192.0.2.3:9094"
    assert shared["kafka_tls_ca_certificate"] == spec.security.ca_certificate_pem
    assert host["kafka_tools_command_config"] == "/etc/kafka/tools.properties"
    assert "security.protocol=SSL\n" in host["kafka_tools_properties"]
    assert "--add-scram" not in host["kafka_storage_format_args"]  # a secret variable of the run instead
    assert "SCRAM-SHA-512 over TLS on port 9092 and client certificates on port 9095" in plan.summary


def test_each_run_hands_every_broker_a_certificate_for_its_hosts_address() -> None:
    spec = _secured(_spec("a", "b"), "scram")
    assert spec.security is not None
    placement = {0: POOL.host("h1"), 1: POOL.host("h2")}
    secrets = secret_variables(spec, placement)

    for name, address in (("h1", "192.0.2.1"), ("h2", "192.0.2.2")):
        issued = secrets["kafka_tls_certificates"][name]
        certificate = x509.load_pem_x509_certificate(issued["chain"].encode())
        assert security.signed_by(issued["chain"], spec.security.ca_certificate_pem)
        assert issued["chain"].endswith(spec.security.ca_certificate_pem.strip() + "\n")
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [address]
        assert certificate.subject.rfc4514_string() == f"CN={security.BROKER_USER}"
        key = serialization.load_pem_private_key(issued["key"].encode(), None)
        assert key.public_key().public_numbers() == certificate.public_key().public_numbers()
    assert spec.security.admin_password in " ".join(secrets["kafka_storage_secret_args"])
    # Hosts keep their certificate until the generation moves on (a rotation).
    identity = tls_identity(spec)
    rotated = replace(spec, security=replace(spec.security, certificate_generation=2))
    assert tls_identity(rotated) != identity and identity.endswith("generation 1")
    assert secret_variables(_spec("a"), {}) == {}  # an unsecured cluster's runs need none


def test_a_secured_clusters_admin_connection_and_endpoints_authenticate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _secured(_spec("a", "b"), "scram", "mtls")
    assert spec.security is not None
    monkeypatch.setattr(backend_module, "_probe", lambda address, port: (BrokerProcessState.RUNNING, ""))
    backend = VmBackend(POOL, VmPlacement(hosts=((0, "h1"), (1, "h2"))))

    config = dict(backend.connection(spec, "").config)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.username"] == security.ADMIN_USER
    assert config["sasl.password"] == spec.security.admin_password
    assert dict(backend.describe(spec).client_endpoints) == {
        "scram": "192.0.2.1:9092,192.0.2.2:9092",
        "mtls": "192.0.2.1:9095,192.0.2.2:9095",
    }
    mtls_only = _secured(_spec("a", "b"), "mtls")
    assert dict(backend.describe(mtls_only).client_endpoints) == {"mtls": "192.0.2.1:9092,192.0.2.2:9092"}
    assert dict(backend.connection(mtls_only, "").config)["security.protocol"] == "SSL"


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_a_broker_runs_when_its_client_port_accepts_connections(
    listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = socket.create_server(("127.0.0.2", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    pool = HostPool(
        "lab",
        (InventoryHost("up", "127.0.0.1", "a"), InventoryHost("down", "127.0.0.2", "b")),
        racks=("a", "b"),
    )
    ports = {"127.0.0.1": listening, "127.0.0.2": closed_port}
    # The brokers' port is fixed (9092); here each host's stand-in listens on a port of its own.
    real_probe = backend_module._probe
    monkeypatch.setattr(backend_module, "_probe", lambda address, port: real_probe(address, ports[address]))
    backend = VmBackend(pool, VmPlacement(hosts=((0, "up"), (1, "down"))))
    description = backend.describe(_spec("a", "b", "c"))
    states = {b.node_id: (b.state, b.endpoint) for b in description.brokers}
    assert states == {
        0: (BrokerProcessState.RUNNING, "127.0.0.1:9092"),
        1: (BrokerProcessState.CRASHED, "127.0.0.2:9092"),
        2: (BrokerProcessState.MISSING, ""),
    }
    assert "does not accept connections" in description.broker(1).detail
    assert description.bootstrap_servers == "127.0.0.1:9092,127.0.0.2:9092"
    assert backend.connection(_spec("a", "b"), "").bootstrap_servers == "127.0.0.1:9092,127.0.0.2:9092"


def test_playbook_runs_of_operations_untouched_for_long_are_pruned_on_schedule(
    tmp_path: Path, settings: Any
) -> None:
    settings.VM_RUNS_DIR = tmp_path
    settings.VM_RUN_RETENTION_SECONDS = 3600
    old = tmp_path / "operation-old" / "20261201T000000-provision"
    new = tmp_path / "operation-new" / "20261205T000000-provision"
    for run in (old, new):
        run.mkdir(parents=True)
        (run / "status").write_text("successful")
    week_ago = time.time() - 7 * 24 * 3600
    for path in (old, old / "status", old.parent):
        os.utime(path, (week_ago, week_ago))

    assert prune_vm_runs() == 1
    assert not old.parent.exists() and new.exists()
    assert "prune-vm-runs" in settings.CELERY_BEAT_SCHEDULE


def test_a_host_that_does_not_answer_over_ssh_is_a_failure_worth_retrying(tmp_path: Path) -> None:
    """Ansible reports the host unreachable (nothing listens on its SSH port): the operation's step is
    retried with backoff instead of failing for good, and the message names the host."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    pool = HostPool("lab", (InventoryHost("gone", "127.0.0.1", "a", ssh_port=port),), racks=("a",))
    backend = VmBackend(
        pool,
        VmPlacement(hosts=((0, "gone"),)),
        release=lambda version: Release(version, local_file="/nonexistent.tgz"),
        runs_dir=tmp_path,
    )
    with pytest.raises(
        BackendUnavailableError, match=r"provision\.yml failed on gone.*did not answer over SSH"
    ):
        backend.provision(_spec("a"))
    assert list(tmp_path.glob("cluster-*/*-provision/artifacts"))  # the run is kept for inspection


class _Log:
    scope = ""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def should_stop(self) -> bool:
        return False


def test_a_broker_on_a_dead_host_is_removed_without_a_playbook_and_a_live_one_is_not(
    listening: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead: neither Kafka's client port nor SSH answers; the broker is left out of the
    decommission (nothing could stop or clean it) and the log says its files stay. A host whose
    Kafka still answers is alive however SSH fares: its run is tried (and an unreachable host is a
    failure worth retrying, as for any playbook)."""
    closed = socket.create_server(("127.0.0.1", 0))
    no_ssh = closed.getsockname()[1]
    closed.close()
    pool = HostPool(
        "lab",
        (
            InventoryHost("dead", "127.0.0.2", "a", ssh_port=no_ssh),
            InventoryHost("silent", "127.0.0.1", "a", ssh_port=no_ssh),
        ),
        racks=("a",),
    )
    ports = {"127.0.0.2": no_ssh, "127.0.0.1": listening}
    real_probe = backend_module._probe
    monkeypatch.setattr(backend_module, "_probe", lambda address, port: real_probe(address, ports[address]))
    events = _Log()
    backend = VmBackend(
        pool,
        VmPlacement(hosts=((0, "dead"), (1, "silent"))),
        release=lambda version: Release(version, local_file="/nonexistent.tgz"),
        runs_dir=tmp_path,
        events=events,
    )
    spec = _spec("a", "a")
    backend.remove_brokers(spec, [0])
    assert not list(tmp_path.glob("cluster-*/*"))  # no playbook ran
    [line] = events.lines
    assert line.startswith("broker 0 is down and its host does not answer (dead (127.0.0.2): SSH failed: ")
    assert "Connection refused); it is removed without being stopped or cleaned there" in line
    with pytest.raises(BackendUnavailableError, match=r"decommission_broker\.yml failed on silent"):
        backend.remove_brokers(spec, [0, 1])
