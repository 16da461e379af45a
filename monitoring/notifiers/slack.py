"""Slack incoming webhooks: a readable message with blocks, and a plain-text fallback.

Slack answers 200 "ok"; 400 (invalid_payload), 403, 404 (no_service) and 410 (channel archived)
will not succeed on retry.
"""

from __future__ import annotations

from collections.abc import Mapping
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
)

# Block Kit limits, in characters as Slack counts them, i.e. after escaping: header text 150, section
# text 3,000, each field 2,000, button text 75; ten fields, five buttons.
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_BUTTON_CHARS = 75
MAX_BUTTONS = 5

ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
}
EVENT_ICON = {Event.ACKNOWLEDGE: ":eyes:", Event.RESOLVE: ":white_check_mark:", Event.TEST: ":wrench:"}


CONFIG_KEYS = frozenset({"webhook_url"})


def validate_config(config: Mapping[str, Any]) -> list[str]:
    errors = config_errors(config, CONFIG_KEYS)
    url = target_url(config)
    if url is None or url == "":
        errors.append("webhook_url (a Slack incoming webhook URL) is required")
    elif error := egress.url_shape_error(url):
        errors.append(f"webhook_url {error}")
    return errors


def target_url(config: Mapping[str, Any]) -> Any:
    return config.get("webhook_url")


def escape(text: str) -> str:
    """Slack reads &, < and > as markup (`<!channel>` pings a whole channel), in the top-level text
    and in every text object; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped(text: str, limit: int) -> str:
    """`text` escaped and cut to `limit` characters, never through the middle of an entity."""
    result = escape(text)
    if len(result) <= limit:
        return result
    cut = result[: limit - 1]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + "…"


def build_message(notification: Notification) -> dict[str, Any]:
    icon = EVENT_ICON.get(notification.event) or ICON[notification.severity]
    rule = notification.rule.replace("_", " ")
    headline = {
        Event.TRIGGER: f"{notification.severity.capitalize()}: {rule}",
        Event.ACKNOWLEDGE: f"Acknowledged: {rule}",
        Event.RESOLVE: f"Resolved: {rule}",
        Event.TEST: "Test notification from Kafka Control Plane",
    }[notification.event]
    title = f"{headline} on {notification.cluster}"
    summary = notification.summary
    if notification.event == Event.RESOLVE:
        summary = f"This has cleared. It was: {summary}"

    def field(label: str, value: str) -> dict[str, str]:
        prefix = f"*{label}*\n"
        return {"type": "mrkdwn", "text": prefix + escaped(value, MAX_FIELD_CHARS - len(prefix))}

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": escaped(title, MAX_HEADER_CHARS), "emoji": True},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{icon} {escaped(summary, MAX_SECTION_CHARS - len(icon) - 1)}",
            },
        },
        {
            "type": "section",
            "fields": [
                field("Cluster", notification.cluster),
                field("Severity", notification.severity),
                field("Rule", notification.rule),
                field("Subject", notification.subject),
            ],
        },
    ]
    if notification.links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": escaped(link.text, MAX_BUTTON_CHARS)},
                        "url": link.href,
                    }
                    for link in notification.links[:MAX_BUTTONS]
                ],
            }
        )
    key = "Incident key "
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{key}`{escaped(notification.dedup_key, MAX_SECTION_CHARS - len(key) - 2)}`",
                }
            ],
        }
    )
    # `text` is what notifications and clients without Block Kit show; Slack parses it as mrkdwn too.
    return {"text": escaped(f"{title}: {summary}", MAX_SECTION_CHARS), "blocks": blocks}


def send(config: Mapping[str, Any], notification: Notification) -> DeliveryResult:
    errors = validate_config(config)
    if errors:
        return DeliveryResult.config_error("; ".join(errors))
    return post(config["webhook_url"], encode_json(build_message(notification)), {}, timeout_from(config))
