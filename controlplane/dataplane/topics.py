"""Topics: the rules a topic must meet, what Kafka says about topics, and how that differs from what the
control plane wants (drift).

Names follow Kafka's own rules (`org.apache.kafka.common.internals.Topic.validate`): 1 to 249 of
`[a-zA-Z0-9._-]`, not `.` or `..`, and not colliding with another topic once `.` and `_` are
treated alike (Kafka refuses that, because metric names replace one with the other). Names starting
with `__` are Kafka's internal topics' and are refused too.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.clusters.choices import BrokerState
from controlplane.clusters.models import Cluster
from controlplane.dataplane.choices import TopicStatus
from controlplane.dataplane.errors import DataPlaneInvalid
from controlplane.dataplane.models import Topic
from provisioning.kafka_admin.base import (
    ClusterState,
    ConfigValue,
    KafkaAdmin,
    KafkaAdminError,
    KafkaUnavailableError,
    PartitionState,
    TopicPartition,
    TopicState,
)
from provisioning.placement import add_partitions, assign_replicas
from provisioning.topic_configs import MANAGED_KEYS

MAX_NAME_LENGTH = 249
NAME_PATTERN = re.compile(r"[a-zA-Z0-9._-]+")
INTERNAL_PREFIX = "__"
# Kafka's internal topics: listed, never changed through the control plane.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
MAX_PARTITIONS = 10_000


def topic_name_error(name: str) -> str | None:
    if not name:
        return "A topic name cannot be empty."
    if len(name) > MAX_NAME_LENGTH:
        return f"A topic name has at most {MAX_NAME_LENGTH} characters; this one has {len(name)}."
    if name in (".", ".."):
        return "A topic name cannot be '.' or '..'."
    if not NAME_PATTERN.fullmatch(name):
        bad = sorted({ch for ch in name if not NAME_PATTERN.fullmatch(ch)})
        return f"A topic name uses only letters, digits, '.', '_' and '-'; found {', '.join(map(repr, bad))}."
    if name.startswith(INTERNAL_PREFIX):
        return f"Names starting with {INTERNAL_PREFIX!r} are reserved for Kafka's internal topics."
    return None


def colliding_topic(name: str, existing: Iterable[str]) -> str | None:
    """An existing topic `name` collides with once '.' and '_' are treated alike, as Kafka checks."""
    key = name.replace(".", "_")
    return next(
        (other for other in sorted(existing) if other != name and other.replace(".", "_") == key), None
    )


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS


# -- placement -----------------------------------------------------------------------------------------


def placement_brokers(cluster: Cluster, state: ClusterState) -> dict[int, str | None]:
    """Brokers new replicas may go to: registered in Kafka, neither being drained nor not started yet."""
    unavailable = set(
        cluster.brokers.filter(state__in=[BrokerState.DRAINING, BrokerState.PENDING]).values_list(
            "node_id", flat=True
        )
    )
    return {b.node_id: b.rack for b in state.brokers if b.node_id not in unavailable}


def _require_brokers(brokers: Mapping[int, str | None], replication_factor: int) -> None:
    if replication_factor > len(brokers):
        raise DataPlaneInvalid(
            {
                "replication_factor": f"Replication factor {replication_factor} needs {replication_factor} "
                f"brokers; {len(brokers)} can take new replicas now."
            }
        )


def new_topic_replicas(
    brokers: Mapping[int, str | None], name: str, partitions: int, replication_factor: int
) -> list[list[int]]:
    """Rack-aware replica lists for a new topic. The first leader is picked from the name, so topics
    created one after another start on different brokers (Kafka picks at random)."""
    _require_brokers(brokers, replication_factor)
    start = zlib.crc32(name.encode("utf-8")) % len(brokers)
    return assign_replicas(brokers, partitions, replication_factor, start=start)


def added_partition_replicas(
    brokers: Mapping[int, str | None], state: TopicState, total: int, replication_factor: int
) -> list[list[int]]:
    _require_brokers(brokers, replication_factor)
    existing = [list(p.replicas) for p in state.partitions]
    return add_partitions(brokers, existing, total - len(existing), replication_factor)


# -- what Kafka says -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What one look at a cluster found about its topics. `reachable` False: nothing is known."""

    reachable: bool
    error: str = ""
    topics: Mapping[str, TopicState] = field(default_factory=dict)
    configs: Mapping[str, Mapping[str, ConfigValue]] = field(default_factory=dict)
    sizes: Mapping[TopicPartition, Mapping[int, int]] = field(default_factory=dict)
    start_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)
    end_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)


