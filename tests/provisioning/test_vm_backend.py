"""The vm backend without hosts to install on: what it refuses, what it plans, how it describes
brokers (by whether their client port accepts a connection: real sockets on loopback), and the
pruning of its playbook runs."""

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

from controlplane.targets.tasks import prune_vm_runs
from provisioning.ansible import backend as backend_module
from provisioning.ansible.backend import VmBackend, VmPlacement
from provisioning.ansible.inventory import InventoryHost, Release
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
    secured = replace(_spec("a", "b", "c"), security=SecuritySpec(("scram",), "", "", ""))
    assert "does not issue broker certificates" in backend.validate(secured)["client_authentication"]
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
