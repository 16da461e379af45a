"""Alerts and on-call pages: incidents with acknowledge and resolve, silences, maintenance windows,
notification channels. Each view reads through the scoped queries and writes through one alerting
action, so another organization's objects answer 404 and viewers get 403, as in the REST API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from controlplane.api.permissions import can_write
from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.dashboard.oncall_forms import (
    ChannelForm,
    IncidentFilterForm,
    MaintenanceWindowForm,
    SilenceForm,
)
from controlplane.dashboard.panels import incidents_in_triage_order
from controlplane.dashboard.queries import (
    require_write,
    visible_channels,
    visible_clusters,
    visible_deliveries,
    visible_incidents,
    visible_maintenance_windows,
    visible_silences,
    writable_organizations,
)
from controlplane.dashboard.views import safe_next
from monitoring.alerting import actions
from monitoring.alerting.api.serializers import masked_config
from monitoring.alerting.models import Incident, MaintenanceWindow
from monitoring.alerting.rules import threshold_label
from monitoring.conditions import RULES

INCIDENTS_PER_PAGE = 50
DELIVERIES_LISTED = 25
EXPIRED_LISTED = 20


def _writable_clusters(request: HttpRequest) -> list[Cluster]:
    return list(
        visible_clusters(request.user)
        .filter(organization__in=writable_organizations(request.user))
        .exclude(status=ClusterStatus.DELETED)
        .order_by("organization__name", "name")
    )


def _refuse_read_only(request: HttpRequest) -> None:
    """Viewers get 403 for a hand-made POST to a create form they are not shown."""
    if not writable_organizations(request.user).exists():
        raise PermissionDenied("Changing on-call settings needs the admin or owner role in an organization.")


# Incidents


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    clusters = visible_clusters(request.user).exclude(status=ClusterStatus.DELETED).order_by("name")
    filters = IncidentFilterForm(request.GET or None, clusters=clusters)
    incidents = incidents_in_triage_order(filters.filter(visible_incidents(request.user)))
    page = Paginator(incidents, INCIDENTS_PER_PAGE).get_page(request.GET.get("page"))
    # `live` asks for the table alone: the page's script refreshes it in place.
    live = request.GET.get("live") == "1"
    shown = request.GET.copy()
    shown.pop("live", None)
    query = shown.copy()
    query.pop("page", None)
    page_url = f"{request.path}?{shown.urlencode()}" if shown else request.path
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "page_url": page_url,
        "live_url": f"{request.path}?{shown.urlencode()}{'&' if shown else ''}live=1",
        "writable": set(writable_organizations(request.user).values_list("pk", flat=True)),
    }
    template = "dashboard/_alert_list_live.html" if live else "dashboard/alert_list.html"
    return render(request, template, context)


@login_required
@require_GET
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(visible_incidents(request.user), pk=pk)
    deliveries = list(incident.deliveries.select_related("channel").order_by("-id"))
    rule = RULES.get(incident.rule_key)
    context = {
        "incident": incident,
        "cluster": incident.cluster,
        "rule": rule,
        "value": _reading(incident, incident.value),
        "threshold": _reading(incident, incident.threshold),
        # Lists (example partitions) are in the summary already; only single values are worth a row.
        "details": [
            (key.replace("_", " ").capitalize(), value)
            for key, value in (incident.details or {}).items()
            if not isinstance(value, list | dict)
        ],
        "timeline": _timeline(incident, notified=bool(deliveries)),
        "mute_reasons": _mute_reasons(incident),
        "deliveries": deliveries,
        "can_write": can_write(request.user, incident.cluster.organization_id),
    }
    return render(request, "dashboard/alert_detail.html", context)


def _reading(incident: Incident, number: float) -> str:
    """A value or threshold as the rule reads it: a lag status name, or a number with its unit."""
    shown = threshold_label(incident.rule_key, number)
    if isinstance(shown, str):
        return shown
    rule = RULES.get(incident.rule_key)
    amount = f"{shown:,.2f}".rstrip("0").rstrip(".")
    return f"{amount} {rule.unit}" if rule else amount


def _timeline(incident: Incident, *, notified: bool) -> list[tuple[Any, str, str]]:
    """(when, state it entered, what happened) from the incident's own timestamps, oldest first."""
    events = [(incident.first_seen_at, "pending", "Condition first seen")]
    if incident.fired_at:
        events.append(
            (incident.fired_at, "firing", "Fired" + (" (muted: nobody notified)" if incident.muted else ""))
        )
    # Appended after "fired" so that, at the same instant, the stable sort keeps them in this order.
    if notified and incident.last_notified_at:
        events.append((incident.last_notified_at, "note", "Last sent to the channels"))
    if incident.acknowledged_at:
        events.append(
            (incident.acknowledged_at, "acknowledged", f"Acknowledged by {incident.acknowledged_by_name}")
        )
    if incident.resolved_at:
        who = incident.resolved_by_name
        text = "Cleared on its own" if who.startswith("system:") else f"Resolved by {who}"
        events.append((incident.resolved_at, "resolved", text))
    return sorted(events, key=lambda event: event[0])


