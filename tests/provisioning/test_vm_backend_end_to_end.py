"""A `vm` cluster from request to deletion through the REST API, on real hosts, with a real Celery
worker running the playbooks through ansible-runner and real Apache Kafka: provisioned, used at
acks=all, deleted; and, in a test of its own, upgraded broker by broker under a producer.

The upgrade's test is marked `vm_playbooks`: `make test-vm` runs it, `make test` leaves it out for
time (three rolling node upgrades over SSH are most of this module's time). `make test` still proves
the upgrade workflow through the API under a producer on real Kafka (tests/operations/
test_on_apache_kafka.py, `local` backend) and `upgrade.yml` itself is proven by make test-vm as well
(tests/provisioning/test_vm_rolls_kafka.py).

The hosts are network namespaces with their own addresses and SSH servers (tests/support/vm_hosts.py),
registered as a host pool with the lab's generated key and host keys. What they are not (separate
machines) is said there and in docs/vm.md: they share one file system (each host gets its own
`kafka_root`), have no systemd as PID 1 (Kafka runs under the playbooks' supervisor) and run Kafka as
the SSH user; the systemd unit and the `kafka` account are not exercised here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from rest_framework.test import APIClient

from controlplane.targets.models import HostAllocation
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.api_waits import wait_until_ended, wait_until_provisioned
from tests.support.tenants import Tenant, token_client
from tests.support.vm_cluster import cmdline, register_lab_pool, start_vm_worker
from tests.support.vm_hosts import VmHost, VmHostLab
from tests.support.workers import WorkerProcess

OLD, NEW = "4.3.2", "4.4.0"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    # A provisioning, an upgrade or a removal over SSH with real brokers: minutes on a busy machine.
    pytest.mark.timeout(1500),
]


def _kafka_processes(hosts: list[VmHost]) -> list[int]:
    return [pid for host in hosts for pid in host.pids() if b"kafka.Kafka" in cmdline(pid)]


def register_pool(client: APIClient, lab: VmHostLab, java_home: Path) -> tuple[list[VmHost], dict[str, Any]]:
    """Three new hosts in racks a, b and c, registered as a host pool through the API with the lab's
    key and host keys: the hosts and the pool."""
    hosts = lab.add_many(["a", "b", "c"])
    return hosts, register_lab_pool(client, lab, hosts, java_home)


def create_cluster(client: APIClient, kafka_version: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A three-rack cluster asked for through the API, once provisioned: its URL, body and operation."""
    created = client.post(
        "/api/v1/clusters/",
        {
            "name": "orders",
            "backend": "vm",
            "brokers": 3,
            "racks": ["a", "b", "c"],
            "kafka_version": kafka_version,
            "node_size": {"cpu": 1, "memory_mb": 768, "disk_gb": 10},
        },
        format="json",
    )
    assert created.status_code == 202, created.content
    cluster_url = f"/api/v1/clusters/{created.json()['id']}/"
    cluster = wait_until_provisioned(client, cluster_url, timeout=1200, interval=2)
    operation = client.get(f"/api/v1/operations/{created.json()['operation']['id']}/").json()
    assert cluster["status"] == "running", operation["error"]
    return cluster_url, cluster, operation


