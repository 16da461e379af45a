"""The broker image (broker_image/): its entrypoint run for real, outside a container.

No container engine runs on these machines, so the image itself is never built here: the Dockerfile
is only linted (hadolint), and what it downloads (the release tarball, the agent) is not exercised.
The entrypoint is the part with logic, and it runs here exactly as in the pod, against the real
Apache Kafka distribution the tests use (provisioning.distribution, Kafka's layout) and the real JMX
exporter agent from Maven Central (the version and SHA-256 the Dockerfile pins): it must start a
broker a client produces to and consumes from, export the metrics monitoring needs, refuse to start
without a cluster id, and keep its storage on the next start.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from provisioning import distribution
from provisioning.kafka_config import (
    NodeAddress,
    QuorumStyle,
    kraft_cluster_id,
    render_server_properties,
    storage_format_args,
)
from tests.support.apache_kafka import kafka_spec, wait_for
from tests.support.kafka import free_port
from tests.support.linters import assert_hadolint_clean, assert_shellcheck_clean

IMAGE_DIR = Path(__file__).resolve().parents[2] / "broker_image"
ENTRYPOINT = IMAGE_DIR / "entrypoint.sh"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
EXPORTER_RULES = IMAGE_DIR / "jmx-exporter.yml"
REFUSED = 64  # the entrypoint's exit status for a refusal


def _dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"the Dockerfile pins no {name}"
    return match.group(1)


@pytest.fixture(scope="session")
def jmx_exporter_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent the Dockerfile installs, fetched with Maven and checked against the Dockerfile's pin."""
    version = _dockerfile_arg("JMX_EXPORTER_VERSION")
    out = tmp_path_factory.mktemp("jmx-exporter")
    subprocess.run(
        [
            os.environ.get("MAVEN", "mvn"),
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:{version}",
            f"-DoutputDirectory={out}",
        ],
        check=True,
        timeout=600,
    )
    jar = out / f"jmx_prometheus_javaagent-{version}.jar"
    assert hashlib.sha256(jar.read_bytes()).hexdigest() == _dockerfile_arg("JMX_EXPORTER_SHA256")
    return jar


def run_entrypoint(env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENTRYPOINT)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_entrypoint_is_shellcheck_clean() -> None:
    assert_shellcheck_clean(ENTRYPOINT)


def test_dockerfile_is_hadolint_clean() -> None:
    assert_hadolint_clean(DOCKERFILE)


