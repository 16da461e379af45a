"""A simulated multi-broker Kafka cluster. FOR TESTS AND BENCHMARKS ONLY.

    Nothing on a production code path may import this module. It is not a Kafka client and talks to
    no cluster: it is a model that the control plane's workflows and monitoring can be driven against,
    because no multi-broker Apache Kafka can run on a development machine.

`SimulatedKafkaCluster` implements `KafkaAdmin` and adds control methods that make things happen:
broker failures and restarts, traffic, consumer group commits, and the passing of time.

The model, and where it is simpler than Kafka:

- Brokers have a node id, a rack, an alive flag and one log directory on a volume of `disk_bytes`. `ClusterState.brokers` lists the alive ones. The
  active controller is the one pinned with `set_controller` while it is alive, else the lowest alive
  node id. A KRaft controller quorum is modelled once `set_voters` names its voters (combined nodes):
  the controller is then a voter, there is none while fewer than a majority of voters are up, and a
  voter that is down falls behind the leader (`describe_quorum`); without voters there is no quorum.
- Removed brokers stay registered (fenced) until `unregister_broker`, and refuse finalized feature
  levels meanwhile, as KRaft's controller does.
- A partition has replicas (the first is the preferred leader), an ISR, a leader, a log end offset and
  a size in bytes (`record_bytes` per produced record). The ISR only ever holds alive brokers.
- When a broker fails, its replicas leave every ISR and leadership moves to the next ISR member in
  replica order. A partition whose ISR becomes empty goes offline (leader None) and remembers its
  last in-sync replica, which leads it again when it returns (no unclean election). Note that Apache
  Kafka without eligible leader replicas (KIP-966) keeps showing that last member in the ISR of an
  offline partition; consumers of `ClusterState` should treat `leader is None` as offline either way.
- A replica out of the ISR copies what it misses from the leader, then rejoins the ISR. After a
  broker returns its replicas also wait `rejoin_delay_seconds` (log loading, first fetches).
- Reassignments follow KIP-455: the replica set becomes target + originals while new replicas copy
  the whole partition; once every target replica is in the ISR the removed replicas leave, and the
  leader moves into the target if it was not there. The replica count never drops during a move.
  Cancelling restores the original replicas.
- Copying is limited per simulated second by each broker's network (`replication_bytes_per_second`
  in and out) and, for replicas added by a reassignment, by the replication throttle of the leader's
  and the new replica's broker. That is what Kafka does with throttled-replica lists that name the
  moving partitions (see `confluent.py`). Bandwidth goes to lagging replicas first come, first served
  rather than shared fairly, so moves finish one after another instead of together; totals match.
- Time only moves in `advance(seconds)`; nothing sleeps and nothing happens between calls. Nothing is
  random except what is drawn from the seeded generator (topic placement start, `generate_load`), so
  a scenario replays exactly.
- `set_reachable(False)` models losing the network path to the whole cluster: every `KafkaAdmin` call
  except `close` raises `KafkaUnavailableError`, while brokers, producers and time carry on. A cluster
  with no alive broker is unreachable too.

Snapshots are cheap: the immutable states handed out are cached per partition, topic, group and
cluster, and rebuilt only for what changed, because benchmarks drive many clusters with thousands of
partitions and poll them often. Produced records do not invalidate them (offsets are not in them).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from provisioning.kafka_admin import features
from provisioning.kafka_admin.base import (
    FOLLOWER_THROTTLED_REPLICAS,
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
from provisioning.topic_configs import topic_config_errors

GROUP_STATES = frozenset({"Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Dead"})
SIMULATED_PORT = 9092
# The release whose topic configs the simulator accepts, as a broker of that release would.
SIMULATED_KAFKA_VERSION = "4.4.0"
QUOTA_KEYS = frozenset(
    {"producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"}
)
METADATA_RECORDS_PER_SECOND = 2  # KRaft's leader writes a no-op record every 500 ms when idle


@dataclass(slots=True)
class _Broker:
    node_id: int
    rack: str | None
    info: BrokerInfo
    alive: bool = True
    other_bytes: int = 0  # what else fills its data volume (`fill_disk`)


@dataclass(slots=True)
class _CatchUp:
    """An out-of-sync replica: bytes it still has to copy, and when it may rejoin the ISR at the
    earliest."""

    remaining: float
    ready_at: float


@dataclass(slots=True)
class _Reassignment:
    original: tuple[int, ...]
    target: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


class _Topic:
    __slots__ = ("config", "min_isr", "name", "partitions", "snapshot")

    def __init__(self, name: str, min_isr: int, config: dict[str, str]) -> None:
        self.name = name
        self.min_isr = min_isr
        self.config = config
        self.partitions: list[_Partition] = []
        self.snapshot: TopicState | None = None


class _Partition:
    __slots__ = (
        "end_offset",
        "index",
        "isr",
        "key",
        "lagging",
        "last_in_sync",
        "leader",
        "reassignment",
        "replicas",
        "size",
        "snapshot",
        "topic",
    )

    def __init__(self, topic: _Topic, index: int, replicas: tuple[int, ...]) -> None:
        self.topic = topic
        self.index = index
        self.key: TopicPartition = (topic.name, index)
        self.replicas = replicas
        self.isr = replicas
        self.leader: int | None = replicas[0]
        self.end_offset = 0
        self.size = 0
        self.lagging: dict[int, _CatchUp] = {}
        self.last_in_sync: int | None = None
        self.reassignment: _Reassignment | None = None
        self.snapshot: PartitionState | None = None


class _Group:
    __slots__ = ("committed", "group_id", "members", "snapshot", "state")

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = "Empty"
        self.members = 0
        self.committed: dict[TopicPartition, int] = {}
        self.snapshot: ConsumerGroupState | None = None


class SimulatedKafkaCluster:
    """A Kafka cluster model implementing `KafkaAdmin`. Tests and benchmarks only (see the module)."""

    def __init__(
        self,
        brokers: Iterable[tuple[int, str | None]] = (),
        *,
        cluster_id: str | None = None,
        seed: int = 0,
        record_bytes: int = 1024,
        replication_bytes_per_second: float = 100 * 2**20,
        rejoin_delay_seconds: float = 10.0,
        disk_bytes: int = 2**40,
    ) -> None:
        self.cluster_id = cluster_id or f"simulated-{seed}"
        self.record_bytes = record_bytes
        self.replication_bytes_per_second = replication_bytes_per_second
        self.rejoin_delay_seconds = rejoin_delay_seconds
        self.disk_bytes = disk_bytes
        self.now = 0.0
        self._rng = random.Random(seed)
        self._reachable = True
        self._brokers: dict[int, _Broker] = {}
        self._hosted: dict[int, dict[TopicPartition, _Partition]] = {}
        self._topics: dict[str, _Topic] = {}
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._lagging: dict[TopicPartition, _Partition] = {}
        self._reassigning: dict[TopicPartition, _Partition] = {}
        self._throttles: dict[int, int] = {}
        self._groups: dict[str, _Group] = {}
        self._pinned_controller: int | None = None
        self._features: dict[str, int] = {}  # finalized feature levels
        self._voters: tuple[int, ...] | None = None  # see set_voters
        self._voter_down_since: dict[int, float] = {}
        # Removed brokers stay registered, fenced, until unregistered (as in KRaft).
        self._removed_but_registered: set[int] = set()
        self._scram: dict[str, tuple[str, int]] = {}  # user -> (password, iterations)
        self._acls: set[AclEntry] = set()
        self._quotas: dict[str, dict[str, float]] = {}
        self._state: ClusterState | None = None
        self._group_list: list[ConsumerGroupState] | None = None
        for node_id, rack in brokers:
            self.add_broker(node_id, rack)

    @classmethod
    def with_brokers(cls, count: int, *, racks: int = 3, **options: Any) -> SimulatedKafkaCluster:
        """Brokers 1..count, spread over racks `rack-0`..: broker n sits in rack (n - 1) % racks."""
        return cls([(n, f"rack-{(n - 1) % racks}") for n in range(1, count + 1)], **options)

    # -- KafkaAdmin --------------------------------------------------------------------------------

    def describe_cluster(self) -> ClusterState:
        self._check_reachable()
        if self._state is None:
            alive = [b for b in self._brokers.values() if b.alive]
            self._state = ClusterState(
                cluster_id=self.cluster_id,
                controller_id=self.controller_id,
                brokers=tuple(b.info for b in sorted(alive, key=lambda b: b.node_id)),
                topics=tuple(self._topic_state(self._topics[name]) for name in sorted(self._topics)),
            )
        if self._voters is None:
            return self._state
        # Voters' lag grows with time, so the quorum is described afresh on every call.
        return replace(self._state, quorum=self._quorum_state())

    def describe_quorum(self) -> QuorumState | None:
        self._check_reachable()
        return self._quorum_state() if self._voters is not None else None

    def create_topic(
        self, name: str, partitions: int, replication_factor: int, config: Mapping[str, str] | None = None
    ) -> None:
        self._check_reachable()
        if name in self._topics:
            raise TopicAlreadyExistsError(f"topic {name!r} already exists")
        if partitions < 1 or replication_factor < 1:
            raise KafkaAdminError(f"topic {name!r}: partitions and replication factor must be at least 1")
        config = dict(config or {})
        try:
            min_isr = int(config.get("min.insync.replicas", "1"))
        except ValueError as exc:
            raise KafkaAdminError(f"topic {name!r}: invalid min.insync.replicas {config!r}") from exc
        order = self._rack_alternating_order()
        if replication_factor > len(order):
            raise KafkaAdminError(
                f"topic {name!r}: replication factor {replication_factor} is larger than the "
                f"{len(order)} available brokers"
            )
        topic = _Topic(name, min_isr, config)
        start = self._rng.randrange(len(order))
        for index in range(partitions):
            first = start + index
            replicas = tuple(order[(first + j) % len(order)] for j in range(replication_factor))
            partition = _Partition(topic, index, replicas)
            topic.partitions.append(partition)
            self._partitions[partition.key] = partition
            for node_id in replicas:
                self._hosted[node_id][partition.key] = partition
        self._topics[name] = topic
        self._state = None

    def list_consumer_groups(self) -> list[ConsumerGroupState]:
        self._check_reachable()
        if self._group_list is None:
            self._group_list = [self._group_state(self._groups[g]) for g in sorted(self._groups)]
        return list(self._group_list)

    def end_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """Log end offsets; partitions without a leader or that do not exist are left out, as
        `ConfluentKafkaAdmin` does."""
        self._check_reachable()
        offsets = {}
        for key in partitions:
            partition = self._partitions.get(key)
            if partition is not None and partition.leader is not None:
                offsets[key] = partition.end_offset
        return offsets

    def describe_log_dirs(self, broker_ids: Collection[int]) -> dict[int, tuple[LogDirUsage, ...]]:
        """One log directory per alive broker on a volume of `disk_bytes`, filled by every replica it
        hosts (each counted at its partition's full size) and by `fill_disk`."""
        self._check_reachable()
        usage = {}
        for node_id in sorted(set(broker_ids)):
            broker = self._brokers.get(node_id)
            if broker is None or not broker.alive:
                continue  # as with a real broker that does not answer
            used = broker.other_bytes + sum(p.size for p in self._hosted[node_id].values())
            usage[node_id] = (
                LogDirUsage(
                    broker_id=node_id,
                    path=f"/var/lib/kafka/broker-{node_id}",
                    total_bytes=self.disk_bytes,
                    usable_bytes=max(0, self.disk_bytes - used),
                ),
            )
        return usage

    def alter_partition_reassignments(self, targets: Mapping[TopicPartition, list[int] | None]) -> None:
        """Start, change or cancel moves. Every target is checked before any is applied."""
        self._check_reachable()
        for key, target in targets.items():
            if key not in self._partitions:
                raise KafkaAdminError(f"cannot reassign {key[0]}[{key[1]}]: no such partition")
            if target is None:
                continue
            if not target or len(set(target)) != len(target):
                raise KafkaAdminError(
                    f"target replicas for {key[0]}[{key[1]}] must be distinct broker ids, got {target}"
                )
            unknown = [node_id for node_id in target if node_id not in self._brokers]
            if unknown:
                raise KafkaAdminError(f"cannot reassign {key[0]}[{key[1]}]: unknown brokers {unknown}")
        self._set_throttled_replicas({key: target for key, target in targets.items() if target is not None})
        for key in sorted(targets):
            partition = self._partitions[key]
            target = targets[key]
            if target is None:
                if partition.reassignment is not None:
                    self._cancel(partition)
            else:
                self._start_move(partition, tuple(target))

    def list_partition_reassignments(self) -> dict[TopicPartition, ReassignmentProgress]:
        self._check_reachable()
        return {
            key: ReassignmentProgress(
                replicas=p.replicas, adding=p.reassignment.adding, removing=p.reassignment.removing
            )
            for key, p in sorted(self._reassigning.items())
            if p.reassignment is not None
        }

    def set_replication_throttle(self, broker_ids: Collection[int], bytes_per_second: int) -> None:
        self._check_reachable()
        if bytes_per_second <= 0:
            raise KafkaAdminError(f"replication throttle must be positive, got {bytes_per_second}")
        for node_id in self._config_targets(broker_ids, "set replication throttle"):
            self._throttles[node_id] = bytes_per_second

    def clear_replication_throttle(self, broker_ids: Collection[int], topics: Collection[str] = ()) -> None:
        self._check_reachable()
        for node_id in self._config_targets(broker_ids, "clear replication throttle"):
            self._throttles.pop(node_id, None)
        for name in topics:
            topic = self._topics.get(name)
            if topic is not None:
                for key in (LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS):
                    topic.config.pop(key, None)

    def elect_preferred_leaders(self, partitions: Collection[TopicPartition]) -> None:
        """Move leadership to each partition's first replica where it is in the ISR. Partitions where
        it is not are reported with `KafkaUnavailableError` (Kafka's PREFERRED_LEADER_NOT_AVAILABLE
        is retriable) after the others have been elected."""
        self._check_reachable()
        missing = [key for key in partitions if key not in self._partitions]
        if missing:
            raise KafkaAdminError(f"cannot elect leaders of unknown partitions {sorted(missing)}")
        not_available = []
        for key in sorted(set(partitions)):
            partition = self._partitions[key]
            preferred = partition.replicas[0]
            if partition.leader == preferred:
                continue
            if preferred in partition.isr:
                partition.leader = preferred
                self._touch(partition)
            else:
                not_available.append(f"{key[0]}[{key[1]}] (broker {preferred} not in sync)")
        if not_available:
            raise KafkaUnavailableError(f"preferred leader not available for {', '.join(not_available)}")

    def unregister_broker(self, node_id: int) -> None:
        self._check_reachable()
        self._removed_but_registered.discard(node_id)

    def finalized_features(self) -> dict[str, int]:
        self._check_reachable()
        return dict(self._features)

    def update_features(self, release: str) -> dict[str, int]:
        """Raise the finalized levels as the real adapter does. Every running simulated broker supports
        every level; a removed broker still registered is refused as KRaft's controller refuses it."""
        self._check_reachable()
        if self._removed_but_registered:
            fenced = min(self._removed_but_registered)
            raise KafkaAdminError(
                f"simulated cluster {self.cluster_id} refused to finalize the feature levels of Kafka "
                f"{release}: broker {fenced} is registered (fenced) and does not support them"
            )
        try:
            updates = features.levels_to_raise(release, self._features)
        except features.UnknownReleaseError as exc:
            raise KafkaAdminError(str(exc)) from exc
        self._features.update(updates)
        return dict(self._features)

    def close(self) -> None:
        """Nothing to release; never raises, even while unreachable."""

    # -- control: reachability, time, controller ---------------------------------------------------

    @property
    def reachable(self) -> bool:
        return self._reachable

    def set_reachable(self, reachable: bool) -> None:
        self._reachable = reachable

    @property
    def controller_id(self) -> int | None:
        """The active controller: the pinned one while it is alive, else the lowest alive candidate.
        Candidates are the quorum's voters when there is one (and none while fewer than a majority of
        them are alive), else every broker."""
        if self._voters is None:
            candidates = [b.node_id for b in self._brokers.values() if b.alive]
        else:
            candidates = [v for v in self._voters if self._brokers[v].alive]
            if 2 * len(candidates) <= len(self._voters):
                return None
        if self._pinned_controller in candidates:
            return self._pinned_controller
        return min(candidates, default=None)

    def set_controller(self, node_id: int | None) -> None:
        """Pin the active controller (while it is alive); None goes back to the lowest alive id."""
        if node_id is not None:
            self._broker(node_id)
            if self._voters is not None and node_id not in self._voters:
                raise ValueError(f"broker {node_id} is not a voter of the controller quorum {self._voters}")
        self._pinned_controller = node_id
        self._state = None

    def set_voters(self, node_ids: Iterable[int]) -> None:
        """Model a KRaft controller quorum with these brokers as voters (combined nodes, as the `local`
        backend runs them). Without it no quorum is modelled: `describe_quorum` answers None and any
        alive broker may be the controller."""
        voters = tuple(sorted(set(node_ids)))
        for node_id in voters:
            self._broker(node_id)
        if not voters:
            raise ValueError("a controller quorum needs at least one voter")
        self._voters = voters
        self._voter_down_since = {v: self.now for v in voters if not self._brokers[v].alive}
        self._state = None

    def topic_config(self, topic: str) -> dict[str, str]:
        """The topic's configuration as set (throttled-replica lists included)."""
        return dict(self._topic(topic).config)

    @property
    def throttles(self) -> dict[int, int]:
        """Replication throttle in bytes per second, per broker that has one."""
        return dict(self._throttles)

    def advance(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass: lagging replicas copy data, rejoin the ISR, and
        reassignments whose target replicas are all in sync complete."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds
        if not self._lagging:
            return
        capacity = self.replication_bytes_per_second * seconds
        sent: dict[int, float] = {}
        received: dict[int, float] = {}
        throttled_sent: dict[int, float] = {}
        throttled_received: dict[int, float] = {}
        brokers = self._brokers
        throttles = self._throttles
        # Hot path: iterates lagging partitions only, never the whole cluster.
        for key, partition in list(self._lagging.items()):
            leader = partition.leader
            moving = partition.reassignment
            joined = []
            for node_id, catch_up in partition.lagging.items():
                if leader is None or not brokers[node_id].alive:
                    continue
                if catch_up.remaining > 0:
                    amount = min(
                        catch_up.remaining,
                        capacity - sent.get(leader, 0.0),
                        capacity - received.get(node_id, 0.0),
                    )
                    throttled = moving is not None and node_id in moving.adding
                    if throttled and leader in throttles:
                        amount = min(amount, throttles[leader] * seconds - throttled_sent.get(leader, 0.0))
                    if throttled and node_id in throttles:
                        amount = min(
                            amount, throttles[node_id] * seconds - throttled_received.get(node_id, 0.0)
                        )
                    if amount > 0:
                        catch_up.remaining -= amount
                        sent[leader] = sent.get(leader, 0.0) + amount
                        received[node_id] = received.get(node_id, 0.0) + amount
                        if throttled:
                            throttled_sent[leader] = throttled_sent.get(leader, 0.0) + amount
                            throttled_received[node_id] = throttled_received.get(node_id, 0.0) + amount
                if catch_up.remaining <= 0 and catch_up.ready_at <= self.now:
                    joined.append(node_id)
            if joined:
                for node_id in joined:
                    del partition.lagging[node_id]
                in_sync = set(partition.isr).union(joined)
                partition.isr = tuple(r for r in partition.replicas if r in in_sync)
                self._touch(partition)
                if moving is not None:
                    self._complete_if_caught_up(partition)
            if not partition.lagging:
                self._lagging.pop(key, None)

    # -- control: brokers --------------------------------------------------------------------------

    def add_broker(self, node_id: int, rack: str | None = None) -> None:
        if node_id in self._brokers:
            raise ValueError(f"broker {node_id} already exists")
        self._removed_but_registered.discard(node_id)  # a broker with its id registers anew
        info = BrokerInfo(
            node_id=node_id, host=f"broker-{node_id}.simulated.invalid", port=SIMULATED_PORT, rack=rack
        )
        self._brokers[node_id] = _Broker(node_id=node_id, rack=rack, info=info)
        self._hosted[node_id] = {}
        self._state = None

    def remove_broker(self, node_id: int) -> None:
        """Stop a broker for good; it stays registered (fenced) until `unregister_broker`. It must hold
        no replicas: drain it with a reassignment first."""
        self._broker(node_id)
        if self._voters is not None and node_id in self._voters:
            raise ValueError(f"broker {node_id} is a voter of the controller quorum; it cannot be removed")
        if self._hosted[node_id]:
            held = sorted(self._hosted[node_id])
            raise ValueError(f"broker {node_id} still holds {len(held)} replicas, e.g. {held[:3]}")
        del self._brokers[node_id]
        del self._hosted[node_id]
        self._removed_but_registered.add(node_id)
        self._throttles.pop(node_id, None)
        if self._pinned_controller == node_id:
            self._pinned_controller = None
        self._state = None

    def fail_broker(self, node_id: int) -> None:
        """The broker stops: its replicas leave every ISR; leaders move to another ISR member, and a
        partition left with no ISR goes offline."""
        broker = self._broker(node_id)
        if not broker.alive:
            return
        broker.alive = False
        if self._voters is not None and node_id in self._voters:
            self._voter_down_since[node_id] = self.now
        for partition in self._hosted[node_id].values():
            if node_id not in partition.isr:
                continue
            partition.isr = tuple(r for r in partition.isr if r != node_id)
            if not partition.isr:
                partition.last_in_sync = node_id
            partition.lagging[node_id] = _CatchUp(remaining=0.0, ready_at=self.now)
            self._lagging[partition.key] = partition
            if partition.leader == node_id:
                partition.leader = self._first_in_sync(partition)
            self._touch(partition)
        self._state = None

    def restore_broker(self, node_id: int) -> None:
        """The broker is back: it leads the offline partitions it was last in sync for; its other
        replicas copy what they missed and rejoin the ISR no sooner than `rejoin_delay_seconds`."""
        broker = self._broker(node_id)
        if broker.alive:
            return
        broker.alive = True
        self._voter_down_since.pop(node_id, None)  # a voter back catches up with the quorum at once
        for partition in self._hosted[node_id].values():
            catch_up = partition.lagging.get(node_id)
            if catch_up is None:
                continue
            if partition.leader is None and partition.last_in_sync in (None, node_id):
                del partition.lagging[node_id]
                partition.isr = (node_id,)
                partition.leader = node_id
                partition.last_in_sync = None
                if not partition.lagging:
                    self._lagging.pop(partition.key, None)
                self._touch(partition)
            else:
                catch_up.ready_at = self.now + self.rejoin_delay_seconds
        self._state = None

    def fill_disk(self, node_id: int, other_bytes: int) -> None:
        """Set how much of the broker's data volume is taken by something other than its replicas."""
        if other_bytes < 0:
            raise ValueError("other_bytes must not be negative")
        self._broker(node_id).other_bytes = other_bytes

    def restart_broker(self, node_id: int) -> None:
        """Down and straight back up: leadership moves away and its replicas are out of sync until
        they have caught up and `rejoin_delay_seconds` have passed."""
        self.fail_broker(node_id)
        self.restore_broker(node_id)

    # -- control: topics, traffic, groups ----------------------------------------------------------

    def set_min_insync_replicas(self, topic: str, value: int) -> None:
        self._topic(topic).min_isr = value
        self._topic(topic).snapshot = None
        self._state = None

    def produce(self, topic: str, partition: int, count: int = 1) -> None:
        """Append `count` records of `record_bytes` each; out-of-sync replicas fall further behind."""
        if count < 0:
            raise ValueError("count must not be negative")
        state = self._partition(topic, partition)
        if state.leader is None:
            raise KafkaUnavailableError(f"{topic}[{partition}] is offline: there is no leader to write to")
        state.end_offset += count
        written = count * self.record_bytes
        state.size += written
        for catch_up in state.lagging.values():
            catch_up.remaining += written

    def end_offset(self, topic: str, partition: int) -> int:
        return self._partition(topic, partition).end_offset

    def commit(self, group: str, topic: str, partition: int, offset: int) -> None:
        """Record a committed offset; an unknown group is created (Empty, as a group that only
        commits is)."""
        self._partition(topic, partition)
        if offset < 0:
            raise ValueError("offset must not be negative")
        state = self._groups.get(group) or self._new_group(group)
        state.committed[(topic, partition)] = offset
        state.snapshot = None
        self._group_list = None

    def set_group_state(self, group: str, state: str, members: int | None = None) -> None:
        """Set Kafka's group state; `members` defaults to the current count (0 for Empty and Dead)."""
        if state not in GROUP_STATES:
            raise ValueError(f"unknown group state {state!r}; one of {sorted(GROUP_STATES)}")
        record = self._groups.get(group) or self._new_group(group)
        record.state = state
        if members is not None:
            record.members = members
        elif state in ("Empty", "Dead"):
            record.members = 0
        record.snapshot = None
        self._group_list = None

    def generate_load(
        self, *, groups: int, max_records_per_partition: int = 100_000, max_lag: int = 1_000
    ) -> None:
        """Seeded traffic for benchmarks: up to `max_records_per_partition` records on every online
        partition, and `groups` Stable groups, each consuming every partition of one topic (topics
        taken in turn), committed up to `max_lag` behind the end."""
        # Benchmarks build thousands of clusters with this: draws use random() (several times cheaper
        # than randint) and commits are written directly rather than through commit().
        draw = self._rng.random
        for key, partition in self._partitions.items():
            if partition.leader is not None:
                self.produce(key[0], key[1], int(draw() * (max_records_per_partition + 1)))
        topics = sorted(self._topics)
        if not topics:
            return
        for number in range(groups):
            group = self._groups.get(f"group-{number}") or self._new_group(f"group-{number}")
            for partition in self._topics[topics[number % len(topics)]].partitions:
                lag = int(draw() * (max_lag + 1))
                group.committed[partition.key] = max(0, partition.end_offset - lag)
            group.state = "Stable"
            group.members = 1 + int(draw() * 8)
            group.snapshot = None
        self._group_list = None

    # -- internals ---------------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        if not self._reachable:
            raise KafkaUnavailableError(f"simulated cluster {self.cluster_id} is unreachable")
        if not any(b.alive for b in self._brokers.values()):
            raise KafkaUnavailableError(f"simulated cluster {self.cluster_id} has no broker running")

    def _broker(self, node_id: int) -> _Broker:
        try:
            return self._brokers[node_id]
        except KeyError:
            raise ValueError(f"no broker {node_id} in simulated cluster {self.cluster_id}") from None

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise ValueError(f"no topic {name!r} in simulated cluster {self.cluster_id}") from None

    def _partition(self, topic: str, partition: int) -> _Partition:
        try:
            return self._partitions[(topic, partition)]
        except KeyError:
            raise ValueError(
                f"no partition {topic}[{partition}] in simulated cluster {self.cluster_id}"
            ) from None

    def _new_group(self, group_id: str) -> _Group:
        record = _Group(group_id)
        self._groups[group_id] = record
        return record

    def _config_targets(self, broker_ids: Collection[int], action: str) -> list[int]:
        # A broker config is altered on that broker itself, so a stopped one cannot take it.
        targets = sorted(set(broker_ids))
        unknown = [node_id for node_id in targets if node_id not in self._brokers]
        if unknown:
            raise KafkaAdminError(f"{action}: unknown brokers {unknown}")
        down = [node_id for node_id in targets if not self._brokers[node_id].alive]
        if down:
            raise KafkaUnavailableError(f"{action}: brokers {down} are not running")
        return targets

    def _quorum_state(self) -> QuorumState:
        """Voters that are up are caught up; one that is down stays where it stopped while the
        leader's log grows (KRaft's leader appends a record every half second even when idle)."""
        assert self._voters is not None
        now_ms = int(self.now * 1000)
        leader = self.controller_id

        def member(node_id: int) -> QuorumMember:
            down_since = self._voter_down_since.get(node_id)
            at = self.now if down_since is None else down_since
            return QuorumMember(node_id, int(at * METADATA_RECORDS_PER_SECOND), int(at * 1000))

        voters = tuple(member(v) for v in self._voters)
        if leader is None:
            return QuorumState(leader_id=None, voters=voters, error="fewer than a majority of voters are up")
        return QuorumState(
            leader_id=leader,
            leader_epoch=1,
            high_watermark=int(now_ms / 1000 * METADATA_RECORDS_PER_SECOND),
            voters=voters,
        )

    def _set_throttled_replicas(self, moves: Mapping[TopicPartition, list[int]]) -> None:
        """Set each moved topic's throttled-replica lists as the real adapter does (kept in the topic's
        config for tests to read; the copying model throttles moving replicas either way)."""
        leaders: dict[str, list[str]] = {}
        followers: dict[str, list[str]] = {}
        for (name, index), target in sorted(moves.items()):
            current = self._partitions[(name, index)].replicas
            leaders.setdefault(name, []).extend(f"{index}:{b}" for b in current)
            followers.setdefault(name, []).extend(f"{index}:{b}" for b in target if b not in current)
        for name, entries in leaders.items():
            config = self._topics[name].config
            config[LEADER_THROTTLED_REPLICAS] = ",".join(entries)
            if followers[name]:
                config[FOLLOWER_THROTTLED_REPLICAS] = ",".join(followers[name])
            else:
                config.pop(FOLLOWER_THROTTLED_REPLICAS, None)

    def _rack_alternating_order(self) -> list[int]:
        """Alive brokers ordered so that neighbours sit in different racks: the first broker of each
        rack, then the second of each, and so on. Consecutive replicas then land in distinct racks."""
        by_rack: dict[str, list[int]] = {}
        for broker in sorted(self._brokers.values(), key=lambda b: b.node_id):
            if broker.alive:
                by_rack.setdefault(broker.rack or "", []).append(broker.node_id)
        racks = [by_rack[r] for r in sorted(by_rack)]
        depth = max((len(nodes) for nodes in racks), default=0)
        return [nodes[i] for i in range(depth) for nodes in racks if i < len(nodes)]

    def _touch(self, partition: _Partition) -> None:
        partition.snapshot = None
        partition.topic.snapshot = None
        self._state = None

    def _topic_state(self, topic: _Topic) -> TopicState:
        if topic.snapshot is None:
            topic.snapshot = TopicState(
                name=topic.name,
                partitions=tuple(self._partition_state(p) for p in topic.partitions),
                min_insync_replicas=topic.min_isr,
                internal=topic.name.startswith("__"),
            )
        return topic.snapshot

    @staticmethod
    def _partition_state(partition: _Partition) -> PartitionState:
        if partition.snapshot is None:
            move = partition.reassignment
            partition.snapshot = PartitionState(
                topic=partition.key[0],
                partition=partition.index,
                leader=partition.leader,
                replicas=partition.replicas,
                isr=partition.isr,
                adding=move.adding if move is not None else (),
                removing=move.removing if move is not None else (),
            )
        return partition.snapshot

    @staticmethod
    def _group_state(group: _Group) -> ConsumerGroupState:
        if group.snapshot is None:
            group.snapshot = ConsumerGroupState(
                group_id=group.group_id,
                state=group.state,
                members=group.members,
                committed=MappingProxyType(dict(group.committed)),
                member_details=_members(group),
            )
        return group.snapshot

    @staticmethod
    def _first_in_sync(partition: _Partition) -> int | None:
        in_sync = partition.isr
        return next((r for r in partition.replicas if r in in_sync), None)

    def _set_replicas(self, partition: _Partition, replicas: tuple[int, ...]) -> None:
        for node_id in partition.replicas:
            if node_id not in replicas:
                del self._hosted[node_id][partition.key]
                partition.lagging.pop(node_id, None)
        for node_id in replicas:
            self._hosted[node_id][partition.key] = partition
        partition.replicas = replicas
        in_sync = partition.isr
        partition.isr = tuple(r for r in replicas if r in in_sync)
        if partition.leader not in partition.isr:
            partition.leader = self._first_in_sync(partition)
            if partition.leader is None and partition.last_in_sync not in replicas:
                partition.last_in_sync = None
        if partition.lagging:
            self._lagging[partition.key] = partition
        else:
            self._lagging.pop(partition.key, None)
        self._touch(partition)

    def _start_move(self, partition: _Partition, target: tuple[int, ...]) -> None:
        current = partition.reassignment
        original = current.original if current is not None else partition.replicas
        if current is None and target == original:
            return
        adding = tuple(r for r in target if r not in original)
        removing = tuple(r for r in original if r not in target)
        full = target + removing
        for node_id in adding:
            if node_id not in partition.replicas:
                # A new replica copies the whole partition; it may rejoin as soon as it has.
                partition.lagging[node_id] = _CatchUp(remaining=float(partition.size), ready_at=self.now)
        partition.reassignment = _Reassignment(original, target, adding, removing)
        self._reassigning[partition.key] = partition
        self._set_replicas(partition, full)
        self._complete_if_caught_up(partition)

    def _complete_if_caught_up(self, partition: _Partition) -> None:
        move = partition.reassignment
        if move is None or not all(r in partition.isr for r in move.target):
            return
        partition.reassignment = None
        del self._reassigning[partition.key]
        self._set_replicas(partition, move.target)

    def _cancel(self, partition: _Partition) -> None:
        move = partition.reassignment
        assert move is not None
        partition.reassignment = None
        del self._reassigning[partition.key]
        self._set_replicas(partition, move.original)

    # -- the data plane: topics, SCRAM users, ACLs, quotas ----------------------------------------
    # Topic configs are checked as a broker of SIMULATED_KAFKA_VERSION would (unknown keys and bad
    # values refused); only configs set on a topic are reported, with no broker defaults.

    def describe_topics(self, names: Collection[str]) -> dict[str, TopicState]:
        self._check_reachable()
        return {
            name: self._topic_state(self._topics[name]) for name in sorted(set(names)) if name in self._topics
        }

    def create_topic_assigned(
        self,
        name: str,
        replicas: Sequence[Sequence[int]],
        config: Mapping[str, str] | None = None,
    ) -> None:
        self._check_reachable()
        if name in self._topics:
            raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
        config = dict(config or {})
        self._check_configs(config)
        if not replicas:
            raise KafkaRefusedError("Number of partitions was set to an invalid non-positive value.")
        self._check_assignment(replicas, len(replicas[0]))
        topic = _Topic(name, int(config.get("min.insync.replicas", "1")), config)
        self._topics[name] = topic
        self._add_partitions(topic, replicas)

    def create_partitions(self, name: str, total: int, new_replicas: Sequence[Sequence[int]]) -> None:
        self._check_reachable()
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotFoundError(f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if total <= current:
            raise KafkaRefusedError(
                f"Topic currently has {current} partitions, which is higher than the requested {total}."
            )
        if len(new_replicas) != total - current:
            raise KafkaRefusedError(
                f"Increasing the number of partitions by {total - current} but {len(new_replicas)} "
                "assignments provided."
            )
        self._check_assignment(new_replicas, len(topic.partitions[0].replicas))
        self._add_partitions(topic, new_replicas)

    def delete_topic(self, name: str) -> None:
        self._check_reachable()
        topic = self._topics.pop(name, None)
        if topic is None:
            raise TopicNotFoundError(f"topic {name!r} does not exist")
        for partition in topic.partitions:
            for node_id in partition.replicas:
                self._hosted[node_id].pop(partition.key, None)
            self._partitions.pop(partition.key, None)
            self._lagging.pop(partition.key, None)
            self._reassigning.pop(partition.key, None)
        for group in self._groups.values():
            for key in [key for key in group.committed if key[0] == name]:
                del group.committed[key]
            group.snapshot = None
        self._group_list = None
        self._state = None

    def describe_topic_configs(self, names: Collection[str]) -> dict[str, dict[str, ConfigValue]]:
        self._check_reachable()
        return {
            name: {
                key: ConfigValue(value, "topic") for key, value in sorted(self._topics[name].config.items())
            }
            for name in sorted(set(names))
            if name in self._topics
        }

    def alter_topic_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        self._check_reachable()
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotFoundError(f"topic {name!r} does not exist")
        self._check_configs(changes)
        for key, value in changes.items():
            if value is None:
                topic.config.pop(key, None)
            else:
                topic.config[key] = value
        topic.min_isr = int(topic.config.get("min.insync.replicas", "1"))
        topic.snapshot = None
        self._state = None

    def start_offsets(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """Nothing is ever deleted from a simulated log, so every log starts at 0."""
        self._check_reachable()
        return {
            key: 0
            for key in partitions
            if (partition := self._partitions.get(key)) is not None and partition.leader is not None
        }

    def replica_sizes(self, broker_ids: Collection[int]) -> dict[TopicPartition, dict[int, int]]:
        """A replica holds its partition's size, less what it still has to copy."""
        self._check_reachable()
        sizes: dict[TopicPartition, dict[int, int]] = {}
        for node_id in sorted(set(broker_ids)):
            broker = self._brokers.get(node_id)
            if broker is None or not broker.alive:
                continue
            for key, partition in self._hosted[node_id].items():
                behind = partition.lagging.get(node_id)
                held = partition.size - int(behind.remaining) if behind is not None else partition.size
                sizes.setdefault(key, {})[node_id] = max(0, held)
        return sizes

    def upsert_scram_credential(self, user: str, password: str, iterations: int) -> None:
        self._check_reachable()
        if not 4096 <= iterations <= 16384:
            raise KafkaRefusedError(f"Iterations {iterations} is not in the range [4096, 16384].")
        self._scram[user] = (password, iterations)

    def delete_scram_credential(self, user: str) -> None:
        self._check_reachable()
        self._scram.pop(user, None)

    def scram_users(self) -> dict[str, tuple[str, ...]]:
        self._check_reachable()
        return {user: ("SCRAM-SHA-512",) for user in sorted(self._scram)}

    def scram_password(self, user: str) -> str | None:
        """The password the user's credential was made from (what a client would have to present)."""
        found = self._scram.get(user)
        return found[0] if found is not None else None

    def create_acls(self, entries: Collection[AclEntry]) -> None:
        self._check_reachable()
        for entry in entries:
            if not entry.principal.startswith("User:"):
                raise KafkaRefusedError(f"Invalid principal {entry.principal!r}")
        self._acls.update(entries)

    def describe_acls(self) -> list[AclEntry]:
        self._check_reachable()
        return sorted(self._acls)

    def delete_acls(self, entries: Collection[AclEntry]) -> None:
        self._check_reachable()
        self._acls.difference_update(entries)

    def alter_user_quotas(self, user: str, quotas: Mapping[str, float | None]) -> None:
        self._check_reachable()
        unknown = sorted(set(quotas) - QUOTA_KEYS)
        if unknown:
            raise KafkaRefusedError(f"Invalid configuration key {unknown[0]}")
        current = self._quotas.setdefault(user, {})
        for key, value in quotas.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = float(value)
        if not current:
            del self._quotas[user]

    def user_quotas(self) -> dict[str, dict[str, float]]:
        self._check_reachable()
        return {user: dict(values) for user, values in sorted(self._quotas.items())}

    def _check_configs(self, config: Mapping[str, str | None]) -> None:
        errors = topic_config_errors(
            {
                key: value
                for key, value in config.items()
                if key not in (LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS)
            },
            SIMULATED_KAFKA_VERSION,
        )
        if errors:
            key = sorted(errors)[0]
            raise KafkaRefusedError(f"Invalid value for configuration {key}: {errors[key]}")

    def _check_assignment(self, replicas: Sequence[Sequence[int]], replication_factor: int) -> None:
        for index, replica_list in enumerate(replicas):
            if len(replica_list) != replication_factor or len(set(replica_list)) != len(replica_list):
                raise KafkaRefusedError(
                    f"Replica assignment {list(replica_list)} of partition {index} has duplicate or a "
                    f"different number of replicas than {replication_factor}."
                )
            unknown = [node_id for node_id in replica_list if node_id not in self._brokers]
            if unknown:
                raise KafkaRefusedError(
                    f"Replica assignment names brokers {unknown}, which are not registered."
                )

    def _add_partitions(self, topic: _Topic, replicas: Sequence[Sequence[int]]) -> None:
        for replica_list in replicas:
            partition = _Partition(topic, len(topic.partitions), tuple(replica_list))
            partition.isr = tuple(r for r in partition.replicas if self._brokers[r].alive)
            partition.leader = partition.isr[0] if partition.isr else None
            topic.partitions.append(partition)
            self._partitions[partition.key] = partition
            for node_id in partition.replicas:
                self._hosted[node_id][partition.key] = partition
        topic.snapshot = None
        self._state = None


def _members(group: _Group) -> tuple[GroupMember, ...]:
    """Made-up members for a group: consumer N of the group on host 10.0.0.N, the committed
    partitions dealt out among them in turn, as a range or round-robin assignor would."""
    partitions = sorted(group.committed)
    return tuple(
        GroupMember(
            member_id=f"{group.group_id}-{number}-{number:08x}",
            client_id=f"{group.group_id}-consumer-{number}",
            host=f"/10.0.0.{number}",
            assignment=tuple(partitions[number - 1 :: group.members]),
        )
        for number in range(1, group.members + 1)
    )
