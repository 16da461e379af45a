from django.db import models


class ClusterStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # accepted, provisioning not yet started
    PROVISIONING = "provisioning", "Provisioning"  # brokers are being created
    RUNNING = "running", "Running"  # every broker up, no operation in flight
    UPDATING = "updating", "Updating"  # an operation (scale, restart, upgrade...) is changing it
    DEGRADED = "degraded", "Degraded"  # serving, but a broker is down or an operation failed mid-way
    FAILED = "failed", "Failed"  # provisioning or an operation failed; needs a human
    DELETING = "deleting", "Deleting"  # resources are being removed
    DELETED = "deleted", "Deleted"  # gone; the row stays for history


class Backend(models.TextChoices):
    LOCAL = "local", "This machine (development)"
    KUBERNETES = "kubernetes", "Kubernetes"
    VM = "vm", "Virtual machines (Ansible)"


class BrokerState(models.TextChoices):
    PENDING = "pending", "Pending"  # planned, not yet started
    RUNNING = "running", "Running"  # up and serving
    STARTING = "starting", "Starting"  # launched, not yet accepting connections
    STOPPED = "stopped", "Stopped"  # stopped on purpose (restart, deletion)
    CRASHED = "crashed", "Crashed"  # gone without being asked to stop
    MISSING = "missing", "Missing"  # the backend has no trace of it
    DRAINING = "draining", "Draining"  # its replicas are being moved away before removal


class AnomalyState(models.TextChoices):
    OPEN = "open", "Open"  # broker unreachable, nothing started yet (too recent, self-healing off, or busy)
    HEALING = "healing", "Healing"  # a replace-broker operation started for it is running
    RESOLVED = "resolved", "Resolved"  # the broker came back, or was replaced or removed
    IGNORED = "ignored", "Ignored"  # a person decided not to act on it


# Anomalies still needing something to happen; at most one per broker.
LIVE_ANOMALY_STATES = (AnomalyState.OPEN, AnomalyState.HEALING)


class DriftPolicy(models.TextChoices):
    REPORT = "report", "Report"  # changes made outside the control plane are shown, left as they are
    REVERT = "revert", "Revert"  # and undone by the drift check where Kafka allows it
