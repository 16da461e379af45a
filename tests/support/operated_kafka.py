"""Real Apache Kafka operated the way a user operates it: through the REST API, with a real Celery worker.

`control_plane` gives a test an organization's admin with a real API token, a real Celery worker on
Redis whose `local` backend runs Apache Kafka, and a state directory of its own; `create_cluster`
creates a cluster through the API and waits until it is provisioned. One cluster can carry a sequence
of operations (provision → scale out → …) within one test.

What the test asks of the product goes through the API (`operate`: request, answer 202, then poll
the operation until it finishes); what it checks is asked of Kafka itself (`KafkaReader`: the Admin
API and the brokers' own configs; `active_controller`: the quorum). Only hurting a cluster (killing a
broker, starting it again) goes around the control plane, as a crash or an operator at a console would.
`Watch` looks at the cluster from a thread while an operation runs, to see what holds only meanwhile.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kafka.admin import KafkaAdminClient
from rest_framework.test import APIClient

from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import cluster_spec, get_backend, security_spec
from controlplane.operations import engine
from provisioning import distribution
from provisioning.backends.local import LocalBackend, _load_state, stop_all
from provisioning.backends.local_process import is_alive
from provisioning.kafka_admin.base import (
    ClusterState,
    ReassignmentProgress,
    TopicAlreadyExistsError,
    TopicPartition,
)
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.security import admin_client_config
from tests.support.apache_kafka import TEST_HEAP_MB, KafkaTestCluster, make_backend, wait_for
from tests.support.tenants import make_tenant, token_client
from tests.support.workers import WorkerProcess

T = TypeVar("T")

FINISHED = ("succeeded", "failed", "cancelled")
# Operations look again at what they wait for this often; the product's default suits big clusters.
POLL_SECONDS = 1.0
# A worker without a heartbeat for this long is taken for dead, so a killed one is replaced quickly.
STALE_AFTER_SECONDS = 3.0
THROTTLE_RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
THROTTLED_REPLICAS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
# Small topics keep every reassignment plan and every controlled shutdown short; no group waits for
# more members than the one verifying consumer.
TEST_CLUSTER_CONFIG = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}


def _settings_for_operations(state_dir: Path) -> dict[str, Any]:
    return {
        "LOCAL_ENGINE": "kafka",
        "LOCAL_BACKEND_STATE_DIR": state_dir,
        "LOCAL_BROKER_MAX_HEAP_MB": TEST_HEAP_MB,
        "OPERATION_POLL_SECONDS": POLL_SECONDS,
        "OPERATION_STALE_AFTER_SECONDS": STALE_AFTER_SECONDS,
    }


def describe_operation(operation: dict[str, Any], lines: int = 15) -> str:
    """An operation's state, error and last log lines, for assertion messages."""
    log = "\n".join(f"  [{line['step']}] {line['message']}" for line in operation["log"][-lines:])
    return f"{operation['kind']} {operation['state']}: {operation.get('error')}\n{log}"


def log_messages(operation: dict[str, Any], step: str | None = None) -> list[str]:
    return [line["message"] for line in operation["log"] if step is None or line["step"] == step]


