"""Host pools: the machines an organization gives the `vm` backend, and which of them a cluster gets.

A pool is plain data read from a registered target's settings (`pool_from_settings`): its hosts (name,
address, rack, SSH user and port, and for machines that need it a Java home or a path prefix), the
racks it declares, and how Kafka runs on its hosts (systemd or the playbooks' supervisor, which
account). One broker runs on one host: a host is free or holds exactly one broker of one cluster.

`allocate` gives brokers (node id -> rack, as the placement engine laid them out) free hosts of their
rack, and refuses with what is missing per rack. It is pure; the control plane records its answer
(and serializes concurrent allocations in one pool) in its database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from provisioning.ansible.inventory import InventoryHost

SERVICE_MANAGERS = ("systemd", "supervised")
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
SSH_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
RACK = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
ABSOLUTE_PATH = re.compile(r"^/[^\0\n]*$")


@dataclass(frozen=True)
class HostPool:
    name: str
    hosts: tuple[InventoryHost, ...]
    racks: tuple[str, ...] = ()  # declared racks; empty: whatever racks the hosts name
    service_manager: str = "systemd"
    # The account Kafka runs as; empty: the SSH user (no account is created).
    kafka_user: str = "kafka"
    python_interpreter: str = ""

    def host(self, name: str) -> InventoryHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def free_by_rack(self, taken: Collection[str]) -> dict[str, list[InventoryHost]]:
        free: dict[str, list[InventoryHost]] = {}
        for host in sorted(self.hosts, key=lambda h: h.name):
            if host.name not in taken:
                free.setdefault(host.rack, []).append(host)
        return free

    def variables(self) -> dict[str, Any]:
        """Inventory variables every host of the pool gets."""
        variables: dict[str, Any] = {"kafka_service_manager": self.service_manager}
        if self.kafka_user:
            variables.update(kafka_user=self.kafka_user, kafka_create_user=True)
        else:  # each host's own SSH user, as Ansible resolves it per host
            variables.update(kafka_user="{{ ansible_user }}", kafka_create_user=False)
        if self.python_interpreter:
            variables["ansible_python_interpreter"] = self.python_interpreter
        return variables


def pool_from_settings(name: str, settings: Mapping[str, Any]) -> HostPool:
    """The pool a target's (validated) settings describe."""
    hosts = tuple(
        InventoryHost(
            name=h["name"],
            address=h["address"],
            rack=h["rack"],
            ssh_user=h.get("ssh_user") or "root",
            ssh_port=int(h.get("ssh_port") or 22),
            kafka_root=h.get("kafka_root") or "",
            java_home=h.get("java_home") or settings.get("java_home") or "",
        )
        for h in settings.get("hosts") or ()
    )
    return HostPool(
        name=name,
        hosts=hosts,
        racks=tuple(settings.get("racks") or ()),
        service_manager=settings.get("service_manager") or "systemd",
        kafka_user=settings.get("kafka_user", "kafka"),
        python_interpreter=settings.get("python_interpreter") or "",
    )


