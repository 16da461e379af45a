"""`KafkaAdmin` over the real Kafka protocol: confluent-kafka (librdkafka), plus kafka-python for the
APIs librdkafka lacks.

Which client serves which call:

- confluent-kafka's `AdminClient`: Metadata, DescribeCluster, DescribeConfigs, CreateTopics, consumer
  groups and their committed offsets, ListOffsets, IncrementalAlterConfigs (replication throttles) and
  ElectLeaders (preferred leaders).
- kafka-python's `KafkaAdminClient`: AlterPartitionReassignments and ListPartitionReassignments (KIP-455,
  Apache Kafka 2.4+), DescribeFeatures and UpdateFeatures (KIP-584), and DescribeLogDirs (each log
  directory's volume size, KIP-827; sent to each broker on its own). librdkafka, and so confluent-kafka
  2.16, has no call for any of them.
- The data plane: topics with their replica assignments and configs, SCRAM credentials and ACLs through
  confluent-kafka; replica sizes (DescribeLogDirs with partitions) and client quotas (AlterClientQuotas,
  DescribeClientQuotas, which librdkafka lacks) through kafka-python.

Why kafka-python rather than encoding these requests here: the encoding is small, but sending it is
not. A request must reach a broker over the cluster's listener, which in production means TLS and SASL
(PLAIN, SCRAM, OAUTHBEARER), version negotiation and, for some, a retry when the controller moves.
kafka-python (Apache-2.0, maintained) already does all of that; a hand-written client would have to
re-implement it. Its client is created on the first call that needs it and reused; security settings
are translated from the librdkafka names (see `kafka_python_config`). Requests its admin client has no
call for, or sends to the wrong broker, go through its connections directly (`_send`).

Feature levels: kafka-python 3.0's `describe_features` answers `{feature: {"supported": (min, max),
"finalized": (min, max), "finalized_epoch": e}}` (its docstring shows another shape). Which levels an
upgrade finalizes is `features.levels_to_raise`.

Replication throttles follow what Apache Kafka's `kafka-reassign-partitions` does. A rate on a broker only
slows replicas that are listed in their topic's `leader.replication.throttled.replicas` /
`follower.replication.throttled.replicas` and are out of sync. So:

- `alter_partition_reassignments` sets, before starting the moves, each moved topic's leader list to
  its moving partitions' current replicas and its follower list to their new replicas
  (IncrementalAlterConfigs SET, as the tool does: a list set by someone else on a moved topic, a `*`
  included, is replaced; appending to a `*` would make a value Kafka refuses). Without a rate these
  entries change nothing.
- `set_replication_throttle` sets both rates on the given brokers, one request per broker (a broker's
  configuration is changed through that broker itself, and librdkafka takes one broker per request).
- `clear_replication_throttle` deletes both rates on the given brokers and both lists on the given
  topics, as the tool does once a reassignment is done (on every broker, and on the moved topics).
  A broker that is down cannot take the change; its rate throttles nothing once the lists are gone.

What could be checked here: everything against Tansu (a single-node Kafka-protocol broker) except moves,
elections and throttles taking effect, which no single-node broker can show.

Known quirk worked around: confluent-kafka 2.16's `elect_leaders` fails with a `SystemError` when given
`request_timeout` or `operation_timeout`, so it is called without them and the client's
`socket.timeout.ms` (set from `timeout`) bounds it instead.
"""

from __future__ import annotations

import concurrent.futures
import logging
import ssl
import tempfile
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, ElectionType, KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from provisioning.kafka_admin import features
from provisioning.kafka_admin.base import (
    FOLLOWER_THROTTLE_RATE,
    FOLLOWER_THROTTLED_REPLICAS,
    LEADER_THROTTLE_RATE,
    LEADER_THROTTLED_REPLICAS,
    AclEntry,
    BrokerInfo,
    ClusterState,
    ConfigValue,
    ConsumerGroupState,
    GroupMember,
    KafkaAdminError,
    KafkaRefusedError,
    KafkaUnavailableError,
    LogDirUsage,
    PartitionState,
    QuorumMember,
    QuorumState,
    ReassignmentProgress,
    TopicAlreadyExistsError,
    TopicNotFoundError,
    TopicPartition,
    TopicState,
)

log = logging.getLogger(__name__)

METADATA_VERSION = features.METADATA_VERSION
# How long brokers may take to show feature levels the controller has committed.
FEATURES_SETTLE_SECONDS = 30.0

T = TypeVar("T")

MIN_INSYNC_REPLICAS = "min.insync.replicas"
METADATA_LOG = "__cluster_metadata"  # the KRaft quorum's log, the one partition DescribeQuorum describes
# Kafka's own default, used when a broker does not report the topic config (Tansu reports only
# configs that were set explicitly).
DEFAULT_MIN_INSYNC_REPLICAS = 1
# DescribeCluster and the topics' DescribeConfigs go to the broker librdkafka takes for the controller,
# which a KRaft cluster's Metadata names at random among its registered brokers. A broker that died
# stays registered until its session times out (`broker.session.timeout.ms`, 9 s by default); while it
# is the one named, both requests would wait out their whole timeout, and the cluster would look
# unreachable. So they get this long, and are then asked through kafka-python instead.
CONTROLLER_WAIT_SECONDS = 3.0
# Kafka's internal topics (`Topic.INTERNAL_TOPICS`); Metadata through confluent-kafka does not carry
# the flag, and asking DescribeTopics for it would cost another round trip per snapshot.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})

# Errors after which the same call may succeed later: the cluster, a leader, a coordinator or the
# controller could not be reached or is moving.
_UNAVAILABLE_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        # The client dropped the broker handle the request waited on (one metadata no longer lists,
        # such as a bootstrap address once the real brokers are known); sent again, it goes elsewhere.
        KafkaError._DESTROY_BROKER,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_CONTROLLER,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.PREFERRED_LEADER_NOT_AVAILABLE,
    }
)
# Per-partition ListOffsets errors that mean "no answer for this partition right now" (no leader, or
# the topic went away) rather than "the cluster is unreachable".
_OFFSETS_SKIPPED_CODES = frozenset(
    {
        KafkaError._NOENT,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REPLICA_NOT_AVAILABLE,
    }
)

_GROUP_STATE_NAMES = {
    confluent_kafka.ConsumerGroupState.STABLE: "Stable",
    confluent_kafka.ConsumerGroupState.EMPTY: "Empty",
    confluent_kafka.ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    confluent_kafka.ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
    confluent_kafka.ConsumerGroupState.DEAD: "Dead",
    confluent_kafka.ConsumerGroupState.UNKNOWN: "Unknown",
}

# librdkafka property -> kafka-python argument, for the settings that decide whether and how the
# kafka-python client may connect at all.
_KAFKA_PYTHON_SETTINGS = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "ssl.crl.location": "ssl_crlfile",
    "client.id": "client_id",
}


