"""PagerDuty Events API v2.

Trigger, acknowledge and resolve share the incident's `dedup_key`; PagerDuty opens a new incident
when a trigger arrives after a resolve. PagerDuty answers 202 when it accepted the event, 400 for an
invalid event (retrying will not help) and 429 when rate limited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from monitoring.conditions import Severity
from monitoring.notifiers import egress
from monitoring.notifiers.base import (
    DeliveryResult,
    Event,
    Notification,
    config_errors,
    encode_json,
    post,
    timeout_from,
    truncate,
)

EVENTS_API_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY_CHARS = 1024
MAX_DEDUP_KEY_CHARS = 255
CLIENT_NAME = "Kafka Control Plane"

# PagerDuty's severities (it also has "error", which nothing here raises); ours map one to one.
SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


CONFIG_KEYS = frozenset({"routing_key", "url"})


def validate_config(config: Mapping[str, Any]) -> list[str]:
    errors = config_errors(config, CONFIG_KEYS)
    routing_key = config.get("routing_key")
    if not isinstance(routing_key, str) or not routing_key.strip():
        errors.append("routing_key (the integration key of an Events API v2 integration) is required")
    if error := egress.url_shape_error(target_url(config)):
        errors.append(f"url {error}")
    return errors


def target_url(config: Mapping[str, Any]) -> Any:
    return config.get("url", EVENTS_API_URL)


def build_event(routing_key: str, notification: Notification) -> dict[str, Any]:
    """The Events API v2 body for one notification."""
    action = "trigger" if notification.event in (Event.TRIGGER, Event.TEST) else notification.event.value
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notification.dedup_key,
    }
    if action != "trigger":
        return event
    payload: dict[str, Any] = {
        "summary": truncate(f"{notification.cluster}: {notification.summary}", MAX_SUMMARY_CHARS),
        "source": notification.cluster,
        "severity": SEVERITY[notification.severity],
        "component": notification.subject,
        "group": notification.cluster,
        "class": notification.rule,
        "custom_details": {
            "summary": notification.summary,
            "rule": notification.rule,
            "subject": notification.subject,
            **dict(notification.details),
        },
    }
    if notification.occurred_at is not None:
        payload["timestamp"] = notification.occurred_at.isoformat()
    event["payload"] = payload
    event["client"] = CLIENT_NAME
    if notification.links:
        event["client_url"] = notification.links[0].href
        event["links"] = [{"href": link.href, "text": link.text} for link in notification.links]
    return event


def send(config: Mapping[str, Any], notification: Notification) -> DeliveryResult:
    errors = validate_config(config)
    if errors:
        return DeliveryResult.config_error("; ".join(errors))
    if len(notification.dedup_key) > MAX_DEDUP_KEY_CHARS:
        return DeliveryResult.config_error(f"dedup_key longer than {MAX_DEDUP_KEY_CHARS} characters")
    url = target_url(config)
    timeout = timeout_from(config)
    routing_key = config["routing_key"].strip()

    def deliver(n: Notification) -> DeliveryResult:
        return post(url, encode_json(build_event(routing_key, n)), {}, timeout)

    result = deliver(notification)
    if notification.event == Event.TEST and result.ok:
        # A test must not leave an open incident behind: resolve it straight away.
        return deliver(replace(notification, event=Event.RESOLVE))
    return result