def observe_all(admin: KafkaAdmin, config_of: Collection[str]) -> Observation:
    """Every topic's partitions and replica sizes, and the configs of the topics named (for drift)."""
    state = admin.describe_cluster()
    topics = {t.name: t for t in state.topics}
    try:
        sizes = admin.replica_sizes([b.node_id for b in state.brokers])
    except KafkaAdminError:
        sizes = {}  # a broker without DescribeLogDirs: sizes are unknown, the rest is not
    configs = admin.describe_topic_configs([name for name in config_of if name in topics])
    return Observation(reachable=True, topics=topics, configs=configs, sizes=sizes)


def observe_one(admin: KafkaAdmin, name: str, broker_ids: Collection[int]) -> Observation:
    """One topic in detail: partitions, every config, replica sizes and offsets."""
    topics = admin.describe_topics([name])
    if name not in topics:
        return Observation(reachable=True)
    partitions = [(name, p.partition) for p in topics[name].partitions]
    try:
        sizes = admin.replica_sizes(broker_ids)
    except KafkaUnavailableError:
        raise
    except KafkaAdminError:
        sizes = {}
    return Observation(
        reachable=True,
        topics=topics,
        configs=admin.describe_topic_configs([name]),
        sizes={tp: by_broker for tp, by_broker in sizes.items() if tp[0] == name},
        start_offsets=admin.start_offsets(partitions),
        end_offsets=admin.end_offsets(partitions),
    )


def set_configs(configs: Mapping[str, ConfigValue] | None) -> dict[str, str | None]:
    """The configs set on the topic itself, without those the control plane manages (throttles)."""
    return {
        key: value.value
        for key, value in (configs or {}).items()
        if value.source == "topic" and key not in MANAGED_KEYS
    }


def replication_factor_of(state: TopicState) -> int:
    return max((len(p.replicas) for p in state.partitions), default=0)


# -- drift -------------------------------------------------------------------------------------------------


def differences(
    topic: Topic, state: TopicState | None, configs: Mapping[str, ConfigValue] | None
) -> list[dict]:
    """How Kafka's topic differs from the desired one: [{field, desired, actual, revertible}].

    Partitions that grew outside cannot shrink again and a changed replication factor is a
    reassignment, so neither is revertible; a missing topic is (by creating it again) and so are
    configs. `configs` None: they were not read, so they are not compared.
    """
    if state is None:
        return [{"field": "topic", "desired": "exists", "actual": "missing", "revertible": True}]
    found: list[dict] = []
    actual_partitions = len(state.partitions)
    if actual_partitions != topic.partitions:
        found.append(
            {
                "field": "partitions",
                "desired": topic.partitions,
                "actual": actual_partitions,
                "revertible": actual_partitions < topic.partitions,
            }
        )
    actual_rf = replication_factor_of(state)
    if actual_rf != topic.replication_factor:
        found.append(
            {
                "field": "replication_factor",
                "desired": topic.replication_factor,
                "actual": actual_rf,
                "revertible": False,
            }
        )
    if configs is not None:
        # A desired key is compared with the value in effect whatever its source (a Kafka-protocol
        # broker may not say a value was set on the topic); any other key set on the topic is extra.
        actual = {key: value.value for key, value in configs.items() if key in topic.config} | set_configs(
            configs
        )
        for key in sorted(set(actual) | set(topic.config)):
            if actual.get(key) != topic.config.get(key):
                found.append(
                    {
                        "field": f"config.{key}",
                        "desired": topic.config.get(key),
                        "actual": actual.get(key),
                        "revertible": True,
                    }
                )
    return found


# -- what the API shows ------------------------------------------------------------------------------------


def _partition_summary(partitions: Collection[PartitionState], min_isr: int) -> dict[str, int]:
    return {
        "under_replicated_partitions": sum(len(p.isr) < len(p.replicas) for p in partitions),
        "under_min_isr_partitions": sum(p.leader is not None and len(p.isr) < min_isr for p in partitions),
        "offline_partitions": sum(p.leader is None for p in partitions),
    }