def kafka_python_config(config: Mapping[str, str]) -> dict[str, Any]:
    """kafka-python arguments equivalent to the connection settings in a librdkafka config.

    Settings that only tune librdkafka are dropped. A security setting kafka-python cannot take is an
    error: connecting without it would fail or, worse, fall back to a weaker setting.
    """
    translated: dict[str, Any] = {}
    pems = {key: config[key] for key in _PEM_SETTINGS if key in config}
    if pems:
        translated["ssl_context"] = _ssl_context(pems, config.get("ssl.endpoint.identification.algorithm"))
    for key, value in config.items():
        if key in _PEM_SETTINGS:
            continue
        if key in _KAFKA_PYTHON_SETTINGS:
            name = _KAFKA_PYTHON_SETTINGS[key]
            translated[name] = value.upper() if name in ("security_protocol", "sasl_mechanism") else value
        elif key == "ssl.endpoint.identification.algorithm":
            translated["ssl_check_hostname"] = value.lower() == "https"
        elif key.startswith(("sasl.", "ssl.")):
            raise KafkaAdminError(
                f"client setting {key!r} cannot be passed to the kafka-python client; "
                f"supported security settings: {', '.join(sorted(_KAFKA_PYTHON_SETTINGS))}, "
                "ssl.endpoint.identification.algorithm"
            )
    return translated


# PEM text instead of files (librdkafka's ssl.*.pem): kafka-python takes them as an SSLContext.
_PEM_SETTINGS = ("ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem")


def _ssl_context(pems: Mapping[str, str], identification: str | None) -> ssl.SSLContext:
    """A TLS client context trusting `ssl.ca.pem` and presenting `ssl.certificate.pem` with its key.
    Python loads a certificate and key only from files, so they pass through a private temporary
    directory, removed once loaded."""
    context = ssl.create_default_context(cadata=pems.get("ssl.ca.pem"))
    context.check_hostname = (identification or "https").lower() == "https"
    if "ssl.certificate.pem" in pems or "ssl.key.pem" in pems:
        with tempfile.TemporaryDirectory(prefix="kcp-client-") as directory:
            chain = Path(directory) / "client.pem"
            chain.write_text(pems.get("ssl.certificate.pem", "") + "\n" + pems.get("ssl.key.pem", ""))
            context.load_cert_chain(chain)
    return context


