"""Replacing a broker (recovery), in the same rack.

When its disk survived (`keep_disk`), the broker is started again in place with the same node id and
its data (unless its backend keeps none across a restart, which the log then says); it only has to
catch up. Otherwise a new broker (`replacement_node_id`, chosen when the
operation was requested) joins the same rack, the old broker's replicas are reassigned, throttled, with
the planner's replacement case (they land on the new broker where the rack allows), and the old broker
is removed once it holds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from provisioning.kafka_admin.base import KafkaUnavailableError
from provisioning.workflows.base import Step, StepContext, StepOutcome, Workflow, open_admin, started_again
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
from provisioning.workflows.rolling import elect_preferred_leaders, restart_pending
from provisioning.workflows.safety import sync_problems

CATCH_UP_TIMEOUT_SECONDS = 24 * 3600.0
LONG = 3 * 24 * 3600.0


def _in_place(params: Mapping[str, Any]) -> bool:
    return bool(params.get("keep_disk"))


def _elsewhere(params: Mapping[str, Any]) -> bool:
    return not params.get("keep_disk")


def replace_in_place(ctx: StepContext) -> StepOutcome:
    node_id = ctx.params["node_id"]
    description = ctx.backend.replace_broker(ctx.spec, node_id, keep_disk=True)
    return StepOutcome(description=started_again(ctx, node_id, description))


def wait_in_sync(ctx: StepContext) -> StepOutcome:
    node_id = ctx.params["node_id"]
    try:
        with open_admin(ctx) as admin:
            problem = restart_pending(ctx, ctx.spec, node_id) or sync_problems(
                admin.describe_cluster(), node_id
            )
    except KafkaUnavailableError as exc:
        problem = f"cluster not answering: {exc}"
    if problem:
        if problem != ctx.state.get("waiting_for"):
            ctx.log(f"waiting: {problem}")
        return StepOutcome(done=False, output={"waiting_for": problem}, poll_after_seconds=poll_seconds(ctx))
    ctx.log(f"broker {node_id} is registered and in sync for every partition it holds")
    return StepOutcome(output={"waiting_for": None}, description=ctx.backend.describe(ctx.spec))


def start_replacement(ctx: StepContext) -> StepOutcome:
    old, new = ctx.params["node_id"], ctx.params["replacement_node_id"]
    # Provisioning the spec as recorded would start the old broker again: leave it out.
    spec = replace(ctx.spec, brokers=tuple(b for b in ctx.spec.brokers if b.node_id != old))
    description = ctx.backend.provision(spec)
    rack = next(b.rack for b in ctx.spec.brokers if b.node_id == new)
    ctx.log(f"broker {new} started in {rack} to take over from broker {old}")
    return StepOutcome(description=description)


def wait_for_replacement(ctx: StepContext) -> StepOutcome:
    new = ctx.params["replacement_node_id"]
    try:
        with open_admin(ctx) as admin:
            present = new in registered(admin.describe_cluster())
    except KafkaUnavailableError:
        present = False
    if not present:
        return StepOutcome(done=False, progress=(0, 1), poll_after_seconds=poll_seconds(ctx))
    ctx.log(f"broker {new} registered with the cluster")
    return StepOutcome(progress=(1, 1), description=ctx.backend.describe(ctx.spec))


def plan_replacement(ctx: StepContext) -> StepOutcome:
    return plan_moves(ctx, replaced=[ctx.params["node_id"]])


def verify_old_drained(ctx: StepContext) -> StepOutcome:
    return verify_drained(ctx, [ctx.params["node_id"]])


def remove_old_broker(ctx: StepContext) -> StepOutcome:
    old = ctx.params["node_id"]
    verify_drained(ctx, [old])  # asked again right before, as a scale-in does
    description = ctx.backend.remove_brokers(ctx.spec, [old])
    ctx.log(f"broker {old} removed")
    unregister_removed(ctx, [old])
    return StepOutcome(description=description, removed_brokers=(old,))


REPLACE_BROKER = Workflow(
    kind="replace_broker",
    steps=(
        Step("replace_in_place", "Start the broker again on its disk", replace_in_place, applies=_in_place),
        Step(
            "wait_in_sync",
            "Wait until the broker is back in sync",
            wait_in_sync,
            CATCH_UP_TIMEOUT_SECONDS,
            _in_place,
        ),
        Step(
            "elect_leaders",
            "Give leadership back to the preferred replicas",
            elect_preferred_leaders,
            applies=_in_place,
        ),
        Step(
            "start_replacement", "Start a new broker in the same rack", start_replacement, applies=_elsewhere
        ),
        Step(
            "wait_for_replacement",
            "Wait until the new broker has registered",
            wait_for_replacement,
            600,
            _elsewhere,
        ),
        Step("plan_moves", "Plan where the old broker's replicas go", plan_replacement, applies=_elsewhere),
        Step("set_throttle", "Throttle replication traffic", set_throttle, applies=_elsewhere),
        Step("execute_moves", "Move replicas batch by batch", execute_moves, LONG, _elsewhere),
        Step("clear_throttle", "Remove the replication throttle", clear_throttle, applies=_elsewhere),
        Step(
            "verify_drained",
            "Check that the old broker holds no replicas",
            verify_old_drained,
            applies=_elsewhere,
        ),
        Step(
            "remove_old_broker",
            "Remove the old broker and unregister it",
            remove_old_broker,
            applies=_elsewhere,
        ),
        Step(
            "verify_balance", "Check the replica balance and rack spread", verify_balance, applies=_elsewhere
        ),
        Step(
            "elect_leaders_after_moves",
            "Give leadership to the preferred replicas",
            elect_preferred_leaders,
            applies=_elsewhere,
        ),
    ),
    cleanup=abandon_moves,
)
