"""Filters of the alerting API's lists."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters

from controlplane.api.filters import FilterSet
from monitoring.alerting.choices import OPEN_STATES, DeliveryEvent, DeliveryStatus, IncidentState, Severity
from monitoring.alerting.models import Delivery, Incident, MaintenanceWindow, Silence

OPEN = "open"


class IncidentFilterSet(FilterSet):
    state = filters.ChoiceFilter(
        choices=[*IncidentState.choices, (OPEN, "Open (pending, firing or acknowledged)")],
        method="filter_state",
    )
    severity = filters.ChoiceFilter(choices=Severity.choices)
    cluster = filters.UUIDFilter(field_name="cluster_id")
    rule = filters.CharFilter(field_name="rule_key")
    subject = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Incident
        fields = ["state", "severity", "cluster", "rule", "subject"]

    def filter_state(self, queryset: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        return queryset.filter(state__in=OPEN_STATES) if value == OPEN else queryset.filter(state=value)


class ActiveFilterSet(FilterSet):
    active = filters.BooleanFilter(method="filter_active", help_text="In force right now.")
    cluster = filters.UUIDFilter(field_name="cluster_id")

    def filter_active(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        now = timezone.now()
        in_force = queryset.filter(starts_at__lte=now, ends_at__gt=now)
        return in_force if value else queryset.exclude(pk__in=in_force.values("pk"))


class SilenceFilterSet(ActiveFilterSet):
    class Meta:
        model = Silence
        fields = ["active", "cluster"]


class MaintenanceWindowFilterSet(ActiveFilterSet):
    class Meta:
        model = MaintenanceWindow
        fields = ["active", "cluster"]


class DeliveryFilterSet(FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event = filters.ChoiceFilter(choices=DeliveryEvent.choices)
    incident = filters.NumberFilter(field_name="incident_id")

    class Meta:
        model = Delivery
        fields = ["status", "event", "incident"]
