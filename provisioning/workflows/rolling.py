"""Rolling restart and rolling upgrade: one node at a time, in Strimzi's order, the active controller last.

One polling step restarts every node in turn (the brokers and any dedicated controllers the backend
runs), in `safety.restart_order` (unready nodes first, the
quorum's leader last), chosen again at each turn because readiness and the leader can change while
the roll goes on. Before each node it waits until restarting it is safe (`safety.restart_blockers`);
after each it waits until the node has registered again, is back in the ISR of every partition it
holds and, for a controller, has caught up with the quorum leader. Both waits poll (the worker is
released in between) and give up after `broker_timeout_seconds`. Which nodes are done is the step's
saved output, so a worker taking over continues with the next one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from provisioning.backends.base import BrokerProcessState, ClusterDescription, ClusterSpec
from provisioning.kafka_admin.base import DEFAULT_QUORUM_FETCH_TIMEOUT_MS, ClusterState
from provisioning.workflows.base import (
    Step,
    StepContext,
    StepFailed,
    StepOutcome,
    Workflow,
    open_admin,
    started_again,
)
from provisioning.workflows.reassign import poll_seconds
from provisioning.workflows.safety import (
    controllers,
    not_ready,
    restart_blockers,
    restart_order,
    sync_problems,
)

DEFAULT_BROKER_TIMEOUT_SECONDS = 900.0
QUORUM_FETCH_TIMEOUT_KEY = "controller.quorum.fetch.timeout.ms"
# The roll as a whole is bounded per broker (`broker_timeout_seconds`), not by the step timeout.
ROLL_TIMEOUT_SECONDS = 7 * 24 * 3600.0


def _now() -> datetime:
    return datetime.now(UTC)


def _waited(since: str | None) -> float:
    return 0.0 if since is None else (_now() - datetime.fromisoformat(since)).total_seconds()


# verb -> (gerund, past participle), for log lines and messages
_VERB_FORMS = {"restart": ("restarting", "restarted"), "upgrade": ("upgrading", "upgraded")}


def quorum_fetch_timeout_ms(spec: ClusterSpec) -> int:
    """The cluster's `controller.quorum.fetch.timeout.ms`: how far behind the leader a controller may be
    and still count as caught up."""
    value = dict(spec.config).get(QUORUM_FETCH_TIMEOUT_KEY)
    return int(value) if value is not None and value.isdigit() else DEFAULT_QUORUM_FETCH_TIMEOUT_MS


def _node(node_id: int, controller_only: Collection[int]) -> str:
    return f"controller {node_id}" if node_id in controller_only else f"broker {node_id}"


def roll_brokers(ctx: StepContext, spec: ClusterSpec, *, verb: str = "restart") -> StepOutcome:
    """Restart (or upgrade) every node in turn: the brokers and any dedicated controllers the backend
    runs, which are chosen with the cluster and recorded in the roll's state on its first poll."""
    roll: dict[str, Any] = dict(
        ctx.state.get("roll")
        or {"restarted": [], "current": None, "since": None, "blocked_since": None, "reason": None}
    )
    roll["restarted"] = list(roll["restarted"])
    gerund, participle = _VERB_FORMS[verb]
    timeout = float(ctx.params.get("broker_timeout_seconds", DEFAULT_BROKER_TIMEOUT_SECONDS))
    fetch_timeout_ms = quorum_fetch_timeout_ms(spec)
    description = ctx.backend.describe(spec)
    if "controllers" not in roll:
        roll["controllers"] = sorted(c.node_id for c in description.controllers)
    dedicated: list[int] = roll["controllers"]
    node_ids = sorted(b.node_id for b in spec.brokers) + dedicated
    with open_admin(ctx) as admin:
        state = admin.describe_cluster()

    current = roll["current"]
    if current is not None:
        if problem := _restart_pending(description, current) or sync_problems(
            state, current, fetch_timeout_ms, dedicated
        ):
            if _waited(roll["since"]) > timeout:
                raise StepFailed(
                    "broker_not_back",
                    f"{_node(current, dedicated).capitalize()} did not come back in sync within "
                    f"{timeout:.0f} s after its {verb}: {problem}. The nodes not yet done keep running "
                    "as they were.",
                    {"broker": current, "done": roll["restarted"]},
                )
            return _waiting(ctx, roll, node_ids, problem)
        ctx.log(f"{_node(current, dedicated)} is back and in sync")
        roll.update(restarted=[*roll["restarted"], current], current=None, since=None)

    remaining = [n for n in node_ids if n not in roll["restarted"]]
    if not remaining:
        ctx.log(f"all {len(node_ids)} node(s) done")
        return StepOutcome(output={"roll": roll}, progress=(len(node_ids), len(node_ids)))
    candidate = restart_order(state, remaining, fetch_timeout_ms, dedicated)[0]
    name = _node(candidate, dedicated)
    if blockers := restart_blockers(state, candidate, fetch_timeout_ms, dedicated):
        roll["blocked_since"] = roll["blocked_since"] or _now().isoformat()
        reason = "; ".join(blockers)
        if _waited(roll["blocked_since"]) > timeout:
            raise StepFailed(
                "unsafe_to_restart",
                f"{name.capitalize()} could not be {participle} safely for {timeout:.0f} s: {reason}.",
                {"broker": candidate, "done": roll["restarted"]},
            )
        return _waiting(ctx, roll, node_ids, f"not {gerund} {name} yet: {reason}")

    if candidate == state.controller_id:
        role = " (the active controller)"
    elif unready := not_ready(state, candidate, fetch_timeout_ms, dedicated):
        role = f" first: {unready}, so it serves nothing"
    elif candidate in dedicated:
        role = " (a dedicated controller)"
    elif candidate in controllers(state):
        role = " (a controller)"
    else:
        role = ""
    ctx.log(f"{gerund} {name}{role}")
    # Restart first, record after: a worker dying in between makes the next one restart this node
    # again (harmless), where recording first could skip it.
    ctx.backend.restart_broker(spec, candidate)
    roll.update(current=candidate, since=_now().isoformat(), blocked_since=None, reason=None)
    description = ctx.backend.describe(spec)
    if not description.durable:
        started_again(ctx, candidate, description)
    return StepOutcome(
        done=False,
        output={"roll": roll},
        description=description,
        progress=(len(roll["restarted"]), len(node_ids)),
        poll_after_seconds=poll_seconds(ctx),
    )


