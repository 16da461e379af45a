"""The interface every provisioning backend implements (`local`, `kubernetes`, `vm`).

Workflows only call these methods; nothing outside `provisioning/backends/` branches on which backend a
cluster uses. Every method is idempotent: called again after a crash with the same spec it converges on
the same result and never creates a second copy of anything. Inputs are plain frozen data (no Django
models), so backends are testable without a database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class BackendError(Exception):
    """A failure that retrying will not fix (bad spec, missing binary, rejected manifest)."""


class BackendUnavailableError(BackendError):
    """The target infrastructure could not be reached; retrying later may succeed."""


class BackendCancelled(BackendError):
    """The backend stopped what it was doing because its events sink said to (`should_stop`): the
    operation it worked for was cancelled."""


class BrokerProcessState(enum.StrEnum):
    RUNNING = "running"  # up and accepting connections
    STARTING = "starting"  # launched, not yet accepting connections
    STOPPED = "stopped"  # stopped on purpose
    CRASHED = "crashed"  # was started, is gone without being asked to stop
    MISSING = "missing"  # the backend has no trace of it


@dataclass(frozen=True)
class NodeSize:
    cpu: float  # cores
    memory_mb: int
    disk_gb: int


@dataclass(frozen=True)
class BrokerSpec:
    node_id: int
    rack: str


@dataclass(frozen=True)
class SecuritySpec:
    """How a cluster authenticates its clients (see `provisioning.security`): the listeners' methods,
    the cluster's CA, and the control plane's own credential. Secrets never show in a repr."""

    authentication: tuple[str, ...]  # "scram" (SASL_SSL, SCRAM-SHA-512) and/or "mtls" (SSL, client certs)
    ca_certificate_pem: str
    ca_private_key_pem: str = field(repr=False)
    admin_password: str = field(repr=False)  # the control plane's SCRAM password (clusters with scram)
    # Raised to rotate the brokers' certificates: a broker whose certificate is older gets a new one
    # when it next starts (a rolling restart).
    certificate_generation: int = 1


@dataclass(frozen=True)
class ClusterSpec:
    """The desired state of one cluster, as the control plane's database holds it."""

    cluster_id: str  # stable unique id (the database uuid); names resources and the KRaft cluster
    name: str
    kafka_version: str
    brokers: tuple[BrokerSpec, ...]
    replication_factor: int
    min_insync_replicas: int
    node_size: NodeSize
    config: tuple[tuple[str, str], ...] = ()  # extra broker configuration, key/value pairs
    security: SecuritySpec | None = None  # None: clients connect without authentication (PLAINTEXT)

    @property
    def racks(self) -> list[str]:
        return sorted({b.rack for b in self.brokers})


@dataclass(frozen=True)
class BrokerStatus:
    node_id: int
    rack: str
    endpoint: str  # host:port clients connect to
    state: BrokerProcessState
    detail: str = ""  # why, in plain words, when not running (exit code, last log line)


@dataclass(frozen=True)
class ClusterDescription:
    bootstrap_servers: str  # of the primary client listener (SCRAM when there is one)
    brokers: tuple[BrokerStatus, ...] = field(default_factory=tuple)
    # Whether a broker keeps its data when it is restarted, upgraded or replaced keeping its disk;
    # when not, `durability_note` says so in plain words (shown in the API and the operation log).
    durable: bool = True
    durability_note: str = ""
    # Bootstrap servers per client authentication ("scram", "mtls"; "none" on a cluster without).
    client_endpoints: tuple[tuple[str, str], ...] = ()
    # Dedicated KRaft controllers (nodes that are no brokers), for backends that run them: rolling
    # restarts and upgrades restart them too, through `restart_broker`. Endpoints are controller ports.
    controllers: tuple[BrokerStatus, ...] = ()

    def broker(self, node_id: int) -> BrokerStatus | None:
        return next((b for b in self.brokers if b.node_id == node_id), None)

    def node(self, node_id: int) -> BrokerStatus | None:
        """A broker or a dedicated controller."""
        return self.broker(node_id) or next((c for c in self.controllers if c.node_id == node_id), None)


