"""The inventory the VM playbooks run against, generated from a cluster's spec and the hosts it got.

Everything a node needs is decided here, in the control plane, and handed to the playbooks as host
variables: its node id, rack and KRaft role, its server.properties and storage-format arguments
(rendered by `provisioning.kafka_config`, the same code every backend uses), and the paths that
configuration names. The playbooks only put things in place. Groups: `kafka` (every node of the
spec), `kafka_controllers`, one `rack_<rack>` group per rack, and whatever groups a playbook needs for
one run (`kafka_replaced`, `kafka_replacement`, `kafka_decommissioned`).

`render_inventory` gives the inventory as YAML: the plan shown before anything is applied. It holds
no secret: SSH keys are files the runner writes for the run, named by path only, and a secured
cluster's secrets (each broker's key and certificate, the control plane's SCRAM credential for the
storage format) are `secret_variables`, which the runner hands to Ansible in a file of their own,
deleted when the run ends. The brokers' configuration names their key files instead of holding keys
(`kafka_config.BrokerTlsFiles`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from provisioning import kafka_config, security
from provisioning.backends.base import ClusterSpec
from provisioning.kafka_config import NodeAddress, QuorumStyle

PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "playbooks"
CLIENT_PORT = kafka_config.FIXED_CLIENT_PORT
CONTROLLER_PORT = 9093
LISTENER_PORTS = kafka_config.FIXED_LISTENER_PORTS
KAFKA_GROUP = "kafka"
CONTROLLERS_GROUP = "kafka_controllers"


@dataclass(frozen=True)
class InventoryHost:
    """A machine Kafka runs on, as a host pool records it."""

    name: str  # the inventory name (unique within a pool)
    address: str  # where SSH and Kafka clients reach it
    rack: str
    ssh_user: str = "root"
    ssh_port: int = 22
    # Prefix of every Kafka path on the host; only for hosts sharing one file system (the tests).
    kafka_root: str = ""
    java_home: str = ""  # the Java runtime Kafka runs on; empty: the one on the host's PATH


@dataclass(frozen=True)
class HostLayout:
    """The paths server.properties names; the playbooks' group_vars derive the same from kafka_root."""

    kafka_root: str = ""

    @property
    def config_dir(self) -> str:
        return f"{self.kafka_root}/etc/kafka"

    @property
    def data_dir(self) -> str:
        return f"{self.kafka_root}/var/lib/kafka/data"

    @property
    def tls_dir(self) -> str:
        return f"{self.config_dir}/tls"

    @property
    def tools_properties(self) -> str:
        return f"{self.config_dir}/tools.properties"


@dataclass(frozen=True)
class Release:
    """Where the hosts get the spec's Kafka release: pushed from `local_file`, or downloaded."""

    version: str
    sha512: str = ""
    local_file: str = ""
    url: str = ""


def rack_group(rack: str) -> str:
    """An inventory group name for a rack (Ansible group names are identifiers)."""
    return "rack_" + re.sub(r"[^A-Za-z0-9_]", "_", rack)


