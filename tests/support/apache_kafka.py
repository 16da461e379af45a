"""Real Apache Kafka for tests: multi-broker KRaft clusters on loopback, run by the `local` backend.

The distributions come from `provisioning.distribution` with the product's own settings, so the first
run on a machine assembles them from Maven Central (seconds) and later runs use the cache. A Java 17+
runtime is required: without one these fixtures fail (they never skip), since real Kafka is what the
multi-broker tests exist to prove things on.

- `kafka_distributions`: version -> distribution, for code that launches Kafka itself.
- `apache_kafka_cluster`: one three-rack, three-broker cluster (RF 3, min.insync.replicas 2) shared by
  the session's tests that only read it or create topics of their own (unique names). Never stop,
  kill or reconfigure its brokers: take `new_kafka_cluster` for that.
- `new_kafka_cluster(brokers=..., racks=..., version=...)`: clusters of the test's own, deleted after.
- `AckedTraffic`: a producer at acks=all running through a cluster, counting what the cluster
  acknowledged, and a consumer that checks every acknowledged message can be read back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from django.conf import settings

from provisioning import distribution
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.backends.local import LocalBackend, _load_state, stop_all
from provisioning.backends.local_process import ProcessHandle, is_alive
from provisioning.distribution.java import find_java, no_java_message
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin

DEFAULT_RACKS = ("a", "b", "c")
TEST_HEAP_MB = 384


def distribution_config() -> distribution.DistributionConfig:
    return distribution.DistributionConfig(
        cache_dir=Path(settings.KAFKA_DISTRIBUTION_CACHE_DIR),
        sources=tuple(settings.KAFKA_DISTRIBUTION_SOURCES),
        mirrors=tuple(settings.KAFKA_MIRROR_URLS),
    )


def kafka_spec(
    *,
    brokers: int = 3,
    racks: tuple[str, ...] = DEFAULT_RACKS,
    version: str = distribution.DEFAULT_VERSION,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    config: tuple[tuple[str, str], ...] = (),
    name: str = "test",
) -> ClusterSpec:
    rf = replication_factor if replication_factor is not None else min(3, brokers)
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name=name,
        kafka_version=version,
        brokers=tuple(BrokerSpec(node_id=i + 1, rack=racks[i % len(racks)]) for i in range(brokers)),
        replication_factor=rf,
        min_insync_replicas=min_insync_replicas
        if min_insync_replicas is not None
        else max(1, min(2, rf - 1)),
        node_size=NodeSize(cpu=1, memory_mb=1024, disk_gb=10),
        config=config,
    )


@dataclass
class KafkaTestCluster:
    """A real cluster run by a `LocalBackend`, with ways to hurt it from outside the control plane."""

    backend: LocalBackend
    spec: ClusterSpec
    bootstrap_servers: str = ""
    _admins: list[ConfluentKafkaAdmin] = field(default_factory=list)

    def start(self) -> KafkaTestCluster:
        self.bootstrap_servers = self.backend.provision(self.spec).bootstrap_servers
        wait_for(lambda: len(self.admin().describe_cluster().brokers) == len(self.spec.brokers), 60)
        return self

    def admin(self) -> ConfluentKafkaAdmin:
        admin = ConfluentKafkaAdmin(self.bootstrap_servers, timeout=10)
        self._admins.append(admin)
        return admin

    def endpoint(self, node_id: int) -> str:
        description = self.backend.describe(self.spec).broker(node_id)
        assert description is not None
        return description.endpoint

    def process(self, node_id: int) -> ProcessHandle:
        state = _load_state(self.backend.state_dir / self.spec.cluster_id)
        assert state is not None
        handle = state.brokers[node_id].handle()
        assert handle is not None and is_alive(handle.pid, handle.start_time), (
            f"broker {node_id} is not running"
        )
        return handle

    def kill(self, node_id: int) -> None:
        """SIGKILL a broker behind the control plane's back, as a crash would."""
        import os
        import signal

        handle = self.process(node_id)
        os.killpg(handle.pid, signal.SIGKILL)
        wait_for(lambda: not is_alive(handle.pid, handle.start_time), 30)

    def broker_log(self, node_id: int) -> str:
        return (
            self.backend.state_dir / self.spec.cluster_id / f"broker-{node_id}" / "broker.log"
        ).read_text()

    def registrations(self) -> dict[int, bool]:
        """Every broker the controller has registered, fenced ones included: node id -> fenced.
        (Metadata and DescribeCluster without the flag leave fenced brokers out.)"""
        from kafka.admin import KafkaAdminClient

        client = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers.split(","))
        try:
            described = client.describe_cluster()
        finally:
            client.close()
        return {b["broker_id"]: b.get("is_fenced", False) for b in described["brokers"]}

    def topic(self, name: str, *, partitions: int = 6, replication_factor: int | None = None) -> str:
        rf = replication_factor or self.spec.replication_factor
        self.admin().create_topic(name, partitions, rf)
        wait_for(lambda: _has_leaders(self.admin(), name, partitions), 30)
        return name

    def delete(self) -> None:
        for admin in self._admins:
            admin.close()
        self.backend.delete(self.spec)