@dataclass(frozen=True)
class ProvisioningPlan:
    """What a backend would create for a spec, shown to the user before anything is applied."""

    summary: str
    artifacts: dict[str, str]  # file name -> rendered content (manifests, inventory, server.properties)
    manifests: str = ""  # every Kubernetes object as one YAML stream, for backends that apply manifests


class Backend(Protocol):
    name: str
    events: BackendEvents  # where it reports what it does (set per operation step by the caller)

    def validate(self, spec: ClusterSpec) -> dict[str, str]:
        """Backend-specific problems with a spec, as field -> message; empty when it can be built."""
        ...

    def plan(self, spec: ClusterSpec) -> ProvisioningPlan: ...

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        """Make every broker in `spec` exist and run; leave brokers not in `spec` alone."""
        ...

    def remove_brokers(self, spec: ClusterSpec, node_ids: list[int]) -> ClusterDescription:
        """Stop and delete these brokers (already drained by the caller)."""
        ...

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        """Restart a broker, or a dedicated controller the description lists, on `spec` (its version and
        configuration); may return once the restart is asked for (the roll polls `describe`)."""
        ...

    def replace_broker(self, spec: ClusterSpec, node_id: int, *, keep_disk: bool) -> ClusterDescription:
        """Start a fresh broker with the same node id and rack; keep its data directory when asked."""
        ...

    def delete(self, spec: ClusterSpec) -> bool:
        """Ask for every trace of the cluster to be removed; True once nothing is left (a remote
        backend answers False while objects are still going: the delete workflow asks again). Safe
        when it is already gone."""
        ...

    def describe(self, spec: ClusterSpec) -> ClusterDescription: ...

    def connection(self, spec: ClusterSpec, bootstrap_servers: str) -> KafkaConnection:
        """How the control plane's Kafka admin client reaches the cluster (`bootstrap_servers`: what
        the cluster's record holds, from an earlier description)."""
        ...


@dataclass(frozen=True)
class KafkaConnection:
    """How the control plane's Kafka admin client reaches a cluster, as its backend says."""

    bootstrap_servers: str
    # Extra librdkafka settings (security protocol, SASL, TLS); they may hold secrets.
    config: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # bootstrap address -> node id, for a single node that numbers itself differently from the spec
    # (the development broker always says 111).
    renumber: tuple[tuple[str, int], ...] = ()


class BackendEvents(Protocol):
    """Where a backend tells what it does while it does it: lines land in the operation's log, in
    batches (the caller decides when they are written). A backend that works for long within one call
    (a playbook run) asks `should_stop` on the way and raises `BackendCancelled` when it answers true;
    `scope` names what the work is for (an operation), e.g. to keep its artifacts together."""

    scope: str

    def log(self, message: str) -> None: ...

    def should_stop(self) -> bool: ...


class _NullEvents:
    scope = ""

    def log(self, message: str) -> None:
        pass

    def should_stop(self) -> bool:
        return False


NULL_EVENTS: BackendEvents = _NullEvents()


@dataclass(frozen=True)
class Check:
    """One finding of a connection test (Kubernetes: api_server, namespace, permissions; host pools: a
    host each)."""

    name: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ConnectionReport:
    """What testing a target's connection found, before clusters are placed on it."""

    checks: tuple[Check, ...]
    server_version: str = ""  # Kubernetes: as the API server names it (v1.37.2); empty when unanswered
    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Kubernetes: kind -> verbs refused

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def summary(self) -> str:
        failed = [check.message for check in self.checks if not check.ok]
        if not failed:
            return "Clusters can be placed on this target: " + "; ".join(c.message for c in self.checks) + "."
        return " ".join(failed)
