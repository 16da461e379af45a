"""A `KafkaAdmin` that shows brokers under the node ids the control plane gave them.

Apache Kafka brokers take the `node.id` the control plane renders for them, so ids agree. A broker that
picks its own id does not: the development broker of the `local` backend always calls itself 111,
while the control plane knows it as broker 0. Without translation every health check would see
"broker 0 missing, broker 111 unexpected". This wrapper renames, in both directions, the brokers whose
advertised endpoint the control plane knows, so nothing above the adapter has to care.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from provisioning.kafka_admin.base import (
    AclEntry,
    ClusterState,
    ConfigValue,
    ConsumerGroupState,
    KafkaAdmin,
    LogDirUsage,
    PartitionState,
    QuorumState,
    ReassignmentProgress,
    TopicPartition,
    TopicState,
)


class RenumberedKafkaAdmin:
    def __init__(self, inner: KafkaAdmin, node_ids_by_endpoint: Mapping[str, int]) -> None:
        self.inner = inner
        self.node_ids_by_endpoint = dict(node_ids_by_endpoint)
        self._to_ours: dict[int, int] = {}  # the cluster's id -> ours, learnt from describe_cluster
        self._to_theirs: dict[int, int] = {}

    def describe_cluster(self) -> ClusterState:
        state = self.inner.describe_cluster()
        self._to_ours = {
            broker.node_id: ours
            for broker in state.brokers
            if (ours := self.node_ids_by_endpoint.get(f"{broker.host}:{broker.port}")) is not None
            and ours != broker.node_id
        }
        self._to_theirs = {ours: theirs for theirs, ours in self._to_ours.items()}
        if not self._to_ours:
            return state
        return replace(
            state,
            controller_id=self._ours(state.controller_id),
            brokers=tuple(replace(b, node_id=self._ours(b.node_id)) for b in state.brokers),
            topics=tuple(self._topic(t) for t in state.topics),
            quorum=self._quorum(state.quorum),
        )

    def _quorum(self, quorum: QuorumState | None) -> QuorumState | None:
        if quorum is None or not self._to_ours:
            return quorum
        return replace(
            quorum,
            leader_id=self._ours(quorum.leader_id),
            voters=tuple(replace(m, node_id=self._to_ours.get(m.node_id, m.node_id)) for m in quorum.voters),
            observers=tuple(
                replace(m, node_id=self._to_ours.get(m.node_id, m.node_id)) for m in quorum.observers
            ),
        )

    def describe_quorum(self) -> QuorumState | None:
        self._theirs(())  # make sure the mapping is known
        return self._quorum(self.inner.describe_quorum())

    def _ours(self, node_id: int | None) -> int | None:
        return None if node_id is None else self._to_ours.get(node_id, node_id)

    def _theirs(self, node_ids: Collection[int]) -> list[int]:
        if not self._to_theirs and self.node_ids_by_endpoint:
            self.describe_cluster()  # learn the mapping before sending ids to the cluster
        return [self._to_theirs.get(n, n) for n in node_ids]

    def _topic(self, topic: TopicState) -> TopicState:
        return replace(topic, partitions=tuple(self._partition(p) for p in topic.partitions))

    def _partition(self, partition: PartitionState) -> PartitionState:
        return replace(
            partition,
            leader=self._ours(partition.leader),
            replicas=tuple(self._to_ours.get(n, n) for n in partition.replicas),
            isr=tuple(self._to_ours.get(n, n) for n in partition.isr),
            adding=tuple(self._to_ours.get(n, n) for n in partition.adding),
            removing=tuple(self._to_ours.get(n, n) for n in partition.removing),
        )

    def create_topic(
        self, name: str, partitions: int, replication_factor: int, config: Mapping[str, str] | None = None
    ) -> None:
        self.inner.create_topic(name, partitions, replication_factor, config)

    def list_consumer_groups(self) -> list[ConsumerGroupState]:
        return self.inner.list_consumer_groups()

    def end_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        return self.inner.end_offsets(partitions)

    def describe_log_dirs(self, broker_ids: Collection[int]) -> dict[int, tuple[LogDirUsage, ...]]:
        theirs = self._theirs(broker_ids)
        ours = self._to_ours.get
        return {
            ours(broker_id, broker_id): tuple(
                replace(d, broker_id=ours(broker_id, broker_id)) for d in log_dirs
            )
            for broker_id, log_dirs in self.inner.describe_log_dirs(theirs).items()
        }

    def alter_partition_reassignments(self, targets: Mapping[TopicPartition, list[int] | None]) -> None:
        self.inner.alter_partition_reassignments(
            {tp: None if replicas is None else self._theirs(replicas) for tp, replicas in targets.items()}
        )

    def list_partition_reassignments(self) -> dict[TopicPartition, ReassignmentProgress]:
        self._theirs(())  # make sure the mapping is known
        ours = self._to_ours.get
        return {
            tp: ReassignmentProgress(
                replicas=tuple(ours(n, n) for n in progress.replicas),
                adding=tuple(ours(n, n) for n in progress.adding),
                removing=tuple(ours(n, n) for n in progress.removing),
            )
            for tp, progress in self.inner.list_partition_reassignments().items()
        }

    def set_replication_throttle(self, broker_ids: Collection[int], bytes_per_second: int) -> None:
        self.inner.set_replication_throttle(self._theirs(broker_ids), bytes_per_second)

    def clear_replication_throttle(self, broker_ids: Collection[int], topics: Collection[str] = ()) -> None:
        self.inner.clear_replication_throttle(self._theirs(broker_ids), topics)

    def elect_preferred_leaders(self, partitions: Collection[TopicPartition]) -> None:
        self.inner.elect_preferred_leaders(partitions)

    def unregister_broker(self, node_id: int) -> None:
        (theirs,) = self._theirs([node_id])
        self.inner.unregister_broker(theirs)

    def finalized_features(self) -> dict[str, int]:
        return self.inner.finalized_features()

    def update_features(self, release: str) -> dict[str, int]:
        return self.inner.update_features(release)

    def close(self) -> None:
        self.inner.close()

    # -- the data plane: topics, SCRAM users, ACLs, quotas ----------------------------------------

    def describe_topics(self, names: Collection[str]) -> dict[str, TopicState]:
        self._theirs(())  # make sure the mapping is known
        return {name: self._topic(topic) for name, topic in self.inner.describe_topics(names).items()}

    def create_topic_assigned(
        self,
        name: str,
        replicas: Sequence[Sequence[int]],
        config: Mapping[str, str] | None = None,
    ) -> None:
        # A single node allows one assignment only, and the development broker ignores an explicit
        # one (it creates its default partition count): asked by count, it creates what was meant.
        replication_factor = len(replicas[0]) if replicas else 1
        self.inner.create_topic(name, len(replicas), replication_factor, config)

    def create_partitions(self, name: str, total: int, new_replicas: Sequence[Sequence[int]]) -> None:
        self.inner.create_partitions(name, total, [self._theirs(r) for r in new_replicas])

    def delete_topic(self, name: str) -> None:
        self.inner.delete_topic(name)

    def describe_topic_configs(self, names: Collection[str]) -> dict[str, dict[str, ConfigValue]]:
        return self.inner.describe_topic_configs(names)

    def alter_topic_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        self.inner.alter_topic_config(name, changes)

    def start_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        return self.inner.start_offsets(partitions)

    def replica_sizes(self, broker_ids: Collection[int]) -> dict[TopicPartition, dict[int, int]]:
        theirs = self._theirs(broker_ids)
        ours = self._to_ours.get
        return {
            tp: {ours(broker, broker): size for broker, size in by_broker.items()}
            for tp, by_broker in self.inner.replica_sizes(theirs).items()
        }

    def upsert_scram_credential(self, user: str, password: str, iterations: int) -> None:
        self.inner.upsert_scram_credential(user, password, iterations)

    def delete_scram_credential(self, user: str) -> None:
        self.inner.delete_scram_credential(user)

    def scram_users(self) -> dict[str, tuple[str, ...]]:
        return self.inner.scram_users()

    def create_acls(self, entries: Collection[AclEntry]) -> None:
        self.inner.create_acls(entries)

    def describe_acls(self) -> list[AclEntry]:
        return self.inner.describe_acls()

    def delete_acls(self, entries: Collection[AclEntry]) -> None:
        self.inner.delete_acls(entries)

    def alter_user_quotas(self, user: str, quotas: Mapping[str, float | None]) -> None:
        self.inner.alter_user_quotas(user, quotas)

    def user_quotas(self) -> dict[str, dict[str, float]]:
        return self.inner.user_quotas()
