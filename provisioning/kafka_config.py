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

Client security. A spec with `security` (see `provisioning.security`) gets no PLAINTEXT listener: a
SASL_SSL listener with SCRAM-SHA-512 (`SCRAM`) and/or an SSL listener requiring client certificates
(`MTLS`) for clients, the first of them on the node's client port; brokers replicate over `INTERNAL` and
reach the controllers over `CONTROLLER`, both SSL with the brokers' own certificates. The standard
authorizer refuses whatever no ACL allows; the control plane's admin and the brokers are super users.
The broker's key, its certificate chain and the cluster's CA are written into the configuration as PEM
(`ssl.keystore.key` and friends): Kafka reads an unencrypted PEM key only inline, and an encrypted one
only with an encryption Java 17 does not read from the keys `cryptography` writes. Where the
configuration travels through places that must not hold secrets (`BrokerTlsFiles`: an Ansible
inventory, a plan), the same settings instead name files beside it, read when Kafka starts through its
`DirectoryConfigProvider`, so the text holds no secret.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from provisioning import security
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize

MIN_KRAFT_VERSION = (3, 3)  # the first release with production-ready KRaft
DYNAMIC_QUORUM_VERSION = (4, 0)

CLIENT_LISTENER = "PLAINTEXT"
CONTROLLER_LISTENER = "CONTROLLER"
# Listeners of a secured cluster (see the module docstring).
INTERNAL_LISTENER = "INTERNAL"
SCRAM_LISTENER = "SCRAM"
MTLS_LISTENER = "MTLS"
# Client listener -> the authentication it takes, as the API names it.
LISTENER_AUTHENTICATION: Mapping[str, str] = {
    CLIENT_LISTENER: "none",
    SCRAM_LISTENER: security.SCRAM,
    MTLS_LISTENER: security.MTLS,
}
# Ports of a secured cluster's other listeners on backends whose nodes each have an address of their
# own (VMs, pods): brokers replicate over INTERNAL, and a cluster with both SCRAM and mTLS takes
# certificates on MTLS (the first client listener has the client port).
FIXED_LISTENER_PORTS: Mapping[str, int] = {INTERNAL_LISTENER: 9094, MTLS_LISTENER: 9095}
FIXED_CLIENT_PORT = 9092
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"

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
    "authorizer.class.name": "client security follows the cluster's client_authentication",
    "super.users": "client security follows the cluster's client_authentication",
    "allow.everyone.if.no.acl.found": "client security follows the cluster's client_authentication",
    "principal.builder.class": "client security follows the cluster's client_authentication",
    "security.inter.broker.protocol": "listeners are assigned by the backend",
}
# Whole families of keys the same holds for: TLS and SASL settings, per-listener settings.
DENIED_PREFIXES: Mapping[str, str] = {
    "ssl.": "client security follows the cluster's client_authentication",
    "sasl.": "client security follows the cluster's client_authentication",
    "listener.name.": "listeners are assigned by the backend",
}

_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class KafkaConfigError(ValueError):
    """The spec cannot be turned into a broker configuration; `errors` maps spec field to reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


@dataclass(frozen=True)
class NodeAddress:
    """Where one node is reached: by clients (and, unsecured, by brokers) on `client_port`, by the
    quorum on `controller_port` (None on nodes that are not controllers), and on each other listener of
    a secured cluster (`extra_listeners`) on its port in `listener_ports`."""

    node_id: int
    host: str
    client_port: int
    controller_port: int | None = None
    listener_ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerTls:
    """A broker's certificate (issued by the cluster's CA for the broker's host names) and key."""

    certificate_chain_pem: str  # the broker's certificate, then the CA's
    ca_certificate_pem: str
    private_key_pem: str = field(repr=False)

    def settings(self) -> dict[str, str]:
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": self.private_key_pem.strip(),
            "ssl.keystore.certificate.chain": self.certificate_chain_pem.strip(),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": self.ca_certificate_pem.strip(),
        }


TLS_PROVIDER = "tls"
DIRECTORY_CONFIG_PROVIDER = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
TLS_KEY_FILE = "broker.key"
TLS_CHAIN_FILE = "broker.crt"  # the broker's certificate, then the CA's
TLS_CA_FILE = "ca.crt"


@dataclass(frozen=True)
class BrokerTlsFiles:
    """The same material as `BrokerTls` in files of `directory` on the broker's host (`TLS_KEY_FILE`,
    `TLS_CHAIN_FILE`, `TLS_CA_FILE`), which Kafka reads when it starts: the configuration names them and
    holds no secret. Clients on the host (Kafka's tools) use them the same way."""

    directory: str

    def settings(self) -> dict[str, str]:
        def file(name: str) -> str:
            return f"${{{TLS_PROVIDER}:{self.directory}:{name}}}"

        return {
            "config.providers": TLS_PROVIDER,
            f"config.providers.{TLS_PROVIDER}.class": DIRECTORY_CONFIG_PROVIDER,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": file(TLS_KEY_FILE),
            "ssl.keystore.certificate.chain": file(TLS_CHAIN_FILE),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": file(TLS_CA_FILE),
        }


