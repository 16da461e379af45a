"""Durable operations: every change to a cluster is a row with ordered steps before it runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from controlplane.operations.choices import (
    ACTIVE_OPERATION_STATES,
    LogLevel,
    OperationKind,
    OperationState,
    StepState,
)


class Operation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=32, choices=OperationKind.choices)
    state = models.CharField(max_length=16, choices=OperationState.choices, default=OperationState.PENDING)
    params = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Ownership by one worker at a time: a worker holds the lease while executing and proves it is
    # alive through the heartbeat; a stale heartbeat lets another worker take the operation over.
    lease = models.UUIDField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)  # when a waiting step is due to be polled
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)  # {"code", "message", "details"} when failed

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one operation in flight per cluster, enforced by the database itself.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(state__in=ACTIVE_OPERATION_STATES),
                name="one_active_operation_per_cluster",
            )
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id}"

    @property
    def progress(self) -> float:
        """Percent complete, counting partial progress of the current step."""
        steps = list(self.steps.all())
        if not steps:
            return 100.0 if self.state == OperationState.SUCCEEDED else 0.0
        done = 0.0
        for step in steps:
            if step.state == StepState.SUCCEEDED:
                done += 1
            elif step.state == StepState.RUNNING and step.progress_total:
                done += step.progress_done / step.progress_total
        return round(100.0 * done / len(steps), 1)


class OperationStep(models.Model):
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    transient_failures = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    output = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["operation", "position"]
        constraints = [models.UniqueConstraint(fields=["operation", "position"], name="unique_step_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"


class OperationLog(models.Model):
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="log_lines")
    step = models.ForeignKey(OperationStep, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["operation", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.level} {self.message}"