class TestRefusals:
    """Each refusal happens before anything touches the disks: nothing is formatted, no JVM starts."""

    @pytest.fixture
    def base_env(self, tmp_path: Path) -> dict[str, str]:
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        (config_dir / "server.properties").write_text(
            f"process.roles=broker\nlog.dirs={tmp_path / 'data'}\n"
            "listeners=PLAINTEXT://${POD_IP}:9092\n"
            "advertised.listeners=PLAINTEXT://${POD_NAME}.kafka:9092\n"
        )
        return {
            # A Kafka home whose tools would fail loudly if they were ever reached.
            "KAFKA_HOME": str(tmp_path / "no-kafka"),
            "KAFKA_CONFIG_DIR": str(config_dir),
            "KAFKA_RUNTIME_DIR": str(tmp_path / "run"),
            "KAFKA_CLUSTER_ID": kraft_cluster_id(str(uuid.uuid4())),
            "POD_NAME": "kafka-a-2",
            "POD_IP": "10.0.0.7",
        }

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"KAFKA_CLUSTER_ID": None}, "KAFKA_CLUSTER_ID is not set"),
            ({"KAFKA_CLUSTER_ID": ""}, "KAFKA_CLUSTER_ID is not set"),
            ({"KAFKA_CLUSTER_ID": "not-a-kafka-id"}, "is not a Kafka cluster id"),
            ({"POD_NAME": "kafka"}, "no node id"),
            ({"KAFKA_NODE_ID": "two"}, "is not a non-negative integer"),
            ({"POD_IP": None}, "uses ${POD_IP} but the pod has no value for it"),
        ],
    )
    def test_refuses(self, base_env: dict[str, str], change: dict[str, str | None], reason: str) -> None:
        env = {k: v for k, v in {**base_env, **change}.items() if v is not None}
        result = run_entrypoint(env)
        assert result.returncode == REFUSED, result.stderr
        assert reason in result.stderr
        assert not (Path(base_env["KAFKA_CONFIG_DIR"]).parent / "data").exists()

    def test_refuses_configuration_of_another_node_or_rack(self, base_env: dict[str, str]) -> None:
        config_dir = Path(base_env["KAFKA_CONFIG_DIR"])
        (config_dir / "server-2.properties").write_text("node.id=3\nlog.dirs=/nowhere\n")
        result = run_entrypoint(base_env)
        assert result.returncode == REFUSED
        assert "server-2.properties is for node 3, but this pod is node 2" in result.stderr

        (config_dir / "server-2.properties").write_text("node.id=2\nbroker.rack=b\nlog.dirs=/nowhere\n")
        result = run_entrypoint({**base_env, "KAFKA_RACK": "a"})
        assert result.returncode == REFUSED
        assert "in rack 'b', but this pod runs in rack 'a'" in result.stderr

    def test_refuses_storage_of_another_cluster(self, base_env: dict[str, str], tmp_path: Path) -> None:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAQ\n")
        result = run_entrypoint(base_env)
        assert result.returncode == REFUSED
        assert "is formatted for cluster 'AAAAAAAAAAAAAAAAAAAAAQ'" in result.stderr

    def test_refuses_an_unformatted_dynamic_controller_without_its_voters(
        self, base_env: dict[str, str]
    ) -> None:
        config_dir = Path(base_env["KAFKA_CONFIG_DIR"])
        (config_dir / "server.properties").write_text(
            "process.roles=broker,controller\nlog.dirs=/nowhere\n"
            "controller.quorum.bootstrap.servers=kafka-a-0.kafka:9093\n"
        )
        result = run_entrypoint(base_env)
        assert result.returncode == REFUSED
        assert "set KAFKA_INITIAL_CONTROLLERS" in result.stderr


