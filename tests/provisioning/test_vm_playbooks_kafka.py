"""The VM playbooks on real hosts with real Apache Kafka, through ansible-runner as the control plane
runs them.

The hosts are network namespaces with their own addresses and SSH servers (tests/support/vm_hosts.py),
reached over SSH with a generated key. Two things differ from real VMs, and the test says so:
- they share one file system, so each host installs under its own root (`kafka_root`);
- nothing runs systemd as PID 1, so Kafka runs under the playbooks' supervisor
  (`kafka_service_manager: supervised`) and as the SSH user (`kafka_create_user: false`): the systemd
  unit and the `kafka` account the playbooks make on real VMs are not exercised here.

One cluster on one set of hosts goes through the whole life the playbooks cover, in order (each test
builds on the one before): install 4.3.2 on three hosts in three racks and use it at acks=all; run the
installation again and change nothing; a rolling restart under a producer (nothing acknowledged lost,
the active controller last); a broker added on a fourth host, that host lost and replaced by a fifth
with the same node id; that broker decommissioned (refused while it holds replicas); an upgrade to
4.4.0 under a producer; the cluster removed.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from provisioning import kafka_config
from provisioning.ansible.inventory import CLIENT_PORT, InventoryHost, Release, build_inventory
from provisioning.ansible.release import ReleaseArchive, release_archive
from provisioning.ansible.runner import PlaybookEvent, PlaybookFailedError, PlaybookResult, run_playbook
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.vm_hosts import VmHost, VmHostLab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    # Each test runs whole playbooks over SSH against real brokers: minutes on a busy machine.
    pytest.mark.timeout(1200),
]

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
            group: [(node_id, _inventory_host(host)) for node_id, host in members]
            for group, members in kwargs.pop("departed", {}).items()
        }
        return build_inventory(
            self.spec,
            {node_id: _inventory_host(host) for node_id, host in self.placement.items()},
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
            wait_for(lambda: _in_sync(admin, topic), timeout, what=f"{topic} in sync")
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
        """The pid of the Kafka JVM running on `host` (in its namespace), if one runs."""
        for pid in host.pids():
            try:
                command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"kafka.Kafka" in command_line:
                return pid
        return None


def _inventory_host(host: VmHost) -> InventoryHost:
    return InventoryHost(
        host.name, host.address, host.rack, ssh_user=host.ssh_user, kafka_root=str(host.root)
    )


RESTART_TASK = "Stop the node under the supervisor (controlled shutdown)"


def _roll_under_traffic(vm_cluster: VmCluster, playbook: str) -> None:
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


def test_three_hosts_in_three_racks_form_one_cluster(vm_cluster: VmCluster) -> None:
    events: list[PlaybookEvent] = []
    result = run_playbook(
        "provision.yml",
        vm_cluster.inventory(),
        run_dir=vm_cluster.runs_dir / "provision",
        on_event=events.append,
    )
    assert result.status == "successful"
    # Events arrived per host and task while the playbook ran.
    assert {e.host for e in events if e.kind == "changed"} == {"host1", "host2", "host3"}
    assert any(e.task == "Format the node's storage" and e.kind == "changed" for e in events)

    admin = vm_cluster.admin()
    try:
        wait_for(lambda: len(admin.describe_cluster().brokers) == 3, 120, what="three brokers registered")
        brokers = {b.node_id: (b.host, b.rack) for b in admin.describe_cluster().brokers}
        assert brokers == {n: (h.address, h.rack) for n, h in vm_cluster.placement.items()}
        admin.create_topic("orders", 6, 3)
    finally:
        admin.close()
    # One cluster id on every node, from one format each.
    ids = {
        re.search(
            r"cluster.id=(\S+)", host.ssh(f"cat {host.root}/var/lib/kafka/data/meta.properties").stdout
        )[1]
        for host in vm_cluster.placement.values()
    }
    assert ids == {kafka_config.kraft_cluster_id(vm_cluster.spec.cluster_id)}

    traffic = AckedTraffic(vm_cluster.bootstrap_servers, "orders")
    with traffic:
        traffic.wait_for_acks(200, timeout=120)
    assert traffic.missing() == set()


def test_running_the_installation_again_changes_nothing(vm_cluster: VmCluster) -> None:
    result = vm_cluster.run("provision.yml")
    assert result.total_changed == 0, result.changed


def test_rolling_restart_under_a_producer_restarts_the_active_controller_last(vm_cluster: VmCluster) -> None:
    pids = {name: vm_cluster.kafka_pid(host) for name, host in vm_cluster.lab.hosts.items()}
    _roll_under_traffic(vm_cluster, "rolling_restart.yml")
    assert all(
        vm_cluster.kafka_pid(host) not in (None, pids[name]) for name, host in vm_cluster.lab.hosts.items()
    )


def test_a_lost_broker_host_is_replaced_with_the_same_node_id(vm_cluster: VmCluster) -> None:
    # A fourth broker (not a controller) joins on a fourth host in rack a, and gets replicas.
    fourth = vm_cluster.lab.add("a")
    vm_cluster.spec = replace(vm_cluster.spec, brokers=(*vm_cluster.spec.brokers, BrokerSpec(4, "a")))
    vm_cluster.placement[4] = fourth
    vm_cluster.run("provision.yml", groups={}, departed={})
    admin = vm_cluster.admin()
    try:
        wait_for(lambda: 4 in {b.node_id for b in admin.describe_cluster().brokers}, 120, what="broker 4")
        admin.create_topic_assigned("payments", [[4, 2, 3], [2, 4, 3], [3, 2, 4]])
        wait_for(lambda: _in_sync(admin, "payments"), 120, what="payments in sync")
    finally:
        admin.close()
    traffic = AckedTraffic(vm_cluster.bootstrap_servers, "payments")
    with traffic:
        traffic.wait_for_acks(100, timeout=120)

    # The host dies; a fifth host in the same rack takes over node 4 with an empty disk.
    vm_cluster.lab.remove(fourth.name)
    fifth = vm_cluster.lab.add("a")
    vm_cluster.placement[4] = fifth
    result = vm_cluster.run(
        "replace_broker.yml", groups={"kafka_replacement": [4]}, departed={"kafka_replaced": [(4, fourth)]}
    )
    assert result.status == "successful"
    admin = vm_cluster.admin()
    try:
        brokers = {b.node_id: b.host for b in admin.describe_cluster().brokers}
        assert brokers[4] == fifth.address
        assert _in_sync(admin, "payments")  # node 4's replicas copied back to the new host
    finally:
        admin.close()
    assert traffic.missing() == set()


def test_decommission_refuses_a_broker_with_replicas_then_removes_it_drained(vm_cluster: VmCluster) -> None:
    fifth = vm_cluster.placement[4]
    remaining = replace(vm_cluster.spec, brokers=vm_cluster.spec.brokers[:3])
    vm_cluster.spec = remaining
    del vm_cluster.placement[4]
    with pytest.raises(PlaybookFailedError) as refused:
        vm_cluster.run("decommission_broker.yml", departed={"kafka_decommissioned": [(4, fifth)]})
    assert refused.value.host == fifth.name
    assert refused.value.task == "Check that the node holds no replica any more"
    assert "node 4 still holds replicas of" in refused.value.message and "payments-0" in refused.value.message
    assert vm_cluster.kafka_pid(fifth) is not None  # refused before anything was stopped

    admin = vm_cluster.admin()
    try:
        admin.alter_partition_reassignments(
            {("payments", 0): [1, 2, 3], ("payments", 1): [2, 1, 3], ("payments", 2): [3, 2, 1]}
        )
        wait_for(lambda: not admin.list_partition_reassignments(), 120, what="reassignment done")
        result = vm_cluster.run("decommission_broker.yml", departed={"kafka_decommissioned": [(4, fifth)]})
        assert result.status == "successful"
        wait_for(
            lambda: {b.node_id for b in admin.describe_cluster().brokers} == {1, 2, 3}, 60, what="node 4 gone"
        )
    finally:
        admin.close()
    assert vm_cluster.kafka_pid(fifth) is None
    assert not (fifth.root / "opt/kafka").exists() and not (fifth.root / "var/lib/kafka/data").exists()


def test_a_crashed_broker_is_started_again_by_its_supervisor(vm_cluster: VmCluster) -> None:
    # What systemd's Restart=on-failure does on a VM, the supervisor does on the test hosts.
    host = vm_cluster.placement[2]
    crashed = vm_cluster.kafka_pid(host)
    assert crashed is not None
    os.kill(crashed, signal.SIGKILL)
    restarted = wait_for(
        lambda: vm_cluster.kafka_pid(host) not in (None, crashed) and vm_cluster.kafka_pid(host), 120
    )
    assert restarted != crashed
    vm_cluster.wait_in_sync("orders")


def test_upgrade_under_a_producer_moves_every_node_to_the_new_release(vm_cluster: VmCluster) -> None:
    vm_cluster.spec = replace(vm_cluster.spec, kafka_version=NEW)
    _roll_under_traffic(vm_cluster, "upgrade.yml")
    for host in vm_cluster.placement.values():
        pid = vm_cluster.kafka_pid(host)
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert f"releases/{NEW}/libs" in command_line and f"releases/{OLD}/libs" not in command_line
        assert (host.root / "opt" / "kafka" / "releases" / OLD / "bin").is_dir()  # kept for a rollback


def test_removing_the_cluster_leaves_nothing_on_the_hosts(vm_cluster: VmCluster) -> None:
    vm_cluster.run("remove_cluster.yml")
    for host in vm_cluster.placement.values():
        assert vm_cluster.kafka_pid(host) is None
        assert not any(
            (host.root / path).exists() for path in ("opt/kafka", "etc/kafka", "var/lib/kafka/data")
        )
    assert vm_cluster.run("remove_cluster.yml").total_changed == 0


def _in_sync(admin: ConfluentKafkaAdmin, topic: str) -> bool:
    state = admin.describe_topics([topic]).get(topic)
    return state is not None and all(set(p.isr) == set(p.replicas) for p in state.partitions)
