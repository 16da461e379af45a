"""Status values of alerting, one choices class per field."""

from __future__ import annotations

from django.db import models

# The one severity scale, kept with the rules; imported here so each alerting field's choices sit
# together.
from monitoring.conditions import Severity

__all__ = [
    "NOTIFIED_STATES",
    "OPEN_STATES",
    "UNFINISHED_DELIVERY_STATUSES",
    "ChannelKind",
    "DeliveryEvent",
    "DeliveryStatus",
    "IncidentState",
    "Severity",
]


class IncidentState(models.TextChoices):
    PENDING = "pending", "Pending"  # the condition holds, but not yet for its rule's `for` duration
    FIRING = "firing", "Firing"  # held long enough; channels are notified unless muted
    ACKNOWLEDGED = "acknowledged", "Acknowledged"  # a person took it; no repeats until it resolves
    RESOLVED = "resolved", "Resolved"  # the condition cleared or a person resolved it; kept as history


OPEN_STATES = (IncidentState.PENDING, IncidentState.FIRING, IncidentState.ACKNOWLEDGED)
# States in which channels have been (or are being) told about the incident.
NOTIFIED_STATES = (IncidentState.FIRING, IncidentState.ACKNOWLEDGED)


class ChannelKind(models.TextChoices):
    PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Signed webhook"


class DeliveryEvent(models.TextChoices):
    TRIGGER = "trigger", "Trigger"  # the incident fired (or is repeated while unacknowledged)
    ACKNOWLEDGE = "acknowledge", "Acknowledge"  # a person acknowledged it
    RESOLVE = "resolve", "Resolve"  # it cleared or was resolved by hand
    TEST = "test", "Test"  # sent from the channel's settings to check them


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued; `due_at` says when it may be sent
    SENDING = "sending", "Sending"  # a worker is sending it now
    DELIVERED = "delivered", "Delivered"  # the receiver accepted it
    RETRYING = "retrying", "Failed, retrying"  # this attempt failed; the next attempt is its own row
    FAILED = "failed", "Failed"  # failed for good: not retryable, or the last allowed attempt
    SUPERSEDED = "superseded", "Superseded"  # not sent: a later event made it pointless


UNFINISHED_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
