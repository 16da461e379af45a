"""The one interface through which the control plane talks to a Kafka cluster's admin API.

Workflows (reassignment, rolling restart safety checks) and monitoring collectors depend only on
`KafkaAdmin`. Two implementations exist: `ConfluentKafkaAdmin` speaks the real Kafka protocol through
confluent-kafka; `SimulatedKafkaCluster` (tests and benchmarks only) models a multi-broker cluster,
which cannot run on a development machine.

Everything crossing this boundary is plain immutable data, so callers never hold client objects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

TopicPartition = tuple[str, int]

# Replication throttling, as Kafka configures it: a rate per broker, and per topic the replicas it
# applies to (`partition:broker` entries, or `*`).
LEADER_THROTTLE_RATE = "leader.replication.throttled.rate"
FOLLOWER_THROTTLE_RATE = "follower.replication.throttled.rate"
LEADER_THROTTLED_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_THROTTLED_REPLICAS = "follower.replication.throttled.replicas"


class KafkaAdminError(Exception):
    """A cluster answered with an error that retrying will not fix (bad request, unknown topic)."""


class KafkaUnavailableError(KafkaAdminError):
    """The cluster could not be reached or timed out; retrying later may succeed."""


class TopicAlreadyExistsError(KafkaAdminError):
    """`create_topic` named a topic that exists; callers that may run twice treat it as done."""


class TopicNotFoundError(KafkaAdminError):
    """The topic named does not exist (any more)."""


class KafkaRefusedError(KafkaAdminError):
    """The cluster refused a request as invalid (a config value, a partition count, a replica
    assignment, a policy): the message carries Kafka's reason, meant for the person who asked."""


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int | None  # None when the partition is offline (no live replica leads it)
    replicas: tuple[int, ...]  # assignment order; the first is the preferred leader
    isr: tuple[int, ...]
    # While a reassignment runs (ListPartitionReassignments): replicas it is adding (listed in
    # `replicas`, still copying) and replicas it will remove once the adding ones are in sync.
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def replication_factor(self) -> int:
        """How many replicas the partition is meant to have: replicas a reassignment is still adding
        do not count yet, as in Kafka's own under-replicated count (Partition.scala)."""
        return len(self.replicas) - len(self.adding)

    @property
    def under_replicated(self) -> bool:
        """Fewer in-sync replicas than the replication factor. This is the one definition health,
        alerting and restart safety share: a planned move copying data is not under-replicated."""
        return len(set(self.isr) & set(self.replicas)) < self.replication_factor

    @property
    def out_of_sync(self) -> frozenset[int]:
        """Assigned replicas that are behind: not in the ISR, leaving out replicas a reassignment is
        still adding (they are copying, as planned)."""
        return frozenset(self.replicas) - frozenset(self.isr) - frozenset(self.adding)


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: tuple[PartitionState, ...]
    min_insync_replicas: int = 1
    internal: bool = False


# Kafka's default `controller.quorum.fetch.timeout.ms`: a follower that has not fetched for this long
# starts an election, so a voter further behind than this is not counted as caught up.
DEFAULT_QUORUM_FETCH_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class QuorumMember:
    node_id: int
    log_end_offset: int | None  # None when the leader does not know it
    # The leader's wall clock when this replica last was caught up with it (KIP-836); None if unknown.
    last_caught_up_ms: int | None = None


@dataclass(frozen=True)
class QuorumState:
    """The KRaft controller quorum, as DescribeQuorum tells it for the metadata log."""

    leader_id: int | None  # None: no leader (the quorum lost its majority, or an election is running)
    leader_epoch: int = -1
    high_watermark: int = -1
    voters: tuple[QuorumMember, ...] = ()
    observers: tuple[QuorumMember, ...] = ()  # brokers that only follow the metadata log
    error: str | None = None  # why no leader could be named, when it could not

    @property
    def voter_ids(self) -> frozenset[int]:
        return frozenset(v.node_id for v in self.voters)

    def _voter(self, node_id: int | None) -> QuorumMember | None:
        return next((v for v in self.voters if v.node_id == node_id), None)

    def lag(self, node_id: int) -> int | None:
        """Metadata records a voter is behind the leader's log end, as kafka-metadata-quorum shows it."""
        leader, voter = self._voter(self.leader_id), self._voter(node_id)
        if leader is None or voter is None or leader.log_end_offset is None or voter.log_end_offset is None:
            return None
        return max(0, leader.log_end_offset - voter.log_end_offset)

    def behind_ms(self, node_id: int) -> int | None:
        """How long ago, on the leader's clock, a voter was last caught up with the leader."""
        leader, voter = self._voter(self.leader_id), self._voter(node_id)
        if leader is None or voter is None:
            return None
        if voter is leader:
            return 0
        if leader.last_caught_up_ms is None or voter.last_caught_up_ms is None:
            return None
        return max(0, leader.last_caught_up_ms - voter.last_caught_up_ms)

    def caught_up(self, node_id: int, fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS) -> bool:
        """The leader, or a voter that was caught up with it within the fetch timeout (Strimzi's
        KafkaQuorumCheck rule). Without a leader nobody is."""
        behind = self.behind_ms(node_id)
        return behind is not None and (node_id == self.leader_id or behind < fetch_timeout_ms)


