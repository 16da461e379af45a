"""Runs an operation's steps in order, durably.

One call of `run_operation` claims the operation (a lease, renewed by a heartbeat thread), then runs
pending steps one after another, committing each result before starting the next. A step that waits
(reassignment in progress, broker not yet registered) releases the lease and asks to be dispatched
again later. A worker that dies leaves a stale heartbeat; the reaper dispatches the operation again
and the next worker re-runs the interrupted step, which is safe because steps are idempotent. Before
an operation ends cancelled or failed, its workflow's cleanup runs (lifting replication throttles,
cancelling reassignments nobody would follow any more).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.clusters.actions import (
    record_brokers_removed,
    record_kafka_version,
    sync_cluster_description,
)
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import BackendNotAvailable, backend_for, cluster_spec, connect_admin
from controlplane.operations import actions
from controlplane.operations.choices import LogLevel, OperationState, StepState
from controlplane.operations.models import Operation, OperationStep
from controlplane.operations.outcomes import record_operation_started
from provisioning.backends.base import NULL_EVENTS, BackendCancelled, BackendError, BackendUnavailableError
from provisioning.kafka_admin.base import KafkaAdminError, KafkaUnavailableError
from provisioning.workflows import WORKFLOWS
from provisioning.workflows.base import StepContext, StepFailed, StepOutcome, StepRetry

logger = logging.getLogger(__name__)

# SoftTimeLimitExceeded: the task ran into its time limit mid-step; the step is idempotent, so it is
# simply run again later by a fresh task.
TRANSIENT_ERRORS = (StepRetry, BackendUnavailableError, KafkaUnavailableError, SoftTimeLimitExceeded)
PERMANENT_ERRORS = (StepFailed, BackendError, KafkaAdminError)
MAX_BACKOFF_SECONDS = 300.0


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.OPERATION_STALE_AFTER_SECONDS)


class _Heartbeat:
    """Renews the lease from a thread while a step runs, so a long step is not mistaken for a dead one."""

    def __init__(self, operation_id: uuid.UUID, lease: uuid.UUID) -> None:
        self.operation_id, self.lease = operation_id, lease
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{operation_id}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.OPERATION_HEARTBEAT_SECONDS):
                if not actions.heartbeat(self.operation_id, self.lease):
                    self.lost.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_operation(operation_id: uuid.UUID) -> None:
    close_old_connections()
    lease = actions.claim_operation(operation_id, stale_after=_stale_after())
    if lease is None:
        return  # finished, or another live worker owns it
    record_operation_started(operation_id)
    try:
        with _Heartbeat(operation_id, lease) as beat:
            _run_steps(operation_id, lease, beat)
    except actions.StaleOperation:
        logger.warning("operation=%s lost its lease; another worker continues it", operation_id)


def _run_steps(operation_id: uuid.UUID, lease: uuid.UUID, beat: _Heartbeat) -> None:
    while not beat.lost.is_set():
        operation = Operation.objects.select_related("cluster").get(pk=operation_id)
        step = operation.steps.exclude(state=StepState.SUCCEEDED).order_by("position").first()
        if step is None:
            if actions.succeed_operation(operation_id, lease):
                actions.append_log(operation_id, "operation succeeded")
            return
        if operation.cancel_requested_at is not None:
            actions.append_log(operation_id, "cancelled on request before the next step")
            _clean_up(operation, step)
            actions.cancel_now(operation_id, lease)
            return
        if not _run_step(operation, step, lease):
            return


def _run_step(operation: Operation, step: OperationStep, lease: uuid.UUID) -> bool:
    """Run one step once. True to go on with the next step, False when this call is done."""
    workflow_step = WORKFLOWS[operation.kind].step(step.name)
    cluster: Cluster = operation.cluster
    now = timezone.now()
    if step.started_at and now - step.started_at > timedelta(seconds=workflow_step.timeout_seconds):
        return _fail(
            operation,
            step,
            lease,
            "step_timeout",
            f"Step '{step.title}' did not finish within {workflow_step.timeout_seconds:.0f} s.",
        )
    actions.mark_step_running(step, lease)
    step.refresh_from_db()
    if step.attempts == 1 and step.transient_failures == 0:
        actions.append_log(operation.id, f"step {step.position + 1}: {step.title}", step=step)
    events = StepEvents(operation.id, step)
    try:
        outcome = workflow_step.run(_context(operation, cluster, step, events))
    except TRANSIENT_ERRORS as exc:
        events.flush()
        return _retry_later(operation, step, lease, str(exc) or f"{type(exc).__name__} (no details)")
    except BackendNotAvailable as exc:
        events.flush()
        return _fail(operation, step, lease, "backend_not_available", str(exc))
    except BackendCancelled as exc:
        events.flush()
        actions.append_log(operation.id, f"cancelled on request during the step: {exc}", step=step)
        _clean_up(operation, step)
        actions.cancel_now(operation.id, lease)
        return False
    except PERMANENT_ERRORS as exc:
        events.flush()
        code = getattr(exc, "code", type(exc).__name__)
        details = getattr(exc, "details", {})
        return _fail(operation, step, lease, code, getattr(exc, "message", str(exc)), details)
    except Exception as exc:
        events.flush()
        logger.exception("operation=%s step=%s crashed", operation.id, step.name)
        return _fail(operation, step, lease, "internal_error", f"{type(exc).__name__}: {exc}")
    events.flush()
    return _record_outcome(operation, step, lease, outcome)


class StepEvents:
    """What a backend reports while a step runs (objects applied, API server answers), written to the
    operation's log in batches: a backend may report a line per object, and a row per line, each in its
    own transaction, would slow the step it describes. Flushed when the step returns, and on the way
    once enough lines or time have gathered, so a long call still shows progress."""

    MAX_LINES = 50
    MAX_SECONDS = 2.0
    # How often a long backend call may ask whether the operation was cancelled (a database read).
    STOP_CHECK_SECONDS = 2.0

    def __init__(self, operation_id: uuid.UUID, step: OperationStep) -> None:
        self.operation_id, self.step = operation_id, step
        self.scope = f"operation-{operation_id}"
        self.lines: list[str] = []
        self.since = 0.0
        self._stop_checked_at = 0.0
        self._stop = False

    def should_stop(self) -> bool:
        """Whether cancelling the operation was asked for (looked up at most every few seconds)."""
        if not self._stop and time.monotonic() - self._stop_checked_at >= self.STOP_CHECK_SECONDS:
            self._stop_checked_at = time.monotonic()
            self._stop = Operation.objects.filter(
                pk=self.operation_id, cancel_requested_at__isnull=False
            ).exists()
        return self._stop

    def log(self, message: str) -> None:
        if not self.lines:
            self.since = time.monotonic()
        self.lines.append(message)
        if len(self.lines) >= self.MAX_LINES or time.monotonic() - self.since >= self.MAX_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            actions.append_logs(self.operation_id, self.lines, step=self.step)
            self.lines = []


def _context(
    operation: Operation, cluster: Cluster, step: OperationStep, events: StepEvents | None = None
) -> StepContext:
    state: dict[str, object] = {}
    for earlier in operation.steps.filter(position__lt=step.position).order_by("position"):
        state.update(earlier.output)
    state.update(step.output)  # what this step saved while polling

    def log(message: str) -> None:
        actions.append_log(operation.id, message, step=step)

    backend = backend_for(cluster, events=events or NULL_EVENTS)
    return StepContext(
        spec=cluster_spec(cluster),
        params=operation.params,
        state=state,
        backend=backend,
        # The backend says how its clusters are reached (addresses, security), per spec.
        admin_factory=lambda spec, bootstrap: connect_admin(spec, backend.connection(spec, bootstrap)),
        log=log,
        started_at=step.started_at or timezone.now(),
        attempt=step.attempts,
        bootstrap_servers=cluster.bootstrap_servers,
    )


def _record_outcome(
    operation: Operation, step: OperationStep, lease: uuid.UUID, outcome: StepOutcome
) -> bool:
    if outcome.description is not None:
        sync_cluster_description(cluster_id=operation.cluster_id, description=outcome.description)
    if outcome.done:
        # The step's effect on the cluster's record commits with its success, or not at all.
        with transaction.atomic():
            actions.mark_step_succeeded(step, lease, output=outcome.output, progress=outcome.progress)
            if outcome.removed_brokers:
                record_brokers_removed(cluster_id=operation.cluster_id, node_ids=outcome.removed_brokers)
            if outcome.kafka_version:
                record_kafka_version(cluster_id=operation.cluster_id, version=outcome.kafka_version)
        return True
    done, total = outcome.progress or (0, 0)
    actions.record_step_progress(step, lease, done=done, total=total, output=outcome.output)
    _wait(operation.id, lease, outcome.poll_after_seconds)
    return False


def _retry_later(operation: Operation, step: OperationStep, lease: uuid.UUID, message: str) -> bool:
    failures = actions.record_transient_failure(step, lease, message=message)
    limit = settings.OPERATION_MAX_TRANSIENT_RETRIES
    if failures > limit:
        return _fail(
            operation,
            step,
            lease,
            "retries_exhausted",
            f"Step '{step.title}' kept failing after {limit} retries: {message}",
        )
    # Exponential backoff with jitter, so many operations hitting one outage do not retry in lockstep.
    delay = min(MAX_BACKOFF_SECONDS, settings.OPERATION_RETRY_BASE_SECONDS * 2 ** (failures - 1))
    delay *= random.uniform(0.8, 1.2)
    actions.append_log(
        operation.id,
        f"transient failure {failures}/{limit}: {message}; retrying in {delay:.0f} s",
        step=step,
        level=LogLevel.WARNING,
    )
    _wait(operation.id, lease, delay)
    return False


def _wait(operation_id: uuid.UUID, lease: uuid.UUID, seconds: float) -> None:
    actions.release_until(operation_id, lease, timezone.now() + timedelta(seconds=seconds))
    actions.dispatch_operation(operation_id, countdown=seconds)


def _fail(
    operation: Operation,
    step: OperationStep,
    lease: uuid.UUID,
    code: str,
    message: str,
    details: dict | None = None,
) -> bool:
    actions.append_log(operation.id, f"failed: {message}", step=step, level=LogLevel.ERROR)
    _clean_up(operation, step)
    actions.fail_operation(operation.id, lease, step=step, code=code, message=message, details=details)
    return False


def _clean_up(operation: Operation, step: OperationStep | None) -> None:
    """Run the workflow's cleanup before the operation ends unfinished; never fails the caller."""
    cleanup = WORKFLOWS[operation.kind].cleanup
    if cleanup is None or step is None:
        return
    try:
        cleanup(_context(operation, operation.cluster, step))
    except Exception as exc:
        logger.warning("operation=%s cleanup failed: %s", operation.id, exc)
        actions.append_log(
            operation.id,
            f"cleanup failed ({type(exc).__name__}: {exc}); replication throttles or reassignments "
            "this operation started may still be in place",
            step=step,
            level=LogLevel.WARNING,
        )


def reap_stalled_operations() -> list[uuid.UUID]:
    """Dispatch operations nobody is running: lost worker, lost wake-up, or lost dispatch message.

    Dispatching twice is harmless: only one worker can claim an operation.
    """
    now = timezone.now()
    stale = now - _stale_after()
    stalled = Operation.objects.filter(
        Q(state=OperationState.PENDING, created_at__lt=stale)
        | Q(state=OperationState.RUNNING, lease__isnull=False, heartbeat_at__lt=stale)
        | Q(state=OperationState.RUNNING, lease__isnull=True, wake_at__lt=stale)
    ).values_list("pk", flat=True)
    reaped = list(stalled)
    for operation_id in reaped:
        logger.warning("operation=%s looks stalled; dispatching it again", operation_id)
        actions.dispatch_operation(operation_id)
    return reaped