# Backend states of a node whose restart has been asked for but has not happened yet: a remote
# backend's restart returns once asked (a pod deleted), while Kafka still sees the old process, in sync,
# until its controlled shutdown ends.
_RESTARTING = (BrokerProcessState.STOPPED, BrokerProcessState.STARTING, BrokerProcessState.MISSING)


def restart_pending(ctx: StepContext, spec: ClusterSpec, node_id: int) -> str:
    return _restart_pending(ctx.backend.describe(spec), node_id)


def _restart_pending(description: ClusterDescription, node_id: int) -> str:
    status = description.node(node_id)
    if status is None or status.state not in _RESTARTING:
        return ""
    name = "broker" if description.broker(node_id) is not None else "controller"
    return f"{name} {node_id} is {status.state.value}" + (f" ({status.detail})" if status.detail else "")


def _waiting(ctx: StepContext, roll: dict[str, Any], node_ids: list[int], reason: str) -> StepOutcome:
    if reason != roll.get("reason"):  # one log line per new reason, not one per poll
        ctx.log(f"waiting: {reason}")
        roll["reason"] = reason
    return StepOutcome(
        done=False,
        output={"roll": roll},
        progress=(len(roll["restarted"]), len(node_ids)),
        poll_after_seconds=poll_seconds(ctx),
    )


def restart_each(ctx: StepContext) -> StepOutcome:
    return roll_brokers(ctx, ctx.spec)


def elect_preferred_leaders(ctx: StepContext) -> StepOutcome:
    """Give leadership back to each partition's preferred replica, which the roll moved away."""
    with open_admin(ctx) as admin:
        state = admin.describe_cluster()
        movable = _leaders_to_restore(state)
        if movable:
            admin.elect_preferred_leaders(movable)
    ctx.log(f"preferred leaders elected for {len(movable)} partition(s)")
    return StepOutcome(output={"leaders_restored": len(movable)})


def _leaders_to_restore(state: ClusterState) -> list[tuple[str, int]]:
    return [
        (p.topic, p.partition)
        for t in state.topics
        for p in t.partitions
        if p.replicas and p.leader != p.replicas[0] and p.replicas[0] in p.isr
    ]


def _upgraded(ctx: StepContext) -> ClusterSpec:
    return replace(ctx.spec, kafka_version=ctx.params["kafka_version"])


def check_upgrade(ctx: StepContext) -> StepOutcome:
    target = _upgraded(ctx)
    problems = ctx.backend.validate(target)
    if problems:
        raise StepFailed(
            "invalid_spec", "; ".join(f"{field}: {message}" for field, message in problems.items()), problems
        )
    ctx.log(
        f"upgrading {len(target.brokers)} broker(s) from Kafka {ctx.spec.kafka_version} to "
        f"{target.kafka_version}, one at a time; feature levels are raised once every broker runs it"
    )
    return StepOutcome()


def upgrade_each(ctx: StepContext) -> StepOutcome:
    return roll_brokers(ctx, _upgraded(ctx), verb="upgrade")


def finalize_features(ctx: StepContext) -> StepOutcome:
    """Finalize the new release's feature levels (metadata.version and the features it turns on by
    default) once every broker runs it; until then a downgrade of the binaries stays possible.
    Recorded as the cluster's version only after this step."""
    version = ctx.params["kafka_version"]
    with open_admin(ctx) as admin:
        before = admin.finalized_features()
        after = admin.update_features(version)
    changed = [
        f"{name} {before.get(name, 0)} → {level}"
        for name, level in after.items()
        if before.get(name, 0) != level
    ]
    if changed:
        ctx.log(f"feature levels of Kafka {version} finalized: {', '.join(changed)}")
    elif after:
        ctx.log(f"feature levels already at those of Kafka {version}: nothing to finalize")
    else:
        ctx.log("the cluster finalizes no feature levels (not a KRaft cluster): nothing to finalize")
    return StepOutcome(output={"finalized_features": after}, kafka_version=version)


RESTART = Workflow(
    kind="restart",
    steps=(
        Step(
            "restart_brokers",
            "Restart brokers one at a time, the active controller last",
            restart_each,
            ROLL_TIMEOUT_SECONDS,
        ),
        Step("elect_leaders", "Give leadership back to the preferred replicas", elect_preferred_leaders),
    ),
)

UPGRADE = Workflow(
    kind="upgrade",
    steps=(
        Step("check_upgrade", "Check the new version against the backend", check_upgrade),
        Step(
            "upgrade_brokers",
            "Upgrade brokers one at a time, the active controller last",
            upgrade_each,
            ROLL_TIMEOUT_SECONDS,
        ),
        Step("elect_leaders", "Give leadership back to the preferred replicas", elect_preferred_leaders),
        Step("finalize_features", "Raise the feature levels (metadata.version)", finalize_features),
    ),
)
