"""Creating and deleting a cluster."""

from __future__ import annotations

from provisioning.backends.base import BrokerProcessState
from provisioning.kafka_admin.base import KafkaUnavailableError
from provisioning.workflows.base import Step, StepContext, StepFailed, StepOutcome, Workflow, open_admin
from provisioning.workflows.reassign import poll_seconds


def validate_spec(ctx: StepContext) -> StepOutcome:
    problems = ctx.backend.validate(ctx.spec)
    if problems:
        raise StepFailed(
            "invalid_spec",
            "; ".join(f"{field}: {message}" for field, message in problems.items()),
            problems,
        )
    plan = ctx.backend.plan(ctx.spec)
    ctx.log(plan.summary)
    return StepOutcome(output={"plan_summary": plan.summary})


def start_brokers(ctx: StepContext) -> StepOutcome:
    description = ctx.backend.provision(ctx.spec)
    ctx.log(
        f"{len(description.brokers)} broker(s) started; bootstrap servers {description.bootstrap_servers}"
    )
    return StepOutcome(output={"bootstrap_servers": description.bootstrap_servers}, description=description)


def wait_for_brokers(ctx: StepContext) -> StepOutcome:
    """Done once as many brokers as the spec asks for have registered with the cluster. Until then the
    backend's view of each broker says why in the log (a pod not scheduled, an image that cannot be
    pulled), once per change: a remote backend only asked for them, and this poll is where they show."""
    expected = len(ctx.spec.brokers)
    try:
        with open_admin(ctx) as admin:
            registered = admin.describe_cluster().brokers
        kafka = f"{len(registered)} of {expected} brokers registered"
    except KafkaUnavailableError as exc:
        registered = ()
        kafka = f"cluster not answering yet: {exc}"
    if len(registered) >= expected:
        ctx.log(f"all {expected} broker(s) registered: {sorted(b.node_id for b in registered)}")
        return StepOutcome(progress=(expected, expected), description=ctx.backend.describe(ctx.spec))
    description = ctx.backend.describe(ctx.spec)
    behind = [
        f"broker {b.node_id} {b.state.value}" + (f" ({b.detail})" if b.detail else "")
        for b in description.brokers
        if b.state is not BrokerProcessState.RUNNING
    ]
    waiting = "; ".join([kafka, *behind])
    if waiting != ctx.state.get("waiting_for"):
        ctx.log(waiting)
    return StepOutcome(
        done=False,
        output={"waiting_for": waiting},
        description=description,
        progress=(len(registered), expected),
    )


def delete_resources(ctx: StepContext) -> StepOutcome:
    if not ctx.backend.delete(ctx.spec):
        # A remote backend asked for the deletion; objects go on their own time (finalizers).
        return StepOutcome(done=False, poll_after_seconds=poll_seconds(ctx))
    ctx.log("every broker and its data removed")
    return StepOutcome()


PROVISION = Workflow(
    kind="provision",
    steps=(
        Step("validate_spec", "Check the layout against the backend", validate_spec),
        Step("start_brokers", "Create and start the brokers", start_brokers, timeout_seconds=900),
        Step("wait_for_brokers", "Wait until every broker has registered", wait_for_brokers, 600),
    ),
)

DELETE = Workflow(
    kind="delete",
    steps=(Step("delete_resources", "Stop the brokers and remove their data", delete_resources),),
)
