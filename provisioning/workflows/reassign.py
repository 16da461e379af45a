"""Moving replicas between brokers: plan, throttle, execute batch by batch, lift the throttle, verify.

Shared by scaling and broker replacement. The plan is computed once and stored as the planning step's
output, so a worker that takes over mid-way executes the same plan rather than a new one computed from
a half-moved cluster. Execution submits one batch at a time through AlterPartitionReassignments and
follows it with ListPartitionReassignments; it is a polling step, so no worker waits while data copies.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from provisioning.kafka_admin.base import ClusterState, KafkaAdmin, TopicPartition
from provisioning.placement import Plan, plan_reassignment
from provisioning.workflows.base import StepContext, StepFailed, StepOutcome, open_admin
from provisioning.workflows.safety import hosted_partitions, rack_conflicts, replica_counts

DEFAULT_THROTTLE_BYTES_PER_SECOND = 50 * 2**20
# Cruise Control's default for concurrent partition movements per broker.
DEFAULT_MAX_MOVES_PER_BROKER = 10
DEFAULT_POLL_SECONDS = 5.0


def registered(state: ClusterState) -> set[int]:
    return {b.node_id for b in state.brokers}


def poll_seconds(ctx: StepContext) -> float:
    return float(ctx.params.get("poll_seconds", DEFAULT_POLL_SECONDS))


def _encode(plan: Plan, *, remove: Collection[int], replaced: Collection[int]) -> dict[str, Any]:
    moves_per_partition: dict[TopicPartition, int] = {}
    for move in plan.moves:
        moves_per_partition[move.partition] = moves_per_partition.get(move.partition, 0) + 1
    return {
        "moves": len(plan.moves),
        "leadership_changes": len(plan.leadership_changes),
        "batches": [
            [
                [p[0], p[1], list(replicas), moves_per_partition.get(p, 0)]
                for p, replicas in b.reassignments.items()
            ]
            for b in plan.batches
        ],
        "goals": [goal._asdict() for goal in plan.goals],
        "warnings": list(plan.warnings),
        "remove": sorted(remove),
        "replaced": sorted(replaced),
    }


def _targets(batch: list[list[Any]]) -> dict[TopicPartition, list[int]]:
    return {(topic, partition): list(replicas) for topic, partition, replicas, _ in batch}


def plan_moves(
    ctx: StepContext, *, remove: Collection[int] = (), replaced: Collection[int] = ()
) -> StepOutcome:
    """Plan the fewest replica moves to a balanced, rack-aware assignment over the spec's brokers.

    `remove`: brokers to drain (still running). `replaced`: brokers whose replicas must go elsewhere
    because they are gone; left out of the target set, which is the planner's replacement case.
    """
    with open_admin(ctx) as admin:
        in_flight = admin.list_partition_reassignments()
        state = admin.describe_cluster()
    if in_flight:
        names = ", ".join(f"{t}[{p}]" for t, p in sorted(in_flight)[:3])
        raise StepFailed(
            "reassignment_in_progress",
            f"{len(in_flight)} partition reassignment(s) started outside this operation are still in "
            f"progress (e.g. {names}); wait for them to finish or cancel them, then try again.",
        )
    gone = set(replaced)
    brokers = {b.node_id: b.rack for b in ctx.spec.brokers if b.node_id not in gone}
    # A replica assigned to a broker that is down never catches up, so the move would never finish.
    down = sorted(set(brokers) - set(remove) - registered(state))
    if down:
        raise StepFailed(
            "brokers_down",
            f"Brokers {_ids(down)} are not registered with the cluster, so no replica can move onto them; "
            "replace them (replace-broker) or wait until they are back, then try again.",
            {"brokers": down},
        )
    max_moves = int(ctx.params.get("max_moves_per_broker", DEFAULT_MAX_MOVES_PER_BROKER))
    try:
        plan = plan_reassignment(state.assignment(), brokers, remove=remove, max_moves_per_broker=max_moves)
    except ValueError as exc:  # PlacementError included: a hard goal cannot be met
        raise StepFailed("placement_failed", f"No valid placement of the replicas: {exc}") from exc
    encoded = _encode(plan, remove=remove, replaced=gone)
    goals = "; ".join(f"{g.name} {g.before} → {g.after}" for g in plan.goals)
    ctx.log(
        f"plan: {len(plan.moves)} replica move(s) of {sum(len(b.reassignments) for b in plan.batches)} "
        f"partition(s) in {len(plan.batches)} batch(es), at most {max_moves} per broker at a time; "
        f"{len(plan.leadership_changes)} preferred-leader change(s); goals (distance from met): {goals}"
    )
    for warning in plan.warnings:
        ctx.log(f"warning: {warning}")
    return StepOutcome(output={"plan": encoded}, progress=(1, 1))


def _planned_moves(plan: Mapping[str, Any]) -> dict[TopicPartition, list[int]]:
    return {key: replicas for batch in plan["batches"] for key, replicas in _targets(batch).items()}


def set_throttle(ctx: StepContext) -> StepOutcome:
    """Throttle replication on the brokers the moves copy from and to, as `kafka-reassign-partitions`
    does, so moves never starve clients of bandwidth. Which topics' throttled-replica lists the moves
    will set is recorded here, before any is set, so the clean-up finds them whatever happens."""
    moves = _planned_moves(ctx.state["plan"])
    if not moves:
        ctx.log("nothing to move; no throttle needed")
        return StepOutcome(output={"throttled_brokers": [], "throttled_topics": []})
    rate = int(ctx.params.get("throttle_bytes_per_second", DEFAULT_THROTTLE_BYTES_PER_SECOND))
    topics = sorted({topic for topic, _ in moves})
    with open_admin(ctx) as admin:
        state = admin.describe_cluster()
        assignment = state.assignment()
        involved = {b for key, target in moves.items() for b in [*assignment.get(key, []), *target]}
        # A stopped broker cannot take a configuration change (and sends no data).
        brokers = sorted(involved & registered(state))
        admin.set_replication_throttle(brokers, rate)
    ctx.log(
        f"replication throttled to {rate / 2**20:.1f} MiB/s on brokers {_ids(brokers)}, for the moves of "
        f"{len(topics)} topic(s)"
    )
    return StepOutcome(
        output={"throttled_brokers": brokers, "throttled_topics": topics, "throttle_bytes_per_second": rate}
    )


def execute_moves(ctx: StepContext) -> StepOutcome:
    """Submit the plan's batches one after another, each once the previous one has finished."""
    plan = ctx.state["plan"]
    batches: list[list[list[Any]]] = plan["batches"]
    total = plan["moves"]
    if not batches:
        return StepOutcome(progress=(0, 0))
    progress = dict(ctx.state.get("execution") or {"batch": 0, "submitted": False, "moves_done": 0})
    with open_admin(ctx) as admin:
        in_flight = set(admin.list_partition_reassignments())
        while progress["batch"] < len(batches):
            batch = batches[progress["batch"]]
            targets = _targets(batch)
            if not progress["submitted"]:
                # Submitting again after a worker died right after submitting is harmless: Kafka keeps
                # a reassignment whose target did not change.
                admin.alter_partition_reassignments(targets)
                progress["submitted"] = True
                moves = sum(entry[3] for entry in batch)
                ctx.log(
                    f"batch {progress['batch'] + 1}/{len(batches)}: {moves} replica move(s) of "
                    f"{len(targets)} partition(s) submitted"
                )
                in_flight = set(admin.list_partition_reassignments())
            pending = [entry for entry in batch if (entry[0], entry[1]) in in_flight]
            if pending:
                done = progress["moves_done"] + sum(e[3] for e in batch) - sum(e[3] for e in pending)
                return StepOutcome(
                    done=False,
                    output={"execution": progress},
                    progress=(done, total),
                    poll_after_seconds=poll_seconds(ctx),
                )
            progress["moves_done"] += sum(entry[3] for entry in batch)
            progress["batch"] += 1
            progress["submitted"] = False
    ctx.log(f"all {len(batches)} batch(es) finished: {total} replica move(s)")
    return StepOutcome(output={"execution": progress}, progress=(total, total))


