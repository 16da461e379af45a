"""Every write to operations, steps and their logs.

State changes are compare-and-set updates (`filter(pk=..., state=expected).update(...)`) so two workers
can never both move an operation forward; a lost race raises `StaleOperation` instead of overwriting.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.models import Cluster
from controlplane.operations.choices import (
    ACTIVE_OPERATION_STATES,
    LogLevel,
    OperationKind,
    OperationState,
    StepState,
)
from controlplane.operations.models import Operation, OperationLog, OperationStep
from controlplane.operations.outcomes import apply_operation_outcome
from provisioning.workflows import WORKFLOWS


class OperationConflict(Exception):
    """The cluster already has an operation in flight."""

    def __init__(self, running: Operation | None) -> None:
        self.running = running
        if running is None:
            message = "Another operation on this cluster is in progress."
        else:
            message = (
                f"Operation {running.id} ({running.get_kind_display().lower()}, {running.state}) "
                "is still in progress on this cluster; wait for it to finish or cancel it."
            )
        super().__init__(message)


class StaleOperation(Exception):
    """The operation was no longer in the state this worker expected (another worker owns it)."""


def active_operation(cluster: Cluster) -> Operation | None:
    return Operation.objects.filter(cluster=cluster, state__in=ACTIVE_OPERATION_STATES).first()


def start_operation(
    *, cluster: Cluster, kind: OperationKind, actor: Actor, params: Mapping[str, Any] | None = None
) -> Operation:
    """Record an operation with its steps; a worker is asked to run it once the transaction commits.

    Must be called inside the caller's transaction, so the operation exists only if the change that
    caused it does.
    """
    if running := active_operation(cluster):
        raise OperationConflict(running)
    try:
        # A savepoint, so a lost race leaves the caller's transaction usable.
        with transaction.atomic():
            operation = Operation.objects.create(
                cluster=cluster,
                kind=kind,
                params=dict(params or {}),
                requested_by=actor.account,
                requested_by_name=actor.name,
            )
    except IntegrityError as exc:
        raise OperationConflict(active_operation(cluster)) from exc
    OperationStep.objects.bulk_create(
        OperationStep(operation=operation, position=i, name=step.name, title=step.title)
        for i, step in enumerate(WORKFLOWS[kind].steps_for(operation.params))
    )
    record_event(
        actor=actor,
        action=f"operation.{kind}",
        target=operation,
        organization=cluster.organization,
        details={"cluster": str(cluster.id), "params": dict(params or {})},
    )
    transaction.on_commit(lambda: dispatch_operation(operation.id))
    return operation


def dispatch_operation(operation_id: uuid.UUID, *, countdown: float | None = None) -> None:
    from controlplane.operations.tasks import run_operation

    run_operation.apply_async((str(operation_id),), countdown=countdown)


def claim_operation(operation_id: uuid.UUID, *, stale_after: timedelta) -> uuid.UUID | None:
    """Take ownership of an operation that is pending, waiting, or whose worker stopped heart-beating.

    Returns the new lease, or None when another live worker owns it or it has finished.
    """
    now = timezone.now()
    lease = uuid.uuid4()
    claimable = (
        Q(state=OperationState.PENDING)
        | Q(state=OperationState.RUNNING, lease__isnull=True)
        | Q(state=OperationState.RUNNING, heartbeat_at__lt=now - stale_after)
    )
    updated = Operation.objects.filter(claimable, pk=operation_id).update(
        state=OperationState.RUNNING,
        lease=lease,
        heartbeat_at=now,
        wake_at=None,
        started_at=Coalesce(F("started_at"), now),
    )
    return lease if updated else None


def heartbeat(operation_id: uuid.UUID, lease: uuid.UUID) -> bool:
    """Prove the owning worker is alive. False when the lease was lost (taken over or finished)."""
    return bool(
        Operation.objects.filter(pk=operation_id, lease=lease, state=OperationState.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def release_until(operation_id: uuid.UUID, lease: uuid.UUID, wake_at: datetime) -> None:
    """Give up ownership while a step waits; whoever is dispatched at `wake_at` claims it again."""
    _owned(operation_id, lease).update(lease=None, wake_at=wake_at)


def _owned(operation_id: uuid.UUID, lease: uuid.UUID):
    return Operation.objects.filter(pk=operation_id, lease=lease, state=OperationState.RUNNING)


def _lock_owned(operation_id: uuid.UUID, lease: uuid.UUID) -> None:
    """Lock the operation row for this transaction, or fail if this worker no longer owns it."""
    _require(len(_owned(operation_id, lease).select_for_update().values_list("pk", flat=True)), "lease lost")


def _require(updated: int, what: str) -> None:
    if updated != 1:
        raise StaleOperation(what)


def mark_step_running(step: OperationStep, lease: uuid.UUID) -> None:
    with transaction.atomic():
        _lock_owned(step.operation_id, lease)
        first_start = step.started_at or timezone.now()
        updated = OperationStep.objects.filter(
            pk=step.pk, state__in=[StepState.PENDING, StepState.RUNNING]
        ).update(state=StepState.RUNNING, attempts=F("attempts") + 1, started_at=first_start)
        _require(updated, f"step {step.name} is no longer runnable")


def record_step_progress(
    step: OperationStep, lease: uuid.UUID, *, done: int, total: int, output: Mapping[str, Any]
) -> None:
    with transaction.atomic():
        _lock_owned(step.operation_id, lease)
        OperationStep.objects.filter(pk=step.pk, state=StepState.RUNNING).update(
            progress_done=done, progress_total=total, output=dict(output)
        )


def mark_step_succeeded(
    step: OperationStep, lease: uuid.UUID, *, output: Mapping[str, Any], progress: tuple[int, int] | None
) -> None:
    done, total = progress or (1, 1)
    with transaction.atomic():
        _lock_owned(step.operation_id, lease)
        updated = OperationStep.objects.filter(pk=step.pk, state=StepState.RUNNING).update(
            state=StepState.SUCCEEDED,
            finished_at=timezone.now(),
            output=dict(output),
            progress_done=done,
            progress_total=total,
            error=None,
        )
        _require(updated, f"step {step.name} was not running")


def record_transient_failure(step: OperationStep, lease: uuid.UUID, *, message: str) -> int:
    """Count a transient failure of a step; returns how many it has had."""
    with transaction.atomic():
        _lock_owned(step.operation_id, lease)
        OperationStep.objects.filter(pk=step.pk).update(
            transient_failures=F("transient_failures") + 1,
            error={"code": "transient", "message": message},
        )
        return OperationStep.objects.values_list("transient_failures", flat=True).get(pk=step.pk)


def fail_operation(
    operation_id: uuid.UUID,
    lease: uuid.UUID,
    *,
    step: OperationStep | None,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
) -> bool:
    error = {"code": code, "message": message, "details": dict(details or {})}
    now = timezone.now()
    with transaction.atomic():
        updated = _owned(operation_id, lease).update(
            state=OperationState.FAILED, finished_at=now, lease=None, error=error
        )
        if not updated:
            return False
        if step is not None:
            OperationStep.objects.filter(pk=step.pk).update(
                state=StepState.FAILED, finished_at=now, error=error
            )
        OperationStep.objects.filter(operation_id=operation_id, state=StepState.PENDING).update(
            state=StepState.CANCELLED
        )
        apply_operation_outcome(operation_id)
    return True


def succeed_operation(operation_id: uuid.UUID, lease: uuid.UUID) -> bool:
    with transaction.atomic():
        updated = _owned(operation_id, lease).update(
            state=OperationState.SUCCEEDED, finished_at=timezone.now(), lease=None, error=None
        )
        if updated:
            apply_operation_outcome(operation_id)
    return bool(updated)


def cancel_now(operation_id: uuid.UUID, lease: uuid.UUID | None) -> bool:
    """Finish an operation as cancelled: a pending one at once, a running one by its owner."""
    now = timezone.now()
    query = Operation.objects.filter(pk=operation_id)
    query = query.filter(lease=lease) if lease else query.filter(state=OperationState.PENDING)
    with transaction.atomic():
        updated = query.filter(state__in=ACTIVE_OPERATION_STATES).update(
            state=OperationState.CANCELLED, finished_at=now, lease=None
        )
        if updated:
            OperationStep.objects.filter(
                operation_id=operation_id, state__in=[StepState.PENDING, StepState.RUNNING]
            ).update(state=StepState.CANCELLED, finished_at=now)
            apply_operation_outcome(operation_id)
    return bool(updated)


def request_cancel(*, operation: Operation, actor: Actor) -> Operation:
    """Cancel between steps. A pending operation stops at once; a running one after its current step."""
    if operation.state not in ACTIVE_OPERATION_STATES:
        raise OperationNotCancellable(operation)
    with transaction.atomic():
        Operation.objects.filter(pk=operation.pk, cancel_requested_at__isnull=True).update(
            cancel_requested_at=timezone.now()
        )
        record_event(
            actor=actor,
            action="operation.cancel",
            target=operation,
            organization=operation.cluster.organization,
        )
    if not cancel_now(operation.id, None):
        # Wake a waiting operation so its cancellation is seen now rather than at the next poll.
        dispatch_operation(operation.id)
    operation.refresh_from_db()
    return operation


class OperationNotCancellable(Exception):
    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        super().__init__(f"Operation {operation.id} has already finished ({operation.state}).")


def append_logs(operation_id: uuid.UUID, messages: list[str], *, step: OperationStep | None = None) -> None:
    """Several lines at once (what a backend reported during a step): one INSERT."""
    OperationLog.objects.bulk_create(
        OperationLog(operation_id=operation_id, step=step, message=message[:10_000], level=LogLevel.INFO)
        for message in messages
    )


def append_log(
    operation_id: uuid.UUID,
    message: str,
    *,
    step: OperationStep | None = None,
    level: LogLevel = LogLevel.INFO,
) -> None:
    OperationLog.objects.create(operation_id=operation_id, step=step, message=message[:10_000], level=level)