def test_a_vm_cluster_is_provisioned_used_and_deleted_through_the_api(
    tenant: Tenant,
    vm_hosts: VmHostLab,
    java_home: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    client = token_client(tenant.admin)
    hosts, pool = register_pool(client, vm_hosts, java_home)
    # Every host answers over SSH with its known host key, and has Python and Java.
    report = client.post(f"/api/v1/targets/{pool['id']}/test-connection/").json()
    assert report["ok"], report
    assert [c["name"] for c in report["checks"]] == [f"host {h.name}" for h in hosts]
    assert all("answers as root with its known host key" in c["message"] for c in report["checks"])
    start_vm_worker(start_worker, tmp_path)

    cluster_url, cluster, operation = create_cluster(client, NEW)
    assert {n: h.name for n, h in enumerate(hosts)} == dict(
        HostAllocation.objects.values_list("broker__node_id", "host")
    )
    # The operation log shows Ansible's events per host and task, under the step that ran them.
    lines = [line["message"] for line in operation["log"]]
    for host in hosts:
        assert any(m.startswith(f"ansible {host.name}: Format the node's storage: changed") for m in lines)
    assert any(
        re.match(rf"ansible: provision\.yml done; changed tasks per host: {hosts[0].name} \d+", m)
        for m in lines
    )
    bootstrap = cluster["bootstrap_servers"]
    assert bootstrap == ",".join(f"{h.address}:9092" for h in hosts)
    assert {b["endpoint"] for b in cluster["broker_nodes"]} == {f"{h.address}:9092" for h in hosts}

    # Used at acks=all: every message the three brokers acknowledged is read back.
    topic = new_topic(bootstrap)
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
    assert traffic.missing() == set()

    deleted = client.delete(cluster_url)
    assert deleted.status_code == 202
    wait_for(lambda: client.get(cluster_url).status_code == 404, 600, interval=2, what="the deletion")
    assert not HostAllocation.objects.exists()
    assert _kafka_processes(hosts) == []
    for host in hosts:
        assert not any(
            (host.root / path).exists() for path in ("opt/kafka", "etc/kafka", "var/lib/kafka/data")
        )
    # Free again: a new cluster's plan gets the same three hosts.
    plan = client.post(
        "/api/v1/clusters/?dry_run=true",
        {"name": "payments", "backend": "vm", "brokers": 3, "racks": ["a", "b", "c"]},
        format="json",
    )
    assert plan.status_code == 200, plan.content
    assert f"broker 0 on {hosts[0].name}" in plan.json()["summary"]


def new_topic(bootstrap: str) -> str:
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the request dies with its client
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(60)
    return topic


@pytest.mark.vm_playbooks
def test_a_vm_cluster_is_upgraded_under_a_producer_through_the_api(
    tenant: Tenant,
    vm_hosts: VmHostLab,
    java_home: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    client = token_client(tenant.admin)
    hosts, _ = register_pool(client, vm_hosts, java_home)
    start_vm_worker(start_worker, tmp_path)
    cluster_url, cluster, _ = create_cluster(client, OLD)
    bootstrap = cluster["bootstrap_servers"]
    topic = new_topic(bootstrap)
    # A rolling upgrade through the API under an acks=all producer: the workflow restarts one broker
    # at a time through upgrade.yml on that broker's host (the new release pushed and unpacked there),
    # then raises the feature levels; no acknowledged message is lost.
    traffic = AckedTraffic(bootstrap, topic)
    with traffic:
        traffic.wait_for_acks(200, timeout=120)
        upgrade = client.post(f"{cluster_url}upgrade/", {"kafka_version": NEW}, format="json")
        assert upgrade.status_code == 202, upgrade.content
        upgrade_url = f"/api/v1/operations/{upgrade.json()['operation']['id']}/"
        rolled = wait_until_ended(client, upgrade_url, timeout=1200, interval=2, what="the rolling upgrade")
        assert rolled["state"] == "succeeded", rolled["error"]
        traffic.wait_for_acks(len(traffic.acked) + 100, timeout=120)
    assert traffic.missing() == set()
    assert client.get(cluster_url).json()["kafka_version"] == NEW
    for host in hosts:
        assert (host.root / f"opt/kafka/releases/{NEW}").is_dir()
    rolled_lines = [line["message"] for line in rolled["log"]]
    restarted = [m.split(" on ")[1] for m in rolled_lines if m.startswith("ansible: upgrade.yml on ")]
    assert sorted(restarted) == sorted(h.name for h in hosts), rolled_lines
    stopped = [
        m.split(":")[0].removeprefix("ansible ")
        for m in rolled_lines
        if "Stop the node under the supervisor (controlled shutdown): changed" in m
    ]
    assert sorted(stopped) == sorted(h.name for h in hosts), rolled_lines
    assert any(m.startswith(f"feature levels of Kafka {NEW}") for m in rolled_lines), rolled_lines