def clear_throttle(ctx: StepContext) -> StepOutcome:
    if not ctx.state.get("throttled_brokers") and not ctx.state.get("throttled_topics"):
        return StepOutcome()
    with open_admin(ctx) as admin:
        _clear(ctx, admin)
    return StepOutcome(output={"throttle_cleared": True})


def verify_balance(ctx: StepContext) -> StepOutcome:
    """Every planned partition sits where the plan put it; report the balance and rack spread."""
    plan = ctx.state["plan"]
    with open_admin(ctx) as admin:
        state = admin.describe_cluster()
    assignment = state.assignment()
    missed = [
        f"{topic}[{partition}] is on {assignment.get((topic, partition))}, planned {replicas}"
        for batch in plan["batches"]
        for topic, partition, replicas, _ in batch
        if assignment.get((topic, partition)) != replicas
    ]
    if missed:
        raise StepFailed(
            "rebalance_incomplete",
            f"{len(missed)} partition(s) did not end where the plan put them, e.g. {missed[0]}.",
            {"partitions": missed[:20]},
        )
    racks = {b.node_id: b.rack for b in ctx.spec.brokers}
    counts = replica_counts(state, racks)
    spread = max(counts.values()) - min(counts.values()) if counts else 0
    conflicts = rack_conflicts(state, racks)
    ctx.log(
        f"replicas per broker {min(counts.values(), default=0)} to {max(counts.values(), default=0)} over "
        f"{len(counts)} brokers (spread {spread}); "
        + (
            f"{len(conflicts)} partition(s) with two replicas in one rack"
            if conflicts
            else "every partition rack-aware"
        )
    )
    return StepOutcome(output={"replica_spread": spread, "rack_conflicts": len(conflicts)})