def _topic_size(name: str, partitions: Collection[PartitionState], sizes: Mapping) -> int | None:
    """Bytes of one copy of the topic: per partition its largest replica (followers may lag)."""
    found = [sizes.get((name, p.partition)) for p in partitions]
    if not found or any(by_broker is None for by_broker in found):
        return None
    return sum(max(by_broker.values(), default=0) for by_broker in found)


def _min_isr(state: TopicState, configs: Mapping[str, ConfigValue] | None, cluster: Cluster) -> int:
    value = (configs or {}).get("min.insync.replicas")
    if value is not None and value.value and value.value.isdigit():
        return int(value.value)
    return state.min_insync_replicas if state.min_insync_replicas > 1 else cluster.min_insync_replicas


def describe(cluster: Cluster, name: str, topic: Topic | None, seen: Observation) -> dict[str, Any]:
    """One topic as the API shows it: desired state, what Kafka says, status and drift."""
    state = seen.topics.get(name)
    configs = seen.configs.get(name) if name in seen.configs else None
    internal = is_internal(name) or (state is not None and state.internal)
    body: dict[str, Any] = {
        "id": str(topic.id) if topic else None,
        "cluster": str(cluster.id),
        "name": name,
        "managed": topic is not None,
        "internal": internal,
        "read_only": topic is None,
        "deletion_protected": topic.deletion_protected if topic else False,
        "created_at": topic.created_at if topic else None,
        "updated_at": topic.updated_at if topic else None,
    }
    if topic is not None:
        body.update(
            partitions=topic.partitions, replication_factor=topic.replication_factor, config=topic.config
        )
    elif state is not None:
        body.update(
            partitions=len(state.partitions),
            replication_factor=replication_factor_of(state),
            config=set_configs(configs),
        )
    if not seen.reachable:
        body.update(
            status=TopicStatus.UNKNOWN,
            status_detail=seen.error,
            drift=topic.drift if topic else [],
            observed=None,
        )
        return body
    if topic is None:
        status, detail, drift = (
            ("internal", "Kafka's own topic; read only.", [])
            if internal
            else (
                "unmanaged",
                "Created outside the control plane; read only here.",
                [],
            )
        )
    else:
        drift = differences(topic, state, configs)
        if state is None:
            status, detail = (
                TopicStatus.MISSING,
                "The topic is not in Kafka: it was deleted outside the control plane.",
            )
        elif drift:
            status, detail = (
                "drifted",
                "Changed outside the control plane: " + ", ".join(d["field"] for d in drift) + ".",
            )
        else:
            status, detail = TopicStatus.OK, ""
    body.update(status=status, status_detail=detail, drift=drift)
    if state is None:
        body["observed"] = None
        return body
    body["observed"] = {
        "partitions": len(state.partitions),
        "replication_factor": replication_factor_of(state),
        "size_bytes": _topic_size(name, state.partitions, seen.sizes),
        **_partition_summary(state.partitions, _min_isr(state, configs, cluster)),
    }
    return body


def describe_in_detail(
    cluster: Cluster, name: str, topic: Topic | None, seen: Observation, racks: Mapping[int, str]
) -> dict[str, Any]:
    """`describe`, plus every partition (leader, replicas with their racks, ISR, offsets, size) and
    every config with where its value comes from."""
    body = describe(cluster, name, topic, seen)
    state = seen.topics.get(name)
    if state is None:
        body.update(partition_details=[], configs=[])
        return body
    body["partition_details"] = [
        {
            "partition": p.partition,
            "leader": p.leader,
            "replicas": [{"broker": r, "rack": racks.get(r)} for r in p.replicas],
            "isr": list(p.isr),
            "start_offset": seen.start_offsets.get((name, p.partition)),
            "end_offset": seen.end_offsets.get((name, p.partition)),
            "size_bytes": max(seen.sizes[(name, p.partition)].values(), default=0)
            if (name, p.partition) in seen.sizes
            else None,
        }
        for p in state.partitions
    ]
    body["configs"] = [
        {"name": key, "value": None if value.sensitive else value.value, "source": value.source}
        for key, value in sorted((seen.configs.get(name) or {}).items())
    ]
    return body