class ConfluentKafkaAdmin:
    """`KafkaAdmin` for a real cluster. Cheap to create; connects on first use. Not thread-safe.

    `config` adds librdkafka properties (security settings, client id) to every connection.
    """

    def __init__(
        self, bootstrap_servers: str, *, timeout: float = 10.0, config: Mapping[str, str] | None = None
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self._config = dict(config or {})
        self._kafka_python_settings = kafka_python_config(self._config)
        self._admin: AdminClient | None = AdminClient(
            {
                **self._config,
                "bootstrap.servers": bootstrap_servers,
                # Bounds every request not given its own timeout (elect_leaders; see the module docstring).
                "socket.timeout.ms": int(timeout * 1000),
                "logger": logging.getLogger(f"{__name__}.librdkafka"),
            }
        )
        self._kafka_python_client: Any = None

    # -- cluster, topics ---------------------------------------------------------------------------

    def describe_cluster(self) -> ClusterState:
        admin = self._client()
        wait = min(self.timeout, CONTROLLER_WAIT_SECONDS)
        cluster_future = admin.describe_cluster(request_timeout=wait)
        metadata = self._call("read metadata", lambda: admin.list_topics(timeout=self.timeout))
        names = sorted(metadata.topics)
        try:
            min_isr = self._min_insync_replicas(names, timeout=wait)
            brokers, controller, cluster_id = self._registered_brokers(cluster_future, metadata)
        except KafkaUnavailableError as exc:
            log.info("%s; asking any broker instead", exc)
            brokers, controller, cluster_id, min_isr = self._describe_through_any_broker(
                names, attempts=max(1, len(metadata.brokers))
            )
        # Asked of the broker that just answered Metadata: left to choose, the clients pick the
        # "controller" Metadata names, a random broker in KRaft (KIP-590), or one from their own
        # metadata, either of which may have died since (while the quorum has no leader, nobody
        # marks dead brokers as gone).
        answering = metadata.orig_broker_id if metadata.orig_broker_id >= 0 else None
        quorum = self._quorum(answering)
        # Without a quorum leader nobody can list reassignments (and none makes progress). Metadata
        # and this list are two requests: a move ending between them looks, for that instant, like a
        # partition not moving (health's URP alert waits minutes before it fires; a roll re-polls).
        listable = quorum is None or quorum.leader_id is not None
        moving = self._reassignments(answering) if names and listable else {}
        topics = []
        for name in names:
            topic = metadata.topics[name]
            if topic.error is not None and not topic.partitions:
                continue  # being created or deleted right now
            partitions = tuple(
                PartitionState(
                    topic=name,
                    partition=p.id,
                    leader=p.leader if p.leader >= 0 else None,
                    replicas=tuple(p.replicas),
                    isr=tuple(p.isrs),
                    adding=progress.adding if (progress := moving.get((name, p.id))) else (),
                    removing=progress.removing if progress else (),
                )
                for p in sorted(topic.partitions.values(), key=lambda p: p.id)
            )
            topics.append(
                TopicState(
                    name=name,
                    partitions=partitions,
                    min_insync_replicas=min_isr.get(name, DEFAULT_MIN_INSYNC_REPLICAS),
                    internal=name in INTERNAL_TOPICS,
                )
            )
        return ClusterState(
            cluster_id=cluster_id,
            controller_id=quorum.leader_id if quorum is not None else controller,
            brokers=brokers,
            topics=tuple(topics),
            quorum=quorum,
        )

    def create_topic(
        self, name: str, partitions: int, replication_factor: int, config: Mapping[str, str] | None = None
    ) -> None:
        new_topic = NewTopic(
            name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config or {})
        )
        futures = self._client().create_topics(
            [new_topic], request_timeout=self.timeout, operation_timeout=self.timeout
        )
        try:
            self._wait(futures[name], f"create topic {name!r}")
        except KafkaAdminError as exc:
            if _code(exc.__cause__) == KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicAlreadyExistsError(f"topic {name!r} already exists") from exc.__cause__
            raise

    def _registered_brokers(
        self, cluster_future: concurrent.futures.Future[Any], metadata: Any
    ) -> tuple[tuple[BrokerInfo, ...], int | None, str]:
        """Brokers, controller and cluster id from DescribeCluster, or from Metadata without racks."""
        try:
            description = self._wait(cluster_future, "describe cluster")
        except KafkaUnavailableError:
            raise
        except KafkaAdminError:
            # DescribeCluster needs Kafka 2.8; Metadata has the same facts except racks.
            brokers = tuple(
                BrokerInfo(node_id=b.id, host=b.host, port=b.port)
                for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
            )
            controller = metadata.controller_id if metadata.controller_id >= 0 else None
            return brokers, controller, metadata.cluster_id or ""
        brokers = tuple(
            BrokerInfo(node_id=node.id, host=node.host, port=node.port, rack=node.rack or None)
            for node in sorted(description.nodes, key=lambda n: n.id)
        )
        controller = description.controller.id if description.controller is not None else None
        return brokers, controller, description.cluster_id or ""

    def _describe_through_any_broker(
        self, topics: list[str], *, attempts: int
    ) -> tuple[tuple[BrokerInfo, ...], int | None, str, dict[str, int]]:
        """What `_registered_brokers` and `_min_insync_replicas` read, asked through kafka-python: it
        sends both to any broker, and after a refused connection leaves that broker out of the next
        attempt, so `attempts` as large as the broker count gets past every dead one."""
        kafka = _import_kafka_python()
        resources = [
            kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, name, [MIN_INSYNC_REPLICAS])
            for name in topics
        ]
        for attempt in range(attempts):
            try:
                described = self._kafka_python_call("describe cluster", lambda c: c.describe_cluster())
                configs = (
                    self._kafka_python_call(
                        "describe topic configs", lambda c: c.describe_configs(resources, config_filter="all")
                    )
                    if resources
                    else {}
                )
                break
            except KafkaUnavailableError:
                if attempt + 1 >= attempts:
                    raise
        brokers = tuple(
            BrokerInfo(node_id=b["broker_id"], host=b["host"], port=b["port"], rack=b.get("rack") or None)
            for b in sorted(described["brokers"], key=lambda b: b["broker_id"])
            if not b.get("is_fenced")  # Metadata and DescribeCluster through librdkafka leave them out
        )
        controller = described.get("controller_id")
        min_isr: dict[str, int] = {}
        for name, entries in configs.get("topic", {}).items():
            value = (entries.get(MIN_INSYNC_REPLICAS) or {}).get("value")
            if value is not None and str(value).isdigit():
                min_isr[name] = int(value)
        return (
            brokers,
            controller if controller is not None and controller >= 0 else None,
            described.get("cluster_id") or "",
            min_isr,
        )

    def _min_insync_replicas(self, topics: Iterable[str], *, timeout: float | None = None) -> dict[str, int]:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in topics]
        if not resources:
            return {}
        futures = self._client().describe_configs(resources, request_timeout=timeout or self.timeout)
        values: dict[str, int] = {}
        for resource, future in futures.items():
            try:
                entries = self._wait(future, f"describe configs of topic {resource.name!r}")
            except KafkaUnavailableError:
                raise
            except KafkaAdminError as exc:
                # Unsupported by the broker, or the topic went away since Metadata: Kafka's default.
                log.debug("no min.insync.replicas for topic %s: %s", resource.name, exc)
                continue
            entry = entries.get(MIN_INSYNC_REPLICAS)
            if entry is not None and entry.value is not None:
                try:
                    values[resource.name] = int(entry.value)
                except ValueError:
                    log.warning("topic %s reports min.insync.replicas=%r", resource.name, entry.value)
        return values

    def describe_quorum(self) -> QuorumState | None:
        return self._quorum(None)

    def _quorum(self, node_id: int | None) -> QuorumState | None:
        """DescribeQuorum on the metadata log, sent to `node_id` (or any broker), which forwards it to
        the quorum's leader. No answer in time from a broker that is up means no leader answers."""
        kafka = _import_kafka_python()
        request_type = kafka.protocol.admin.DescribeQuorumRequest
        request = request_type(
            topics=[
                request_type.TopicData(
                    topic_name=METADATA_LOG,
                    partitions=[request_type.TopicData.PartitionData(partition_index=0)],
                )
            ]
        )
        try:
            response = self._send("describe the controller quorum", request, node_id)
        except KafkaUnavailableError as exc:
            if node_id is None or not isinstance(exc.__cause__, kafka.errors.RequestTimedOutError):
                raise
            return QuorumState(
                leader_id=None, error=f"the controller quorum did not answer within {self.timeout:g} s"
            )
        except KafkaAdminError as exc:
            if isinstance(exc.__cause__, kafka.errors.UnsupportedVersionError):
                return None  # not a KRaft cluster (the development broker)
            raise
        partitions = [p for topic in response.topics for p in topic.partitions]
        errors = [(response.error_code, response.error_message)] + [
            (p.error_code, p.error_message) for p in partitions
        ]
        failed = [message or kafka.errors.for_code(code).__name__ for code, message in errors if code != 0]
        if failed or not partitions:
            return QuorumState(leader_id=None, error="; ".join(failed) or "no answer for the metadata log")
        partition = partitions[0]
        return QuorumState(
            leader_id=partition.leader_id if partition.leader_id >= 0 else None,
            leader_epoch=partition.leader_epoch,
            high_watermark=partition.high_watermark,
            voters=tuple(
                _quorum_member(r) for r in sorted(partition.current_voters, key=lambda r: r.replica_id)
            ),
            observers=tuple(
                _quorum_member(r) for r in sorted(partition.observers, key=lambda r: r.replica_id)
            ),
        )

    # -- consumer groups and offsets ---------------------------------------------------------------

    def list_consumer_groups(self) -> list[ConsumerGroupState]:
        admin = self._client()
        listing = self._wait(admin.list_consumer_groups(request_timeout=self.timeout), "list consumer groups")
        if listing.errors:
            # A broker that did not answer hides its groups; a partial list would look like groups
            # that vanished, so fail the whole call instead.
            error = listing.errors[0]
            if isinstance(error, KafkaError):
                error = KafkaException(error)
            raise _translate(error, "list consumer groups", self.bootstrap_servers)
        group_ids = sorted({g.group_id for g in listing.valid})
        if not group_ids:
            return []
        descriptions = admin.describe_consumer_groups(group_ids, request_timeout=self.timeout)
        # ListConsumerGroupOffsets takes one group per call; start them all before waiting on any.
        offsets = {
            group_id: admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group_id)], request_timeout=self.timeout
            )[group_id]
            for group_id in group_ids
        }
        groups = []
        for group_id in group_ids:
            try:
                description = self._wait(descriptions[group_id], f"describe consumer group {group_id!r}")
                committed = self._wait(offsets[group_id], f"list offsets of consumer group {group_id!r}")
            except KafkaUnavailableError:
                raise
            except KafkaAdminError as exc:
                if _code(exc.__cause__) == KafkaError.GROUP_ID_NOT_FOUND:
                    continue  # deleted since it was listed
                raise
            groups.append(
                ConsumerGroupState(
                    group_id=group_id,
                    state=_GROUP_STATE_NAMES.get(description.state, "Unknown"),
                    members=len(description.members),
                    member_details=tuple(
                        GroupMember(
                            member_id=member.member_id,
                            client_id=member.client_id,
                            host=member.host,
                            assignment=tuple(
                                sorted(
                                    (tp.topic, tp.partition)
                                    for tp in (
                                        member.assignment.topic_partitions if member.assignment else ()
                                    )
                                )
                            ),
                        )
                        for member in description.members
                    ),
                    committed={
                        (tp.topic, tp.partition): tp.offset
                        for tp in committed.topic_partitions or ()
                        if tp.error is None and tp.offset >= 0
                    },
                )
            )
        return groups

    def end_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermarks. Partitions without a leader or no longer existing are left out, so that a
        lag collector still sees every partition that can be read."""
        return self._list_offsets(partitions, OffsetSpec.latest(), "end")

    def _list_offsets(
        self, partitions: Collection[TopicPartition], spec: OffsetSpec, which: str
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        requests = {confluent_kafka.TopicPartition(topic, p): spec for topic, p in set(partitions)}
        futures = self._client().list_offsets(requests, request_timeout=self.timeout)
        offsets: dict[TopicPartition, int] = {}
        skipped = False
        for tp, future in futures.items():
            try:
                offsets[(tp.topic, tp.partition)] = self._wait(future, "list offsets").offset
            except KafkaAdminError as exc:
                if _code(exc.__cause__) not in _OFFSETS_SKIPPED_CODES:
                    raise
                log.debug("no %s offset for %s[%d]: %s", which, tp.topic, tp.partition, exc)
                skipped = True
        if skipped:
            # librdkafka answers "no leaders found" at once from its cache when the cluster has just
            # become unreachable; a fresh Metadata request tells that apart from a leaderless partition.
            self._call("read metadata", lambda: self._client().list_topics(timeout=self.timeout))
        return offsets

    def describe_log_dirs(self, broker_ids: Collection[int]) -> dict[int, tuple[LogDirUsage, ...]]:
        """One request per broker, so a broker that is down or slow hides only its own directories.
        The empty topic list asks for the directories without their partitions, which keeps the answer
        small on brokers with many partitions."""
        kafka = _import_kafka_python()
        usage: dict[int, tuple[LogDirUsage, ...]] = {}
        for broker_id in sorted(set(broker_ids)):
            action = f"describe log dirs of broker {broker_id}"
            try:
                answer = self._kafka_python_call(
                    action,
                    lambda c, b=broker_id: c.describe_log_dirs(topic_partitions={}, brokers=[b]),
                    requires="Apache Kafka 3.3 or later, for the size of log directories",
                )
            except KafkaUnavailableError as exc:
                log.debug("%s: %s", action, exc)
                continue
            except KafkaAdminError as exc:
                if isinstance(exc.__cause__, kafka.errors.UnknownBrokerIdError):
                    continue  # registered after this client read the metadata; next time
                raise
            usage[broker_id] = tuple(
                LogDirUsage(
                    broker_id=broker_id,
                    path=entry["log_dir"],
                    # -1: the broker does not know (KIP-827's default for older request versions).
                    total_bytes=entry["total_bytes"] if entry.get("total_bytes", -1) >= 0 else None,
                    usable_bytes=entry["usable_bytes"] if entry.get("usable_bytes", -1) >= 0 else None,
                    error=kafka.errors.for_code(entry["error_code"]).__name__ if entry["error_code"] else "",
                )
                for response in answer
                for entry in response["log_dirs"]
            )
        return usage

    # -- reassignments, throttles, leaders ---------------------------------------------------------

    def alter_partition_reassignments(self, targets: Mapping[TopicPartition, list[int] | None]) -> None:
        if not targets:
            return
        for (topic, partition), replicas in targets.items():
            if replicas is not None and (not replicas or len(set(replicas)) != len(replicas)):
                raise KafkaAdminError(
                    f"target replicas for {topic}[{partition}] must be distinct broker ids, got {replicas}"
                )
        kafka = _import_kafka_python()  # before anything is written, so a missing package changes nothing
        moves = {tp: list(r) for tp, r in targets.items() if r is not None}
        if moves:
            self._set_throttled_replicas(moves)
        request = {
            kafka.structs.TopicPartition(topic, p): replicas for (topic, p), replicas in targets.items()
        }
        results = self._kafka_python_call(
            "alter partition reassignments", lambda c: c.alter_partition_reassignments(request)
        )
        failed = []
        retriable = True
        for tp, error in sorted(results.items()):
            if error is None:
                continue
            cancelling = (tp.topic, tp.partition) in targets and targets[(tp.topic, tp.partition)] is None
            if cancelling and error is kafka.errors.NoReassignmentInProgressError:
                continue  # the move already ended: what a cancel asks for is true
            failed.append(f"{tp.topic}[{tp.partition}]: {error.__name__}")
            retriable = retriable and error.retriable
        if failed:
            error_class = KafkaUnavailableError if retriable else KafkaAdminError
            raise error_class(
                f"cluster at {self.bootstrap_servers} refused reassignments: {'; '.join(failed)}"
            )

    def list_partition_reassignments(self) -> dict[TopicPartition, ReassignmentProgress]:
        return self._reassignments(None)

    def _reassignments(self, node_id: int | None) -> dict[TopicPartition, ReassignmentProgress]:
        """ListPartitionReassignments, sent to `node_id` (or any broker), which forwards it to the
        active controller."""
        kafka = _import_kafka_python()
        request = kafka.protocol.admin.ListPartitionReassignmentsRequest(
            timeout_ms=int(self.timeout * 1000), topics=None
        )
        response = self._send("list partition reassignments", request, node_id)
        error = kafka.errors.for_code(response.error_code)
        if error is not kafka.errors.NoError:
            error_class = KafkaUnavailableError if error.retriable else KafkaAdminError
            raise error_class(
                f"cluster at {self.bootstrap_servers}: list partition reassignments failed: "
                f"{response.error_message or error.__name__}"
            )
        # A partition with nothing adding or removing is not moving; Apache Kafka never lists one,
        # but some Kafka-protocol brokers (Tansu) list every partition that way.
        return {
            (topic.name, partition.partition_index): ReassignmentProgress(
                replicas=tuple(partition.replicas),
                adding=tuple(partition.adding_replicas),
                removing=tuple(partition.removing_replicas),
            )
            for topic in sorted(response.topics, key=lambda t: t.name)
            for partition in sorted(topic.partitions, key=lambda p: p.partition_index)
            if partition.adding_replicas or partition.removing_replicas
        }

    def unregister_broker(self, node_id: int) -> None:
        kafka = _import_kafka_python()
        from provisioning.kafka_admin.messages import UnregisterBrokerRequest

        # Any broker forwards it to the active controller, as `kafka-cluster.sh unregister` relies on.
        response = self._send(f"unregister broker {node_id}", UnregisterBrokerRequest(broker_id=node_id))
        error = kafka.errors.for_code(response.error_code)
        if error is kafka.errors.NoError or error is kafka.errors.BrokerIdNotRegisteredError:
            return
        error_class = KafkaUnavailableError if error.retriable else KafkaAdminError
        raise error_class(
            f"cluster at {self.bootstrap_servers} did not unregister broker {node_id}: "
            f"{response.error_message or error.__name__}"
        )

    def finalized_features(self) -> dict[str, int]:
        """Finalized feature levels (DescribeFeatures); a feature at level 0 is left out, as Kafka does."""
        described = self._kafka_python_call("describe features", lambda c: c.describe_features())
        # kafka-python 3.0 answers {feature: {"supported": (min, max), "finalized": (min, max),
        # "finalized_epoch": e}}, whatever its docstring says.
        return {
            name: entry["finalized"][1]
            for name, entry in sorted(described.items())
            if entry.get("finalized") and entry["finalized"][1] > 0
        }

    def update_features(self, release: str) -> dict[str, int]:
        """Finalize the feature levels of `release` on a cluster whose brokers all run it (KIP-584).

        Raises what `features.levels_to_raise` says (metadata.version and the features the release
        turns on by default, never kraft.version), checks with DescribeFeatures that the levels moved,
        and returns the finalized levels. The controller refuses a level that some registered broker
        does not support, so a broker left on the old release, or a removed broker still registered,
        makes this fail with the controller's reason instead of splitting the cluster. A broker that
        finalizes nothing (not a KRaft cluster: the development broker) has nothing to raise.
        """
        finalized = self.finalized_features()
        if METADATA_VERSION not in finalized:
            return finalized
        try:
            updates = features.levels_to_raise(release, finalized)
        except features.UnknownReleaseError as exc:
            raise KafkaAdminError(str(exc)) from exc
        if not updates:
            return finalized
        kafka = _import_kafka_python()
        request = kafka.protocol.admin.UpdateFeaturesRequest(
            timeout_ms=int(self.timeout * 1000),
            feature_updates=kafka.admin.KafkaAdminClient._build_feature_updates(updates),
            validate_only=False,
        )
        # Any broker forwards UpdateFeatures to the active controller.
        response = self._send("update features", request)
        refusals = [(None, response.error_code, response.error_message)] + [
            (result.feature, result.error_code, result.error_message) for result in response.results or ()
        ]
        reasons = [
            f"{name + ': ' if name else ''}{message or kafka.errors.for_code(code).__name__}"
            for name, code, message in refusals
            if code != 0
        ]
        if reasons:
            raise KafkaAdminError(
                f"cluster at {self.bootstrap_servers} refused to finalize the feature levels of Kafka "
                f"{release} ({_levels(updates)}): {'; '.join(reasons)}"
            )
        # Brokers apply the new levels from the metadata log a moment after the controller has
        # committed them; until every answer shows them the upgrade is not done.
        deadline = time.monotonic() + FEATURES_SETTLE_SECONDS
        while True:
            finalized = self.finalized_features()
            behind = {name: level for name, level in updates.items() if finalized.get(name, 0) < level}
            if not behind:
                return finalized
            if time.monotonic() >= deadline:
                raise KafkaAdminError(
                    f"cluster at {self.bootstrap_servers} accepted the feature levels of Kafka {release} "
                    f"but still reports "
                    + ", ".join(
                        f"{name} {finalized.get(name, 0)} (not {level})" for name, level in behind.items()
                    )
                    + f" after {FEATURES_SETTLE_SECONDS:g} s"
                )
            time.sleep(0.5)

    def set_replication_throttle(self, broker_ids: Collection[int], bytes_per_second: int) -> None:
        if bytes_per_second <= 0:
            raise KafkaAdminError(f"replication throttle must be positive, got {bytes_per_second}")
        self._alter_broker_configs(
            broker_ids,
            [
                ConfigEntry(name, str(bytes_per_second), incremental_operation=AlterConfigOpType.SET)
                for name in (LEADER_THROTTLE_RATE, FOLLOWER_THROTTLE_RATE)
            ],
            "set replication throttle",
        )

    def clear_replication_throttle(self, broker_ids: Collection[int], topics: Collection[str] = ()) -> None:
        self._alter_broker_configs(
            broker_ids,
            [
                ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)
                for name in (LEADER_THROTTLE_RATE, FOLLOWER_THROTTLE_RATE)
            ],
            "clear replication throttle",
        )
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)
                    for name in (LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS)
                ],
            )
            for topic in sorted(set(topics))
        ]
        if not resources:
            return
        futures = self._client().incremental_alter_configs(resources, request_timeout=self.timeout)
        for resource, future in futures.items():
            try:
                self._wait(future, f"clear throttled replicas of topic {resource.name!r}")
            except KafkaUnavailableError:
                raise
            except KafkaAdminError as exc:
                if _code(exc.__cause__) != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
                # Deleted since it was moved: nothing left to clear.

    def elect_preferred_leaders(self, partitions: Collection[TopicPartition]) -> None:
        if not partitions:
            return  # an empty list would mean every partition of the cluster
        requested = [confluent_kafka.TopicPartition(topic, p) for topic, p in sorted(set(partitions))]
        future = self._client().elect_leaders(ElectionType.PREFERRED, requested)
        results = self._wait(future, "elect preferred leaders")
        failed = []
        retriable = True
        for tp, error in sorted(results.items(), key=lambda item: (item[0].topic, item[0].partition)):
            if error is None or _code(error) == KafkaError.ELECTION_NOT_NEEDED:
                continue
            failed.append(f"{tp.topic}[{tp.partition}]: {error.args[0].str() if error.args else error}")
            retriable = retriable and _code(error) in _UNAVAILABLE_CODES
        if failed:
            error_class = KafkaUnavailableError if retriable else KafkaAdminError
            raise error_class(
                f"cluster at {self.bootstrap_servers} could not elect preferred leaders: {'; '.join(failed)}"
            )

    def close(self) -> None:
        if self._kafka_python_client is not None:
            self._kafka_python_client.close()
            self._kafka_python_client = None
        self._admin = None  # librdkafka's handle is released when the last reference goes

    # -- helpers -----------------------------------------------------------------------------------

    def _client(self) -> AdminClient:
        if self._admin is None:
            raise KafkaAdminError("this admin client was closed")
        return self._admin

    def _call(self, action: str, function: Any) -> Any:
        try:
            return function()
        except KafkaException as exc:
            raise _translate(exc, action, self.bootstrap_servers) from exc

    def _wait(self, future: concurrent.futures.Future[T], action: str) -> T:
        try:
            # librdkafka enforces the request timeout itself; the margin only guards against a
            # future that is never completed.
            return future.result(timeout=self.timeout + 5)
        except KafkaException as exc:
            raise _translate(exc, action, self.bootstrap_servers) from exc
        except concurrent.futures.TimeoutError as exc:
            raise KafkaUnavailableError(
                f"cluster at {self.bootstrap_servers}: {action} timed out after {self.timeout} s"
            ) from exc

    def _alter_broker_configs(
        self, broker_ids: Collection[int], entries: list[ConfigEntry], action: str
    ) -> None:
        # librdkafka sends a request naming a broker to that broker, so it takes one broker per call
        # ("Only one ConfigResource of type BROKER is allowed per call"); the calls run concurrently.
        futures = {
            broker_id: self._client().incremental_alter_configs(
                [ConfigResource(ResourceType.BROKER, str(broker_id), incremental_configs=entries)],
                request_timeout=self.timeout,
            )
            for broker_id in sorted(set(broker_ids))
        }
        for broker_id, by_resource in futures.items():
            for future in by_resource.values():
                self._wait(future, f"{action} on broker {broker_id}")

    def _set_throttled_replicas(self, moves: Mapping[TopicPartition, list[int]]) -> None:
        metadata = self._call("read metadata", lambda: self._client().list_topics(timeout=self.timeout))
        leader_entries: dict[str, list[str]] = defaultdict(list)
        follower_entries: dict[str, list[str]] = defaultdict(list)
        for (topic, partition), target in sorted(moves.items()):
            topic_metadata = metadata.topics.get(topic)
            if topic_metadata is None or partition not in topic_metadata.partitions:
                raise KafkaAdminError(f"cannot reassign {topic}[{partition}]: no such partition")
            current = list(topic_metadata.partitions[partition].replicas)
            leader_entries[topic].extend(f"{partition}:{b}" for b in current)
            follower_entries[topic].extend(f"{partition}:{b}" for b in target if b not in current)
        resources = []
        for topic in sorted(leader_entries):
            lists = {
                LEADER_THROTTLED_REPLICAS: leader_entries[topic],
                FOLLOWER_THROTTLED_REPLICAS: follower_entries[topic],
            }
            entries = [
                # An empty follower list (a move that only reorders replicas) is deleted, not set.
                ConfigEntry(name, ",".join(values), incremental_operation=AlterConfigOpType.SET)
                if values
                else ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)
                for name, values in lists.items()
            ]
            resources.append(ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries))
        futures = self._client().incremental_alter_configs(resources, request_timeout=self.timeout)
        for resource, future in futures.items():
            self._wait(future, f"list throttled replicas of topic {resource.name!r}")

    def _kafka_python_call(
        self, action: str, function: Any, *, requires: str = "Apache Kafka 2.4 or later"
    ) -> Any:
        kafka = _import_kafka_python()
        try:
            if self._kafka_python_client is None:
                timeout_ms = int(self.timeout * 1000)
                self._kafka_python_client = kafka.admin.KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers.split(","),
                    request_timeout_ms=timeout_ms,
                    bootstrap_timeout_ms=timeout_ms,
                    **self._kafka_python_settings,
                )
            return function(self._kafka_python_client)
        except kafka.errors.UnsupportedVersionError as exc:
            raise KafkaAdminError(
                f"cluster at {self.bootstrap_servers} does not support {action} ({requires} is needed)"
            ) from exc
        except kafka.errors.KafkaError as exc:
            error_class = KafkaUnavailableError if exc.retriable else KafkaAdminError
            raise error_class(f"cluster at {self.bootstrap_servers}: {action} failed: {exc}") from exc
        except RuntimeError as exc:
            # kafka-python raises a bare RuntimeError when the controller keeps moving.
            raise KafkaUnavailableError(
                f"cluster at {self.bootstrap_servers}: {action} failed: {exc}"
            ) from exc

    def _send(self, action: str, request: Any, node_id: int | None = None) -> Any:
        """Send one request over kafka-python's connections, to `node_id` or to any broker, and return
        the response. For requests its admin client has no call for (UnregisterBroker), or sends
        where it should not: to the "controller" Metadata names, which in KRaft is a random broker
        (KIP-590), possibly one that has just died.

        A broker that refuses the connection is dead though still registered (until its session
        times out, or for good while the quorum has no leader): the request goes to another broker,
        kafka-python leaving the refusing one out for a while, until every known broker was tried.
        """
        kafka = _import_kafka_python()
        target = node_id

        async def send(client: Any) -> Any:
            return await client._manager.send(request, node_id=target)

        attempt = 0
        while True:
            try:
                return self._kafka_python_call(action, lambda client: client._manager.run(send, client))
            except KafkaUnavailableError as exc:
                attempt += 1
                refused = isinstance(
                    exc.__cause__, (kafka.errors.KafkaConnectionError, kafka.errors.NodeNotReadyError)
                )
                known = (
                    len(self._kafka_python_client._manager.cluster.brokers())
                    if self._kafka_python_client
                    else 1
                )
                if not refused or attempt > known:
                    raise
                target = None

    # -- the data plane: topics, SCRAM users, ACLs, quotas ----------------------------------------
    # Topics, configs, SCRAM credentials and ACLs through confluent-kafka; client quotas through
    # kafka-python's connections (librdkafka has no call for AlterClientQuotas/DescribeClientQuotas).

    def describe_topics(self, names: Collection[str]) -> dict[str, TopicState]:
        if not names:
            return {}
        futures = self._client().describe_topics(
            confluent_kafka.TopicCollection(sorted(set(names))), request_timeout=self.timeout
        )
        topics: dict[str, TopicState] = {}
        for name, future in futures.items():
            try:
                description = self._data_wait(future, f"describe topic {name!r}")
            except TopicNotFoundError:
                continue
            topics[name] = TopicState(
                name=name,
                partitions=tuple(
                    PartitionState(
                        topic=name,
                        partition=p.id,
                        leader=p.leader.id if p.leader is not None and p.leader.id >= 0 else None,
                        replicas=tuple(node.id for node in p.replicas),
                        isr=tuple(node.id for node in p.isr),
                    )
                    for p in sorted(description.partitions, key=lambda p: p.id)
                ),
                internal=bool(description.is_internal) or name in INTERNAL_TOPICS,
            )
        return topics

    def create_topic_assigned(
        self,
        name: str,
        replicas: Sequence[Sequence[int]],
        config: Mapping[str, str] | None = None,
    ) -> None:
        new_topic = NewTopic(
            name,
            # confluent-kafka 2.16 wants the count with an assignment (its docstring says -1, which
            # it refuses), and no replication factor.
            num_partitions=len(replicas),
            replication_factor=-1,
            replica_assignment=[list(r) for r in replicas],
            config=dict(config or {}),
        )
        futures = self._client().create_topics(
            [new_topic],
            request_timeout=self.timeout,
            operation_timeout=self.timeout,
        )
        self._data_wait(futures[name], f"create topic {name!r}")

    def create_partitions(self, name: str, total: int, new_replicas: Sequence[Sequence[int]]) -> None:
        request = NewPartitions(name, total, replica_assignment=[list(r) for r in new_replicas])
        futures = self._client().create_partitions(
            [request],
            request_timeout=self.timeout,
            operation_timeout=self.timeout,
        )
        self._data_wait(futures[name], f"add partitions to topic {name!r}")

    def delete_topic(self, name: str) -> None:
        futures = self._client().delete_topics(
            [name], request_timeout=self.timeout, operation_timeout=self.timeout
        )
        self._data_wait(futures[name], f"delete topic {name!r}")

    def describe_topic_configs(self, names: Collection[str]) -> dict[str, dict[str, ConfigValue]]:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in sorted(set(names))]
        if not resources:
            return {}
        futures = self._client().describe_configs(resources, request_timeout=self.timeout)
        configs: dict[str, dict[str, ConfigValue]] = {}
        for resource, future in futures.items():
            try:
                entries = self._data_wait(future, f"describe configs of topic {resource.name!r}")
            except TopicNotFoundError:
                continue
            configs[resource.name] = {
                key: ConfigValue(
                    value=entry.value,
                    source=_CONFIG_SOURCES.get(int(entry.source), "default"),
                    read_only=bool(entry.is_read_only),
                    sensitive=bool(entry.is_sensitive),
                )
                for key, entry in sorted(entries.items())
            }
        return configs

    def alter_topic_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        if not changes:
            return
        entries = [
            ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
            if value is None
            else ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in sorted(changes.items())
        ]
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        futures = self._client().incremental_alter_configs([resource], request_timeout=self.timeout)
        for future in futures.values():
            self._data_wait(future, f"change configs of topic {name!r}")

    def start_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        return self._list_offsets(partitions, OffsetSpec.earliest(), "start")

    def replica_sizes(self, broker_ids: Collection[int]) -> dict[TopicPartition, dict[int, int]]:
        """DescribeLogDirs with every partition, one request per broker (see `describe_log_dirs`)."""
        kafka = _import_kafka_python()
        sizes: dict[TopicPartition, dict[int, int]] = defaultdict(dict)
        for broker_id in sorted(set(broker_ids)):
            action = f"describe replica sizes on broker {broker_id}"
            try:
                answer = self._kafka_python_call(
                    action, lambda c, b=broker_id: c.describe_log_dirs(topic_partitions=None, brokers=[b])
                )
            except KafkaUnavailableError as exc:
                log.debug("%s: %s", action, exc)
                continue
            except KafkaAdminError as exc:
                if isinstance(exc.__cause__, kafka.errors.UnknownBrokerIdError):
                    continue
                raise
            for response in answer:
                for log_dir in response["log_dirs"]:
                    for topic in log_dir.get("topics") or ():
                        for partition in topic["partitions"]:
                            if partition.get("is_future_key"):
                                continue  # a copy being moved between directories
                            key = (topic["name"], partition["partition_index"])
                            sizes[key][broker_id] = partition["partition_size"]
        return dict(sizes)

    def upsert_scram_credential(self, user: str, password: str, iterations: int) -> None:
        alteration = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations), password.encode("utf-8")
        )
        futures = self._client().alter_user_scram_credentials([alteration], request_timeout=self.timeout)
        for future in futures.values():
            self._data_wait(future, f"set the SCRAM credential of user {user!r}")

    def delete_scram_credential(self, user: str) -> None:
        deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
        futures = self._client().alter_user_scram_credentials([deletion], request_timeout=self.timeout)
        for future in futures.values():
            try:
                self._data_wait(future, f"delete the SCRAM credential of user {user!r}")
            except KafkaAdminError as exc:
                if _code(exc.__cause__) != KafkaError.RESOURCE_NOT_FOUND:
                    raise

    def scram_users(self) -> dict[str, tuple[str, ...]]:
        future = self._client().describe_user_scram_credentials(request_timeout=self.timeout)
        try:
            described = self._data_wait(future, "describe SCRAM users")
        except KafkaAdminError as exc:
            if _code(exc.__cause__) == KafkaError.RESOURCE_NOT_FOUND:
                return {}  # no user has a credential
            raise
        return {
            user: tuple(
                sorted(
                    _SCRAM_MECHANISMS.get(info.mechanism, str(info.mechanism))
                    for info in d.scram_credential_infos
                )
            )
            for user, d in sorted(described.items())
        }

    def create_acls(self, entries: Collection[AclEntry]) -> None:
        if not entries:
            return
        bindings = [_acl_binding(entry) for entry in entries]
        futures = self._client().create_acls(bindings, request_timeout=self.timeout)
        for binding, future in futures.items():
            self._data_wait(future, f"create ACL {binding}")

    def describe_acls(self) -> list[AclEntry]:
        everything = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        future = self._client().describe_acls(everything, request_timeout=self.timeout)
        try:
            bindings = self._data_wait(future, "describe ACLs")
        except KafkaAdminError as exc:
            if _code(exc.__cause__) == KafkaError.SECURITY_DISABLED:
                return []  # no authorizer: no ACL can exist
            raise
        return sorted(_acl_entry(binding) for binding in bindings)

    def delete_acls(self, entries: Collection[AclEntry]) -> None:
        if not entries:
            return
        filters = [_acl_binding(entry, as_filter=True) for entry in entries]
        futures = self._client().delete_acls(filters, request_timeout=self.timeout)
        for binding, future in futures.items():
            self._data_wait(future, f"delete ACL {binding}")

    def alter_user_quotas(self, user: str, quotas: Mapping[str, float | None]) -> None:
        if not quotas:
            return
        kafka = _import_kafka_python()
        entry = kafka.protocol.admin.AlterClientQuotasRequest.EntryData
        request = kafka.protocol.admin.AlterClientQuotasRequest(
            entries=[
                entry(
                    entity=[entry.EntityData(entity_type="user", entity_name=user)],
                    ops=[
                        entry.OpData(key=key, value=float(value or 0.0), remove=value is None)
                        for key, value in sorted(quotas.items())
                    ],
                )
            ],
            validate_only=False,
        )
        # Any broker forwards it to the controller.
        response = self._send(f"set the quotas of user {user!r}", request)
        for result in response.entries:
            self._raise_for_code(result.error_code, result.error_message, f"set the quotas of user {user!r}")

    def user_quotas(self) -> dict[str, dict[str, float]]:
        kafka = _import_kafka_python()
        describe = kafka.protocol.admin.DescribeClientQuotasRequest
        # match type 2: any specified name; strict: entities naming a user and nothing else.
        request = describe(
            components=[describe.ComponentData(entity_type="user", match_type=2, match=None)], strict=True
        )
        response = self._send("describe user quotas", request)
        self._raise_for_code(response.error_code, response.error_message, "describe user quotas")
        quotas: dict[str, dict[str, float]] = {}
        for entry in response.entries or ():
            names = {entity.entity_type: entity.entity_name for entity in entry.entity}
            if set(names) == {"user"} and names["user"] is not None:
                quotas[names["user"]] = {value.key: value.value for value in entry.values}
        return dict(sorted(quotas.items()))

    def _data_wait(self, future: concurrent.futures.Future[T], action: str) -> T:
        """`_wait`, with what the data plane tells apart: a missing or existing topic, and a request the
        cluster refused as invalid (its reason is for the person who asked)."""
        try:
            return self._wait(future, action)
        except KafkaUnavailableError:
            raise
        except KafkaAdminError as exc:
            error = exc.__cause__.args[0] if isinstance(exc.__cause__, KafkaException) else None
            code = error.code() if isinstance(error, KafkaError) else None
            if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID):
                raise TopicNotFoundError(str(exc)) from exc.__cause__
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicAlreadyExistsError(str(exc)) from exc.__cause__
            if code in _REFUSED_CODES and isinstance(error, KafkaError):
                raise KafkaRefusedError(error.str()) from exc.__cause__
            raise

    def _raise_for_code(self, code: int, message: str | None, action: str) -> None:
        """Raise for a kafka-python response's error code, as `_data_wait` does for librdkafka's."""
        if code == 0:
            return
        kafka = _import_kafka_python()
        error = kafka.errors.for_code(code)
        reason = message or error.__name__
        if error.retriable:
            raise KafkaUnavailableError(f"cluster at {self.bootstrap_servers}: {action} failed: {reason}")
        if code in _REFUSED_CODES:
            raise KafkaRefusedError(reason)
        raise KafkaAdminError(f"cluster at {self.bootstrap_servers}: {action} failed: {reason}")


def _import_kafka_python() -> ModuleType:
    # Imported on first use: kafka-python serves only the two reassignment calls, and everything
    # else works without it installed.
    try:
        import kafka
        import kafka.admin
        import kafka.errors
        import kafka.protocol.admin
        import kafka.structs
    except ImportError as exc:
        raise KafkaAdminError(
            "partition reassignments need the kafka-python package (3.0 or later), which is not installed"
        ) from exc
    return kafka


def _code(exc: BaseException | None) -> int | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def _translate(exc: BaseException, action: str, servers: str) -> KafkaAdminError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is None:
        return KafkaAdminError(f"cluster at {servers}: {action} failed: {exc}")
    message = f"cluster at {servers}: {action} failed: {error.str()} ({error.name()})"
    if error.code() in _UNAVAILABLE_CODES or error.retriable():
        return KafkaUnavailableError(message)
    return KafkaAdminError(message)


def _quorum_member(replica: Any) -> QuorumMember:
    """A voter or observer of DescribeQuorum; -1 (and v0's missing timestamps) mean unknown."""
    caught_up = getattr(replica, "last_caught_up_timestamp", -1)
    return QuorumMember(
        node_id=replica.replica_id,
        log_end_offset=replica.log_end_offset if replica.log_end_offset >= 0 else None,
        last_caught_up_ms=caught_up if caught_up is not None and caught_up >= 0 else None,
    )


def _levels(levels: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {level}" for name, level in sorted(levels.items()))


# -- the data plane ---------------------------------------------------------------------------------

# Errors with which a cluster refuses a data-plane request as invalid; their text is Kafka's reason.
_REFUSED_CODES = frozenset(
    {
        KafkaError.INVALID_CONFIG,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_REPLICA_ASSIGNMENT,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_REQUEST,
        KafkaError.UNSUPPORTED_VERSION,
        KafkaError._UNSUPPORTED_FEATURE,
        KafkaError._INVALID_ARG,
        KafkaError.INVALID_PRINCIPAL_TYPE,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.SECURITY_DISABLED,
        KafkaError.TOPIC_DELETION_DISABLED,
    }
)

_CONFIG_SOURCES = {
    # Kafka never reports an unknown source; a Kafka-protocol broker that reports only the configs set
    # on a topic (the development broker) does, for exactly those.
    ConfigSource.UNKNOWN_CONFIG.value: "topic",
    ConfigSource.DYNAMIC_TOPIC_CONFIG.value: "topic",
    ConfigSource.DYNAMIC_BROKER_CONFIG.value: "broker",
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value: "broker",
    ConfigSource.STATIC_BROKER_CONFIG.value: "broker",
    ConfigSource.DEFAULT_CONFIG.value: "default",
}

_SCRAM_MECHANISMS = {
    ScramMechanism.SCRAM_SHA_256: "SCRAM-SHA-256",
    ScramMechanism.SCRAM_SHA_512: "SCRAM-SHA-512",
}

_ACL_RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.BROKER,  # librdkafka's name for Kafka's CLUSTER resource
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_ACL_PATTERN_TYPES = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
_ACL_OPERATIONS = {
    "all": AclOperation.ALL,
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "create": AclOperation.CREATE,
    "delete": AclOperation.DELETE,
    "alter": AclOperation.ALTER,
    "describe": AclOperation.DESCRIBE,
    "cluster_action": AclOperation.CLUSTER_ACTION,
    "describe_configs": AclOperation.DESCRIBE_CONFIGS,
    "alter_configs": AclOperation.ALTER_CONFIGS,
    "idempotent_write": AclOperation.IDEMPOTENT_WRITE,
}
_ACL_PERMISSIONS = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}


def _acl_binding(entry: AclEntry, *, as_filter: bool = False) -> AclBinding:
    try:
        args = (
            _ACL_RESOURCE_TYPES[entry.resource_type],
            entry.resource_name,
            _ACL_PATTERN_TYPES[entry.pattern_type],
            entry.principal,
            entry.host,
            _ACL_OPERATIONS[entry.operation],
            _ACL_PERMISSIONS[entry.permission],
        )
    except KeyError as exc:
        raise KafkaRefusedError(f"not a Kafka ACL term: {exc.args[0]!r}") from None
    return AclBindingFilter(*args) if as_filter else AclBinding(*args)


def _acl_entry(binding: AclBinding) -> AclEntry:
    def name_of(table: Mapping[str, Any], value: Any) -> str:
        return next((name for name, known in table.items() if known == value), str(value).lower())

    return AclEntry(
        principal=binding.principal,
        host=binding.host,
        resource_type=name_of(_ACL_RESOURCE_TYPES, binding.restype),
        resource_name=binding.name,
        pattern_type=name_of(_ACL_PATTERN_TYPES, binding.resource_pattern_type),
        operation=name_of(_ACL_OPERATIONS, binding.operation),
        permission=name_of(_ACL_PERMISSIONS, binding.permission_type),
    )