def verify_drained(ctx: StepContext, node_ids: Collection[int]) -> StepOutcome:
    with open_admin(ctx) as admin:
        held = hosted_partitions(admin.describe_cluster(), node_ids)
    if held:
        names = ", ".join(f"{t}[{p}]" for t, p in held[:3])
        raise StepFailed(
            "drain_incomplete",
            f"Brokers {_ids(node_ids)} still hold replicas of {len(held)} partition(s) (e.g. {names}); "
            "they are not removed.",
        )
    ctx.log(f"brokers {_ids(node_ids)} hold no replicas")
    return StepOutcome()


def unregister_removed(ctx: StepContext, node_ids: Collection[int]) -> None:
    """Remove the registration of brokers that were stopped for good. KRaft keeps a stopped broker
    registered (fenced) until told otherwise, and the controller checks every registration when
    feature levels are finalized: the next upgrade would fail naming the removed broker."""
    with open_admin(ctx) as admin:
        for node_id in sorted(node_ids):
            admin.unregister_broker(node_id)
    ctx.log(f"brokers {_ids(node_ids)} unregistered from the cluster")


def abandon_moves(ctx: StepContext) -> StepOutcome:
    """Cleanup after a cancellation or failure: cancel this operation's reassignments still in flight
    (Kafka puts their replicas back, and the replica count never dropped meanwhile) and lift its
    throttle, rather than leave moves running unthrottled with nobody following them."""
    plan: Mapping[str, Any] | None = ctx.state.get("plan")
    execution: Mapping[str, Any] = ctx.state.get("execution") or {}
    throttled = not ctx.state.get("throttle_cleared") and bool(
        ctx.state.get("throttled_brokers") or ctx.state.get("throttled_topics")
    )
    submitted = plan is not None and execution.get("submitted") and execution["batch"] < len(plan["batches"])
    if not submitted and not throttled:
        return StepOutcome()
    with open_admin(ctx) as admin:
        if submitted:
            assert plan is not None
            ours = _targets(plan["batches"][execution["batch"]])
            cancel: dict[TopicPartition, list[int] | None] = {
                key: None for key in admin.list_partition_reassignments() if key in ours
            }
            if cancel:
                admin.alter_partition_reassignments(cancel)
                ctx.log(f"cancelled {len(cancel)} partition reassignment(s) still in flight")
        if throttled:
            _clear(ctx, admin)
    return StepOutcome()


def _clear(ctx: StepContext, admin: KafkaAdmin) -> None:
    """Remove the throttle as `kafka-reassign-partitions` does when a reassignment is done: both rates
    on every broker, both throttled-replica lists on the topics this operation moved."""
    throttled = set(ctx.state.get("throttled_brokers") or ())
    topics = sorted(ctx.state.get("throttled_topics") or ())
    live = registered(admin.describe_cluster())
    admin.clear_replication_throttle(sorted(live), topics)
    ctx.log(
        f"replication throttle removed from brokers {_ids(live)} and from the throttled-replica lists of "
        f"{len(topics)} topic(s)"
    )
    if down := throttled - live:
        # A broker's configuration is changed through the broker itself. Its rate throttles nothing
        # now that the lists are gone, and the next clean-up on this cluster removes it.
        ctx.log(f"brokers {_ids(down)} are down and keep their throttle rate until they are back")


def _ids(node_ids: Collection[int]) -> str:
    return ", ".join(str(n) for n in sorted(node_ids)) or "none"
