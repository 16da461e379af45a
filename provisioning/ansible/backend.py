"""The `vm` backend: Kafka on the hosts of a registered host pool, installed and operated by the
playbooks of `provisioning/playbooks/` through ansible-runner over SSH.

Which host runs which broker is decided by the control plane when an operation is requested (see
`provisioning.ansible.pool.allocate`) and handed in as a `VmPlacement`, with the cluster's KRaft
controllers and quorum style as recorded at its creation. Plans need no host: a cluster not yet
created gets its hosts picked as they would be.

Each call that changes something runs one playbook to its end, inside the operation step that asked
for it, within `playbook_timeout` (which must stay below the worker's task time limit; see docs/vm.md
for why runs are not started in the background). Ansible's events stream into the backend's events
sink as they happen (a line per host and task), and the sink's `should_stop` is asked while the run
goes on: a cancelled operation stops its playbook.

A secured cluster (client authentication) gets its listeners from `provisioning.kafka_config` as on
every backend, on fixed ports (`inventory.CLIENT_PORT` for the first client listener,
`inventory.LISTENER_PORTS` for the others). Each run issues every broker a certificate from the
cluster's CA for its host's address and hands it to Ansible with the run's other secrets
(`inventory.secret_variables`), which never enter the inventory or the plan; a host keeps the
certificate it has until it is rotated or near its end.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioning import kafka_config, security
from provisioning.ansible.connection import unanswered_over_ssh
from provisioning.ansible.inventory import (
    CLIENT_PORT,
    Release,
    build_inventory,
    render_inventory,
    secret_variables,
)
from provisioning.ansible.pool import HostPool, PoolExhausted, allocate, host_errors, hosts_of
from provisioning.ansible.runner import PlaybookEvent, PlaybookFailedError, PlaybookResult, run_playbook
from provisioning.backends.base import (
    NULL_EVENTS,
    BackendError,
    BackendEvents,
    BackendUnavailableError,
    BrokerProcessState,
    BrokerSpec,
    BrokerStatus,
    ClusterDescription,
    ClusterSpec,
    KafkaConnection,
    ProvisioningPlan,
)

PLAN_RELEASE_NOTE = "pushed from the control plane's distribution cache when applied"
# Event kinds worth a line in the operation's log (skipped tasks say nothing).
LOGGED_EVENTS = ("changed", "failed", "unreachable", "ok")
CONNECT_TIMEOUT_SECONDS = 2.0
PROBE_THREADS = 16
CHANGED_OUTPUT_CHARS = 200


@dataclass(frozen=True)
class VmPlacement:
    """What the control plane recorded for one cluster in its pool."""

    hosts: tuple[tuple[int, str], ...] = ()  # node id -> host name of the cluster's brokers
    taken: frozenset[str] = frozenset()  # hosts of the pool any cluster holds (this one's included)
    controllers: tuple[int, ...] = ()  # recorded at creation; empty: chosen from the spec (new cluster)
    quorum: str = ""  # kafka_config.QuorumStyle, recorded at creation


class PlaybookStepFailed(BackendError):
    """A playbook run failed; as an operation's error it names the playbook, host, task and message."""

    code = "playbook_failed"

    def __init__(self, failure: PlaybookFailedError, run_dir: Path) -> None:
        self.message = str(failure)
        self.details = {
            "playbook": failure.playbook,
            "host": failure.host,
            "task": failure.task,
            "run": run_dir.name,
        }
        super().__init__(self.message)


