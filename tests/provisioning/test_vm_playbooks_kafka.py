"""The VM playbooks' cluster life on real hosts with real Apache Kafka, through ansible-runner as the
control plane runs them (tests/support/vm_cluster.py says how the test hosts differ from VMs: one shared
file system, no systemd as PID 1, Kafka run as the SSH user).

One cluster on one set of hosts goes through its life in order (each test builds on the one before):
install 4.3.2 on three hosts in three racks and use it at acks=all; run the installation again and
change nothing; a broker added on a fourth host, that host lost and replaced by a fifth with the same
node id; that broker decommissioned (refused while it holds replicas); a crashed broker started again by
its supervisor; the cluster removed. Rolling restarts and upgrades run on a cluster of their own in
test_vm_rolls_kafka.py, so the two modules can run side by side.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import replace

import pytest

from provisioning import kafka_config
from provisioning.ansible.runner import PlaybookFailedError
from provisioning.backends.base import BrokerSpec
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.vm_cluster import VmCluster, in_sync, install

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    pytest.mark.vm_playbooks,
    # Each test runs whole playbooks over SSH against real brokers: minutes on a busy machine.
    pytest.mark.timeout(1200),
]


def test_three_hosts_in_three_racks_form_one_cluster(vm_cluster: VmCluster) -> None:
    events = install(vm_cluster)
    # Events arrived per host and task while the playbook ran.
    assert {e.host for e in events if e.kind == "changed"} == {"host1", "host2", "host3"}
    assert any(e.task == "Format the node's storage" and e.kind == "changed" for e in events)

    admin = vm_cluster.admin()
    try:
        brokers = {b.node_id: (b.host, b.rack) for b in admin.describe_cluster().brokers}
        assert brokers == {n: (h.address, h.rack) for n, h in vm_cluster.placement.items()}
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
        wait_for(lambda: in_sync(admin, "payments"), 120, what="payments in sync")
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
        assert in_sync(admin, "payments")  # node 4's replicas copied back to the new host
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


def test_removing_the_cluster_leaves_nothing_on_the_hosts(vm_cluster: VmCluster) -> None:
    vm_cluster.run("remove_cluster.yml")
    for host in vm_cluster.placement.values():
        assert vm_cluster.kafka_pid(host) is None
        assert not any(
            (host.root / path).exists() for path in ("opt/kafka", "etc/kafka", "var/lib/kafka/data")
        )
    assert vm_cluster.run("remove_cluster.yml").total_changed == 0
