"""Rolling restarts and upgrades by the VM playbooks on real hosts with real Apache Kafka, under an
acks=all producer (tests/support/vm_cluster.py says how the test hosts differ from VMs).

A cluster of its own, three hosts in three racks on 4.3.2: a rolling restart, then an upgrade to 4.4.0.
Each restarts every node once, the active controller last (as `kafka-metadata-quorum` names it before
the roll), and every acknowledged message is read back afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.vm_cluster import NEW, OLD, VmCluster, install, roll_under_traffic

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    pytest.mark.vm_playbooks,
    # Each test runs whole playbooks over SSH against real brokers: minutes on a busy machine.
    pytest.mark.timeout(1200),
]


def test_rolling_restart_under_a_producer_restarts_the_active_controller_last(vm_cluster: VmCluster) -> None:
    install(vm_cluster)
    pids = {name: vm_cluster.kafka_pid(host) for name, host in vm_cluster.lab.hosts.items()}
    roll_under_traffic(vm_cluster, "rolling_restart.yml")
    assert all(
        vm_cluster.kafka_pid(host) not in (None, pids[name]) for name, host in vm_cluster.lab.hosts.items()
    )


def test_upgrade_under_a_producer_moves_every_node_to_the_new_release(vm_cluster: VmCluster) -> None:
    vm_cluster.spec = replace(vm_cluster.spec, kafka_version=NEW)
    roll_under_traffic(vm_cluster, "upgrade.yml")
    for host in vm_cluster.placement.values():
        pid = vm_cluster.kafka_pid(host)
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert f"releases/{NEW}/libs" in command_line and f"releases/{OLD}/libs" not in command_line
        assert (host.root / "opt" / "kafka" / "releases" / OLD / "bin").is_dir()  # kept for a rollback
