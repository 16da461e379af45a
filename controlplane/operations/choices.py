from django.db import models


class OperationKind(models.TextChoices):
    PROVISION = "provision", "Provision"
    DELETE = "delete", "Delete"
    SCALE = "scale", "Scale"
    RESTART = "restart", "Rolling restart"
    REPLACE_BROKER = "replace_broker", "Replace broker"
    UPGRADE = "upgrade", "Upgrade"
    ROTATE_CERTIFICATES = "rotate_certificates", "Certificate rotation"


class OperationState(models.TextChoices):
    PENDING = "pending", "Pending"  # recorded, waiting for a worker
    RUNNING = "running", "Running"  # a worker owns it, or it waits between polls of a step
    SUCCEEDED = "succeeded", "Succeeded"  # every step finished
    FAILED = "failed", "Failed"  # a step failed permanently; `error` says why
    CANCELLED = "cancelled", "Cancelled"  # stopped between steps on request


ACTIVE_OPERATION_STATES = (OperationState.PENDING, OperationState.RUNNING)
FINISHED_OPERATION_STATES = (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"  # not started
    RUNNING = "running", "Running"  # being executed, or waiting for its next poll
    SUCCEEDED = "succeeded", "Succeeded"  # done; running it again would change nothing
    FAILED = "failed", "Failed"  # failed permanently
    CANCELLED = "cancelled", "Cancelled"  # never run because the operation was cancelled


class LogLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
