"""The VM playbooks' Python side without Kafka hosts: the generated inventory and plan, the pushed
release archive, ansible-runner's failures, cancellation and artifacts (on this machine through
Ansible's local connection), and ansible-lint over the playbooks. The playbooks on real hosts with
real Kafka: test_vm_playbooks_kafka.py."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from provisioning import kafka_config
from provisioning.ansible.inventory import (
    PLAYBOOKS_DIR,
    HostLayout,
    InventoryHost,
    Release,
    build_inventory,
    render_inventory,
)
from provisioning.ansible.release import release_archive
from provisioning.ansible.runner import (
    KEY_FILE,
    SECRETS_FILE,
    PlaybookCancelledError,
    PlaybookFailedError,
    prune_runs,
    run_playbook,
)
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.distribution import MARKER, KafkaDistribution


def _spec(brokers: int = 6, racks: str = "abc") -> ClusterSpec:
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name="orders",
        kafka_version="4.4.0",
        brokers=tuple(BrokerSpec(i + 1, racks[i % len(racks)]) for i in range(brokers)),
        replication_factor=3,
        min_insync_replicas=2,
        node_size=NodeSize(cpu=2, memory_mb=4096, disk_gb=100),
    )


def _placement(spec: ClusterSpec) -> dict[int, InventoryHost]:
    return {
        b.node_id: InventoryHost(f"kafka-{b.node_id}", f"10.0.0.{b.node_id}", b.rack, ssh_user="admin")
        for b in spec.brokers
    }


def test_inventory_groups_nodes_by_rack_and_role_and_carries_each_nodes_configuration() -> None:
    spec = _spec()
    controllers = kafka_config.choose_controllers(spec.brokers)
    inventory = build_inventory(
        spec,
        _placement(spec),
        controllers=controllers,
        quorum=kafka_config.QuorumStyle.DYNAMIC,
        release=Release("4.4.0", sha512="ab" * 64, url="https://mirror.example/kafka_2.13-4.4.0.tgz"),
    )
    children = inventory["all"]["children"]
    assert set(children["kafka"]["hosts"]) == {f"kafka-{n}" for n in range(1, 7)}
    assert set(children["rack_a"]["hosts"]) == {"kafka-1", "kafka-4"}
    assert set(children["kafka_controllers"]["hosts"]) == {f"kafka-{n}" for n in controllers}
    assert inventory["all"]["vars"]["kafka_bootstrap_servers"].split(",")[0] == "10.0.0.1:9092"
    node = inventory["all"]["hosts"]["kafka-5"]
    assert node["ansible_become"] is True  # a non-root SSH user
    assert "broker.rack=b\n" in node["kafka_server_properties"]
    assert "log.dirs=/var/lib/kafka/data\n" in node["kafka_server_properties"]
    assert node["kafka_storage_format_args"][:3] == [
        "format",
        "-t",
        kafka_config.kraft_cluster_id(spec.cluster_id),
    ]
    # The plan is the same inventory as YAML, server.properties readable as a block.
    plan = render_inventory(inventory)
    assert yaml.safe_load(plan) == inventory
    assert "kafka_server_properties: |" in plan


def test_inventory_refuses_a_node_without_a_host_and_lists_departed_hosts_apart() -> None:
    spec = _spec(3)
    placement = _placement(spec)
    args: dict[str, Any] = {
        "controllers": (1, 2, 3),
        "quorum": kafka_config.QuorumStyle.DYNAMIC,
        "release": Release("4.4.0"),
    }
    with pytest.raises(kafka_config.KafkaConfigError, match=r"nodes without a host: \[3\]"):
        build_inventory(spec, {n: h for n, h in placement.items() if n != 3}, **args)
    old = InventoryHost("old-3", "10.0.0.99", "c")
    inventory = build_inventory(spec, placement, departed={"kafka_replaced": [(3, old)]}, **args)
    assert set(inventory["all"]["children"]["kafka_replaced"]["hosts"]) == {"old-3"}
    assert "old-3" not in inventory["all"]["children"]["kafka"]["hosts"]
    assert inventory["all"]["hosts"]["old-3"]["kafka_node_id"] == 3


def test_paths_rendered_into_server_properties_are_the_ones_the_playbooks_use() -> None:
    defaults = yaml.safe_load((PLAYBOOKS_DIR / "roles/kafka/defaults/main.yml").read_text())
    for root in ("", "/srv/hosts/one"):
        paths = {k: v for k, v in defaults.items() if k.endswith("_dir")}
        values = {**paths, "kafka_root": root}
        for _ in range(3):  # the defaults refer to each other
            values = {k: jinja2.Template(v).render(values) for k, v in values.items()}
        layout = HostLayout(root)
        assert (values["kafka_config_dir"], values["kafka_data_dir"]) == (layout.config_dir, layout.data_dir)
        assert values["kafka_tls_dir"] == layout.tls_dir


def _fake_distribution(home: Path, version: str = "4.4.0") -> KafkaDistribution:
    (home / "bin").mkdir(parents=True)
    (home / "libs").mkdir()
    (home / "bin" / "kafka-server-start.sh").write_text("#!/bin/sh\n")
    (home / "bin" / "kafka-server-start.sh").chmod(0o755)
    (home / "libs" / f"kafka_2.13-{version}.jar").write_bytes(b"jar")
    (home / MARKER).write_text('{"fetched_at": 1}')
    return KafkaDistribution(version, home, "maven")


def test_release_archive_is_reproducible_with_the_official_layout(tmp_path: Path) -> None:
    distribution = _fake_distribution(tmp_path / "dist")
    first = release_archive(distribution, tmp_path / "one")
    os.utime(distribution.home / "libs" / "kafka_2.13-4.4.0.jar", (1, 1))
    second = release_archive(distribution, tmp_path / "two")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha512 == hashlib.sha512(first.path.read_bytes()).hexdigest()
    with tarfile.open(first.path) as archive:
        names = archive.getnames()
        assert archive.getmember("kafka_2.13-4.4.0/bin/kafka-server-start.sh").mode & 0o111
    assert "kafka_2.13-4.4.0/libs/kafka_2.13-4.4.0.jar" in names
    assert not any(MARKER in name for name in names)
    assert release_archive(distribution, tmp_path / "one") == first  # packed once


def _local_inventory(tmp_path: Path, **variables: Any) -> dict[str, Any]:
    """One node on this machine through Ansible's local connection (no SSH, no Kafka started)."""
    spec = _spec(1, "a")
    inventory = build_inventory(
        spec,
        {1: InventoryHost("localhost", "127.0.0.1", "a", kafka_root=str(tmp_path / "root"))},
        controllers=(1,),
        quorum=kafka_config.QuorumStyle.DYNAMIC,
        release=Release("4.4.0", local_file=str(tmp_path / "missing.tgz")),
        variables={
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "kafka_create_user": False,
            "kafka_user": "root",
            **variables,
        },
    )
    return inventory


