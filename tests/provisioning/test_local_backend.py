"""The local backend with its development engine: real Tansu broker processes on loopback.

Tansu is a single in-memory node (no replication, data gone when it stops), so these tests check
processes, ports and the Kafka protocol, not data surviving a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from provisioning.backends import local_process as local_module
from provisioning.backends.base import (
    Backend,
    BackendError,
    BrokerProcessState,
    BrokerSpec,
    ClusterDescription,
    ClusterSpec,
    NodeSize,
)
from provisioning.backends.local import (
    IN_MEMORY_ONLY,
    TANSU_SINGLE_NODE_MESSAGE,
    LocalBackend,
    stop_all,
)
from provisioning.backends.local_process import LAUNCH_TOKEN_ENV, process_start_time, wait_until

pytestmark = pytest.mark.slow


def make_spec(brokers: int = 1) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name="dev",
        kafka_version="4.3.2",
        brokers=tuple(BrokerSpec(node_id=i + 1, rack=f"rack-{i + 1}") for i in range(brokers)),
        replication_factor=1,
        min_insync_replicas=1,
        node_size=NodeSize(cpu=1, memory_mb=1024, disk_gb=10),
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "local"
    yield path
    # Brokers run in their own sessions and would outlive the test run; stop them whatever happened.
    stop_all(path, grace=2.0)


@pytest.fixture
def backend(state_dir: Path) -> LocalBackend:
    return LocalBackend(state_dir, ready_timeout=30.0, stop_grace=5.0)


@pytest.fixture
def spec() -> ClusterSpec:
    return make_spec()


def read_state(state_dir: Path, spec: ClusterSpec) -> dict:
    return json.loads((state_dir / spec.cluster_id / "state.json").read_text())


def write_state(state_dir: Path, spec: ClusterSpec, state: dict) -> None:
    (state_dir / spec.cluster_id / "state.json").write_text(json.dumps(state))


def broker_pid(state_dir: Path, spec: ClusterSpec, node_id: int = 1) -> int:
    return next(b["pid"] for b in read_state(state_dir, spec)["brokers"] if b["node_id"] == node_id)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_with_token(token: str) -> list[int]:
    needle = f"{LAUNCH_TOKEN_ENV}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@contextlib.contextmanager
def listen_on(host: str, port: int) -> Iterator[socket.socket]:
    """Another process's server on `port`."""
    with socket.socket() as squatter:
        # A killed broker's sockets take a moment to be torn down, and may linger in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

        def bind() -> bool:
            try:
                squatter.bind((host, port))
            except OSError:
                return False
            return True

        assert wait_until(bind, timeout=10)
        squatter.listen()
        yield squatter


def wait_for_state(backend: LocalBackend, spec: ClusterSpec, state: BrokerProcessState) -> ClusterDescription:
    # A killed process disappears asynchronously; give it a bounded moment.
    assert wait_until(lambda: backend.describe(spec).brokers[0].state == state, timeout=10)
    return backend.describe(spec)


def test_local_backend_implements_the_protocol(backend: LocalBackend) -> None:
    implementation: Backend = backend
    assert implementation.name == "local"


def test_validate_refuses_more_than_one_development_broker(backend: LocalBackend) -> None:
    assert backend.validate(make_spec(brokers=3)) == {"brokers": TANSU_SINGLE_NODE_MESSAGE}
    assert backend.validate(make_spec(brokers=1)) == {}
    with pytest.raises(BackendError, match="single node"):
        backend.provision(make_spec(brokers=3))


def test_validate_refuses_ids_that_are_not_uuids(backend: LocalBackend) -> None:
    spec = make_spec()
    bad = ClusterSpec(**{**spec.__dict__, "cluster_id": "../../etc"})
    assert "not a UUID" in backend.validate(bad)["cluster_id"]


def test_plan_shows_the_command_line(backend: LocalBackend, state_dir: Path, spec: ClusterSpec) -> None:
    plan = backend.plan(spec)
    assert "single node" in plan.summary
    command = plan.artifacts["broker-1/command.sh"]
    assert " broker --listener-url tcp://127.0.0.1:" in command
    assert not (state_dir / spec.cluster_id).exists(), "a plan changes nothing"


def test_provisioned_broker_serves_producers_and_consumers(backend: LocalBackend, spec: ClusterSpec) -> None:
    description = backend.provision(spec)
    broker = description.broker(1)
    assert broker is not None
    assert broker.state == BrokerProcessState.RUNNING
    assert broker.rack == "rack-1"
    assert description.bootstrap_servers == broker.endpoint

    bootstrap = description.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("orders", num_partitions=1, replication_factor=1)])["orders"].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    producer.produce("orders", key=b"k", value=b"hello")
    assert producer.flush(10) == 0
    # Assigning the partition directly avoids a consumer-group join, slow on this broker.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("orders", 0, OFFSET_BEGINNING)])
        message = None
        for _ in range(20):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.error() is None
        assert message.value() == b"hello"
    finally:
        consumer.close()


