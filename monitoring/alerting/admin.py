from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from monitoring.alerting.models import (
    Delivery,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    RuleOverrideRecord,
    Silence,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only: alerting changes through its actions (audited) and the evaluation, never here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "cluster",
        "rule_key",
        "subject",
        "state",
        "severity",
        "first_seen_at",
        "resolved_at",
    ]
    list_filter = ["state", "severity", "rule_key"]
    search_fields = ["dedup_key", "subject"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "channel", "incident", "event", "attempt", "status", "response_code", "created_at"]
    list_filter = ["status", "event"]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "kind", "min_severity", "enabled"]
    # The configuration holds secrets.
    exclude = ["config"]


@admin.register(Silence)
class SilenceAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "organization",
        "cluster",
        "rule_key",
        "subject",
        "starts_at",
        "ends_at",
        "created_by_name",
    ]


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ReadOnlyAdmin):
    list_display = ["id", "cluster", "starts_at", "ends_at", "created_by_name"]


@admin.register(RuleOverrideRecord)
class RuleOverrideRecordAdmin(ReadOnlyAdmin):
    list_display = ["rule_key", "organization", "cluster", "threshold", "for_seconds", "severity", "enabled"]