def build_inventory(
    spec: ClusterSpec,
    placement: Mapping[int, InventoryHost],
    *,
    controllers: Sequence[int],
    quorum: QuorumStyle,
    release: Release,
    departed: Mapping[str, Sequence[tuple[int, InventoryHost]]] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The inventory of `spec`'s nodes on the hosts of `placement` (node id -> host).

    `departed` puts hosts whose node left the spec in their own groups (e.g. the old host of a
    replaced node); `groups` names further groups of current nodes; `variables` are added to every
    host's (connection settings, heap size, service manager).
    """
    missing = sorted(b.node_id for b in spec.brokers if b.node_id not in placement)
    if missing:
        raise kafka_config.KafkaConfigError({"brokers": f"nodes without a host: {missing}"})
    listener_ports = {name: LISTENER_PORTS[name] for name in kafka_config.extra_listeners(spec)}
    addresses = {
        node_id: NodeAddress(
            node_id,
            host.address,
            CLIENT_PORT,
            CONTROLLER_PORT if node_id in controllers else None,
            listener_ports=listener_ports,
        )
        for node_id, host in placement.items()
        if node_id in {b.node_id for b in spec.brokers}
    }
    brokers = sorted(spec.brokers, key=_node)
    bootstrap = ",".join(f"{addresses[b.node_id].host}:{CLIENT_PORT}" for b in brokers)
    # Kafka's tools on the hosts (safety checks, the quorum's leader, unregistering) reach a secured
    # cluster on INTERNAL as the broker they run beside.
    tools_port = listener_ports.get(kafka_config.INTERNAL_LISTENER, CLIENT_PORT)
    shared: dict[str, Any] = {
        "kafka_version": release.version,
        "kafka_distribution_sha512": release.sha512,
        "kafka_distribution_local_file": release.local_file,
        "kafka_distribution_url": release.url,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_client_port": CLIENT_PORT,
        "kafka_cluster_name": spec.name,
        "kafka_tools_bootstrap_servers": ",".join(
            f"{addresses[b.node_id].host}:{tools_port}" for b in brokers
        ),
        "kafka_secured": spec.security is not None,
    }
    if spec.security is not None:
        shared["kafka_tls_ca_certificate"] = spec.security.ca_certificate_pem
        shared["kafka_tls_identity"] = tls_identity(spec)
    hosts: dict[str, dict[str, Any]] = {}
    children: dict[str, dict[str, Any]] = {KAFKA_GROUP: {"hosts": {}}, CONTROLLERS_GROUP: {"hosts": {}}}
    for broker in brokers:
        host = placement[broker.node_id]
        layout = HostLayout(host.kafka_root)
        config_path = f"{layout.config_dir}/server.properties"
        tls = kafka_config.BrokerTlsFiles(layout.tls_dir) if spec.security is not None else None
        hosts[host.name] = {
            **_host_vars(host, broker.node_id, broker.rack, variables),
            **(
                {
                    "kafka_tools_command_config": layout.tools_properties,
                    "kafka_tools_properties": kafka_config.render_tools_properties(tls),
                }
                if tls is not None
                else {}
            ),
            "kafka_controller": broker.node_id in controllers,
            "kafka_server_properties": kafka_config.render_server_properties(
                spec,
                broker.node_id,
                addresses=addresses,
                controllers=controllers,
                quorum=quorum,
                log_dir=layout.data_dir,
                tls=tls,
            ),
            # Without the control plane's credential: that is a secret variable.
            "kafka_storage_format_args": kafka_config.storage_format_args(
                replace(spec, security=None),
                broker.node_id,
                config_path=config_path,
                addresses=addresses,
                controllers=controllers,
                quorum=quorum,
            ),
        }
        children[KAFKA_GROUP]["hosts"][host.name] = {}
        children.setdefault(rack_group(broker.rack), {"hosts": {}})["hosts"][host.name] = {}
        if broker.node_id in controllers:
            children[CONTROLLERS_GROUP]["hosts"][host.name] = {}
    for group, node_ids in (groups or {}).items():
        children.setdefault(group, {"hosts": {}})
        for node_id in node_ids:
            children[group]["hosts"][placement[node_id].name] = {}
    for group, members in (departed or {}).items():
        children.setdefault(group, {"hosts": {}})
        for node_id, host in members:
            hosts[host.name] = _host_vars(host, node_id, host.rack, variables)
            children[group]["hosts"][host.name] = {}
    return {"all": {"vars": shared, "hosts": hosts, "children": children}}


def tls_identity(spec: ClusterSpec) -> str:
    assert spec.security is not None
    return security.broker_certificate_identity(spec.security)


def secret_variables(
    spec: ClusterSpec, placement: Mapping[int, InventoryHost], *, now: datetime | None = None
) -> dict[str, Any]:
    """The secrets one run of a secured cluster's playbooks needs, as extra variables: a new certificate
    and key for each broker (issued by the cluster's CA for its host's address; a host keeps the one it
    has unless it is of another identity or within `security.BROKER_RENEW_BEFORE_DAYS` of its end),
    and the control plane's SCRAM credential, formatted into a new cluster's first metadata."""
    if spec.security is None:
        return {}
    certificates: dict[str, dict[str, Any]] = {}
    for broker in spec.brokers:
        host = placement[broker.node_id]
        issued = security.issue_broker_certificate(spec.security, [host.address])
        certificates[host.name] = {
            "key": issued.private_key_pem,
            "chain": issued.chain_pem,
            "not_after": issued.not_after,
        }
    return {
        "kafka_tls_certificates": certificates,
        "kafka_tls_renew_before": security.renew_before(now),
        "kafka_storage_secret_args": kafka_config.admin_credential_format_args(spec),
    }


def _node(broker: Any) -> int:
    return broker.node_id


def _host_vars(
    host: InventoryHost, node_id: int, rack: str, variables: Mapping[str, Any] | None
) -> dict[str, Any]:
    layout = HostLayout(host.kafka_root)
    return {
        "ansible_host": host.address,
        "ansible_port": host.ssh_port,
        "ansible_user": host.ssh_user,
        "ansible_become": host.ssh_user != "root",
        "kafka_node_id": node_id,
        "kafka_rack": rack,
        "kafka_root": host.kafka_root,
        "kafka_config_dir": layout.config_dir,
        "kafka_data_dir": layout.data_dir,
        "kafka_advertised_host": host.address,
        **({"kafka_java_home": host.java_home} if host.java_home else {}),
        **(variables or {}),
    }


class _PlanDumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_PlanDumper.add_representer(str, _text)


def render_inventory(inventory: Mapping[str, Any]) -> str:
    """The inventory as YAML (server.properties as readable blocks), as a plan or an inventory file."""
    return yaml.dump(dict(inventory), Dumper=_PlanDumper, sort_keys=False, default_flow_style=False)