def _has_leaders(admin: ConfluentKafkaAdmin, topic: str, partitions: int) -> bool:
    state = admin.describe_cluster()
    found = next((t for t in state.topics if t.name == topic), None)
    return (
        found is not None
        and len(found.partitions) == partitions
        and all(p.leader is not None for p in found.partitions)
    )


def wait_for(predicate: Callable[[], Any], timeout: float, *, interval: float = 0.25, what: str = "") -> Any:
    """Poll until `predicate` returns something truthy (which is returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception as exc:  # a cluster settling may refuse a request or two
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(
        f"{what or getattr(predicate, '__name__', 'condition')} not true after {timeout} s"
        + (f"; last error: {last_error}" if last_error else "")
    )


@pytest.fixture(scope="session")
def java_home() -> Path:
    java = find_java()
    if java is None:
        pytest.fail(no_java_message())
    return java.home


@pytest.fixture(scope="session")
def kafka_distributions(java_home: Path) -> Callable[[str], distribution.KafkaDistribution]:
    config = distribution_config()
    return lambda version: distribution.ensure(version, config)


def make_backend(
    state_dir: Path, distributions: Callable[[str], distribution.KafkaDistribution], java_home: Path
) -> LocalBackend:
    return LocalBackend(
        state_dir, distributions=distributions, java_home=java_home, max_heap_mb=TEST_HEAP_MB, stop_grace=120
    )


@pytest.fixture(scope="session")
def apache_kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_distributions: Callable[[str], distribution.KafkaDistribution],
    java_home: Path,
) -> Iterator[KafkaTestCluster]:
    state_dir = tmp_path_factory.mktemp("shared-kafka")
    cluster = KafkaTestCluster(
        make_backend(state_dir, kafka_distributions, java_home), kafka_spec(name="shared")
    )
    try:
        yield cluster.start()
    finally:
        cluster.delete()
        stop_all(state_dir, grace=0)


@pytest.fixture
def new_kafka_cluster(
    tmp_path: Path,
    kafka_distributions: Callable[[str], distribution.KafkaDistribution],
    java_home: Path,
) -> Iterator[Callable[..., KafkaTestCluster]]:
    """Start clusters of the test's own: `new_kafka_cluster(brokers=6, version="3.9.2")`."""
    state_dir = tmp_path / "kafka"
    clusters: list[KafkaTestCluster] = []

    def start(**spec_args: Any) -> KafkaTestCluster:
        cluster = KafkaTestCluster(
            make_backend(state_dir, kafka_distributions, java_home), kafka_spec(**spec_args)
        )
        clusters.append(cluster)
        return cluster.start()

    try:
        yield start
    finally:
        for cluster in clusters:
            cluster.delete()
        stop_all(state_dir, grace=0)


class AckedTraffic:
    """Produces numbered messages at acks=all from a background thread until stopped; `acked` holds the
    numbers the cluster acknowledged. `missing()` reads the topic back and returns acknowledged numbers
    that cannot be found: an empty result is what "no acknowledged message lost" means."""

    def __init__(self, bootstrap_servers: str, topic: str, *, interval: float = 0.005) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.interval = interval
        self.acked: set[int] = set()
        self.failed: dict[int, str] = {}
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"traffic-{topic}", daemon=True)

    def __enter__(self) -> AckedTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                # Ride out a broker restart or a leader move rather than failing the message.
                "message.timeout.ms": 120_000,
            }
        )

        def report(error: KafkaError | None, message: Any) -> None:
            number = int(message.value())
            if error is None:
                self.acked.add(number)
            else:
                self.failed[number] = str(error)

        while not self._stop.is_set():
            producer.produce(self.topic, value=str(self.sent).encode(), on_delivery=report)
            self.sent += 1
            producer.poll(0)
            time.sleep(self.interval)
        producer.flush(130)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(150)

    def wait_for_acks(self, count: int, timeout: float = 60) -> None:
        wait_for(lambda: len(self.acked) >= count, timeout, what=f"{count} acknowledged messages")

    def missing(self, timeout: float = 60) -> set[int]:
        self.stop()
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": f"verify-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.topic])
        wanted = set(self.acked)
        deadline = time.monotonic() + timeout
        try:
            while wanted and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                wanted.discard(int(message.value()))
        finally:
            consumer.close()
        return wanted
