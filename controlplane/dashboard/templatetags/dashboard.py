"""Small presentation helpers shared by the dashboard templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from controlplane.dashboard.queries import firing_incident_count
from controlplane.operations.choices import ACTIVE_OPERATION_STATES
from controlplane.operations.models import Operation
from monitoring.alerting.rules import CATALOGUE

register = template.Library()


@register.simple_tag
def badge(value: str, label: str, role: str = "", family: str = "") -> SafeString:
    """A coloured status pill; the colour comes from the value (see `.badge-*` in dashboard.css).

    `family` "op" marks operation and step states, where "running" means in progress rather than
    healthy. `role` names the pill for the live-update script, which swaps value and label in place.
    """
    classes = f"badge badge-{value}" + (f" badge-{family}" if family else "")
    if role:
        return format_html('<span class="{}" data-role="{}">{}</span>', classes, role, label)
    return format_html('<span class="{}">{}</span>', classes, label)


def format_duration(elapsed: timedelta) -> str:
    return format_seconds(elapsed.total_seconds())


def format_seconds(value: float) -> str:
    """A number of seconds as '45s', '12m 05s' or '3h 07m'; from a float, since a time lag can be
    larger than any timedelta."""
    seconds = max(0, int(value))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.simple_tag
def duration(started_at: datetime | None, finished_at: datetime | None) -> str:
    """How long something took, or has been running so far; empty when it has not started."""
    if started_at is None:
        return ""
    return format_duration((finished_at or timezone.now()) - started_at)


@register.filter
def when(moment: datetime | None) -> SafeString | str:
    """A UTC timestamp in a <time> element, so scripts and tooltips get the exact instant."""
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC) if timezone.is_aware(moment) else moment
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        moment.strftime("%Y-%m-%d %H:%M"),
    )


@register.filter
def percent(value: float | int | None) -> str:
    """A progress percentage for display and for CSS widths (always a plain dot decimal)."""
    return f"{float(value or 0):.0f}"


@register.filter
def in_flight(operation: Operation) -> bool:
    return operation.state in ACTIVE_OPERATION_STATES


@register.filter
def number(value: float | int | None) -> str:
    """A count with thousands separators, so lag in the millions reads at a glance."""
    if value is None:
        return "—"
    return f"{round(value):,}"


@register.filter
def seconds(value: float | None) -> str:
    """A time lag given in seconds, as a duration."""
    if value is None:
        return "—"
    return format_seconds(value)


@register.simple_tag
def share(part: float | int, whole: float | int) -> str:
    """`part` as a percentage of `whole`, for CSS widths (a plain dot decimal)."""
    return f"{100 * part / whole:.1f}" if whole else "0"


@register.simple_tag
def firing_alerts(user: object) -> int:
    """How many incidents are firing in the user's organizations, for the navigation badge."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return firing_incident_count(user)


@register.filter
def rule_title(rule_key: str) -> str:
    rule = CATALOGUE.get(rule_key)
    return rule.title if rule else rule_key


@register.filter
def ago(moment: datetime | None) -> SafeString | str:
    """How long ago, to the second while it is recent, with the exact instant as a tooltip."""
    if moment is None:
        return "—"
    elapsed = timezone.now() - moment
    text = "just now" if elapsed < timedelta(seconds=5) else f"{format_duration(elapsed)} ago"
    if elapsed >= timedelta(days=1):
        text = f"{elapsed.days}d {elapsed.seconds // 3600}h ago"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.astimezone(UTC).isoformat(),
        moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        text,
    )