class VmBackend:
    name = "vm"

    def __init__(
        self,
        pool: HostPool,
        placement: VmPlacement = VmPlacement(),
        *,
        ssh_private_key: str = "",
        known_hosts: str = "",
        release: Callable[[str], Release] | None = None,
        runs_dir: Path | None = None,
        playbook_timeout: float = 1200.0,
        events: BackendEvents = NULL_EVENTS,
        offline: bool = False,
    ) -> None:
        """`release`: version -> where hosts get it (the control plane pushes its cached distribution).
        `offline`: plans only, never reaching a host."""
        self.pool = pool
        self.placement = placement
        self.ssh_private_key = ssh_private_key
        self.known_hosts = known_hosts
        self.release = release
        self.runs_dir = runs_dir
        self.playbook_timeout = playbook_timeout
        self.events = events
        self.offline = offline

    # --- planning ----------------------------------------------------------------------------------

    def validate(self, spec: ClusterSpec) -> dict[str, str]:
        errors = kafka_config.validate_spec(spec)
        if problems := host_errors(self.pool):
            errors["target"] = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
            return errors
        try:
            self._allocation(spec)
        except PoolExhausted as exc:
            errors["brokers"] = str(exc)
        controllers = self._controllers(spec)
        if gone := sorted(set(controllers) - {b.node_id for b in spec.brokers}):
            errors["brokers"] = (
                f"broker(s) {', '.join(map(str, gone))} are KRaft controllers of the cluster; on a host "
                "pool they keep their hosts (replace them with their disk instead)"
            )
        return errors

    def plan(self, spec: ClusterSpec) -> ProvisioningPlan:
        allocation = self._allocation(spec)
        release = Release(spec.kafka_version, local_file=PLAN_RELEASE_NOTE)
        inventory = self._inventory(spec, release, allocation)
        controllers = self._controllers(spec)
        hosts = hosts_of(self.pool, allocation)
        placement = ", ".join(
            f"broker {n} on {hosts[n].name} ({hosts[n].address}, rack {hosts[n].rack})" for n in sorted(hosts)
        )
        summary = (
            f"Apache Kafka {spec.kafka_version} on host pool {self.pool.name}: {placement}. KRaft "
            f"controllers {', '.join(map(str, controllers))} ({self._quorum(spec).value} quorum). Ansible "
            f"runs provision.yml over SSH ({self.pool.service_manager}); clients bootstrap from "
            f"{self._bootstrap(allocation)}{self._security_summary(spec)}."
        )
        artifacts = {"inventory.yml": render_inventory(inventory)}
        host_vars = inventory["all"]["hosts"]
        for node_id in sorted(hosts):
            artifacts[f"broker-{node_id}/server.properties"] = host_vars[hosts[node_id].name][
                "kafka_server_properties"
            ]
        return ProvisioningPlan(summary=summary, artifacts=artifacts)

    # --- applying ----------------------------------------------------------------------------------

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        self._run("provision.yml", spec)
        return self.describe(spec)

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        """Restart one node on the spec's release and configuration (an upgrade unpacks the release
        first), or start it if it is down; the playbook returns once it is back in every ISR."""
        self._run("upgrade.yml", spec, limit=[node_id], extravars={"kafka_roll_always": True})

    def replace_broker(self, spec: ClusterSpec, node_id: int, *, keep_disk: bool) -> ClusterDescription:
        if all(b.node_id != node_id for b in spec.brokers):
            raise BackendError(f"broker {node_id} is not part of cluster {spec.name}")
        if keep_disk:
            # On its host, with its data: installed, configured and (re)started as needed.
            self.restart_broker(spec, node_id)
        else:
            # Same host, empty disk: the node is removed from it and installed again.
            groups = {"kafka_replaced": [node_id], "kafka_replacement": [node_id]}
            self._run("replace_broker.yml", spec, groups=groups)
        return self.describe(spec)

    def remove_brokers(self, spec: ClusterSpec, node_ids: list[int]) -> ClusterDescription:
        """Decommission the (drained) brokers on their hosts. A broker on a dead host, one that answers
        neither on Kafka's client port nor over SSH, can be neither stopped nor cleaned there: it is
        left out, and the log says its files stay on that host (its registration in the cluster is
        the caller's to remove, as for every broker removed)."""
        dead = self._dead_hosts(node_ids)
        for node_id, reason in sorted(dead.items()):
            self.events.log(
                f"broker {node_id} is down and its host does not answer ({reason}); it is removed "
                f"without being stopped or cleaned there: its files stay on the host, so rebuild the "
                f"host or take it out of the pool before it is given to another broker"
            )
        alive = sorted(set(node_ids) - set(dead))
        if alive:
            self._run("decommission_broker.yml", spec, groups={"kafka_decommissioned": alive})
        removed = set(node_ids)
        return self.describe(
            replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id not in removed))
        )

    def delete(self, spec: ClusterSpec) -> bool:
        """Stop every node and remove what the playbooks installed; hosts that no longer answer are
        skipped. Done when the playbook ends, so nothing is left to poll for."""
        held = dict(self.placement.hosts)
        kept = replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id in held))
        if kept.brokers:
            self._run("remove_cluster.yml", kept)
        return True

    def describe(self, spec: ClusterSpec) -> ClusterDescription:
        """Each broker's state from whether its client port accepts connections (no SSH session: this
        is asked often, by the reconcile loop too)."""
        held = dict(self.placement.hosts)

        def status(broker: BrokerSpec) -> BrokerStatus:
            name = held.get(broker.node_id)
            if name is None:
                return BrokerStatus(broker.node_id, broker.rack, "", BrokerProcessState.MISSING, "no host")
            host = self.pool.host(name)
            state, detail = _probe(host.address, CLIENT_PORT)
            return BrokerStatus(broker.node_id, broker.rack, f"{host.address}:{CLIENT_PORT}", state, detail)

        brokers = sorted(spec.brokers, key=lambda b: b.node_id)
        # In parallel: hosts that do not answer each take the connect timeout.
        with ThreadPoolExecutor(max_workers=max(1, min(PROBE_THREADS, len(brokers)))) as probes:
            statuses = tuple(probes.map(status, brokers))
        return ClusterDescription(
            bootstrap_servers=self._bootstrap(held),
            brokers=statuses,
            client_endpoints=self._client_endpoints(spec, held),
        )

    def connection(self, spec: ClusterSpec, bootstrap_servers: str) -> KafkaConnection:
        held = dict(self.placement.hosts)
        # A secured cluster's admin connection authenticates like any client: the control plane's own
        # credential on the primary client listener.
        config = tuple(security.admin_client_config(spec.security).items()) if spec.security else ()
        return KafkaConnection(bootstrap_servers=self._bootstrap(held) or bootstrap_servers, config=config)

    # --- helpers -----------------------------------------------------------------------------------

    def _dead_hosts(self, node_ids: Sequence[int]) -> dict[int, str]:
        """Node id -> why, for the brokers among `node_ids` whose host is dead: its Kafka client port
        refuses connections and SSH does not get through. A host that answers either way is alive
        (a blip makes the playbook's run fail as unreachable, which is retried)."""
        held = dict(self.placement.hosts)
        down = {
            node_id: self.pool.host(held[node_id])
            for node_id in node_ids
            if node_id in held
            and _probe(self.pool.host(held[node_id]).address, CLIENT_PORT)[0] != BrokerProcessState.RUNNING
        }
        if not down:
            return {}
        unanswered = unanswered_over_ssh(
            list(down.values()), ssh_private_key=self.ssh_private_key, known_hosts=self.known_hosts
        )
        return {node_id: unanswered[host.name] for node_id, host in down.items() if host.name in unanswered}

    def _allocation(self, spec: ClusterSpec) -> dict[int, str]:
        return allocate(
            self.pool,
            {b.node_id: b.rack for b in spec.brokers},
            held=dict(self.placement.hosts),
            taken=self.placement.taken,
        )

    def _controllers(self, spec: ClusterSpec) -> tuple[int, ...]:
        return self.placement.controllers or kafka_config.choose_controllers(spec.brokers)

    def _quorum(self, spec: ClusterSpec) -> kafka_config.QuorumStyle:
        if self.placement.quorum:
            return kafka_config.QuorumStyle(self.placement.quorum)
        return kafka_config.quorum_style_for_new_cluster(spec.kafka_version)

    def _bootstrap(self, allocation: Mapping[int, str], port: int = CLIENT_PORT) -> str:
        return ",".join(f"{self.pool.host(allocation[n]).address}:{port}" for n in sorted(allocation))

    def _client_endpoints(
        self, spec: ClusterSpec, allocation: Mapping[int, str]
    ) -> tuple[tuple[str, str], ...]:
        """Bootstrap servers per client authentication: the first listener on the client port."""
        return tuple(
            (kafka_config.LISTENER_AUTHENTICATION[listener], self._bootstrap(allocation, port))
            for listener, port in kafka_config.fixed_client_ports(spec)
        )

    def _security_summary(self, spec: ClusterSpec) -> str:
        if spec.security is None:
            return " without authentication (PLAINTEXT)"
        ways = [
            f"{'SCRAM-SHA-512 over TLS' if name == kafka_config.SCRAM_LISTENER else 'client certificates'} on "
            f"port {port}"
            for name, port in kafka_config.fixed_client_ports(spec)
        ]
        return (
            f", authenticating with {' and '.join(ways)}; each broker gets a certificate from the "
            "cluster's CA for its host's address when applied (keys never appear in this plan)"
        )

    def _inventory(
        self,
        spec: ClusterSpec,
        release: Release,
        allocation: Mapping[int, str],
        groups: Mapping[str, Sequence[int]] | None = None,
    ) -> dict[str, Any]:
        return build_inventory(
            spec,
            hosts_of(self.pool, allocation),
            controllers=self._controllers(spec),
            quorum=self._quorum(spec),
            release=release,
            groups=groups,
            variables={**self.pool.variables(), "kafka_heap_mb": kafka_config.heap_mb(spec.node_size)},
        )

    def _run(
        self,
        playbook: str,
        spec: ClusterSpec,
        *,
        limit: Sequence[int] = (),
        groups: Mapping[str, Sequence[int]] | None = None,
        extravars: Mapping[str, Any] | None = None,
    ) -> PlaybookResult:
        if self.offline or self.release is None or self.runs_dir is None:
            raise BackendError("this backend was made for planning only")
        held = dict(self.placement.hosts)
        if missing := sorted(b.node_id for b in spec.brokers if b.node_id not in held):
            raise BackendError(f"broker(s) {', '.join(map(str, missing))} of {spec.name} have no host")
        inventory = self._inventory(spec, self.release(spec.kafka_version), held, groups)
        nodes = {b.node_id for b in spec.brokers}
        secrets = secret_variables(spec, {n: h for n, h in hosts_of(self.pool, held).items() if n in nodes})
        # Kept per operation (per cluster outside one) and pruned on a schedule.
        scope = getattr(self.events, "scope", "") or f"cluster-{spec.cluster_id}"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        run_dir = self.runs_dir / scope / f"{stamp}-{playbook.removesuffix('.yml')}"
        self.events.log(
            f"ansible: {playbook} on {', '.join(sorted(held[n] for n in limit) or ['every host'])}"
        )
        should_stop = getattr(self.events, "should_stop", None)
        try:
            result = run_playbook(
                playbook,
                inventory,
                run_dir=run_dir,
                extravars=extravars,
                ssh_private_key=self.ssh_private_key or None,
                known_hosts=self.known_hosts or None,
                limit=",".join(held[n] for n in limit) or None,
                on_event=self._log_event,
                should_cancel=should_stop,
                timeout=self.playbook_timeout,
                secret_vars=secrets,
            )
        except PlaybookFailedError as exc:
            if exc.kind == "unreachable":
                # A host restarting or a network blip: the step is retried with backoff (the playbooks
                # are idempotent), and fails once the retries are used up.
                raise BackendUnavailableError(f"{exc} (the host did not answer over SSH)") from exc
            raise PlaybookStepFailed(exc, run_dir) from exc
        changed = ", ".join(f"{host} {count}" for host, count in sorted(result.changed.items()))
        self.events.log(f"ansible: {playbook} done; changed tasks per host: {changed or 'none'}")
        return result

    # Hot path: called for every event of a run, from ansible-runner's event processing.
    def _log_event(self, event: PlaybookEvent) -> None:
        if event.kind == "play":
            self.events.log(f"ansible play: {event.play}")
        elif event.kind in LOGGED_EVENTS:
            line = f"ansible {event.host}: {event.task}: {event.kind}"
            message = event.message
            if event.kind == "changed":  # a command's output: its first line says enough
                message = message.splitlines()[0][:CHANGED_OUTPUT_CHARS] if message else ""
            self.events.log(f"{line}: {message}" if message else line)


def _probe(address: str, port: int) -> tuple[BrokerProcessState, str]:
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS):
            return BrokerProcessState.RUNNING, ""
    except OSError as exc:
        return BrokerProcessState.CRASHED, f"{address}:{port} does not accept connections ({exc})"
