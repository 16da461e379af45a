"""KRaft server.properties rendering, controller choice and cluster ids."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning import kafka_config
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.kafka_config import KafkaConfigError, NodeAddress

CLUSTER_ID = "6f1c2e1a-3b7d-4c55-9a0e-2f5b8d7c9e01"


def make_spec(
    racks: list[str],
    *,
    version: str = "3.9.1",
    config: tuple[tuple[str, str], ...] = (),
    rf: int = 3,
    min_isr: int = 2,
) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=CLUSTER_ID,
        name="orders",
        kafka_version=version,
        brokers=tuple(BrokerSpec(node_id=i + 1, rack=rack) for i, rack in enumerate(racks)),
        replication_factor=rf,
        min_insync_replicas=min_isr,
        node_size=NodeSize(cpu=2, memory_mb=4096, disk_gb=100),
        config=config,
    )


def addresses_for(spec: ClusterSpec, controllers: tuple[int, ...]) -> dict[int, NodeAddress]:
    return {
        b.node_id: NodeAddress(
            b.node_id,
            f"kafka-{b.node_id}.internal",
            9092,
            9093 if b.node_id in controllers else None,
        )
        for b in spec.brokers
    }


def render(spec: ClusterSpec, node_id: int, **kwargs: str) -> dict[str, str]:
    controllers = kafka_config.choose_controllers(spec.brokers)
    text = kafka_config.render_server_properties(
        spec,
        node_id,
        addresses=addresses_for(spec, controllers),
        controllers=controllers,
        quorum=kwargs.pop("quorum", kafka_config.quorum_style_for_new_cluster(spec.kafka_version)),
        log_dir="/var/lib/kafka/data",
        **kwargs,
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    keys = [line.split("=", 1)[0] for line in lines]
    assert len(keys) == len(set(keys)), "every key appears once"
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize(
    ("racks", "expected"),
    [
        (["a"], (1,)),
        (["a", "b"], (1,)),  # two voters would stop with either one: worse than one
        (["a", "b", "c"], (1, 2, 3)),
        (["a", "a", "b", "b", "c", "c"], (1, 3, 5)),  # one per rack before any rack gets a second
        (["a", "b", "a", "b"], (1, 2, 3)),
        (["a", "a", "a", "a"], (1, 2, 3)),
    ],
)
def test_controllers_are_spread_over_racks(racks: list[str], expected: tuple[int, ...]) -> None:
    assert kafka_config.choose_controllers(make_spec(racks).brokers) == expected


@pytest.mark.parametrize(
    ("racks", "node_id", "roles"),
    [
        (["a"], 1, "broker,controller"),
        (["a", "b", "c"], 3, "broker,controller"),
        (["a", "b", "c", "a"], 4, "broker"),
    ],
)
def test_roles_follow_the_controller_set(racks: list[str], node_id: int, roles: str) -> None:
    props = render(make_spec(racks), node_id)
    assert props["process.roles"] == roles
    assert props["node.id"] == str(node_id)
    if roles == "broker":
        assert props["listeners"] == f"PLAINTEXT://kafka-{node_id}.internal:9092"
    else:
        assert props["listeners"] == (
            f"PLAINTEXT://kafka-{node_id}.internal:9092,CONTROLLER://kafka-{node_id}.internal:9093"
        )
    # Kafka refuses a controller listener among a broker's advertised listeners.
    assert props["advertised.listeners"] == f"PLAINTEXT://kafka-{node_id}.internal:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    # An unsecured cluster speaks PLAINTEXT everywhere, the quorum too.
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"


@pytest.mark.parametrize(
    ("version", "key", "value"),
    [
        (
            "3.9.1",
            "controller.quorum.voters",
            "1@kafka-1.internal:9093,2@kafka-2.internal:9093,3@kafka-3.internal:9093",
        ),
        (
            "3.3.2",
            "controller.quorum.voters",
            "1@kafka-1.internal:9093,2@kafka-2.internal:9093,3@kafka-3.internal:9093",
        ),
        (
            "4.0.0",
            "controller.quorum.bootstrap.servers",
            "kafka-1.internal:9093,kafka-2.internal:9093,kafka-3.internal:9093",
        ),
        (
            "4.1.1",
            "controller.quorum.bootstrap.servers",
            "kafka-1.internal:9093,kafka-2.internal:9093,kafka-3.internal:9093",
        ),
    ],
)
def test_quorum_setting_depends_on_version(version: str, key: str, value: str) -> None:
    props = render(make_spec(["a", "b", "c", "a"], version=version), 4)
    assert props[key] == value
    other = {"controller.quorum.voters", "controller.quorum.bootstrap.servers"} - {key}
    assert not other & props.keys()


def test_replication_and_topic_defaults_come_from_the_spec() -> None:
    props = render(make_spec(["a", "b", "c"], rf=3, min_isr=2), 2)
    assert props["broker.rack"] == "b"
    assert props["log.dirs"] == "/var/lib/kafka/data"
    assert props["default.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == str(kafka_config.DEFAULT_NUM_PARTITIONS)


def test_bind_host_only_changes_the_client_listener() -> None:
    props = render(make_spec(["a"]), 1, bind_host="0.0.0.0")
    assert props["listeners"] == "PLAINTEXT://0.0.0.0:9092,CONTROLLER://kafka-1.internal:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://kafka-1.internal:9092"


def test_extra_config_overrides_defaults_and_is_escaped() -> None:
    spec = make_spec(
        ["a"],
        config=(
            ("num.partitions", "12"),
            ("log.retention.hours", "72"),
            ("log.cleaner.note", "C:\\keys\\broker.jks"),
            ("client.quota.note", "café"),
        ),
    )
    props = render(spec, 1)
    assert props["num.partitions"] == "12"
    assert props["log.retention.hours"] == "72"
    assert props["log.cleaner.note"] == "C:\\\\keys\\\\broker.jks"
    assert props["client.quota.note"] == "caf\\u00e9"


@pytest.mark.parametrize(
    "key",
    [
        "node.id",
        "process.roles",
        "listeners",
        "advertised.listeners",
        "log.dirs",
        "broker.rack",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "min.insync.replicas",
        "super.users",
        "authorizer.class.name",
        "ssl.keystore.location",
        "sasl.enabled.mechanisms",
        "listener.name.scram.sasl.jaas.config",
    ],
)
def test_denied_overrides_raise(key: str) -> None:
    spec = make_spec(["a"], config=((key, "x"),))
    with pytest.raises(KafkaConfigError) as excinfo:
        render(spec, 1)
    assert key in excinfo.value.errors["config"]
    assert "cannot be overridden" in excinfo.value.errors["config"]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ((("log.retention.hours", "1\nnode.id=7"),), "line break"),
        ((("bad key", "1"),), "not a broker configuration key"),
        ((("log.retention.hours", "1"), ("log.retention.hours", "2")), "more than once"),
    ],
)
def test_malformed_overrides_are_reported(config: tuple[tuple[str, str], ...], reason: str) -> None:
    assert reason in kafka_config.validate_spec(make_spec(["a"], config=config))["config"]


@pytest.mark.parametrize(
    ("version", "field", "message"),
    [
        ("3.2.0", "kafka_version", "3.3 or newer"),
        ("latest", "kafka_version", "not an Apache Kafka version"),
    ],
)
def test_unsupported_versions_are_reported(version: str, field: str, message: str) -> None:
    assert message in kafka_config.validate_spec(make_spec(["a"], version=version))[field]


def test_unknown_node_is_refused() -> None:
    with pytest.raises(KafkaConfigError, match="not part of cluster"):
        render(make_spec(["a"]), 9)


def test_kraft_cluster_id_is_the_uuid_in_kafka_notation() -> None:
    cluster_id = kafka_config.kraft_cluster_id(CLUSTER_ID)
    assert cluster_id == kafka_config.kraft_cluster_id(CLUSTER_ID.upper())
    assert len(cluster_id) == 22
    assert base64.urlsafe_b64decode(cluster_id + "==") == uuid.UUID(CLUSTER_ID).bytes


def test_kraft_cluster_id_never_starts_with_a_dash() -> None:
    # 0xF8 as the first byte encodes to "-", which Kafka's tools would parse as an option.
    dashed = str(uuid.UUID(bytes=b"\xf8" + bytes(range(15))))
    assert not kafka_config.kraft_cluster_id(dashed).startswith("-")
    assert kafka_config.kraft_cluster_id(dashed) == kafka_config.kraft_cluster_id(dashed)


@given(st.uuids())
def test_kraft_ids_are_valid_kafka_uuids(value: uuid.UUID) -> None:
    for kafka_id in (
        kafka_config.kraft_cluster_id(str(value)),
        kafka_config.kraft_directory_id(str(value), 1),
    ):
        assert len(kafka_id) == 22
        assert not kafka_id.startswith("-")
        assert len(base64.urlsafe_b64decode(kafka_id + "==")) == 16


@pytest.mark.parametrize(
    ("version", "node_id", "initial_controllers"),
    [
        ("3.9.1", 1, False),  # static quorum: the voters are in server.properties
        ("4.1.0", 1, True),
        ("4.1.0", 4, False),  # a broker-only node joins without the voter set
    ],
)
def test_storage_format_args(version: str, node_id: int, initial_controllers: bool) -> None:
    spec = make_spec(["a", "b", "c", "a"], version=version)
    controllers = kafka_config.choose_controllers(spec.brokers)
    args = kafka_config.storage_format_args(
        spec,
        node_id,
        config_path="/etc/kafka/server.properties",
        addresses=addresses_for(spec, controllers),
        controllers=controllers,
        quorum=kafka_config.quorum_style_for_new_cluster(spec.kafka_version),
    )
    assert args[:6] == [
        "format",
        "-t",
        kafka_config.kraft_cluster_id(CLUSTER_ID),
        "-c",
        "/etc/kafka/server.properties",
        "--ignore-formatted",
    ]
    if initial_controllers:
        assert args[6] == "--initial-controllers"
        voters = args[7].split(",")
        assert [v.split("@")[0] for v in voters] == ["1", "2", "3"]
        assert voters[0] == f"1@kafka-1.internal:9093:{kafka_config.kraft_directory_id(CLUSTER_ID, 1)}"
    else:
        assert len(args) == 6


def test_the_recorded_quorum_style_wins_over_the_version() -> None:
    """A cluster formatted with static voters on 3.9 keeps them once its brokers run 4.x (KAFKA-16538)."""
    upgraded = make_spec(["a", "b", "c"], version="4.1.0")
    static = render(upgraded, 1, quorum=kafka_config.QuorumStyle.STATIC)
    assert static["controller.quorum.voters"].startswith("1@kafka-1.internal:9093,")
    assert "controller.quorum.bootstrap.servers" not in static
    assert kafka_config.quorum_style_for_new_cluster("3.9.2") is kafka_config.QuorumStyle.STATIC
    assert kafka_config.quorum_style_for_new_cluster("4.0.0") is kafka_config.QuorumStyle.DYNAMIC