def test_provision_twice_keeps_the_process_and_port(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    first = backend.provision(spec)
    pid = broker_pid(state_dir, spec)
    second = backend.provision(spec)
    assert second == first
    assert broker_pid(state_dir, spec) == pid
    token = read_state(state_dir, spec)["brokers"][0]["launch_token"]
    assert processes_with_token(token) == [pid]


def test_killed_broker_is_reported_crashed_and_comes_back_on_its_port(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    pid = broker_pid(state_dir, spec)
    os.kill(pid, signal.SIGKILL)

    crashed = wait_for_state(backend, spec, BrokerProcessState.CRASHED).brokers[0]
    assert "killed by signal 9 (SIGKILL)" in crashed.detail
    assert "last log line" in crashed.detail

    again = backend.provision(spec)
    assert again.brokers[0].state == BrokerProcessState.RUNNING
    assert again.bootstrap_servers == endpoint
    assert broker_pid(state_dir, spec) != pid


def test_broker_whose_port_was_taken_moves_to_a_new_one(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    os.kill(broker_pid(state_dir, spec), signal.SIGKILL)
    wait_for_state(backend, spec, BrokerProcessState.CRASHED)
    host, port = endpoint.split(":")
    with listen_on(host, int(port)):
        moved = backend.provision(spec)
    assert moved.bootstrap_servers != endpoint
    assert moved.brokers[0].endpoint == moved.bootstrap_servers
    assert moved.brokers[0].state == BrokerProcessState.RUNNING
    AdminClient({"bootstrap.servers": moved.bootstrap_servers}).list_topics(timeout=10)


def test_port_taken_between_check_and_bind_is_moved(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    os.kill(broker_pid(state_dir, spec), signal.SIGKILL)
    wait_for_state(backend, spec, BrokerProcessState.CRASHED)
    host, port = endpoint.split(":")
    checks: list[int] = []

    def port_is_free_once(probe_host: str, probe_port: int) -> bool:
        # Simulates the race: the port looked free when checked, then another process bound it
        # before the broker did.
        checks.append(probe_port)
        return len(checks) == 1 or local_module.port_is_free(probe_host, probe_port)

    monkeypatch.setattr("provisioning.backends.local.port_is_free", port_is_free_once)
    with listen_on(host, int(port)):
        moved = backend.provision(spec)
    assert moved.bootstrap_servers != endpoint
    assert moved.brokers[0].state == BrokerProcessState.RUNNING
    assert "Address in use" in (state_dir / spec.cluster_id / "broker-1" / "broker.log").read_text()


def test_broker_started_by_a_worker_that_died_before_recording_it_is_adopted(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    backend.provision(spec)
    pid = broker_pid(state_dir, spec)
    # What a worker killed between starting the process and recording its pid leaves behind.
    state = read_state(state_dir, spec)
    state["brokers"][0]["pid"] = state["brokers"][0]["start_time"] = None
    write_state(state_dir, spec, state)

    assert backend.provision(spec).brokers[0].state == BrokerProcessState.RUNNING
    assert broker_pid(state_dir, spec) == pid
    assert processes_with_token(read_state(state_dir, spec)["brokers"][0]["launch_token"]) == [pid]


def test_a_reused_pid_is_not_taken_for_the_broker(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    backend.provision(spec)
    real_pid = broker_pid(state_dir, spec)
    # The recorded pid now belongs to another process (this test run), started at another time.
    state = read_state(state_dir, spec)
    state["brokers"][0]["pid"] = os.getpid()
    write_state(state_dir, spec, state)

    assert backend.describe(spec).brokers[0].state == BrokerProcessState.CRASHED
    backend.delete(spec)
    assert pid_exists(os.getpid())
    assert not pid_exists(real_pid), Path(f"/proc/{real_pid}/stat").read_text()


def test_restart_broker_keeps_the_port(backend: LocalBackend, state_dir: Path, spec: ClusterSpec) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    pid = broker_pid(state_dir, spec)
    backend.restart_broker(spec, 1)
    assert broker_pid(state_dir, spec) != pid
    assert not pid_exists(pid)
    after = backend.describe(spec)
    assert after.bootstrap_servers == endpoint
    assert after.brokers[0].state == BrokerProcessState.RUNNING


def test_the_development_broker_loses_every_topic_when_restarted_or_replaced_keeping_its_disk_and_says_so(
    backend: LocalBackend, spec: ClusterSpec
) -> None:
    description = backend.provision(spec)
    assert (description.durable, description.durability_note) == (False, IN_MEMORY_ONLY)

    def topics() -> set[str]:
        admin = AdminClient({"bootstrap.servers": backend.describe(spec).bootstrap_servers})
        return {t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")}

    def create_orders() -> None:
        admin = AdminClient({"bootstrap.servers": backend.describe(spec).bootstrap_servers})
        admin.create_topics([NewTopic("orders", num_partitions=1, replication_factor=1)])["orders"].result(10)
        assert topics() == {"orders"}

    create_orders()
    backend.restart_broker(spec, 1)
    assert topics() == set()
    create_orders()
    assert not backend.replace_broker(spec, 1, keep_disk=True).durable
    assert topics() == set()


def test_restart_of_an_unknown_broker_fails(backend: LocalBackend, spec: ClusterSpec) -> None:
    with pytest.raises(BackendError, match="has not been provisioned"):
        backend.restart_broker(spec, 1)


def test_replace_broker_starts_a_fresh_process_with_the_same_identity(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    pid = broker_pid(state_dir, spec)
    replaced = backend.replace_broker(spec, 1, keep_disk=False)
    broker = replaced.brokers[0]
    assert (broker.node_id, broker.rack, broker.endpoint) == (1, "rack-1", endpoint)
    assert broker.state == BrokerProcessState.RUNNING
    assert broker_pid(state_dir, spec) != pid
    assert not pid_exists(pid)


def test_delete_stops_the_broker_and_removes_its_state(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    backend.provision(spec)
    pid = broker_pid(state_dir, spec)
    backend.delete(spec)
    assert not pid_exists(pid)
    assert not (state_dir / spec.cluster_id).exists()
    backend.delete(spec)  # already gone: nothing to do
    missing = backend.describe(spec)
    assert missing.bootstrap_servers == ""
    assert missing.brokers[0].state == BrokerProcessState.MISSING


def test_remove_brokers_stops_and_forgets_them(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    backend.provision(spec)
    pid = broker_pid(state_dir, spec)
    remaining = backend.remove_brokers(spec, [1])
    assert remaining.brokers == ()
    assert not pid_exists(pid)
    assert not (state_dir / spec.cluster_id / "broker-1").exists()
    assert backend.remove_brokers(spec, [1]).brokers == ()


def test_stop_all_keeps_the_state_for_the_next_start(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    endpoint = backend.provision(spec).bootstrap_servers
    other = make_spec()
    backend.provision(other)

    assert sorted(stop_all(state_dir, grace=5.0)) == sorted([spec.cluster_id, other.cluster_id])
    stopped = backend.describe(spec).brokers[0]
    assert stopped.state == BrokerProcessState.STOPPED
    assert "shut down" in stopped.detail

    assert backend.resume_after_shutdown(spec) == [1]
    resumed = backend.describe(spec)
    assert resumed.bootstrap_servers == endpoint
    assert resumed.brokers[0].state == BrokerProcessState.RUNNING
    assert backend.resume_after_shutdown(spec) == [], "only what the shutdown stopped comes back"
    assert backend.describe(other).brokers[0].state == BrokerProcessState.STOPPED


def test_concurrent_provisions_start_one_broker(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: backend.provision(spec), range(2)))
    assert results[0] == results[1]
    token = read_state(state_dir, spec)["brokers"][0]["launch_token"]
    assert processes_with_token(token) == [broker_pid(state_dir, spec)]


WORKER_SCRIPT = """
import sys, time
from pathlib import Path
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.backends.local import LocalBackend

spec = ClusterSpec(sys.argv[2], "dev", "4.3.2", (BrokerSpec(1, "rack-1"),), 1, 1, NodeSize(1, 1024, 10))
LocalBackend(Path(sys.argv[1])).provision(spec)
print("provisioned", flush=True)
time.sleep(600)
"""


def test_broker_survives_the_worker_that_started_it(
    backend: LocalBackend, state_dir: Path, spec: ClusterSpec
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(state_dir), spec.cluster_id],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "provisioned"
    finally:
        # Like a Celery worker killed with its whole process group.
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    pid = broker_pid(state_dir, spec)
    assert backend.describe(spec).brokers[0].state == BrokerProcessState.RUNNING
    assert backend.provision(spec).brokers[0].state == BrokerProcessState.RUNNING
    assert broker_pid(state_dir, spec) == pid, "found, not started a second time"

    backend.delete(spec)
    # Not our child: once stopped it is reaped by whoever adopted it, possibly a moment later.
    assert wait_until(lambda: process_start_time(pid) is None, timeout=10)


def test_children_that_ended_are_reaped_once_when_many_threads_look_at_once(tmp_path: Path) -> None:
    """`stop_all` stops brokers from several threads, and each one's wait reaps every ended child:
    two threads that found the same child ended both took it off the table, and one failed."""
    for number in range(20):
        handles = [
            local_module.launch(
                ["true"], log_path=tmp_path / "out.log", env={}, cwd=tmp_path, token=f"reap-{number}-{n}"
            )
            for n in range(4)
        ]
        assert wait_until(lambda handles=handles: all(_ended(h) for h in handles), 10)
        assert not any(_look_from_threads_at_once(handles, threads=8))
        assert all(local_module.exit_description(h) == "exited with status 0" for h in handles)


def _look_from_threads_at_once(handles: list[local_module.ProcessHandle], threads: int) -> list[bool]:
    """Whether any of `handles` is alive, asked by `threads` threads released at the same instant."""
    barrier = threading.Barrier(threads)

    def look(_: int) -> bool:
        barrier.wait()
        return any(local_module.is_alive(h.pid, h.start_time) for h in handles)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(look, range(threads)))


def _ended(handle: local_module.ProcessHandle) -> bool:
    """Ended, reaped or not: a zombie reads as state Z."""
    stat = Path(f"/proc/{handle.pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