@dataclass(frozen=True)
class ClusterState:
    """What Describe Cluster + Metadata + Describe Configs + ListPartitionReassignments + DescribeQuorum
    say about a cluster at one moment."""

    cluster_id: str
    # The active controller: the quorum's leader where the cluster has a KRaft quorum. (Metadata and
    # DescribeCluster name a random live broker as "controller" in KRaft, KIP-590.)
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]  # brokers registered (alive) right now
    topics: tuple[TopicState, ...]
    quorum: QuorumState | None = None  # None: the cluster has no KRaft quorum to describe

    def assignment(self) -> dict[TopicPartition, list[int]]:
        return {(p.topic, p.partition): list(p.replicas) for t in self.topics for p in t.partitions}


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group as DescribeConsumerGroups tells it."""

    member_id: str
    client_id: str
    host: str  # as the broker saw the connection, e.g. "/10.0.3.7"
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class ConsumerGroupState:
    group_id: str
    state: str  # Kafka's own group state: Stable, Empty, PreparingRebalance, Dead, ...
    members: int
    committed: Mapping[TopicPartition, int] = field(default_factory=dict)
    member_details: tuple[GroupMember, ...] = ()  # empty where the broker does not tell them


@dataclass(frozen=True)
class LogDirUsage:
    """One log directory of one broker (DescribeLogDirs). The sizes are those of the volume the
    directory is on (KIP-827, Apache Kafka 3.3+), so log directories sharing a volume report the same."""

    broker_id: int
    path: str
    total_bytes: int | None  # None when the broker does not report it (older than Kafka 3.3)
    usable_bytes: int | None  # what the broker may still write; space reserved for root is not usable
    error: str = ""  # the directory's error (e.g. KafkaStorageError: the disk failed), else empty


@dataclass(frozen=True)
class ConfigValue:
    """One topic config as DescribeConfigs reports it."""

    value: str | None
    source: str  # "topic" (set on the topic), "broker" (a broker's setting), "default" (Kafka's)
    read_only: bool = False
    sensitive: bool = False


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ACL binding in Kafka's own terms, with the control plane's lowercase names."""

    principal: str  # "User:alice", or "User:*"
    host: str  # "*" for any
    resource_type: str  # topic, group, cluster, transactional_id
    resource_name: str
    pattern_type: str  # literal, prefixed
    operation: str  # read, write, create, delete, alter, describe, cluster_action, ...
    permission: str  # allow, deny