def _mute_reasons(incident: Incident) -> list[tuple[str, str]]:
    """Why an incident notifies nobody, each with the page that manages it."""
    reasons = []
    if incident.silence_id:
        reasons.append(("a silence matches it", reverse("dashboard:silence-list")))
    if incident.maintenance_window_id:
        reasons.append(("its cluster is in a maintenance window", reverse("dashboard:maintenance-list")))
    if incident.suppressed_by_operation:
        reasons.append(("a planned operation on its brokers is causing it", ""))
    return reasons


def _incident_write(request: HttpRequest, pk: int) -> Incident:
    incident = get_object_or_404(visible_incidents(request.user), pk=pk)
    require_write(request.user, incident.cluster.organization_id)
    return incident


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident_write(request, pk)
    try:
        actions.acknowledge_incident(incident=incident, actor=Actor.from_request(request))
    except actions.IncidentStateConflict as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"Acknowledged: {incident.summary}")
    return redirect(safe_next(request, reverse("dashboard:alert-detail", args=[incident.pk])))


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident_write(request, pk)
    try:
        actions.resolve_incident(incident=incident, actor=Actor.from_request(request))
    except actions.IncidentStateConflict as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"Resolved: {incident.summary}")
    return redirect(safe_next(request, reverse("dashboard:alert-detail", args=[incident.pk])))


# Silences


@login_required
@require_http_methods(["GET", "POST"])
def silence_list(request: HttpRequest) -> HttpResponse:
    organizations = list(writable_organizations(request.user))
    if request.method == "POST":
        _refuse_read_only(request)
    # Links from an incident ("Silence this") fill in its cluster, rule and subject.
    initial = {name: request.GET[name] for name in ("cluster", "rule", "subject") if name in request.GET}
    form = SilenceForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        organizations=organizations,
        clusters=_writable_clusters(request),
    )
    if form.is_valid():
        silence = actions.create_silence(**form.values, actor=Actor.from_request(request))
        messages.success(request, f"Silenced until {silence.ends_at:%Y-%m-%d %H:%M} UTC.")
        return redirect("dashboard:silence-list")
    now = timezone.now()
    silences = visible_silences(request.user)
    context = {
        "form": form,
        "may_write": bool(organizations),
        "writable": {org.pk for org in organizations},
        "several_organizations": silences.values("organization").distinct().count() > 1,
        "active": silences.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at"),
        "upcoming": silences.filter(starts_at__gt=now).order_by("starts_at"),
        "expired": silences.filter(ends_at__lte=now).order_by("-ends_at")[:EXPIRED_LISTED],
    }
    return render(request, "dashboard/silence_list.html", context)


@login_required
@require_POST
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_object_or_404(visible_silences(request.user), pk=pk)
    require_write(request.user, silence.organization_id)
    actions.expire_silence(silence=silence, actor=Actor.from_request(request))
    messages.success(request, "Silence expired; matching incidents notify again from the next evaluation.")
    return redirect("dashboard:silence-list")


# Maintenance windows


