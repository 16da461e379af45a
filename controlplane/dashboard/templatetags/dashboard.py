"""Small presentation helpers shared by the dashboard templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from controlplane.dashboard.queries import firing_incident_count
from controlplane.operations.choices import ACTIVE_OPERATION_STATES
from controlplane.operations.models import Operation
from monitoring.conditions import RULES

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
    """A number of seconds as people read it: '45 s', '12 min 05 s', '3 h 07 min', '4 d 2 h'; from a
    float, since a time lag can be larger than any timedelta. operation.js formats the same way."""
    seconds = max(0, int(value))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


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
    rule = RULES.get(rule_key)
    return rule.title if rule else rule_key


@register.filter
def ago(moment: datetime | None) -> SafeString | str:
    """How long ago, to the second while it is recent, with the exact instant as a tooltip."""
    if moment is None:
        return "—"
    elapsed = timezone.now() - moment
    text = "just now" if elapsed < timedelta(seconds=5) else f"{format_duration(elapsed)} ago"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.astimezone(UTC).isoformat(),
        moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        text,
    )


def format_bytes(value: float) -> str:
    """A size in binary units, as Kafka's tools print them: '512 B', '3.2 MiB', '1.5 TiB'."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@register.filter
def size(value: float | int | None) -> str:
    return "—" if value is None else format_bytes(value)


@register.filter
def parameter(value: Any, key: str) -> str:
    """An operation parameter as a person reads it: durations and rates with units, lists joined."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_bytes_per_second") and isinstance(value, int | float):
        return f"{format_bytes(value)}/s"
    if key.endswith("_seconds") and isinstance(value, int | float):
        return format_seconds(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "—"
    return str(value)


@register.filter
def label(key: str) -> str:
    """A snake_case key as a label: 'broker_timeout_seconds' -> 'Broker timeout'."""
    for suffix in ("_bytes_per_second", "_seconds"):
        key = key.removesuffix(suffix)
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]
