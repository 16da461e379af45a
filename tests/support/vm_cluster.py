"""One Kafka cluster on real test hosts (tests/support/vm_hosts.py), driven by the VM playbooks through
ansible-runner as the control plane runs them. Shared by the playbook modules that run on real hosts.

Two things differ from real VMs, and the modules using this say so:
- the hosts share one file system, so each host installs under its own root (`kafka_root`);
- nothing runs systemd as PID 1, so Kafka runs under the playbooks' supervisor
  (`kafka_service_manager: supervised`) and as the SSH user (`kafka_create_user: false`): the systemd
  unit and the `kafka` account the playbooks make on real VMs are not exercised here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioning import kafka_config
from provisioning.ansible.inventory import CLIENT_PORT, InventoryHost, Release, build_inventory
from provisioning.ansible.release import ReleaseArchive, release_archive
from provisioning.ansible.runner import PlaybookEvent, PlaybookResult, run_playbook
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.vm_hosts import VmHost, VmHostLab
from tests.support.workers import WorkerProcess

OLD, NEW = "4.3.2", "4.4.0"
HEAP_MB = 384


@dataclass
class VmCluster:
    """One Kafka cluster on lab hosts, and the playbook runs made on it."""

    lab: VmHostLab
    runs_dir: Path
    java_home: Path
    archives: dict[str, ReleaseArchive]
    spec: ClusterSpec
    placement: dict[int, VmHost] = field(default_factory=dict)
    controllers: tuple[int, ...] = ()
    runs: int = 0

    def inventory(self, **kwargs: Any) -> dict[str, Any]:
        archive = self.archives[self.spec.kafka_version]
        variables = {
            # The test hosts' differences from a VM (see the module docstring).
            "kafka_service_manager": "supervised",
            "kafka_create_user": False,
            "kafka_user": "root",
            "kafka_java_home": str(self.java_home),
            "kafka_heap_mb": HEAP_MB,
            "kafka_check_interval": 2,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_private_key_file": str(self.lab.private_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.lab.known_hosts} -o StrictHostKeyChecking=yes",
        }
        departed = {
            group: [(node_id, inventory_host(host)) for node_id, host in members]
            for group, members in kwargs.pop("departed", {}).items()
        }
        return build_inventory(
            self.spec,
            {node_id: inventory_host(host) for node_id, host in self.placement.items()},
            controllers=self.controllers,
            quorum=kafka_config.QuorumStyle.DYNAMIC,
            release=Release(self.spec.kafka_version, archive.sha512, str(archive.path)),
            departed=departed,
            variables=variables,
            **kwargs,
        )

    def run(self, playbook: str, **inventory_args: Any) -> PlaybookResult:
        self.runs += 1
        return run_playbook(
            playbook,
            self.inventory(**inventory_args),
            run_dir=self.runs_dir / f"run-{self.runs}",
        )

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.placement[b.node_id].address}:{CLIENT_PORT}" for b in self.spec.brokers)

    def admin(self) -> ConfluentKafkaAdmin:
        return ConfluentKafkaAdmin(self.bootstrap_servers, timeout=15)

    def wait_in_sync(self, topic: str, timeout: float = 180) -> None:
        admin = self.admin()
        try:
            wait_for(lambda: in_sync(admin, topic), timeout, what=f"{topic} in sync")
        finally:
            admin.close()

    def tool(self, host: VmHost, command: str) -> str:
        """Run one of the Kafka tools installed on `host` (of any release there), over SSH."""
        home = min((host.root / "opt/kafka/releases").iterdir())
        return host.ssh(f"JAVA_HOME={self.java_home} {home}/bin/{command}", timeout=120).stdout

    def active_controller(self) -> int:
        host = self.placement[self.controllers[0]]
        status = self.tool(
            host, f"kafka-metadata-quorum.sh --bootstrap-server {self.bootstrap_servers} describe --status"
        )
        match = re.search(r"LeaderId:\s*(\d+)", status)
        assert match, status
        return int(match.group(1))

    def kafka_pid(self, host: VmHost) -> int | None:
        return kafka_pid(host)


def inventory_host(host: VmHost) -> InventoryHost:
    return InventoryHost(
        host.name, host.address, host.rack, ssh_user=host.ssh_user, kafka_root=str(host.root)
    )


RESTART_TASK = "Stop the node under the supervisor (controlled shutdown)"


def roll_under_traffic(vm_cluster: VmCluster, playbook: str) -> None:
    """Run a rolling playbook while an acks=all producer runs: every node restarts once, the active
    controller last, and every acknowledged message can be read afterwards."""
    leader = vm_cluster.placement[vm_cluster.active_controller()].name
    traffic = AckedTraffic(vm_cluster.bootstrap_servers, "orders")
    with traffic:
        traffic.wait_for_acks(100, timeout=120)
        result = vm_cluster.run(playbook)
        traffic.wait_for_acks(len(traffic.acked) + 100, timeout=120)
    order = [e.host for e in result.events if e.kind == "changed" and e.task == RESTART_TASK]
    assert sorted(order) == ["host1", "host2", "host3"] and order[-1] == leader, order
    assert traffic.missing() == set()


@pytest.fixture(scope="module")
def vm_cluster(
    vm_hosts: VmHostLab,
    kafka_distributions: Any,
    java_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VmCluster]:
    archive_dir = tmp_path_factory.mktemp("kafka-archives")
    archives = {version: release_archive(kafka_distributions(version), archive_dir) for version in (OLD, NEW)}
    hosts = vm_hosts.add_many(["a", "b", "c"])
    spec = ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name="vm",
        kafka_version=OLD,
        brokers=tuple(BrokerSpec(index + 1, host.rack) for index, host in enumerate(hosts)),
        replication_factor=3,
        min_insync_replicas=2,
        node_size=NodeSize(cpu=1, memory_mb=1024, disk_gb=10),
    )
    cluster = VmCluster(
        vm_hosts,
        tmp_path_factory.mktemp("vm-runs"),
        java_home,
        archives,
        spec,
        placement={index + 1: host for index, host in enumerate(hosts)},
        controllers=kafka_config.choose_controllers(spec.brokers),
    )
    yield cluster  # the lab's teardown kills whatever still runs on the hosts


def install(vm_cluster: VmCluster, topic: str = "orders") -> list[PlaybookEvent]:
    """Run the provision playbook, wait for every broker to register, create `topic` (RF 3); returns
    the playbook's events."""
    events: list[PlaybookEvent] = []
    vm_cluster.runs += 1
    result = run_playbook(
        "provision.yml",
        vm_cluster.inventory(),
        run_dir=vm_cluster.runs_dir / f"run-{vm_cluster.runs}",
        on_event=events.append,
    )
    assert result.status == "successful"
    admin = vm_cluster.admin()
    try:
        count = len(vm_cluster.spec.brokers)
        wait_for(
            lambda: len(admin.describe_cluster().brokers) == count, 120, what=f"{count} brokers registered"
        )
        admin.create_topic(topic, 6, 3)
    finally:
        admin.close()
    return events


