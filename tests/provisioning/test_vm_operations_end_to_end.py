"""Day-2 operations of a `vm` cluster through the REST API, on real hosts, with a real Celery worker
running the playbooks through ansible-runner and real Apache Kafka, under an acks=all producer:
scale-out onto new hosts of the pool, a broker replaced without its disk (onto another free host of
its rack) and with it (on its own host), a broker left dead on its host healed by self-healing, and
scale-in freeing and emptying the hosts. Self-healing is shown twice: a broker dead on a live host
(its supervisor gone too), whose host is cleaned, and a dead host, which cannot be.

What a user cares about is checked: no acknowledged message lost, every partition fully replicated
and spread over the racks at the end (as Kafka itself reports), the hosts the pool's API view shows
as taken and freed, the freed hosts emptied of Kafka, and the operation logs.

The hosts are network namespaces with their own addresses and SSH servers (tests/support/vm_hosts.py);
what they are not (separate machines: one file system, no systemd as PID 1, Kafka run as the SSH
user) is said there and in docs/vm.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controlplane.clusters.models import Cluster
from controlplane.clusters.reconcile import reconcile_cluster
from provisioning.kafka_admin.base import ClusterState
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.api_waits import wait_until_ended
from tests.support.operated_kafka import TEST_CLUSTER_CONFIG, log_messages
from tests.support.tenants import Tenant, token_client
from tests.support.vm_cluster import cmdline, kafka_pid, lab_host_empty, register_lab_pool, start_vm_worker
from tests.support.vm_hosts import VmHost, VmHostLab
from tests.support.workers import WorkerProcess

VERSION = "4.4.0"
RACKS = ["a", "b", "c"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    pytest.mark.vm_playbooks,
    # A provisioning, two scales, three replacements and a removal over SSH: many minutes when busy.
    pytest.mark.timeout(3000),
]


def spread_problems(state: ClusterState, replication_factor: int) -> list[str]:
    """What is wrong with the cluster's replicas as Kafka reports them: a partition with fewer
    replicas than the replication factor, a replica out of sync, or replicas sharing a rack."""
    racks = {b.node_id: b.rack for b in state.brokers}
    problems = []
    for topic in state.topics:
        for p in topic.partitions:
            where = f"{topic.name}[{p.partition}] replicas {p.replicas} isr {p.isr}"
            if len(p.replicas) != replication_factor or set(p.isr) != set(p.replicas):
                problems.append(f"{where}: not fully replicated")
            elif len({racks.get(n) for n in p.replicas}) != replication_factor:
                problems.append(f"{where}: racks {[racks.get(n) for n in p.replicas]}")
    return problems


def mine(state: ClusterState, topic: str) -> dict[tuple[str, int], list[int]]:
    return {key: replicas for key, replicas in state.assignment().items() if key[0] == topic}


class Story:
    """The cluster under test as its user sees it: its API, its pool's API view, and Kafka."""

    def __init__(self, client: Any, cluster_id: str, pool_id: str, lab: VmHostLab) -> None:
        self.client = client
        self.id = cluster_id
        self.url = f"/api/v1/clusters/{cluster_id}/"
        self.pool_url = f"/api/v1/targets/{pool_id}/"
        self.lab = lab
        self.took: list[tuple[str, float]] = []  # (operation kind, seconds), printed at the end

    def info(self) -> dict[str, Any]:
        return self.client.get(self.url).json()

    def hosts_in_use(self) -> dict[str, str]:
        return self.client.get(self.pool_url).json()["hosts_in_use"]

    def operate(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"{self.url}{action}/", body, format="json")
        assert response.status_code == 202, response.content
        return self.finished(response.json()["operation"]["id"])

    def finished(self, operation_id: str) -> dict[str, Any]:
        operation = wait_until_ended(
            self.client, f"/api/v1/operations/{operation_id}/", timeout=1200, interval=2
        )
        assert operation["state"] == "succeeded", (operation["error"], log_messages(operation)[-20:])
        took = datetime.fromisoformat(operation["finished_at"]) - datetime.fromisoformat(
            operation["started_at"]
        )
        self.took.append((operation["kind"], took.total_seconds()))
        return operation

    def refusal(self, action: str, body: dict[str, Any]) -> str:
        response = self.client.post(f"{self.url}{action}/", body, format="json")
        assert response.status_code == 400, response.content
        return json.dumps(response.json())

    def state(self) -> ClusterState:
        admin = ConfluentKafkaAdmin(self.info()["bootstrap_servers"], timeout=15)
        try:
            return admin.describe_cluster()
        finally:
            admin.close()

    def settled(self) -> ClusterState:
        """Kafka's state once every partition is fully replicated over the racks (ISRs catch up a
        moment after an operation ends)."""
        found: list[list[str]] = []

        def healthy() -> ClusterState | None:
            state = self.state()
            found.append(spread_problems(state, 3))
            return None if found[-1] else state

        try:
            return wait_for(healthy, 120, interval=1, what="every partition fully replicated")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {found[-1:]}") from exc

    def healing(self, node_id: int) -> dict[str, Any]:
        """What beat does every 30 s: reconcile the cluster (its backend's look at every broker) until
        self-healing has opened an anomaly of the broker and started healing it; the anomaly."""

        def started() -> dict[str, Any] | None:
            reconcile_cluster(Cluster.objects.get(pk=self.id))
            anomalies = self.client.get(f"{self.url}anomalies/").json()["results"]
            return next((a for a in anomalies if a["node_id"] == node_id and a["state"] == "healing"), None)

        try:
            return wait_for(started, 120, interval=3, what=f"broker {node_id} being healed")
        except AssertionError as exc:
            brokers = [(b["node_id"], b["state"], b["state_detail"]) for b in self.info()["broker_nodes"]]
            anomalies = self.client.get(f"{self.url}anomalies/").json()["results"]
            raise AssertionError(f"{exc}; brokers {brokers}; anomalies {anomalies}") from exc

    def host_of(self, node_id: int) -> VmHost:
        name = next(
            host for host, user in self.hosts_in_use().items() if user.startswith(f"broker {node_id} of ")
        )
        return self.lab.hosts[name]


