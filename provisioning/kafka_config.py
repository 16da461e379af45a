"""Apache Kafka KRaft broker configuration, rendered from a `ClusterSpec`.

Shared by every backend that runs real Apache Kafka (local processes, VMs through Ansible, Kubernetes
pods), so nothing here knows where a broker runs: callers pass host names, ports and directories.

Quorum layout. Every node is a broker; some are also KRaft controllers ("combined" nodes). A cluster of
one or two brokers gets a single controller (with two controllers the quorum would stop when either
stops, which is worse than one); a bigger cluster gets three, picked one per rack before any rack gets
a second, so losing a rack cannot take away the quorum's majority. The choice is made once, when the
cluster is created, and then kept by the backend: adding or removing a voter is a quorum membership
change, not something a broker restart can do.

Quorum style. A cluster created on Apache Kafka 4.0 or later gets a dynamic quorum (KIP-853, the way
4.x documents provisioning): nodes find it through `controller.quorum.bootstrap.servers` and the
controllers are formatted with `--initial-controllers`. An older release gets a static quorum,
`controller.quorum.voters`, which every KRaft release understands. The style is chosen once, when the
cluster's storage is formatted, and the backend records it: Kafka reads a static quorum only from
`controller.quorum.voters`, and formatted disks keep what they were formatted with, so a 3.9 cluster
upgraded to 4.x must go on rendering voters (KAFKA-16538: moving to a dynamic quorum is a separate
step, possible only from 4.1 and only after kraft.version is raised to 1).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize

MIN_KRAFT_VERSION = (3, 3)  # the first release with production-ready KRaft
DYNAMIC_QUORUM_VERSION = (4, 0)

CLIENT_LISTENER = "PLAINTEXT"
CONTROLLER_LISTENER = "CONTROLLER"

# Only the default for topics created without a partition count; users may override it.
DEFAULT_NUM_PARTITIONS = 3

# Keys the control plane derives from the spec or the backend's layout. Letting a user set them would
# break the backend's bookkeeping (ports, directories, quorum) or contradict a field of the spec.
DENIED_KEYS: Mapping[str, str] = {
    "node.id": "node ids are assigned by the control plane",
    "broker.id": "node ids are assigned by the control plane",
    "process.roles": "roles follow the cluster's controller layout",
    "listeners": "listeners are assigned by the backend",
    "advertised.listeners": "listeners are assigned by the backend",
    "listener.security.protocol.map": "listeners are assigned by the backend",
    "inter.broker.listener.name": "listeners are assigned by the backend",
    "controller.listener.names": "listeners are assigned by the backend",
    "controller.quorum.voters": "the controller quorum is managed by the control plane",
    "controller.quorum.bootstrap.servers": "the controller quorum is managed by the control plane",
    "log.dirs": "data directories are assigned by the backend",
    "log.dir": "data directories are assigned by the backend",
    "metadata.log.dir": "data directories are assigned by the backend",
    "broker.rack": "racks come from the placement of each broker",
    "zookeeper.connect": "clusters run in KRaft mode",
    "default.replication.factor": "set the cluster's replication_factor instead",
    "min.insync.replicas": "set the cluster's min_insync_replicas instead",
    "offsets.topic.replication.factor": "follows the cluster's replication_factor",
    "transaction.state.log.replication.factor": "follows the cluster's replication_factor",
    "transaction.state.log.min.isr": "follows the cluster's min_insync_replicas",
}

_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class KafkaConfigError(ValueError):
    """The spec cannot be turned into a broker configuration; `errors` maps spec field to reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


@dataclass(frozen=True)
class NodeAddress:
    """Where one node is reached: by clients and brokers on `client_port`, by the quorum on
    `controller_port` (None on nodes that are not controllers)."""

    node_id: int
    host: str
    client_port: int
    controller_port: int | None = None