def in_sync(admin: ConfluentKafkaAdmin, topic: str) -> bool:
    state = admin.describe_topics([topic]).get(topic)
    return state is not None and all(set(p.isr) == set(p.replicas) for p in state.partitions)


# -- a host pool operated through the API ---------------------------------------------------------


def register_lab_pool(
    client: Any, lab: VmHostLab, hosts: list[VmHost], java_home: Path, *, name: str = "lab"
) -> dict[str, Any]:
    """Register `hosts` as a host pool through the API, as users do, with the lab's key and host keys
    and the test hosts' differences from VMs (their own `kafka_root`, the playbooks' supervisor, Kafka
    as the SSH user). Returns the created pool."""
    response = client.post(
        "/api/v1/targets/",
        {
            "name": name,
            "kind": "vm",
            "settings": {
                "racks": sorted({h.rack for h in hosts}),
                "hosts": [
                    {"name": h.name, "address": h.address, "rack": h.rack, "kafka_root": str(h.root)}
                    for h in hosts
                ],
                "service_manager": "supervised",
                "kafka_user": "",
                "java_home": str(java_home),
                "python_interpreter": "/usr/bin/python3",
            },
            "ssh_private_key": lab.private_key.read_text(),
            "known_hosts": lab.known_hosts.read_text(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def start_vm_worker(start_worker: Callable[..., WorkerProcess], tmp_path: Path) -> Path:
    """Start the test's Celery worker with the vm backend's run and release directories under
    `tmp_path`; returns the runs directory (where each operation's playbook runs are kept)."""
    runs = tmp_path / "runs"
    start_worker(purge=True, VM_RUNS_DIR=str(runs), VM_RELEASES_DIR=str(tmp_path / "releases"))
    return runs


def lab_host_empty(host: VmHost) -> bool:
    """Whether nothing of Kafka is left on the host: no node running, nothing installed."""
    running = kafka_pid(host) is not None
    installed = any(
        (host.root / path).exists()
        for path in ("opt/kafka", "etc/kafka", "var/lib/kafka/data", "var/log/kafka")
    )
    return not running and not installed


def kafka_pid(host: VmHost) -> int | None:
    """The pid of the Kafka JVM running on `host` (in its namespace), if one runs."""
    return next((pid for pid in host.pids() if b"kafka.Kafka" in cmdline(pid)), None)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""