def test_a_vm_cluster_scales_out_replaces_heals_and_scales_in_through_the_api(
    tenant: Tenant,
    vm_hosts: VmHostLab,
    java_home: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.OPERATION_POLL_SECONDS = 1.0  # operations look again this often (their params say so)
    settings.SELF_HEALING_AFTER_SECONDS = 0.0  # heal at the first observation of a dead broker
    # Three racks: a holds three hosts, b and c two each.
    hosts = vm_hosts.add_many([*RACKS, *RACKS, "a"])
    rack_of = {h.name: h.rack for h in hosts}
    client = token_client(tenant.admin)
    pool = register_lab_pool(client, vm_hosts, hosts, java_home)
    start_vm_worker(start_worker, tmp_path)

    created = client.post(
        "/api/v1/clusters/",
        {
            "name": "orders",
            "backend": "vm",
            "brokers": 3,
            "racks": RACKS,
            "kafka_version": VERSION,
            "node_size": {"cpu": 1, "memory_mb": 768, "disk_gb": 10},
            "config": TEST_CLUSTER_CONFIG,
        },
        format="json",
    )
    assert created.status_code == 202, created.content
    story = Story(client, created.json()["id"], pool["id"], vm_hosts)
    story.finished(created.json()["operation"]["id"])
    assert story.hosts_in_use() == {f"host{n + 1}": f"broker {n} of cluster orders" for n in range(3)}
    bootstrap = story.info()["bootstrap_servers"]
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    admin = ConfluentKafkaAdmin(bootstrap, timeout=15)
    try:
        admin.create_topic(topic, 6, 3)
    finally:
        admin.close()

    # --- scale-out 3 -> 6: a host of each rack allocated at the request, brokers installed there,
    # replicas moved onto them (and only onto them), under a producer. ---
    assert "rack b needs 2 free hosts, the pool has 1" in story.refusal("scale", {"brokers": 9})
    before = mine(story.state(), topic)
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
        scaled = story.operate("scale", {"brokers": 6})
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    in_use = story.hosts_in_use()
    assert in_use == {f"host{n + 1}": f"broker {n} of cluster orders" for n in range(6)}
    state = story.settled()
    assert {b.node_id: b.rack for b in state.brokers} == {n: RACKS[n % 3] for n in range(6)}
    assert all(rack_of[story.host_of(b.node_id).name] == b.rack for b in state.brokers)
    after = mine(state, topic)
    # Minimal movement: a replica only ever moved onto a new broker, and the new brokers got their
    # share (every broker holds as many replicas as any other, give or take one).
    for partition, replicas in after.items():
        assert set(replicas) - set(before[partition]) <= {3, 4, 5}, (partition, before[partition], replicas)
    load = [sum(n in r for r in after.values()) for n in range(6)]
    assert max(load) - min(load) <= 1, load
    moved = sum(len(set(r) - set(before[p])) for p, r in after.items())
    assert any(line.startswith(f"plan: {moved} replica move(s)") for line in log_messages(scaled)), (
        moved,
        log_messages(scaled, "plan_moves"),
    )
    assert any(
        m.startswith("ansible host4: Format the node's storage: changed") for m in log_messages(scaled)
    )

    # --- a broker replaced without its disk: the new broker gets the rack's free host, the old one's
    # replicas move to it, then the old broker is decommissioned and its host freed and emptied. ---
    assert "KRaft controllers" in story.refusal("replace-broker", {"node_id": 0, "keep_disk": False})
    before = story.state().assignment()
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
        replaced = story.operate("replace-broker", {"node_id": 3, "keep_disk": False})
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    in_use = story.hosts_in_use()
    assert in_use.get("host7") == "broker 6 of cluster orders" and "host4" not in in_use, in_use
    assert lab_host_empty(vm_hosts.hosts["host4"])
    state = story.settled()
    assert {b.node_id for b in state.brokers} == {0, 1, 2, 4, 5, 6}
    # Each of broker 3's replicas moved once, to a broker of its rack, and nothing else moved (the
    # planner may hand some to broker 0 of the same rack, for the balance of every topic).
    after = state.assignment()
    for partition, replicas in before.items():
        gained = set(after[partition]) - set(replicas)
        assert (len(gained) == 1 and gained <= {0, 6}) if 3 in replicas else not gained, (
            partition,
            replicas,
            after[partition],
        )
    assert any(m.startswith("ansible: decommission_broker.yml") for m in log_messages(replaced))
    # Rack b has no free host left: replacing its broker without the disk is refused, with the reason.
    lacking = story.refusal("replace-broker", {"node_id": 4, "keep_disk": False})
    assert "rack b needs 1 free host, the pool has 0" in lacking, lacking

    # --- a broker replaced with its disk: started again on its own host, on its own data. ---
    host5 = vm_hosts.hosts["host5"]
    meta = host5.root / "var/lib/kafka/data/meta.properties"
    identity, pid = meta.read_text(), kafka_pid(host5)
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
        kept = story.operate("replace-broker", {"node_id": 4, "keep_disk": True})
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    assert story.hosts_in_use()["host5"] == "broker 4 of cluster orders"
    assert meta.read_text() == identity  # the same storage, not formatted again
    assert kafka_pid(host5) not in (None, pid)
    assert "ansible: upgrade.yml on host5" in log_messages(kept)
    story.settled()

    # --- self-healing: broker 6 dies on its host and stays dead (its supervisor gone too, as when
    # systemd gives up restarting it). The reconcile loop's look opens an anomaly, and self-healing
    # replaces the broker without its disk on the rack's free host: host4, emptied earlier. ---
    host7 = vm_hosts.hosts["host7"]
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
        kill_node(host7)
        healed = story.finished(story.healing(6)["operation"])
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    assert healed["kind"] == "replace_broker" and healed["params"]["replacement_node_id"] == 7, healed[
        "params"
    ]
    in_use = story.hosts_in_use()
    assert in_use.get("host4") == "broker 7 of cluster orders" and "host7" not in in_use, in_use
    assert lab_host_empty(host7)
    state = story.settled()
    assert {b.node_id for b in state.brokers} == {0, 1, 2, 4, 5, 7}
    assert client.get(f"{story.url}anomalies/").json()["results"][0]["state"] == "resolved"

    # --- self-healing of a dead host: host4 (broker 7) goes off the network for good, every process
    # in it killed. Broker 7 is replaced on the rack's free host; the dead host can be neither stopped
    # nor cleaned, so the operation says so and frees it as it is. ---
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
        vm_hosts.remove("host4")
        healed = story.finished(story.healing(7)["operation"])
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    in_use = story.hosts_in_use()
    assert in_use.get("host7") == "broker 8 of cluster orders" and "host4" not in in_use, in_use
    assert any(
        m.startswith("broker 7 is down and its host does not answer (host4") for m in log_messages(healed)
    ), log_messages(healed, "remove_old_broker")
    state = story.settled()
    assert {b.node_id for b in state.brokers} == {0, 1, 2, 4, 5, 8}

    # --- scale-in 6 -> 3: the newest broker of each rack drained, decommissioned, its host freed and
    # emptied. ---
    with AckedTraffic(bootstrap, topic) as traffic:
        traffic.wait_for_acks(200, timeout=120)
        shrunk = story.operate("scale", {"brokers": 3})
        traffic.wait_for_acks(len(traffic.acked) + 200, timeout=120)
    assert traffic.missing() == set()
    assert story.hosts_in_use() == {f"host{n + 1}": f"broker {n} of cluster orders" for n in range(3)}
    for name in ("host5", "host6", "host7"):
        assert lab_host_empty(vm_hosts.hosts[name]), name
    state = story.settled()
    assert {b.node_id for b in state.brokers} == {0, 1, 2}
    assert any(m.startswith("ansible: decommission_broker.yml") for m in log_messages(shrunk))
    assert story.info()["brokers"] == 3

    deleted = client.delete(story.url)
    assert deleted.status_code == 202
    wait_for(lambda: client.get(story.url).status_code == 404, 600, interval=2, what="the deletion")
    assert story.hosts_in_use() == {}
    assert all(lab_host_empty(host) for host in vm_hosts.hosts.values())
    print("operations took (s):", ", ".join(f"{kind} {seconds:.0f}" for kind, seconds in story.took))


def kill_node(host: VmHost) -> None:
    """Kill the node's supervisor, then Kafka itself: the broker is down and nothing starts it again."""
    for marker in (b"kafka-supervise", b"kafka.Kafka"):
        for pid in host.pids():
            if marker in cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: kafka_pid(host) is None, 30, what=f"Kafka gone from {host.name}")