def test_a_failed_run_names_the_host_the_task_and_the_message(tmp_path: Path) -> None:
    events: list[Any] = []
    inventory = _local_inventory(tmp_path, kafka_java_home=str(tmp_path / "no-jdk"))
    with pytest.raises(PlaybookFailedError) as failed:
        run_playbook(
            "provision.yml",
            inventory,
            run_dir=tmp_path / "runs" / "op" / "1",
            ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----",
            on_event=events.append,
        )
    error = failed.value
    assert (error.host, error.task) == ("localhost", "Check that Java can run Apache Kafka 4.4.0")
    assert "Apache Kafka 4.4.0 needs Java 17 or newer" in error.message
    assert [e.kind for e in events if e.host][:1] == ["ok"] and events[-1].kind == "failed"
    run_dir = tmp_path / "runs" / "op" / "1"
    # The key lived only for the run; the artifacts (inventory, events) stay, naming the key by path.
    assert not (run_dir / KEY_FILE).exists()
    assert "not a key" not in (run_dir / "inventory" / "hosts.yml").read_text()
    assert any((run_dir / "artifacts" / "run" / "job_events").iterdir())


def test_secret_variables_reach_ansible_only_for_the_run(tmp_path: Path) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    run_dir = tmp_path / "run"
    with pytest.raises(PlaybookFailedError):
        run_playbook(
            "provision.yml",
            _local_inventory(tmp_path, kafka_java_home=str(tmp_path / "no-jdk")),
            run_dir=run_dir,
            secret_vars={"kafka_storage_secret_args": ["--add-scram", secret]},
        )
    assert not (run_dir / SECRETS_FILE).exists()
    # Not in the kept inventory, command line, events or output either.
    kept = [path for path in run_dir.rglob("*") if path.is_file()]
    assert any(path.name == "command" for path in kept)
    assert not [path for path in kept if secret in path.read_text(errors="replace")]


def test_cancelling_stops_the_run(tmp_path: Path) -> None:
    events: list[Any] = []
    with pytest.raises(PlaybookCancelledError):
        run_playbook(
            "provision.yml",
            _local_inventory(tmp_path),
            run_dir=tmp_path / "run",
            on_event=events.append,
            should_cancel=lambda: any(e.host for e in events),
        )
    # Stopped after the first host event, long before the installation's last task.
    assert not any(e.task == "Wait for the node to accept connections" for e in events)


def test_old_runs_are_pruned(tmp_path: Path) -> None:
    old, recent = tmp_path / "op-old" / "run-1", tmp_path / "op-new" / "run-1"
    for run in (old, recent):
        run.mkdir(parents=True)
        (run / "status").write_text("successful")
    an_hour_ago = time.time() - 3600
    for path in (old / "status", old, old.parent):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert prune_runs(tmp_path, older_than_seconds=600) == [old.parent]
    assert recent.exists() and not old.parent.exists()


@pytest.mark.slow
def test_playbooks_pass_ansible_lint() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    result = subprocess.run(
        [str(lint), "--offline", "--profile", "production", "--nocolor"],
        cwd=PLAYBOOKS_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