def address_error(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if DNS_NAME.match(address) and not address.replace(".", "").isdigit():
            return None
        return f"{address!r} is neither an IP address nor a host name."
    if ip.is_unspecified or ip.is_multicast:
        return f"{address} cannot be a host's address."
    return None


def host_errors(pool: HostPool) -> dict[str, str]:
    """What is wrong with a pool's hosts, as field -> message (one message per field, naming the host)."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not pool.hosts:
        add("hosts", "A host pool needs at least one host.")
    if pool.service_manager not in SERVICE_MANAGERS:
        add("service_manager", f"Use one of {', '.join(SERVICE_MANAGERS)}.")
    if pool.kafka_user and not SSH_USER.match(pool.kafka_user):
        add("kafka_user", f"{pool.kafka_user!r} is not a valid account name.")
    for rack in pool.racks:
        if not RACK.match(rack) or len(rack) > 63:
            add("racks", f"Invalid rack name {rack!r}: use letters, digits, '-', '_' and '.'.")
    if len(set(pool.racks)) != len(pool.racks):
        add("racks", "Rack names must be distinct.")
    names: set[str] = set()
    endpoints: set[tuple[str, int]] = set()
    for host in pool.hosts:
        label = f"host {host.name!r}"
        if not HOST_NAME.match(host.name):
            add("hosts", f"{label}: a name uses letters, digits, '-', '_' and '.' (at most 63).")
        if host.name in names:
            add("hosts", f"{label} is listed twice; host names are unique within a pool.")
        names.add(host.name)
        if problem := address_error(host.address):
            add("hosts", f"{label}: {problem}")
        elif (host.address, host.ssh_port) in endpoints:
            add("hosts", f"{label}: {host.address}:{host.ssh_port} is already another host of the pool.")
        endpoints.add((host.address, host.ssh_port))
        if not RACK.match(host.rack) or len(host.rack) > 63:
            add("hosts", f"{label}: invalid rack name {host.rack!r}.")
        elif pool.racks and host.rack not in pool.racks:
            add(
                "hosts", f"{label}: unknown rack {host.rack!r}; the pool's racks are {', '.join(pool.racks)}."
            )
        if not SSH_USER.match(host.ssh_user):
            add("hosts", f"{label}: {host.ssh_user!r} is not a valid SSH user name.")
        if not 1 <= host.ssh_port <= 65535:
            add("hosts", f"{label}: SSH port {host.ssh_port} is out of range.")
        for what, path in (("kafka_root", host.kafka_root), ("java_home", host.java_home)):
            if path and not ABSOLUTE_PATH.match(path):
                add("hosts", f"{label}: {what} must be an absolute path.")
    return {field: " ".join(messages) for field, messages in errors.items()}


def ssh_key_error(text: str) -> str | None:
    """None when `text` is an unencrypted private key Ansible's SSH can use (OpenSSH or PEM)."""
    data = text.strip().encode()
    if not data:
        return "Give the SSH private key the control plane signs in to the hosts with."
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            serialization.load_ssh_private_key(data + b"\n", password=None)
        else:
            serialization.load_pem_private_key(data + b"\n", password=None)
    except TypeError:
        return "The key is protected by a passphrase; give it without one (it is stored encrypted)."
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"Not a private key the control plane can read: {exc}"
    return None


def known_hosts_errors(text: str, pool: HostPool) -> str | None:
    """None when `text` is a known_hosts file that names a key for every host of the pool (hashed
    entries cannot be matched against addresses, so a file with any is only checked for shape)."""
    covered: set[str] = set()
    hashed = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):  # @cert-authority / @revoked markers
            fields = fields[1:]
        if len(fields) < 3:
            return f"Line {number} is not 'host key-type key'."
        if fields[0].startswith("|1|"):
            hashed = True
        for pattern in fields[0].split(","):
            covered.add(pattern)
    if not covered:
        return "Give the hosts' public keys in known_hosts form: the control plane verifies every host."
    if hashed:
        return None
    missing = [
        h.name
        for h in pool.hosts
        if h.address not in covered and f"[{h.address}]:{h.ssh_port}" not in covered
    ]
    if missing:
        return f"No host key for {', '.join(missing)}: every host's key is checked when connecting."
    return None


class PoolExhausted(Exception):
    """The pool has too few free hosts for the brokers asked for; the message says where."""

    def __init__(self, pool: str, short: Mapping[str, tuple[int, int]], message: str = "") -> None:
        self.short = dict(short)
        parts = [
            f"rack {rack} needs {needed} free host{'s' if needed != 1 else ''}, the pool has {free}"
            for rack, (needed, free) in sorted(short.items())
        ]
        super().__init__(f"Host pool {pool}: {message or '; '.join(parts)}.")


def allocate(
    pool: HostPool, wanted: Mapping[int, str], *, held: Mapping[int, str], taken: Collection[str]
) -> dict[int, str]:
    """Node id -> host name for every broker of `wanted` (node id -> rack): the hosts it already
    `held` (kept), free hosts of its rack for the others. `taken` names the hosts of the pool that any
    cluster holds (this one's included). Hosts are picked by name, so the answer is deterministic.
    Raises `PoolExhausted` when a rack has too few free hosts."""
    result = {node_id: held[node_id] for node_id in wanted if node_id in held}
    free = pool.free_by_rack(set(taken) | set(result.values()))
    needed: dict[str, list[int]] = {}
    for node_id, rack in sorted(wanted.items()):
        if node_id not in result:
            needed.setdefault(rack, []).append(node_id)
    short = {
        rack: (len(node_ids), len(free.get(rack, [])))
        for rack, node_ids in needed.items()
        if len(node_ids) > len(free.get(rack, []))
    }
    if short:
        raise PoolExhausted(pool.name, short)
    for rack, node_ids in needed.items():
        for node_id, host in zip(node_ids, free[rack], strict=False):
            result[node_id] = host.name
    return result


def hosts_of(pool: HostPool, allocation: Mapping[int, str]) -> dict[int, InventoryHost]:
    return {node_id: pool.host(name) for node_id, name in allocation.items()}


def describe_allocation(pool: HostPool, allocation: Mapping[int, str]) -> str:
    by_node = hosts_of(pool, allocation)
    return ", ".join(
        f"broker {n} on {by_node[n].name} ({by_node[n].address}, rack {by_node[n].rack})"
        for n in sorted(by_node)
    )