class ControlPlane:
    """The control plane as a test sees it: an organization's admin calling the API, and its workers."""

    def __init__(
        self,
        client: APIClient,
        start_worker: Callable[[], WorkerProcess],
        backend: LocalBackend,
        distributions: Callable[[str], distribution.KafkaDistribution],
    ) -> None:
        self.client = client
        self.workers: list[WorkerProcess] = []
        self.clusters: list[OperatedCluster] = []
        self.backend = backend  # the workers' backend, on the same state directory
        self.distributions = distributions
        self._start_worker = start_worker

    def start_worker(self) -> WorkerProcess:
        worker = self._start_worker()
        self.workers.append(worker)
        return worker

    def create_cluster(self, *, timeout: float = 240, **body: Any) -> OperatedCluster:
        """POST /clusters/ and wait until it is provisioned; `body` holds the request's fields."""
        request = {
            "backend": "local",
            "racks": ["a", "b", "c"],
            "node_size": {"cpu": 1, "memory_mb": 1024, "disk_gb": 10},
            **body,
            "config": {**TEST_CLUSTER_CONFIG, **body.get("config", {})},
        }
        response = self.client.post("/api/v1/clusters/", request, format="json")
        assert response.status_code == 202, response.content
        cluster = OperatedCluster(self, response.json()["id"])
        self.clusters.append(cluster)
        cluster.wait(response.json()["operation"]["id"], timeout=timeout)
        return cluster

    def operation(self, operation_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/operations/{operation_id}/")
        assert response.status_code == 200, response.content
        return response.json()

    def reap(self) -> list[uuid.UUID]:
        """What beat does in production: dispatch operations whose worker went quiet."""
        return engine.reap_stalled_operations()

    def close(self) -> None:
        for cluster in self.clusters:
            cluster.close()


@dataclass
class OperatedCluster:
    """A cluster created through the API. `operate` changes it as a user does; `kafka()` reaches
    past the control plane to hurt it; `reader()` looks at what Kafka itself says."""

    plane: ControlPlane
    id: str
    _readers: list[KafkaReader] = field(default_factory=list)

    # -- the API --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        response = self.plane.client.get(f"/api/v1/clusters/{self.id}/")
        assert response.status_code == 200, response.content
        return response.json()

    def request(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST an operation; returns the operation the 202 answer carries."""
        response = self.plane.client.post(f"/api/v1/clusters/{self.id}/{action}/", body or {}, format="json")
        assert response.status_code == 202, response.content
        return response.json()["operation"]

    def refusal(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an operation the API must refuse; returns the 400 answer's body."""
        response = self.plane.client.post(f"/api/v1/clusters/{self.id}/{action}/", body, format="json")
        assert response.status_code == 400, response.content
        return response.json()

    def wait(
        self,
        operation_id: str,
        *,
        timeout: float = 300,
        until: Callable[[dict[str, Any]], bool] | None = None,
        expect: str = "succeeded",
    ) -> dict[str, Any]:
        """Poll the operation until it finishes (and check it ended `expect`), or until `until` holds."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.plane.operation(operation_id)
            if until is not None and until(operation):
                return operation
            if operation["state"] in FINISHED:
                assert operation["state"] == expect, describe_operation(operation)
                return operation
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: {describe_operation(operation)}")
            time.sleep(0.5)

    def operate(
        self, action: str, body: dict[str, Any] | None = None, *, timeout: float = 300
    ) -> dict[str, Any]:
        """Request an operation and wait until it has succeeded."""
        return self.wait(self.request(action, body)["id"], timeout=timeout)

    # -- Kafka itself ---------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return self.info()["bootstrap_servers"]

    def client_config(self) -> dict[str, str]:
        """The control plane's own client settings for this cluster: empty unless it authenticates
        clients, then its admin credential (see `provisioning.security`)."""
        spec = security_spec(Cluster.objects.get(pk=self.id))
        return admin_client_config(spec) if spec is not None else {}

    def reader(self) -> KafkaReader:
        """A reader of Kafka's own answers, for this thread (make one per thread)."""
        reader = KafkaReader(self.bootstrap_servers, self.client_config())
        self._readers.append(reader)
        return reader

    def state(self) -> ClusterState:
        reader = KafkaReader(self.bootstrap_servers, self.client_config())
        try:
            return reader.state()
        finally:
            reader.close()

    def active_controller(self) -> int:
        home = self.plane.distributions(self.info()["kafka_version"]).home
        return active_controller(home, self.bootstrap_servers)

    def kafka(self) -> KafkaTestCluster:
        """The cluster as its backend runs it, for doing what the control plane would not."""
        spec = cluster_spec(Cluster.objects.get(pk=self.id))
        return KafkaTestCluster(self.plane.backend, spec, bootstrap_servers=self.bootstrap_servers)

    def broker_pids(self) -> dict[int, int | None]:
        """node id -> process id of each broker the backend recorded, None while none runs (safe from
        any thread)."""
        state = _load_state(self.plane.backend.state_dir / self.id)
        pids: dict[int, int | None] = {}
        for node_id, rec in (state.brokers if state is not None else {}).items():
            handle = rec.handle()
            pids[node_id] = handle.pid if handle and is_alive(handle.pid, handle.start_time) else None
        return pids

    def topic(self, name: str, *, partitions: int) -> str:
        """A topic created as a user creates one: with a Kafka client (the API manages clusters).
        Tried again while the new cluster's client is still settling."""
        kafka = self.kafka()

        def create() -> bool:
            # An earlier try may have got through although its answer was lost.
            with contextlib.suppress(TopicAlreadyExistsError):
                kafka.admin().create_topic(name, partitions, kafka.spec.replication_factor)
            return True

        wait_for(create, 60, what=f"topic {name} created")
        wait_for(
            lambda: all(
                p.leader is not None for t in self.state().topics if t.name == name for p in t.partitions
            ),
            60,
            what=f"leaders for topic {name}",
        )
        return name

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        row = Cluster.objects.filter(pk=self.id).first()
        if row is not None:
            self.plane.backend.delete(cluster_spec(row))


# -- what Kafka says ------------------------------------------------------------------------------


def out_of_sync(state: ClusterState) -> set[int]:
    """Brokers not registered, or missing from the ISR of a partition they hold."""
    registered = {b.node_id for b in state.brokers}
    hosting = {r for replicas in state.assignment().values() for r in replicas}
    lagging = {r for t in state.topics for p in t.partitions for r in p.replicas if r not in p.isr}
    return (hosting - registered) | lagging


class KafkaReader:
    """Reads a cluster's own answers: metadata and reassignments through the Admin API, configs with
    DescribeConfigs. One per thread (the clients are not thread-safe)."""

    def __init__(self, bootstrap_servers: str, config: dict[str, str] | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.admin = ConfluentKafkaAdmin(bootstrap_servers, timeout=15, config=config)
        self._configs = AdminClient({**(config or {}), "bootstrap.servers": bootstrap_servers})
        self._features: KafkaAdminClient | None = None

    def state(self) -> ClusterState:
        return self.admin.describe_cluster()

    def reassignments(self) -> dict[TopicPartition, ReassignmentProgress]:
        return self.admin.list_partition_reassignments()

    def finalized_features(self) -> dict[str, int]:
        """Feature -> finalized (maximum) level, as DescribeFeatures reports it."""
        if self._features is None:
            self._features = KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers.split(","), request_timeout_ms=15_000
            )
        described = self._features.describe_features()
        return {name: levels["finalized"][1] for name, levels in described.items() if "finalized" in levels}

    def throttles(self) -> tuple[dict[int, dict[str, str]], dict[str, dict[str, str]]]:
        """(broker -> throttle rates set on it, topic -> throttled replica lists set on it); only
        brokers and topics with something set appear."""
        # Metadata from this very client, so it knows brokers that joined since it last looked.
        metadata = self._configs.list_topics(timeout=15)
        brokers: dict[int, dict[str, str]] = {}
        for node_id in sorted(metadata.brokers):  # DescribeConfigs takes one broker per request
            resource = ConfigResource(ResourceType.BROKER, str(node_id))
            if found := self._described([resource], THROTTLE_RATES).get(resource.name):
                brokers[node_id] = found
        topics = self._described(
            [ConfigResource(ResourceType.TOPIC, name) for name in sorted(metadata.topics)], THROTTLED_REPLICAS
        )
        return brokers, topics

    def _described(self, resources: list[ConfigResource], names: tuple[str, ...]) -> dict[str, dict]:
        found: dict[str, dict[str, str]] = {}
        if not resources:
            return found
        for resource, future in self._configs.describe_configs(resources, request_timeout=15).items():
            entries = future.result(timeout=20)
            # Brokers report an unset rate with its default; only a dynamic one was set by someone.
            values = {
                name: entry.value
                for name, entry in entries.items()
                if name in names
                and entry.value
                and (
                    resource.restype != ResourceType.BROKER
                    or entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
                )
            }
            if values:
                found[resource.name] = values
        return found

    def close(self) -> None:
        self.admin.close()
        if self._features is not None:
            self._features.close()


def active_controller(home: Path, bootstrap_servers: str) -> int:
    """The KRaft quorum's leader, as `kafka-metadata-quorum.sh describe --status` reports it."""
    result = subprocess.run(
        [
            str(home / "bin" / "kafka-metadata-quorum.sh"),
            *("--bootstrap-server", bootstrap_servers, "describe", "--status"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    match = re.search(r"LeaderId:\s+(\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    return int(match.group(1))


def settled(look: Callable[[], T], expected: T, *, timeout: float = 30) -> T:
    """What `look` returns once it returns `expected`, or after `timeout` whatever it returns then.

    For what every broker learns from the metadata log a moment after the controller committed it
    (configs, registrations): assert on the result, and a failure shows what was still there."""
    deadline = time.monotonic() + timeout
    while (found := look()) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def release_feature_levels(home: Path, release: str) -> dict[str, int]:
    """Feature -> level a release finalizes, as `kafka-features.sh version-mapping` maps it."""
    result = subprocess.run(
        [str(home / "bin" / "kafka-features.sh"), "version-mapping", "--release-version", release],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {name: int(level) for name, level in re.findall(r"^([\w.]+)=(\d+)", result.stdout, re.MULTILINE)}


def running_versions(pids: dict[int, int | None]) -> dict[int, str | None]:
    """node id -> the Kafka release each broker process runs, from its command line (None: down)."""
    versions: dict[int, str | None] = {}
    for node_id, pid in pids.items():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode() if pid else ""
        except OSError:
            command = ""
        match = re.search(r"/kafka/([\w.-]+)/libs/", command)
        versions[node_id] = match.group(1) if match else None
    return versions


class Watch:
    """Looks at a cluster from a thread of its own while an operation runs, so that what holds only
    for a while (reassignments in flight, throttles set, a broker out of the ISR) is seen.
    `samples` holds what `look(reader)` returned each time."""

    def __init__(
        self, cluster: OperatedCluster, look: Callable[[KafkaReader], Any], *, interval: float = 0.3
    ) -> None:
        self.samples: list[Any] = []
        self.errors: list[str] = []
        self._reader = cluster.reader()
        self._look = look
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._look(self._reader))
            except Exception as exc:  # a broker restarting may refuse a look; the next one counts
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._interval)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def control_plane(
    settings: Any,
    development_broker_by_default: None,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    kafka_distributions: Callable[[str], distribution.KafkaDistribution],
    java_home: Path,
) -> Iterator[ControlPlane]:
    """A control plane whose `local` clusters are real Apache Kafka: a tenant, its admin's API client
    and a real Celery worker. Every cluster it created is deleted afterwards."""
    state_dir = tmp_path / "clusters"
    for name, value in _settings_for_operations(state_dir).items():
        setattr(settings, name, value)
    get_backend.cache_clear()
    tenant = make_tenant("Operators")

    def start() -> WorkerProcess:
        return start_worker(
            LOCAL_BROKER_MAX_HEAP_MB=str(TEST_HEAP_MB),
            OPERATION_STALE_AFTER_SECONDS=str(STALE_AFTER_SECONDS),
        )

    plane = ControlPlane(
        token_client(tenant.admin),
        start,
        make_backend(state_dir, kafka_distributions, java_home),
        kafka_distributions,
    )
    try:
        plane.start_worker()
        yield plane
    finally:
        plane.close()
        stop_all(state_dir, grace=0)