class EntrypointBroker:
    """The entrypoint run as a pod would run it, in the background; `stop()` sends SIGTERM as the
    kubelet does and waits for Kafka's orderly shutdown."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> EntrypointBroker:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(ENTRYPOINT)],
                env={"PATH": os.environ["PATH"], **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def entrypoint_brokers() -> Iterator[Callable[[dict[str, str], Path], EntrypointBroker]]:
    started: list[EntrypointBroker] = []

    def start(env: dict[str, str], log_path: Path) -> EntrypointBroker:
        broker = EntrypointBroker(env, log_path).start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


@pytest.mark.slow
def test_entrypoint_runs_a_real_broker_and_keeps_its_storage(
    tmp_path: Path,
    kafka_distributions: Callable[[str], distribution.KafkaDistribution],
    java_home: Path,
    jmx_exporter_jar: Path,
    entrypoint_brokers: Callable[[dict[str, str], Path], EntrypointBroker],
) -> None:
    """One combined KRaft node of a dynamic quorum, configured as the control plane renders it (the
    shared kafka_config rules), its node id taken from the pod name's ordinal and its rack from the
    environment; produced to and consumed from, scraped, stopped with SIGTERM and started again."""
    spec = kafka_spec(brokers=1, racks=("b",), name="image")
    # The pod of node 1 in rack b's StatefulSet (ordinal 0, ids of that set starting at 1).
    node_id, pod_name, offset = 1, "image-b-0", "1"
    client_port, controller_port, metrics_port = free_port(), free_port(), free_port()
    addresses = {node_id: NodeAddress(node_id, "127.0.0.1", client_port, controller_port)}
    data_dir = tmp_path / "data"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    rendered = render_server_properties(
        spec,
        node_id,
        addresses=addresses,
        controllers=(node_id,),
        quorum=QuorumStyle.DYNAMIC,
        log_dir=str(data_dir),
    )
    # The rack and the node id come from the pod: the shared template leaves them out.
    template = "".join(
        line
        for line in rendered.splitlines(keepends=True)
        if not line.startswith(("node.id=", "broker.rack="))
    )
    (config_dir / "server.properties").write_text(template)
    format_args = storage_format_args(
        spec,
        node_id,
        config_path="unused",
        addresses=addresses,
        controllers=(node_id,),
        quorum=QuorumStyle.DYNAMIC,
    )
    env = {
        "KAFKA_HOME": str(kafka_distributions(spec.kafka_version).home),
        "JAVA_HOME": str(java_home),
        "KAFKA_HEAP_OPTS": "-Xmx384m -Xms384m",
        "KAFKA_CONFIG_DIR": str(config_dir),
        "KAFKA_RUNTIME_DIR": str(tmp_path / "run"),
        "KAFKA_CLUSTER_ID": kraft_cluster_id(spec.cluster_id),
        "KAFKA_INITIAL_CONTROLLERS": format_args[format_args.index("--initial-controllers") + 1],
        "POD_NAME": pod_name,
        "KAFKA_NODE_ID_OFFSET": offset,
        "KAFKA_RACK": "b",
        "KAFKA_METRICS_PORT": str(metrics_port),
        "JMX_EXPORTER_JAR": str(jmx_exporter_jar),
        "JMX_EXPORTER_CONFIG": str(EXPORTER_RULES),
    }
    bootstrap = f"127.0.0.1:{client_port}"
    topic = "image-check"

    first = entrypoint_brokers(env, tmp_path / "first.log")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_for(lambda: admin.list_topics(timeout=2).brokers, 120, what=f"the broker answering\n{first.log()}")
    # exec: the process the kubelet signals is the JVM itself, not a shell waiting on it.
    assert first.process is not None
    assert "java" in Path(f"/proc/{first.process.pid}/exe").resolve().name
    brokers = admin.list_topics(timeout=5).brokers
    assert list(brokers) == [node_id]
    assert f"formatting {data_dir} for cluster" in first.log()
    meta = (data_dir / "meta.properties").read_text()
    assert f"cluster.id={env['KAFKA_CLUSTER_ID']}" in meta and f"node.id={node_id}" in meta
    assert "broker.rack=b\n" in (tmp_path / "run" / "server.properties").read_text()

    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    # zstd: the broker unpacks its native codec into java.io.tmpdir, which the entrypoint moves into the
    # runtime directory (the root file system is read-only in the pod).
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": "zstd"})
    producer.produce(topic, b"before restart")
    assert producer.flush(30) == 0

    metrics = wait_for(lambda: _metrics(metrics_port), 30, what="the JMX exporter answering")
    for name in (
        "kafka_server_kafkaserver_brokerstate 3.0",
        "kafka_server_replicamanager_underreplicatedpartitions 0.0",
        "kafka_server_replicamanager_underminisrpartitioncount 0.0",
        "kafka_controller_kafkacontroller_offlinepartitionscount 0.0",
        "kafka_server_brokertopicmetrics_messagesinpersec_total",
        "kafka_server_brokertopicmetrics_bytesinpersec_total",
        'kafka_network_requestmetrics_requests_total{request="Produce"',
        'kafka_network_requestmetrics_totaltimems{quantile="0.99",request="Produce"',
        f'kafka_log_log_size{{partition="0",topic="{topic}"',
        "kafka_log_logmanager_offlinelogdirectorycount 0.0",
        "jvm_memory_used_bytes",
    ):
        assert name in metrics, f"{name} is not exported"

    first.stop()
    assert first.process is not None and first.process.returncode in (0, 128 + signal.SIGTERM)

    # Started again on the same disk: not formatted again, and what was written is still there.
    second = entrypoint_brokers(env, tmp_path / "second.log")
    wait_for(lambda: admin.list_topics(timeout=2).brokers, 120, what=f"the broker answering\n{second.log()}")
    assert "storage already formatted" in second.log() and "formatting" not in second.log()
    assert (data_dir / "meta.properties").read_text() == meta
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "image-check", "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topic])
        message = wait_for(lambda: consumer.poll(1.0), 60, what="the message written before the restart")
        assert message.error() is None and message.value() == b"before restart"
    finally:
        consumer.close()