@login_required
@require_http_methods(["GET", "POST"])
def maintenance_list(request: HttpRequest) -> HttpResponse:
    clusters = _writable_clusters(request)
    if request.method == "POST":
        _refuse_read_only(request)
    initial = {"cluster": request.GET["cluster"]} if "cluster" in request.GET else {}
    form = MaintenanceWindowForm(
        request.POST if request.method == "POST" else None, initial=initial, clusters=clusters
    )
    if form.is_valid():
        window = actions.create_maintenance_window(**form.values, actor=Actor.from_request(request))
        messages.success(
            request, f"Maintenance of {window.cluster.name} planned; nobody is paged for it meanwhile."
        )
        return redirect("dashboard:maintenance-list")
    now = timezone.now()
    windows = visible_maintenance_windows(request.user)
    context = {
        "form": form,
        "may_write": bool(clusters),
        "writable": set(writable_organizations(request.user).values_list("pk", flat=True)),
        "active": windows.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at"),
        "upcoming": windows.filter(starts_at__gt=now).order_by("starts_at"),
        "expired": windows.filter(ends_at__lte=now).order_by("-ends_at")[:EXPIRED_LISTED],
    }
    return render(request, "dashboard/maintenance_list.html", context)


@login_required
@require_POST
def maintenance_end(request: HttpRequest, pk: int) -> HttpResponse:
    """End a window in force now, or cancel one that has not started."""
    window: MaintenanceWindow = get_object_or_404(visible_maintenance_windows(request.user), pk=pk)
    require_write(request.user, window.cluster.organization_id)
    now = timezone.now()
    actor = Actor.from_request(request)
    if window.starts_at > now:
        actions.delete_maintenance_window(window=window, actor=actor)
        messages.success(request, f"Planned maintenance of {window.cluster.name} cancelled.")
    elif window.ends_at > now:
        actions.update_maintenance_window(window=window, changes={"ends_at": now}, actor=actor)
        messages.success(request, f"Maintenance of {window.cluster.name} ended; its incidents notify again.")
    return redirect("dashboard:maintenance-list")


# Notification channels


@login_required
@require_http_methods(["GET", "POST"])
def channel_list(request: HttpRequest) -> HttpResponse:
    organizations = list(writable_organizations(request.user))
    if request.method == "POST":
        _refuse_read_only(request)
    form = ChannelForm(request.POST if request.method == "POST" else None, organizations=organizations)
    if form.is_valid():
        try:
            channel = actions.create_channel(**form.values, actor=Actor.from_request(request))
        except actions.ChannelConfigInvalid as exc:
            form.add_config_errors(exc.errors)
        else:
            messages.success(
                request, f"Channel {channel.name} created. Send a test notification to check it."
            )
            return redirect("dashboard:channel-list")
    channels = list(visible_channels(request.user).order_by("organization__name", "name"))
    for channel in channels:
        # Secrets are masked here, once, so the template cannot show one by mistake.
        channel.shown_config = masked_config(channel.kind, channel.config)
    deliveries = visible_deliveries(request.user).order_by("-id")
    selected = request.GET.get("channel", "")
    if selected.isdigit():
        deliveries = deliveries.filter(channel_id=int(selected))
    context = {
        "form": form,
        "channels": channels,
        "several_organizations": len({c.organization_id for c in channels}) > 1,
        "writable": {org.pk for org in organizations},
        "may_write": bool(organizations),
        "deliveries": deliveries[:DELIVERIES_LISTED],
        "selected_channel": int(selected) if selected.isdigit() else None,
    }
    return render(request, "dashboard/channel_list.html", context)


def _channel_write(request: HttpRequest, pk: int) -> Any:
    channel = get_object_or_404(visible_channels(request.user), pk=pk)
    require_write(request.user, channel.organization_id)
    return channel


@login_required
@require_POST
def channel_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel_write(request, pk)
    enabled = request.POST.get("enabled") == "true"
    actions.update_channel(channel=channel, changes={"enabled": enabled}, actor=Actor.from_request(request))
    messages.success(request, f"Channel {channel.name} {'enabled' if enabled else 'disabled'}.")
    return redirect("dashboard:channel-list")


@login_required
@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel_write(request, pk)
    actions.send_test_notification(channel=channel, actor=Actor.from_request(request))
    messages.info(request, f"Test notification to {channel.name} queued; its delivery is listed below.")
    return redirect(f"{reverse('dashboard:channel-list')}?channel={channel.pk}#deliveries")