def render_tools_properties(tls: BrokerTlsFiles) -> str:
    """The client configuration (`--command-config`) with which Kafka's tools on a broker's host reach
    the secured cluster's INTERNAL listener as the broker itself (a super user), by its certificate."""
    settings = {"security.protocol": "SSL", **tls.settings()}
    return "".join(f"{key}={_escape(value)}\n" for key, value in settings.items())


def client_listeners(spec: ClusterSpec) -> tuple[str, ...]:
    """The listeners clients connect to, the one on the client port first."""
    if spec.security is None:
        return (CLIENT_LISTENER,)
    wanted = {security.SCRAM: SCRAM_LISTENER, security.MTLS: MTLS_LISTENER}
    return tuple(wanted[auth] for auth in security.AUTHENTICATIONS if auth in spec.security.authentication)


def fixed_client_ports(spec: ClusterSpec) -> tuple[tuple[str, int], ...]:
    """Each client listener with its port on backends whose nodes each have an address of their own
    (VMs, pods): the first on `FIXED_CLIENT_PORT`, the others on their `FIXED_LISTENER_PORTS`."""
    return tuple(
        (listener, FIXED_CLIENT_PORT if index == 0 else FIXED_LISTENER_PORTS[listener])
        for index, listener in enumerate(client_listeners(spec))
    )


def extra_listeners(spec: ClusterSpec) -> tuple[str, ...]:
    """Listeners that need a port of their own besides the client and controller ports."""
    if spec.security is None:
        return ()
    return (INTERNAL_LISTENER, *client_listeners(spec)[1:])


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
        elif prefix := next((p for p in DENIED_PREFIXES if key.startswith(p)), None):
            problems[key] = f"cannot be overridden: {DENIED_PREFIXES[prefix]}"
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
    if spec.security is not None:
        methods = spec.security.authentication
        if not methods or set(methods) - set(security.AUTHENTICATIONS) or len(set(methods)) != len(methods):
            errors["client_authentication"] = (
                f"one or both of {', '.join(security.AUTHENTICATIONS)}, each once; got {list(methods)}"
            )
    return errors


def _escape(value: str) -> str:
    """Escape a value for a Java properties file, which Kafka reads as ISO-8859-1 with backslash
    escapes: without this a Windows-style path or a non-Latin character would be read differently."""
    out: list[str] = []
    for index, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")  # PEM values: a properties file reads the escape back as a line break
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
    tls: BrokerTls | BrokerTlsFiles | None = None,
) -> str:
    """The server.properties of one node.

    `addresses` holds at least this node and every controller; `bind_host` is the interface the client
    listeners bind to (e.g. 0.0.0.0 in a container), defaulting to the node's own host. The controller
    listener always binds to the node's host because dynamic quorums advertise it from `listeners`.
    A secured spec needs `tls`, the broker's certificate; the text then holds its private key (unless
    given as `BrokerTlsFiles`).
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
    if spec.security is not None and tls is None:
        raise KafkaConfigError({"client_authentication": f"node {node_id} has no certificate"})
    is_controller = node_id in controllers

    ports = {client_listeners(spec)[0]: address.client_port, **address.listener_ports}
    broker_listeners = [*extra_listeners(spec)[:1], *client_listeners(spec)]
    if missing := [name for name in broker_listeners if name not in ports]:
        raise KafkaConfigError({"brokers": f"node {node_id} has no port for listeners {', '.join(missing)}"})
    listeners = [f"{name}://{bind_host or address.host}:{ports[name]}" for name in broker_listeners]
    if is_controller:
        if address.controller_port is None:
            raise KafkaConfigError({"brokers": f"controller {node_id} has no controller port"})
        listeners.append(f"{CONTROLLER_LISTENER}://{address.host}:{address.controller_port}")

    settings: dict[str, str] = {
        "node.id": str(node_id),
        "process.roles": "broker,controller" if is_controller else "broker",
        **_quorum_settings(quorum, controllers, addresses),
        "listeners": ",".join(listeners),
        # Kafka refuses a controller listener among a broker's advertised listeners: clients never
        # talk to controllers.
        "advertised.listeners": ",".join(
            f"{name}://{address.host}:{ports[name]}" for name in broker_listeners
        ),
        # Brokers that are not controllers still need the protocol of the listener they dial controllers on.
        "listener.security.protocol.map": ",".join(
            f"{name}:{_protocol(spec, name)}" for name in [*broker_listeners, CONTROLLER_LISTENER]
        ),
        "inter.broker.listener.name": broker_listeners[0],
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
    if tls is not None and spec.security is not None:
        settings.update(_security_settings(spec, broker_listeners, tls))
    settings.update(dict(spec.config))

    lines = [f"# Apache Kafka {spec.kafka_version}, cluster {spec.name} ({spec.cluster_id}), node {node_id}"]
    lines.extend(f"{key}={_escape(value)}" for key, value in settings.items())
    return "\n".join(lines) + "\n"


def _protocol(spec: ClusterSpec, listener: str) -> str:
    """The security protocol of a listener: all PLAINTEXT on an unsecured cluster, else SSL but SCRAM's."""
    if spec.security is None:
        return "PLAINTEXT"
    return "SASL_SSL" if listener == SCRAM_LISTENER else "SSL"


