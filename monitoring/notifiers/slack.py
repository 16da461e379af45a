"""Slack incoming webhooks: a readable message with blocks, and a plain-text fallback.

Slack answers 200 "ok"; 400 (invalid_payload), 403, 404 (no_service) and 410 (channel archived)
will not succeed on retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitoring.notifiers.base import (
    DeliveryResult,
    Event,
    Notification,
    encode_json,
    post,
    timeout_from,
    truncate,
)

# Block Kit limits: header text 150 characters, section text 3,000, ten fields, five buttons.
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_BUTTONS = 5

ICON = {
    "critical": ":red_circle:",
    "error": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}
EVENT_ICON = {Event.ACKNOWLEDGE: ":eyes:", Event.RESOLVE: ":white_check_mark:", Event.TEST: ":wrench:"}


def validate_config(config: Mapping[str, Any]) -> list[str]:
    url = config.get("webhook_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return ["webhook_url (a Slack incoming webhook URL) is required"]
    return []


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_message(notification: Notification) -> dict[str, Any]:
    icon = EVENT_ICON.get(notification.event) or ICON[notification.severity]
    headline = {
        Event.TRIGGER: f"{notification.severity.capitalize()}: {notification.rule.replace('_', ' ')}",
        Event.ACKNOWLEDGE: f"Acknowledged: {notification.rule.replace('_', ' ')}",
        Event.RESOLVE: f"Resolved: {notification.rule.replace('_', ' ')}",
        Event.TEST: "Test notification from Kafka Control Plane",
    }[notification.event]
    header = truncate(f"{headline} on {notification.cluster}", MAX_HEADER_CHARS)
    summary = notification.summary
    if notification.event == Event.RESOLVE:
        summary = f"This has cleared. It was: {summary}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(f"{icon} {escape(summary)}", MAX_SECTION_CHARS)},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Cluster*\n{escape(notification.cluster)}"},
                {"type": "mrkdwn", "text": f"*Severity*\n{notification.severity}"},
                {"type": "mrkdwn", "text": f"*Rule*\n{escape(notification.rule)}"},
                {"type": "mrkdwn", "text": f"*Subject*\n{escape(notification.subject)}"},
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
                        "text": {"type": "plain_text", "text": truncate(link.text, 75)},
                        "url": link.href,
                    }
                    for link in notification.links[:MAX_BUTTONS]
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Incident key `{escape(notification.dedup_key)}`"}],
        }
    )
    # `text` is what notifications and clients without Block Kit show.
    return {"text": truncate(f"{header}: {notification.summary}", MAX_SECTION_CHARS), "blocks": blocks}


def send(config: Mapping[str, Any], notification: Notification) -> DeliveryResult:
    errors = validate_config(config)
    if errors:
        return DeliveryResult.config_error("; ".join(errors))
    return post(config["webhook_url"], encode_json(build_message(notification)), {}, timeout_from(config))
