"""The local backend running real Apache Kafka (KRaft) from `provisioning.distribution`.

Everything here is checked against the brokers themselves (Admin API, their own files and logs),
not against the backend's bookkeeping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import Producer

from provisioning import distribution, kafka_config
from provisioning.backends.base import BackendError, BrokerProcessState, BrokerSpec, ClusterSpec
from provisioning.backends.local import LocalBackend, stop_all
from provisioning.distribution import DistributionError, KafkaDistribution
from tests.support.apache_kafka import KafkaTestCluster, kafka_spec, make_backend, wait_for

pytestmark = pytest.mark.slow

OLDEST = distribution.SUPPORTED_VERSIONS[-1]  # 3.9.x: static quorum


@pytest.fixture
def backend(
    tmp_path: Path, kafka_distributions: Callable[[str], KafkaDistribution], java_home: Path
) -> LocalBackend:
    backend = make_backend(tmp_path / "local", kafka_distributions, java_home)
    yield backend
    stop_all(backend.state_dir, grace=0)


def broker_dir(backend: LocalBackend, spec: ClusterSpec, node_id: int) -> Path:
    return backend.state_dir / spec.cluster_id / f"broker-{node_id}"


def properties(backend: LocalBackend, spec: ClusterSpec, node_id: int) -> dict[str, str]:
    text = (broker_dir(backend, spec, node_id) / "server.properties").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def recorded(backend: LocalBackend, spec: ClusterSpec) -> dict:
    return json.loads((backend.state_dir / spec.cluster_id / "state.json").read_text())


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def produce(bootstrap_servers: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all"})
    for number in range(count):
        producer.produce(topic, str(number).encode())
    assert producer.flush(60) == 0


def test_validate_and_plan_need_no_distribution(tmp_path: Path, java_home: Path) -> None:
    fetched: list[str] = []

    def distributions(version: str) -> KafkaDistribution:
        fetched.append(version)
        raise DistributionError("not here")

    backend = make_backend(tmp_path / "local", distributions, java_home)
    assert backend.validate(kafka_spec(brokers=6)) == {}
    errors = backend.validate(
        kafka_spec(brokers=1, version="3.2.0", config=(("listeners", "PLAINTEXT://:1"),))
    )
    assert "3.3 or newer" in errors["kafka_version"]
    assert "listeners: cannot be overridden" in errors["config"]

    spec = kafka_spec(brokers=4)
    plan = backend.plan(spec)
    assert "dynamic controller quorum" in plan.summary
    assert "Controllers (combined with brokers): 1, 2, 3" in plan.summary
    commands = plan.artifacts["broker-2/commands.sh"]
    assert '"$KAFKA_HOME/bin/kafka-storage.sh" format -t ' in commands
    assert "--initial-controllers" in commands
    assert "--initial-controllers" not in plan.artifacts["broker-4/commands.sh"]
    assert "node.id=2\n" in plan.artifacts["broker-2/server.properties"]
    assert fetched == [] and not (backend.state_dir / spec.cluster_id).exists(), "a plan changes nothing"

    with pytest.raises(BackendError, match=r"Apache Kafka \S+ is not available: not here"):
        backend.provision(spec)


def test_three_racks_of_real_brokers(apache_kafka_cluster: KafkaTestCluster) -> None:
    """Each broker its own ports, directory, rack; a replicated topic spans the three racks."""
    cluster = apache_kafka_cluster
    backend, spec = cluster.backend, cluster.spec
    state = recorded(backend, spec)
    assert state["quorum"] == "dynamic"
    brokers = {b["node_id"]: b for b in state["brokers"]}
    ports = [b["port"] for b in brokers.values()] + [b["controller_port"] for b in brokers.values()]
    assert len(set(ports)) == 6

    described = cluster.admin().describe_cluster()
    assert {(b.node_id, b.rack) for b in described.brokers} == {(1, "a"), (2, "b"), (3, "c")}
    racks = {b.node_id: b.rack for b in described.brokers}
    topic = cluster.topic("three-racks", partitions=6)
    partitions = next(t for t in cluster.admin().describe_cluster().topics if t.name == topic).partitions
    assert all({racks[r] for r in p.replicas} == {"a", "b", "c"} for p in partitions)

    for node_id in (1, 2, 3):
        props = properties(backend, spec, node_id)
        assert props["broker.rack"] == racks[node_id]
        assert "controller.quorum.bootstrap.servers" in props
        assert props["log.dirs"] == str(broker_dir(backend, spec, node_id) / "data")
        pid = brokers[node_id]["pid"]
        # The broker runs the distribution of its spec's version, with a laptop-sized heap.
        assert f"{backend.distributions(spec.kafka_version).home}/libs/*" in command_line(pid)
        assert "-Xmx384m" in command_line(pid)
        assert brokers[node_id]["kafka_version"] == spec.kafka_version
        # Kafka's own line format, without the configuration dumps.
        log = (broker_dir(backend, spec, node_id) / "broker.log").read_text()
        assert "Kafka Server started" in log
        assert "KafkaConfig values" not in log

    assert backend.provision(spec).bootstrap_servers == cluster.bootstrap_servers
    assert {b["node_id"]: b["pid"] for b in recorded(backend, spec)["brokers"]} == {
        n: b["pid"] for n, b in brokers.items()
    }, "provisioning again adopts the running brokers"


def test_static_quorum_survives_an_upgrade_to_a_dynamic_era_release(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    """A cluster formatted on 3.9 (static voters) keeps rendering voters after its brokers move to 4.x;
    with the quorum style derived from the version, the last controller to roll cannot find a leader."""
    cluster = new_kafka_cluster(brokers=3, version=OLDEST)
    backend, spec = cluster.backend, cluster.spec
    assert recorded(backend, spec)["quorum"] == "static"
    assert "controller.quorum.voters" in properties(backend, spec, 1)
    topic = cluster.topic("before-upgrade", partitions=3)
    produce(cluster.bootstrap_servers, topic, 100)

    upgraded = replace(spec, kafka_version=distribution.DEFAULT_VERSION)
    for node_id in (1, 2, 3):
        backend.restart_broker(upgraded, node_id)
        props = properties(backend, spec, node_id)
        assert "controller.quorum.voters" in props and "controller.quorum.bootstrap.servers" not in props
    state = recorded(backend, spec)
    assert {b["kafka_version"] for b in state["brokers"]} == {distribution.DEFAULT_VERSION}
    for b in state["brokers"]:
        assert f"{backend.distributions(distribution.DEFAULT_VERSION).home}/libs/*" in command_line(b["pid"])

    wait_for(lambda: len(cluster.admin().describe_cluster().brokers) == 3, 60, what="every broker back")
    produce(cluster.bootstrap_servers, topic, 100)  # a quorum leader exists: metadata moves on
    cluster.topic("after-upgrade", partitions=3)


def test_a_layout_without_one_of_the_controllers_is_refused(apache_kafka_cluster: KafkaTestCluster) -> None:
    # Checked before an operation starts, so a replacement does not move every replica only to find
    # at the end that the broker it replaces cannot be removed.
    backend, spec = apache_kafka_cluster.backend, apache_kafka_cluster.spec
    controller = spec.brokers[0]
    stand_in = BrokerSpec(node_id=max(b.node_id for b in spec.brokers) + 1, rack=controller.rack)
    without = replace(spec, brokers=(*spec.brokers[1:], stand_in))

    assert "KRaft controller" in backend.validate(without)["brokers"]
    assert backend.validate(replace(spec, brokers=(*spec.brokers, stand_in))) == {}


def test_controllers_cannot_be_removed_and_brokers_can(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    cluster = new_kafka_cluster(brokers=4)
    backend, spec = cluster.backend, cluster.spec
    brokers = {b["node_id"]: b for b in recorded(backend, spec)["brokers"]}
    assert brokers[4]["controller_port"] is None
    assert properties(backend, spec, 4)["process.roles"] == "broker"
    assert properties(backend, spec, 1)["process.roles"] == "broker,controller"

    with pytest.raises(BackendError, match="KRaft controllers"):
        backend.remove_brokers(spec, [1, 4])
    assert pid_exists(brokers[4]["pid"]), "a refused removal stops nothing"

    remaining = backend.remove_brokers(spec, [4])
    assert [b.node_id for b in remaining.brokers] == [1, 2, 3]
    assert all(b.state == BrokerProcessState.RUNNING for b in remaining.brokers)
    assert not pid_exists(brokers[4]["pid"])
    assert not broker_dir(backend, spec, 4).exists()


@pytest.mark.parametrize("keep_disk", [True, False])
def test_replace_broker_keeps_or_wipes_its_data(
    new_kafka_cluster: Callable[..., KafkaTestCluster], keep_disk: bool
) -> None:
    cluster = new_kafka_cluster(brokers=1)
    backend, spec = cluster.backend, cluster.spec
    topic = cluster.topic("kept", partitions=1)
    produce(cluster.bootstrap_servers, topic, 10)
    meta = broker_dir(backend, spec, 1) / "data" / "meta.properties"
    before = meta.read_text()

    replaced = backend.replace_broker(spec, 1, keep_disk=keep_disk)
    assert replaced.bootstrap_servers == cluster.bootstrap_servers
    assert replaced.brokers[0].state == BrokerProcessState.RUNNING
    assert (meta.read_text() == before) == keep_disk, "a wiped disk is formatted anew"
    topics = {t.name for t in cluster.admin().describe_cluster().topics}
    assert (topic in topics) == keep_disk


def test_restart_applies_a_changed_config_after_a_controlled_shutdown(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    cluster = new_kafka_cluster(brokers=1)
    backend, spec = cluster.backend, cluster.spec
    changed = replace(spec, config=(("log.retention.hours", "12"),))
    backend.restart_broker(changed, 1)
    assert properties(backend, spec, 1)["log.retention.hours"] == "12"
    assert backend.describe(changed).brokers[0].state == BrokerProcessState.RUNNING
    log = (broker_dir(backend, spec, 1) / "broker.log").read_text()
    assert "shut down completed (kafka.server.BrokerServer)" in log, "it finished its own shutdown first"
    # Formatted once: a restart does not start the storage tool's JVM again for nothing.
    assert log.count("--- format:") == 1


def test_bad_config_is_reported_with_kafkas_own_message(backend: LocalBackend) -> None:
    spec = kafka_spec(brokers=1, config=(("num.network.threads", "0"),))
    with pytest.raises(
        BackendError, match=r"(?s)formatting.*failed.*Invalid value 0 for configuration num\.network"
    ):
        backend.provision(spec)


def test_broker_exiting_at_start_is_reported_with_its_log(backend: LocalBackend) -> None:
    # A class Kafka loads only once it starts (the security settings, such as the
    # authorizer, belong to the control plane and cannot be overridden).
    spec = kafka_spec(brokers=1, config=(("metric.reporters", "com.example.NoSuchReporter"),))
    with pytest.raises(BackendError, match=r"exited with status \d+ while starting; last log lines"):
        backend.provision(spec)
    crashed = backend.describe(spec).brokers[0]
    assert crashed.state == BrokerProcessState.CRASHED
    assert "NoSuchReporter" in crashed.detail or "exited" in crashed.detail


def test_cluster_created_by_the_development_broker_is_not_taken_over(
    backend: LocalBackend, tmp_path: Path
) -> None:
    spec = kafka_spec(brokers=1)
    LocalBackend(backend.state_dir).provision(spec)
    with pytest.raises(BackendError, match="created with the tansu engine"):
        backend.provision(spec)


def test_kraft_cluster_id_is_the_formatted_one(new_kafka_cluster: Callable[..., KafkaTestCluster]) -> None:
    cluster = new_kafka_cluster(brokers=1)
    assert cluster.admin().describe_cluster().cluster_id == kafka_config.kraft_cluster_id(
        cluster.spec.cluster_id
    )
