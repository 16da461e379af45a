"""Which node to restart next, whether it may be restarted now, and whether it is back: pure checks on
one cluster snapshot (metadata, reassignments and the KRaft quorum).

The order and the rules are Strimzi KafkaRoller's, reconciled with combined nodes. A node is unready
when it is not registered as a broker or, as a voter, has not caught up with the quorum's leader: it
serves nothing, so restarting it can only help, and no availability rule holds it back. Order: unready
controllers, unready brokers, ready controllers, ready brokers, and the active controller (the
quorum's leader) last, so the roll causes one controller election. Dedicated controllers (nodes that
are no brokers; `controller_only`) never register as brokers: the quorum alone says whether they are
ready, and while it cannot be described none is restarted. Strimzi restarts ready controllers
before unready brokers, which is harmless when controllers hold no partitions; a node that is both
broker and controller (combined, as the `local` backend runs them) counts as a controller, and a
broker that is down leaves its partitions under-replicated, which would keep every combined node from
being restarted ahead of it. So every unready node goes first.

Rules for a ready node: never restart a broker that holds a replica of a partition already below
`min.insync.replicas`, nor one in the ISR of a partition exactly at it, because either would stop
producers using acks=all; never restart a controller unless a majority of the other voters are caught
up with the leader (within `controller.quorum.fetch.timeout.ms`), and never while the quorum has no
leader. On top of that, as cp-ansible does, nothing is restarted while any partition is
under-replicated: a second broker out of sync is how a routine restart becomes an outage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from provisioning.kafka_admin.base import (
    DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    ClusterState,
    PartitionState,
    TopicPartition,
)

EXAMPLES_SHOWN = 3


def _name(partition: PartitionState) -> str:
    return f"{partition.topic}[{partition.partition}]"


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:EXAMPLES_SHOWN])
    return shown + (f" and {len(names) - EXAMPLES_SHOWN} more" if len(names) > EXAMPLES_SHOWN else "")


def _partitions(state: ClusterState) -> Iterable[tuple[PartitionState, int]]:
    for topic in state.topics:
        for partition in topic.partitions:
            yield partition, topic.min_insync_replicas


def under_replicated(state: ClusterState) -> list[PartitionState]:
    return [p for p, _ in _partitions(state) if p.under_replicated]


def controllers(state: ClusterState) -> frozenset[int]:
    """The nodes that are KRaft controllers: the quorum's voters, or the one controller Metadata
    names on a cluster without a quorum to describe."""
    if state.quorum is not None:
        return state.quorum.voter_ids
    return frozenset() if state.controller_id is None else frozenset({state.controller_id})


def not_ready(
    state: ClusterState,
    node_id: int,
    fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    controller_only: Collection[int] = (),
) -> str | None:
    """Why a node serves nothing right now, or None when it is ready. `controller_only`: dedicated
    controllers, which never register as brokers; only the quorum says whether they are ready."""
    if node_id not in controller_only and all(b.node_id != node_id for b in state.brokers):
        return f"broker {node_id} is not registered with the cluster"
    quorum = state.quorum
    if quorum is None or quorum.leader_id is None:
        return None  # nothing to judge by: the restart rules hold the node back (quorum_blocker)
    if node_id in controller_only and node_id not in quorum.voter_ids:
        return f"controller {node_id} is not a voter of the quorum"
    if node_id not in quorum.voter_ids:
        return None
    if not quorum.caught_up(node_id, fetch_timeout_ms):
        return f"controller {node_id} has not caught up with the quorum leader"
    return None


def restart_order(
    state: ClusterState,
    remaining: Collection[int],
    fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    controller_only: Collection[int] = (),
) -> list[int]:
    """`remaining` in the order to restart them (see the module docstring)."""
    voters = controllers(state) | frozenset(controller_only)

    def rank(node_id: int) -> tuple[int, int, int]:
        if node_id == state.controller_id:
            return (2, 0, node_id)
        ready = not_ready(state, node_id, fetch_timeout_ms, controller_only) is None
        return (int(ready), int(node_id not in voters), node_id)

    return sorted(remaining, key=rank)


def quorum_blocker(
    state: ClusterState,
    node_id: int,
    fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    controller_only: Collection[int] = (),
) -> str | None:
    """Why restarting controller `node_id` could cost the quorum its majority (Strimzi's
    KafkaQuorumCheck): the others caught up with the leader must be a majority of the voters."""
    quorum = state.quorum
    if quorum is None and node_id in controller_only:
        return "the controller quorum could not be described"
    if quorum is None or node_id not in quorum.voter_ids:
        return None
    if quorum.leader_id is None:
        return "the controller quorum has no leader" + (f" ({quorum.error})" if quorum.error else "")
    voters = len(quorum.voters)
    others = sorted(v for v in quorum.voter_ids if v != node_id and quorum.caught_up(v, fetch_timeout_ms))
    # One voter: nothing to keep. Two: the other one must be caught up. More: a majority of all.
    needed = min(voters - 1, voters // 2 + 1)
    if len(others) >= needed:
        return None
    behind = sorted(quorum.voter_ids - {node_id} - set(others))
    return (
        f"without controller {node_id} only {len(others)} of {voters} voters are caught up with the "
        f"quorum leader (controllers {_ids(behind)} are behind), fewer than the {needed} it needs"
    )


def restart_blockers(
    state: ClusterState,
    node_id: int,
    fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    controller_only: Collection[int] = (),
) -> list[str]:
    """Why restarting `node_id` now could hurt availability, in plain words; empty when it is safe.
    A node that is not ready serves nothing, so nothing holds it back."""
    if not_ready(state, node_id, fetch_timeout_ms, controller_only) is not None:
        return []
    reasons = []
    if quorum_problem := quorum_blocker(state, node_id, fetch_timeout_ms, controller_only):
        reasons.append(quorum_problem)
    offline = [_name(p) for p, _ in _partitions(state) if p.leader is None]
    if offline:
        reasons.append(f"{len(offline)} partition(s) are offline: {_examples(offline)}")
    below: list[str] = []
    at: list[str] = []
    for partition, min_isr in _partitions(state):
        if node_id not in partition.replicas or partition.leader is None:
            continue
        # A partition with no more replicas than min.insync.replicas stops acks=all producers
        # whichever broker restarts; holding the roll back for it would only stall it for good.
        if partition.replication_factor <= min_isr:
            continue
        if len(partition.isr) < min_isr:
            below.append(f"{_name(partition)} ({len(partition.isr)} in sync, min.insync.replicas {min_isr})")
        elif len(partition.isr) == min_isr and node_id in partition.isr:
            at.append(_name(partition))
    if below:
        reasons.append(
            f"broker {node_id} holds a replica of {len(below)} partition(s) already below "
            f"min.insync.replicas: {_examples(below)}"
        )
    if at:
        reasons.append(
            f"broker {node_id} is in the ISR of {len(at)} partition(s) exactly at min.insync.replicas; "
            f"restarting it would stop acks=all producers: {_examples(at)}"
        )
    lagging = [_name(p) for p in under_replicated(state)]
    if lagging:
        reasons.append(f"{len(lagging)} partition(s) are under-replicated: {_examples(lagging)}")
    return reasons


def sync_problems(
    state: ClusterState,
    node_id: int,
    fetch_timeout_ms: int = DEFAULT_QUORUM_FETCH_TIMEOUT_MS,
    controller_only: Collection[int] = (),
) -> str | None:
    """What still keeps a restarted node from being back in full; None once it is."""
    if unready := not_ready(state, node_id, fetch_timeout_ms, controller_only):
        return f"{unready} yet"
    quorum = state.quorum
    if quorum is None and node_id in controller_only:
        return "the controller quorum could not be described yet"
    if quorum is not None and node_id in quorum.voter_ids and quorum.leader_id is None:
        return "the controller quorum has no leader yet"
    # A replica a reassignment is still adding is copying by plan; waiting for it would wait for the move.
    behind = [_name(p) for p, _ in _partitions(state) if node_id in p.out_of_sync]
    if behind:
        return f"broker {node_id} is not yet in sync for {len(behind)} partition(s): {_examples(behind)}"
    return None


def hosted_partitions(state: ClusterState, node_ids: Collection[int]) -> list[TopicPartition]:
    """Partitions with a replica on any of these brokers."""
    wanted = set(node_ids)
    return [(p.topic, p.partition) for p, _ in _partitions(state) if wanted.intersection(p.replicas)]


def replica_counts(state: ClusterState, node_ids: Collection[int]) -> dict[int, int]:
    counts = Counter(r for p, _ in _partitions(state) for r in p.replicas)
    return {node_id: counts.get(node_id, 0) for node_id in node_ids}


def rack_conflicts(state: ClusterState, racks: Mapping[int, str]) -> list[str]:
    """Partitions with two replicas in one rack although there are enough racks to avoid it."""
    rack_count = len(set(racks.values()))
    conflicts = []
    for partition, _ in _partitions(state):
        used = [racks.get(r) for r in partition.replicas]
        if len(partition.replicas) <= rack_count and len(set(used)) < len(used):
            conflicts.append(_name(partition))
    return conflicts


def _ids(node_ids: Collection[int]) -> str:
    return ", ".join(str(n) for n in sorted(node_ids))