@dataclass(frozen=True)
class ReassignmentProgress:
    """An in-flight reassignment of one partition (ListPartitionReassignments)."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


class KafkaAdmin(Protocol):
    """Admin operations the control plane needs. All calls may raise `KafkaUnavailableError`."""

    def describe_cluster(self) -> ClusterState: ...

    def create_topic(
        self, name: str, partitions: int, replication_factor: int, config: Mapping[str, str] | None = None
    ) -> None: ...

    def list_consumer_groups(self) -> list[ConsumerGroupState]:
        """Every group with its state, member count and committed offsets."""
        ...

    def end_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermark (log end offset) per partition."""
        ...

    def describe_log_dirs(self, broker_ids: Collection[int]) -> dict[int, tuple[LogDirUsage, ...]]:
        """Each broker's log directories with their volume's size. Brokers that do not answer are left
        out; `KafkaAdminError` when the cluster does not support DescribeLogDirs at all."""
        ...

    def alter_partition_reassignments(self, targets: Mapping[TopicPartition, list[int] | None]) -> None:
        """Start moving each partition to its target replica list (None cancels a pending one). The
        moved topics' throttled-replica lists are set to the moving replicas first, so a rate set with
        `set_replication_throttle` slows exactly these copies."""
        ...

    def list_partition_reassignments(self) -> dict[TopicPartition, ReassignmentProgress]: ...

    def set_replication_throttle(self, broker_ids: Collection[int], bytes_per_second: int) -> None:
        """Throttle replication traffic on these brokers (leader and follower rates)."""
        ...

    def clear_replication_throttle(self, broker_ids: Collection[int], topics: Collection[str] = ()) -> None:
        """Delete both rates on these brokers and both throttled-replica lists on these topics."""
        ...

    def elect_preferred_leaders(self, partitions: Collection[TopicPartition]) -> None: ...

    def describe_quorum(self) -> QuorumState | None:
        """The KRaft controller quorum: its leader, voters and observers with how far behind they are.
        None when the cluster has none (the development broker)."""
        ...

    def unregister_broker(self, node_id: int) -> None:
        """Remove the registration of a broker stopped for good (UnregisterBroker, KIP-631). Until then
        KRaft keeps it registered, fenced, and refuses feature levels it does not support. A broker
        not registered (any more) is not an error."""
        ...

    def finalized_features(self) -> dict[str, int]:
        """Finalized feature levels (DescribeFeatures), metadata.version among them on KRaft."""
        ...

    def update_features(self, release: str) -> dict[str, int]:
        """Finalize `release`'s feature levels (see `features.levels_to_raise`) once every broker runs
        it; returns the finalized levels, checked after the update."""
        ...

    def close(self) -> None: ...

    # -- the data plane: topics, SCRAM users, ACLs, quotas ----------------------------------------

    def describe_topics(self, names: Collection[str]) -> dict[str, TopicState]:
        """Partitions of these topics (leader, replicas, ISR); topics that do not exist are left out."""
        ...

    def create_topic_assigned(
        self,
        name: str,
        replicas: Sequence[Sequence[int]],
        config: Mapping[str, str] | None = None,
    ) -> None:
        """Create a topic with one replica list per partition (the first replica is the preferred
        leader). `TopicAlreadyExistsError` when it exists, `KafkaRefusedError` with Kafka's reason
        when the cluster refuses a config or the assignment."""
        ...

    def create_partitions(self, name: str, total: int, new_replicas: Sequence[Sequence[int]]) -> None:
        """Grow a topic to `total` partitions, the new ones on `new_replicas` (CreatePartitions)."""
        ...

    def delete_topic(self, name: str) -> None:
        """Delete a topic; `TopicNotFoundError` when there is none."""
        ...

    def describe_topic_configs(self, names: Collection[str]) -> dict[str, dict[str, ConfigValue]]:
        """Every config of these topics with where its value comes from; missing topics left out."""
        ...

    def alter_topic_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) these configs of a topic and leave the others as they are
        (IncrementalAlterConfigs)."""
        ...

    def start_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """Log start offset per partition; partitions without a leader or gone are left out."""
        ...

    def replica_sizes(self, broker_ids: Collection[int]) -> dict[TopicPartition, dict[int, int]]:
        """Bytes on disk of every replica these brokers hold, by partition and broker. Brokers that do
        not answer are left out."""
        ...

    def upsert_scram_credential(self, user: str, password: str, iterations: int) -> None:
        """Create or replace the user's SCRAM-SHA-512 credential (AlterUserScramCredentials)."""
        ...

    def delete_scram_credential(self, user: str) -> None:
        """Remove the user's SCRAM-SHA-512 credential; a user without one is not an error."""
        ...

    def scram_users(self) -> dict[str, tuple[str, ...]]:
        """Every user with SCRAM credentials and their mechanisms (DescribeUserScramCredentials)."""
        ...

    def create_acls(self, entries: Collection[AclEntry]) -> None: ...

    def describe_acls(self) -> list[AclEntry]:
        """Every ACL binding of the cluster."""
        ...

    def delete_acls(self, entries: Collection[AclEntry]) -> None:
        """Delete exactly these bindings; bindings that do not exist are not an error."""
        ...

    def alter_user_quotas(self, user: str, quotas: Mapping[str, float | None]) -> None:
        """Set (or, for None, remove) client quotas of a user principal: producer_byte_rate,
        consumer_byte_rate, request_percentage, controller_mutation_rate (AlterClientQuotas)."""
        ...

    def user_quotas(self) -> dict[str, dict[str, float]]:
        """Quotas set for user principals alone (not user and client id), by user name."""
        ...