def parse_kafka_version(version: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?(?:[-.][0-9A-Za-z.-]+)?", version.strip())
    if match is None:
        raise KafkaConfigError({"kafka_version": f"{version!r} is not an Apache Kafka version like 3.9.1"})
    return int(match.group(1)), int(match.group(2))


class QuorumStyle(enum.StrEnum):
    STATIC = "static"  # controller.quorum.voters, kraft.version 0
    DYNAMIC = "dynamic"  # controller.quorum.bootstrap.servers, formatted with --initial-controllers


def quorum_style_for_new_cluster(kafka_version: str) -> QuorumStyle:
    """The quorum style a cluster created on `kafka_version` is formatted with (recorded, then kept)."""
    if parse_kafka_version(kafka_version) >= DYNAMIC_QUORUM_VERSION:
        return QuorumStyle.DYNAMIC
    return QuorumStyle.STATIC


def choose_controllers(brokers: Sequence[BrokerSpec]) -> tuple[int, ...]:
    """Node ids of the KRaft controllers for a new cluster (see the module docstring for the rule)."""
    wanted = 1 if len(brokers) < 3 else 3
    by_rack: dict[str, list[int]] = {}
    for broker in sorted(brokers, key=lambda b: b.node_id):
        by_rack.setdefault(broker.rack, []).append(broker.node_id)
    chosen: list[int] = []
    # Round-robin over racks: the lowest node id of every rack first, then the next of every rack.
    while len(chosen) < wanted:
        for rack in sorted(by_rack):
            if by_rack[rack] and len(chosen) < wanted:
                chosen.append(by_rack[rack].pop(0))
    return tuple(sorted(chosen))


def _kafka_uuid(seed: bytes) -> str:
    """A Kafka `Uuid` string (unpadded base64url of 16 bytes) derived deterministically from `seed`.

    Kafka's own generator rejects ids starting with "-" because the command-line tools would read them
    as an option; such candidates are re-hashed, as are the ids Kafka reserves (all zeros, one).
    """
    candidate = seed[:16] if len(seed) >= 16 else hashlib.sha256(seed).digest()[:16]
    while True:
        text = base64.urlsafe_b64encode(candidate).decode("ascii").rstrip("=")
        if not text.startswith("-") and int.from_bytes(candidate, "big") > 1:
            return text
        candidate = hashlib.sha256(candidate).digest()[:16]


def _cluster_uuid(cluster_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(cluster_id)
    except ValueError:
        raise KafkaConfigError({"cluster_id": f"{cluster_id!r} is not a UUID"}) from None


def kraft_cluster_id(cluster_id: str) -> str:
    """The KRaft cluster id for `kafka-storage.sh format -t`: the spec's UUID bytes in Kafka's
    notation, so every node of a cluster (and every re-run) gets the same id without storing it."""
    return _kafka_uuid(_cluster_uuid(cluster_id).bytes)


def kraft_directory_id(cluster_id: str, node_id: int) -> str:
    """The metadata directory id a controller is formatted with (`--initial-controllers`).

    Deterministic, so a re-run of a format step after a crash names the same voters.
    """
    seed = _cluster_uuid(cluster_id).bytes + b"/directory/" + str(node_id).encode("ascii")
    return _kafka_uuid(hashlib.sha256(seed).digest())


def validate_overrides(config: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Problems with a spec's extra broker configuration, as key -> reason (empty when all is fine)."""
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for key, value in config:
        if not _KEY_PATTERN.fullmatch(key):
            problems[key] = "not a broker configuration key (letters, digits, '.', '_', '-')"
        elif key in DENIED_KEYS:
            problems[key] = f"cannot be overridden: {DENIED_KEYS[key]}"
        elif key in seen:
            problems[key] = "set more than once"
        elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            # A line break would let a value smuggle in further keys, denied ones included.
            problems[key] = "the value contains a line break or another control character"
        seen.add(key)
    return problems


def validate_spec(spec: ClusterSpec) -> dict[str, str]:
    """Problems that stop a spec from becoming KRaft configuration, as spec field -> message."""
    errors: dict[str, str] = {}
    try:
        if parse_kafka_version(spec.kafka_version) < MIN_KRAFT_VERSION:
            minimum = ".".join(map(str, MIN_KRAFT_VERSION))
            errors["kafka_version"] = f"KRaft clusters need Apache Kafka {minimum} or newer"
    except KafkaConfigError as exc:
        errors.update(exc.errors)
    try:
        _cluster_uuid(spec.cluster_id)
    except KafkaConfigError as exc:
        errors.update(exc.errors)
    node_ids = [b.node_id for b in spec.brokers]
    if len(set(node_ids)) != len(node_ids):
        errors["brokers"] = "node ids must be unique"
    elif any(node_id < 0 for node_id in node_ids):
        errors["brokers"] = "node ids must not be negative"
    overrides = validate_overrides(spec.config)
    if overrides:
        errors["config"] = "; ".join(f"{key}: {reason}" for key, reason in overrides.items())
    return errors


def _escape(value: str) -> str:
    """Escape a value for a Java properties file, which Kafka reads as ISO-8859-1 with backslash
    escapes: without this a Windows-style path or a non-Latin character would be read differently."""
    out: list[str] = []
    for index, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == " " and index == 0:
            out.append("\\ ")  # a leading space would otherwise be dropped
        elif ord(ch) > 0x7E:
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(ch))
        else:
            out.append(ch)
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    encoded = ch.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def _quorum_settings(
    quorum: QuorumStyle, controllers: Sequence[int], addresses: Mapping[int, NodeAddress]
) -> dict[str, str]:
    endpoints: list[tuple[int, str]] = []
    for node_id in sorted(controllers):
        address = addresses.get(node_id)
        if address is None or address.controller_port is None:
            raise KafkaConfigError({"brokers": f"controller {node_id} has no controller address"})
        endpoints.append((node_id, f"{address.host}:{address.controller_port}"))
    if quorum is QuorumStyle.DYNAMIC:
        return {"controller.quorum.bootstrap.servers": ",".join(endpoint for _, endpoint in endpoints)}
    return {"controller.quorum.voters": ",".join(f"{node_id}@{endpoint}" for node_id, endpoint in endpoints)}


def render_server_properties(
    spec: ClusterSpec,
    node_id: int,
    *,
    addresses: Mapping[int, NodeAddress],
    controllers: Sequence[int],
    quorum: QuorumStyle,
    log_dir: str,
    bind_host: str | None = None,
) -> str:
    """The server.properties of one node.

    `addresses` holds at least this node and every controller; `bind_host` is the interface the client
    listener binds to (e.g. 0.0.0.0 in a container), defaulting to the node's own host. The controller
    listener always binds to the node's host because dynamic quorums advertise it from `listeners`.
    """
    errors = validate_spec(spec)
    if errors:
        raise KafkaConfigError(errors)
    broker = next((b for b in spec.brokers if b.node_id == node_id), None)
    if broker is None:
        raise KafkaConfigError({"brokers": f"node {node_id} is not part of cluster {spec.name}"})
    address = addresses.get(node_id)
    if address is None:
        raise KafkaConfigError({"brokers": f"node {node_id} has no address"})
    is_controller = node_id in controllers

    listeners = [f"{CLIENT_LISTENER}://{bind_host or address.host}:{address.client_port}"]
    protocols = [f"{CLIENT_LISTENER}:PLAINTEXT"]
    if is_controller:
        if address.controller_port is None:
            raise KafkaConfigError({"brokers": f"controller {node_id} has no controller port"})
        listeners.append(f"{CONTROLLER_LISTENER}://{address.host}:{address.controller_port}")
    # Brokers that are not controllers still need the protocol of the listener they dial controllers on.
    protocols.append(f"{CONTROLLER_LISTENER}:PLAINTEXT")

    settings: dict[str, str] = {
        "node.id": str(node_id),
        "process.roles": "broker,controller" if is_controller else "broker",
        **_quorum_settings(quorum, controllers, addresses),
        "listeners": ",".join(listeners),
        # Kafka refuses a controller listener among a broker's advertised listeners: clients never
        # talk to controllers.
        "advertised.listeners": f"{CLIENT_LISTENER}://{address.host}:{address.client_port}",
        "listener.security.protocol.map": ",".join(protocols),
        "inter.broker.listener.name": CLIENT_LISTENER,
        "controller.listener.names": CONTROLLER_LISTENER,
        "log.dirs": log_dir,
        "broker.rack": broker.rack,
        "default.replication.factor": str(spec.replication_factor),
        "min.insync.replicas": str(spec.min_insync_replicas),
        "offsets.topic.replication.factor": str(spec.replication_factor),
        "transaction.state.log.replication.factor": str(spec.replication_factor),
        "transaction.state.log.min.isr": str(spec.min_insync_replicas),
        "num.partitions": str(DEFAULT_NUM_PARTITIONS),
        # Topics are created through the control plane, so a typo in a client's topic name fails
        # instead of silently creating a topic outside placement and quotas.
        "auto.create.topics.enable": "false",
    }
    settings.update(dict(spec.config))

    lines = [f"# Apache Kafka {spec.kafka_version}, cluster {spec.name} ({spec.cluster_id}), node {node_id}"]
    lines.extend(f"{key}={_escape(value)}" for key, value in settings.items())
    return "\n".join(lines) + "\n"


def storage_format_args(
    spec: ClusterSpec,
    node_id: int,
    *,
    config_path: str,
    addresses: Mapping[int, NodeAddress],
    controllers: Sequence[int],
    quorum: QuorumStyle,
) -> list[str]:
    """Arguments for `kafka-storage.sh` that format one node's directories.

    `--ignore-formatted` makes a re-run after a crash a no-op on directories already formatted.
    Under a dynamic quorum the controllers carry the initial voter set; brokers need no flag.
    """
    args = ["format", "-t", kraft_cluster_id(spec.cluster_id), "-c", config_path, "--ignore-formatted"]
    if quorum is QuorumStyle.DYNAMIC and node_id in controllers:
        voters: list[str] = []
        for controller in sorted(controllers):
            address = addresses.get(controller)
            if address is None or address.controller_port is None:
                raise KafkaConfigError({"brokers": f"controller {controller} has no controller address"})
            directory_id = kraft_directory_id(spec.cluster_id, controller)
            voters.append(f"{controller}@{address.host}:{address.controller_port}:{directory_id}")
        args += ["--initial-controllers", ",".join(voters)]
    return args


def render_controller_properties(
    spec: ClusterSpec,
    node_id: int,
    *,
    addresses: Mapping[int, NodeAddress],
    controllers: Sequence[int],
    quorum: QuorumStyle,
    log_dir: str,
) -> str:
    """The server.properties of a dedicated (controller-only) node: no client listener, no rack, only
    the quorum. The spec's extra configuration applies too, as it does on combined nodes."""
    errors = validate_spec(spec)
    if errors:
        raise KafkaConfigError(errors)
    if node_id not in controllers:
        raise KafkaConfigError({"brokers": f"node {node_id} is not a controller of cluster {spec.name}"})
    if any(b.node_id == node_id for b in spec.brokers):
        raise KafkaConfigError({"brokers": f"node {node_id} is a broker; render it as one"})
    address = addresses.get(node_id)
    if address is None or address.controller_port is None:
        raise KafkaConfigError({"brokers": f"controller {node_id} has no controller address"})
    settings: dict[str, str] = {
        "node.id": str(node_id),
        "process.roles": "controller",
        **_quorum_settings(quorum, controllers, addresses),
        "listeners": f"{CONTROLLER_LISTENER}://{address.host}:{address.controller_port}",
        "listener.security.protocol.map": f"{CONTROLLER_LISTENER}:PLAINTEXT",
        "controller.listener.names": CONTROLLER_LISTENER,
        "log.dirs": log_dir,
        **dict(spec.config),
    }
    lines = [
        f"# Apache Kafka {spec.kafka_version}, cluster {spec.name} ({spec.cluster_id}), controller {node_id}"
    ]
    lines.extend(f"{key}={_escape(value)}" for key, value in settings.items())
    return "\n".join(lines) + "\n"


def heap_mb(node_size: NodeSize) -> int:
    """The JVM heap of a node of this size: half the memory, the rest left to the page cache Kafka
    reads from; Kafka's guidance caps the useful heap at a few GB."""
    return min(6144, max(256, node_size.memory_mb // 2))
