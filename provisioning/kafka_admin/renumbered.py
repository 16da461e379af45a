"""A `KafkaAdmin` that shows brokers under the node ids the control plane gave them.

Apache Kafka brokers take the `node.id` the control plane renders for them, so ids agree. A broker that
picks its own id does not: the development broker of the `local` backend always calls itself 111,
while the control plane knows it as broker 0. Without translation every health check would see
"broker 0 missing, broker 111 unexpected". This wrapper renames, in both directions, the brokers whose
advertised endpoint the control plane knows, so nothing above the adapter has to care.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from provisioning.kafka_admin.base import (
    ClusterState,
    ConsumerGroupState,
    KafkaAdmin,
    LogDirUsage,
    PartitionState,
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
        )

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