def _security_settings(
    spec: ClusterSpec, broker_listeners: Sequence[str], tls: BrokerTls | BrokerTlsFiles
) -> dict[str, str]:
    settings = {
        # Every SSL listener but the SCRAM one authenticates its peer by certificate: brokers on
        # INTERNAL and CONTROLLER, clients on MTLS.
        **{
            f"listener.name.{name.lower()}.ssl.client.auth": "required"
            for name in [*broker_listeners, CONTROLLER_LISTENER]
            if _protocol(spec, name) == "SSL"
        },
        **tls.settings(),
        # A certificate's common name is its principal: User:<CN>, as users and ACLs name it.
        # Only a bare CN maps (certificates the control plane issues have nothing else), so no other
        # distinguished name can pass for a user.
        "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": f"User:{security.ADMIN_USER};User:{security.BROKER_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }
    if SCRAM_LISTENER in broker_listeners:
        prefix = f"listener.name.{SCRAM_LISTENER.lower()}"
        settings[f"{prefix}.sasl.enabled.mechanisms"] = security.SCRAM_MECHANISM
        # Brokers only check SCRAM credentials here (they never log in over SCRAM): the module alone.
        settings[f"{prefix}.{security.SCRAM_MECHANISM.lower()}.sasl.jaas.config"] = (
            f"{SCRAM_LOGIN_MODULE} required;"
        )
    return settings


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
    Under a dynamic quorum the controllers carry the initial voter set; brokers need no flag. A cluster
    with SCRAM gets the control plane's credential in its first metadata (KIP-900 `--add-scram`), so
    that its first admin connection can authenticate; the arguments then hold that password.
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
    return args + admin_credential_format_args(spec)


def admin_credential_format_args(spec: ClusterSpec) -> list[str]:
    """The storage-format arguments that put the control plane's SCRAM credential into a new cluster's
    first metadata (none for a cluster without SCRAM); they hold its password."""
    if spec.security is None or security.SCRAM not in spec.security.authentication:
        return []
    credential = f'name={security.ADMIN_USER},password="{spec.security.admin_password}"'
    return ["--add-scram", f"{security.SCRAM_MECHANISM}=[{credential}]"]


def render_controller_properties(
    spec: ClusterSpec,
    node_id: int,
    *,
    addresses: Mapping[int, NodeAddress],
    controllers: Sequence[int],
    quorum: QuorumStyle,
    log_dir: str,
    tls: BrokerTls | BrokerTlsFiles | None = None,
) -> str:
    """The server.properties of a dedicated (controller-only) node: no client listener, no rack, only
    the quorum. The spec's extra configuration applies too, as it does on combined nodes. A secured
    spec needs `tls`: the quorum then speaks SSL with certificates, as on combined nodes."""
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
    if spec.security is not None and tls is None:
        raise KafkaConfigError({"client_authentication": f"node {node_id} has no certificate"})
    settings: dict[str, str] = {
        "node.id": str(node_id),
        "process.roles": "controller",
        **_quorum_settings(quorum, controllers, addresses),
        "listeners": f"{CONTROLLER_LISTENER}://{address.host}:{address.controller_port}",
        "listener.security.protocol.map": f"{CONTROLLER_LISTENER}:{_protocol(spec, CONTROLLER_LISTENER)}",
        "controller.listener.names": CONTROLLER_LISTENER,
        "log.dirs": log_dir,
    }
    if tls is not None and spec.security is not None:
        settings.update(_security_settings(spec, (), tls))
    settings.update(dict(spec.config))
    lines = [
        f"# Apache Kafka {spec.kafka_version}, cluster {spec.name} ({spec.cluster_id}), controller {node_id}"
    ]
    lines.extend(f"{key}={_escape(value)}" for key, value in settings.items())
    return "\n".join(lines) + "\n"


def heap_mb(node_size: NodeSize) -> int:
    """The JVM heap of a node of this size: half the memory, the rest left to the page cache Kafka
    reads from; Kafka's guidance caps the useful heap at a few GB."""
    return min(6144, max(256, node_size.memory_mb // 2))
