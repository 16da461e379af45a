"""Scaling out and in, with the rebalancing that makes new brokers useful and removed ones empty.

Parameters (decided when the scale is requested): `brokers` (the new count), `add_node_ids` (new
brokers, already placed in racks by `place_brokers`) or `remove_node_ids` (brokers to drain, as many
from each rack), and optionally `throttle_bytes_per_second`, `max_moves_per_broker`, `poll_seconds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioning.kafka_admin.base import KafkaUnavailableError
from provisioning.workflows.base import Step, StepContext, StepOutcome, Workflow, open_admin
from provisioning.workflows.reassign import (
    abandon_moves,
    clear_throttle,
    execute_moves,
    plan_moves,
    poll_seconds,
    registered,
    set_throttle,
    unregister_removed,
    verify_balance,
    verify_drained,
)
from provisioning.workflows.rolling import elect_preferred_leaders


def _adds(params: Mapping[str, Any]) -> bool:
    return bool(params.get("add_node_ids"))


def _removes(params: Mapping[str, Any]) -> bool:
    return bool(params.get("remove_node_ids"))


def add_brokers(ctx: StepContext) -> StepOutcome:
    """Start the new brokers; the others are left as they are (provisioning is idempotent)."""
    description = ctx.backend.provision(ctx.spec)
    added = sorted(ctx.params["add_node_ids"])
    racks = {b.node_id: b.rack for b in ctx.spec.brokers}
    ctx.log("started " + ", ".join(f"broker {n} in {racks[n]}" for n in added))
    return StepOutcome(description=description)


def wait_for_new_brokers(ctx: StepContext) -> StepOutcome:
    wanted = set(ctx.params["add_node_ids"])
    try:
        with open_admin(ctx) as admin:
            present = registered(admin.describe_cluster()) & wanted
    except KafkaUnavailableError as exc:
        ctx.log(f"cluster not answering: {exc}")
        return StepOutcome(done=False, progress=(0, len(wanted)), poll_after_seconds=poll_seconds(ctx))
    if present != wanted:
        return StepOutcome(
            done=False, progress=(len(present), len(wanted)), poll_after_seconds=poll_seconds(ctx)
        )
    ctx.log(f"brokers {', '.join(map(str, sorted(wanted)))} registered with the cluster")
    return StepOutcome(progress=(len(wanted), len(wanted)), description=ctx.backend.describe(ctx.spec))


def plan_scale(ctx: StepContext) -> StepOutcome:
    return plan_moves(ctx, remove=ctx.params.get("remove_node_ids") or ())


def verify_removed_drained(ctx: StepContext) -> StepOutcome:
    return verify_drained(ctx, ctx.params["remove_node_ids"])


def remove_brokers(ctx: StepContext) -> StepOutcome:
    node_ids = sorted(ctx.params["remove_node_ids"])
    # Asked again right before: a topic created on these brokers since the last check (internal topics
    # included) would lose a replica with them. Refused, never removed.
    verify_drained(ctx, node_ids)
    description = ctx.backend.remove_brokers(ctx.spec, node_ids)
    ctx.log(f"brokers {', '.join(map(str, node_ids))} stopped and removed")
    unregister_removed(ctx, node_ids)
    return StepOutcome(description=description, removed_brokers=tuple(node_ids))


# Steps that wait for data to copy may take as long as the data needs; the plan bounds the work.
LONG = 3 * 24 * 3600.0

SCALE = Workflow(
    kind="scale",
    steps=(
        Step("add_brokers", "Start the new brokers", add_brokers, applies=_adds),
        Step(
            "wait_for_new_brokers",
            "Wait until the new brokers have registered",
            wait_for_new_brokers,
            600,
            _adds,
        ),
        Step("plan_moves", "Plan the fewest replica moves to a balanced, rack-aware layout", plan_scale),
        Step("set_throttle", "Throttle replication traffic", set_throttle),
        Step("execute_moves", "Move replicas batch by batch", execute_moves, LONG),
        Step("clear_throttle", "Remove the replication throttle", clear_throttle),
        Step(
            "verify_drained",
            "Check that the brokers to remove hold no replicas",
            verify_removed_drained,
            applies=_removes,
        ),
        Step(
            "remove_brokers",
            "Stop and remove the drained brokers, and unregister them",
            remove_brokers,
            applies=_removes,
        ),
        Step("verify_balance", "Check the replica balance and rack spread", verify_balance),
        # Moves change preferred leaders; a cluster with auto.leader.rebalance.enable=false would
        # otherwise keep its old leaders, and the balance the plan promised, in name only.
        Step("elect_leaders", "Give leadership to the preferred replicas", elect_preferred_leaders),
    ),
    cleanup=abandon_moves,
)
