"""Shapes of the alerting API. Channel secrets are write-only: answers show them masked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.api.common import StrictSerializer
from monitoring.alerting.choices import ChannelKind, Severity
from monitoring.alerting.models import Delivery, Incident, MaintenanceWindow, NotificationChannel, Silence
from monitoring.alerting.rules import MAX_FOR_SECONDS
from monitoring.conditions import RULES

# Config keys whose values are secrets, per channel kind. Slack and many webhook URLs carry their
# credential in the path, so the URL itself is a secret.
SECRET_KEYS: Mapping[str, frozenset[str]] = {
    ChannelKind.PAGERDUTY: frozenset({"routing_key"}),
    ChannelKind.SLACK: frozenset({"webhook_url"}),
    ChannelKind.WEBHOOK: frozenset({"url", "secret"}),
    ChannelKind.EMAIL: frozenset(),
}
# Header values of webhooks often hold credentials (Authorization); only their names are shown.
SECRET_MAPPINGS: Mapping[str, frozenset[str]] = {ChannelKind.WEBHOOK: frozenset({"headers"})}
MASK = "****"
MIN_REPEAT_INTERVAL_SECONDS = 60
# How far ahead a silence or maintenance window may reach.
MAX_PERIOD_AHEAD = timedelta(days=365)
MAX_REPEAT_INTERVAL_SECONDS = 7 * 86_400


# The schema names enums after their field; "kind" is already the operations' enum and the severity
# choices are already named after "severity", so these two are documented as patterns instead.
@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(ChannelKind.values)})$",
        "description": "One of: " + ", ".join(ChannelKind.values) + ".",
    }
)
class ChannelKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ChannelKind.choices, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(Severity.values)})$",
        "description": "Incidents below this severity are not sent: " + ", ".join(Severity.values) + ".",
    }
)
class MinSeverityField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Severity.choices, **kwargs)


def mask_secret(value: Any) -> str:
    """Enough to tell two secrets apart, never enough to use one."""
    if not isinstance(value, str) or not value:
        return MASK
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.hostname or ''}/{MASK}"
    return f"{MASK}{value[-4:]}" if len(value) >= 16 else MASK


def masked_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    secrets = SECRET_KEYS.get(kind, frozenset())
    mappings = SECRET_MAPPINGS.get(kind, frozenset())
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if key in secrets:
            shown[key] = mask_secret(value)
        elif key in mappings and isinstance(value, Mapping):
            shown[key] = dict.fromkeys(value, MASK)
        else:
            shown[key] = value
    return shown


class IncidentSerializer(serializers.ModelSerializer):
    cluster = serializers.UUIDField(source="cluster_id", read_only=True)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    rule = serializers.CharField(source="rule_key", read_only=True)
    rule_title = serializers.SerializerMethodField()
    muted = serializers.BooleanField(
        read_only=True, help_text="Recorded but not notified: silenced, in maintenance or suppressed."
    )
    acknowledged_by = serializers.CharField(source="acknowledged_by_name", read_only=True)
    resolved_by = serializers.CharField(source="resolved_by_name", read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "cluster",
            "cluster_name",
            "rule",
            "rule_title",
            "subject",
            "state",
            "severity",
            "summary",
            "value",
            "threshold",
            "details",
            "dedup_key",
            "notification_key",
            "sequence",
            "muted",
            "suppressed_by_operation",
            "silenced",
            "silence",
            "maintenance_window",
            "first_seen_at",
            "fired_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "last_notified_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_rule_title(self, incident: Incident) -> str:
        rule = RULES.get(incident.rule_key)
        return rule.title if rule else incident.rule_key


class DeliverySerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by_name", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel",
            "incident",
            "event",
            "status",
            "attempt",
            "first_attempt",
            "dedup_key",
            "response_code",
            "error",
            "requested_by",
            "created_at",
            "due_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


def _known_rule(key: str) -> str:
    if key and key not in RULES:
        raise serializers.ValidationError(f"Unknown rule {key!r}; known rules: {', '.join(sorted(RULES))}.")
    return key


def validated_period(attrs: dict[str, Any], instance: Silence | MaintenanceWindow | None) -> dict[str, Any]:
    """A silence's or maintenance window's period: it ends after it starts, a new or changed end lies
    ahead (a period entirely in the past would mute nothing yet read as planned), and it lies within
    `MAX_PERIOD_AHEAD` of now (a mute for ever is a disabled rule, which says so)."""
    now = timezone.now()
    starts_at = attrs.get("starts_at") or (instance.starts_at if instance else now)
    ends_at = attrs.get("ends_at") or (instance.ends_at if instance else None)
    horizon = now + MAX_PERIOD_AHEAD
    errors: dict[str, list[str]] = {}
    if "starts_at" in attrs and starts_at > horizon:
        errors["starts_at"] = [f"starts_at must be within {MAX_PERIOD_AHEAD.days} days from now."]
    if ends_at is not None and ends_at <= starts_at:
        errors["ends_at"] = ["ends_at must be after starts_at."]
    elif "ends_at" in attrs and ends_at <= now:
        errors["ends_at"] = ["ends_at must be in the future."]
    elif "ends_at" in attrs and ends_at > horizon:
        errors["ends_at"] = [
            f"ends_at must be within {MAX_PERIOD_AHEAD.days} days from now; to stop a rule for good, "
            "disable it (PUT /alert-rules/{rule}/override/ with enabled: false)."
        ]
    if errors:
        raise serializers.ValidationError(errors)
    if instance is None:
        attrs["starts_at"] = starts_at
    return attrs


class SilenceSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rule = serializers.CharField(source="rule_key", read_only=True)
    created_by = serializers.CharField(source="created_by_name", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = [
            "id",
            "organization",
            "cluster",
            "rule",
            "subject",
            "starts_at",
            "ends_at",
            "comment",
            "active",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_active(self, silence: Silence) -> bool:
        return silence.starts_at <= timezone.now() < silence.ends_at


class SilenceWriteSerializer(StrictSerializer):
    organization = serializers.SlugField(
        required=False, help_text="Organization slug; may be left out when you belong to exactly one."
    )
    cluster = serializers.UUIDField(required=False, allow_null=True, help_text="Empty: every cluster.")
    rule = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Empty: every rule."
    )
    subject = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Shell-style pattern, e.g. topic:orders or group:billing-*. Empty: every subject.",
    )
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField()
    comment = serializers.CharField(max_length=2000, help_text="Why, so the next person on call knows.")

    def validate_rule(self, key: str) -> str:
        return _known_rule(key)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return validated_period(attrs, self.instance)


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by_name", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "cluster", "starts_at", "ends_at", "comment", "active", "created_by", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_active(self, window: MaintenanceWindow) -> bool:
        return window.starts_at <= timezone.now() < window.ends_at


class MaintenanceWindowWriteSerializer(StrictSerializer):
    cluster = serializers.UUIDField()
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField()
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return validated_period(attrs, self.instance)


class RuleValuesSerializer(serializers.Serializer):
    threshold = serializers.JSONField(help_text="A number, or a lag status name for consumer_lag_status.")
    for_seconds = serializers.IntegerField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    enabled = serializers.BooleanField()


class RuleOverrideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=["organization", "cluster"])
    organization = serializers.SlugField()
    cluster = serializers.UUIDField(allow_null=True)
    threshold = serializers.JSONField(allow_null=True)
    for_seconds = serializers.IntegerField(allow_null=True)
    severity = serializers.CharField(allow_null=True)
    enabled = serializers.BooleanField(allow_null=True)
    updated_by = serializers.CharField()
    updated_at = serializers.DateTimeField()


class AlertRuleSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    action = serializers.CharField(help_text="What the person receiving it should do first.")
    unit = serializers.CharField()
    comparison = serializers.CharField(help_text="The rule fires when value <comparison> threshold.")
    suppressible = serializers.BooleanField(help_text="Whether a planned operation may suppress it.")
    default = RuleValuesSerializer(help_text="The catalogue's values.")
    effective = RuleValuesSerializer(
        help_text="What applies, after the organization's and cluster's overrides."
    )
    overrides = RuleOverrideSerializer(many=True)


class RuleOverrideWriteSerializer(StrictSerializer):
    organization = serializers.SlugField(
        required=False, help_text="Organization slug; may be left out when you belong to exactly one."
    )
    cluster = serializers.UUIDField(
        required=False, allow_null=True, help_text="Override for one cluster; empty: the whole organization."
    )
    threshold = serializers.JSONField(
        required=False, allow_null=True, help_text="A number, or a lag status name for consumer_lag_status."
    )
    for_seconds = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text=f"Seconds the condition must hold (0 to {MAX_FOR_SECONDS}).",
    )
    severity = serializers.JSONField(required=False, allow_null=True, help_text=", ".join(Severity.values))
    enabled = serializers.JSONField(required=False, allow_null=True)


class NotificationChannelSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    kind = ChannelKindField(read_only=True)
    min_severity = MinSeverityField(read_only=True)
    config = serializers.SerializerMethodField(help_text="Secrets (keys, URLs, signing secrets) are masked.")
    created_by = serializers.CharField(source="created_by_name", read_only=True)

    class Meta:
        model = NotificationChannel
        fields = [
            "id",
            "organization",
            "name",
            "kind",
            "config",
            "min_severity",
            "enabled",
            "repeat_interval_seconds",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_config(self, channel: NotificationChannel) -> dict[str, Any]:
        return masked_config(channel.kind, channel.config)


class NotificationChannelWriteSerializer(StrictSerializer):
    organization = serializers.SlugField(
        required=False, help_text="Organization slug; may be left out when you belong to exactly one."
    )
    name = serializers.CharField(max_length=100)
    kind = ChannelKindField()
    config = serializers.DictField(
        help_text="pagerduty: routing_key (url optional). slack: webhook_url. email: to. "
        "webhook: url, secret (headers optional). Secrets are never shown again. On update, keys "
        "given replace stored ones and null removes one."
    )
    min_severity = MinSeverityField(default=Severity.WARNING)
    enabled = serializers.BooleanField(default=True)
    repeat_interval_seconds = serializers.IntegerField(
        required=False, min_value=MIN_REPEAT_INTERVAL_SECONDS, max_value=MAX_REPEAT_INTERVAL_SECONDS
    )
