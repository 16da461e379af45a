"""Models of alerting: rule overrides, incidents, silences, maintenance windows, channels, deliveries.

All writes go through `monitoring.alerting.actions` (people) and `monitoring.alerting.evaluation`
(the collector's results).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from controlplane.encryption import EncryptedJSONField
from monitoring.alerting.choices import (
    OPEN_STATES,
    ChannelKind,
    DeliveryEvent,
    DeliveryStatus,
    IncidentState,
    Severity,
)
from monitoring.conditions import RuleOverride

DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)  # Alertmanager's repeat_interval default


def default_repeat_interval_seconds() -> int:
    return int(getattr(settings, "ALERT_REPEAT_INTERVAL_SECONDS", DEFAULT_REPEAT_INTERVAL.total_seconds()))


class RuleOverrideRecord(models.Model):
    """A change to one rule for a whole organization (cluster empty) or for one cluster.

    Fields left empty keep the value of the layer below (cluster over organization over catalogue).
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="alert_rule_overrides"
    )
    cluster = models.ForeignKey(
        "clusters.Cluster",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rule_overrides",
    )
    rule_key = models.CharField(max_length=64)
    threshold = models.FloatField(null=True, blank=True)
    for_seconds = models.PositiveIntegerField(null=True, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    enabled = models.BooleanField(null=True, blank=True)
    updated_by_name = models.CharField(max_length=150)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rule_key", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "rule_key"],
                condition=Q(cluster__isnull=True),
                name="one_org_override_per_rule",
            ),
            models.UniqueConstraint(fields=["cluster", "rule_key"], name="one_cluster_override_per_rule"),
        ]

    def __str__(self) -> str:
        scope = f"cluster {self.cluster_id}" if self.cluster_id else f"organization {self.organization_id}"
        return f"{self.rule_key} override for {scope}"

    def as_override(self) -> RuleOverride:
        return RuleOverride(
            threshold=self.threshold,
            for_seconds=self.for_seconds,
            severity=Severity(self.severity) if self.severity else None,
            enabled=self.enabled,
        )


class Silence(models.Model):
    """Mutes matching incidents between `starts_at` and `ends_at`; they are still recorded.

    Empty matchers match everything: no cluster means every cluster of the organization, no rule every
    rule. `subject` is a shell-style pattern (`group:billing-*`).
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="silences"
    )
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    rule_key = models.CharField(max_length=64, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["organization", "ends_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="silence_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.rule_key or 'any rule'} on {self.subject or 'any subject'}"


class MaintenanceWindow(models.Model):
    """Planned work on a cluster: every incident of the cluster is recorded but nobody is paged."""

    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["cluster", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="maintenance_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"maintenance of {self.cluster_id} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"


class Incident(models.Model):
    """One occurrence of a condition, from first seen to resolved.

    `dedup_key` is the same for every incident of one (cluster, rule, subject); `notification_key`
    adds the incident's sequence number, so a trigger after a resolve opens a new incident at
    PagerDuty and at any receiver that deduplicates by key.
    """

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="incidents")
    rule_key = models.CharField(max_length=64)
    subject = models.CharField(max_length=500)
    dedup_key = models.CharField(max_length=255)
    sequence = models.PositiveIntegerField()
    notification_key = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=16, choices=IncidentState.choices, default=IncidentState.PENDING)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    summary = models.TextField()
    value = models.FloatField()
    threshold = models.FloatField()
    details = models.JSONField(default=dict, blank=True)
    values_at = models.DateTimeField(null=True, blank=True)  # when value, summary and details were copied
    # Muting: recorded and shown, but no notification while any of these holds.
    suppressed_by_operation = models.BooleanField(default=False)
    silenced = models.BooleanField(default=False)
    silence = models.ForeignKey(Silence, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    maintenance_window = models.ForeignKey(
        MaintenanceWindow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by_name = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_name = models.CharField(max_length=150, blank=True)  # "system:alerting" when it cleared
    last_notified_at = models.DateTimeField(null=True, blank=True)  # last trigger sent to channels
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        constraints = [
            # Two evaluations of one cluster racing each other cannot both open the same incident.
            models.UniqueConstraint(
                fields=["cluster", "dedup_key"],
                condition=Q(state__in=OPEN_STATES),
                name="one_open_incident_per_key",
            ),
            models.UniqueConstraint(
                fields=["cluster", "dedup_key", "sequence"], name="unique_incident_sequence"
            ),
        ]
        indexes = [
            models.Index(fields=["cluster", "state"]),
            models.Index(fields=["state", "last_notified_at"]),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk}: {self.rule_key} on {self.subject} ({self.state})"

    @property
    def muted(self) -> bool:
        return self.suppressed_by_operation or self.silenced


class NotificationChannel(models.Model):
    """Where an organization's incidents are sent. `config` holds secrets: stored encrypted, never
    shown by the API."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="notification_channels"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    config = EncryptedJSONField(default=dict)
    # Incidents below this severity are not sent here.
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    # How often a firing, unacknowledged incident is sent again.
    repeat_interval_seconds = models.PositiveIntegerField(default=default_repeat_interval_seconds)
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_channel_name_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Delivery(models.Model):
    """One attempt to send one event of one incident (or a test) to one channel."""

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=16, choices=DeliveryEvent.choices)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt = models.PositiveSmallIntegerField(default=1)
    # The first attempt's id, shared by every retry of it.
    first_attempt = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="retries"
    )
    dedup_key = models.CharField(max_length=255)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Set by whoever schedules it, on the same clock as the evaluation that caused it.
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()  # not sent before this (backoff between attempts)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by_name = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["incident", "channel", "event"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel_id} attempt {self.attempt}: {self.status}"
