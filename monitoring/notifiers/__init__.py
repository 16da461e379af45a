"""Delivery of alert notifications to on-call channels.

One module per channel kind, each with `validate_config(config) -> list[str]` and
`send(config, notification) -> DeliveryResult`. `send` here picks the module by kind. Every network
request has a timeout, and no failure raises: the result says whether a retry can help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from monitoring.notifiers import egress, email, pagerduty, slack, webhook
from monitoring.notifiers.base import DeliveryResult, Event, Link, Notification, is_retryable_status
from monitoring.notifiers.webhook import verify_signature

__all__ = [
    "CHANNEL_KINDS",
    "DeliveryResult",
    "Event",
    "Link",
    "Notification",
    "is_retryable_status",
    "send",
    "validate_config",
    "verify_signature",
]

_SENDERS: Mapping[str, Callable[[Mapping[str, Any], Notification], DeliveryResult]] = MappingProxyType(
    {
        "pagerduty": pagerduty.send,
        "slack": slack.send,
        "email": email.send,
        "webhook": webhook.send,
    }
)
_VALIDATORS: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = MappingProxyType(
    {
        "pagerduty": pagerduty.validate_config,
        "slack": slack.validate_config,
        "email": email.validate_config,
        "webhook": webhook.validate_config,
    }
)
CHANNEL_KINDS: tuple[str, ...] = tuple(_SENDERS)


_TARGET_URLS: Mapping[str, Callable[[Mapping[str, Any]], Any]] = MappingProxyType(
    {"pagerduty": pagerduty.target_url, "slack": slack.target_url, "webhook": webhook.target_url}
)


def validate_config(channel_kind: str, config: Mapping[str, Any]) -> list[str]:
    """Problems with a channel's configuration, as sentences; empty when it is usable.

    Besides its shape, the URL's host is resolved and refused when it is no place for a notification
    (`egress`); every delivery judges it again.
    """
    validator = _VALIDATORS.get(channel_kind)
    if validator is None:
        return [f"unknown channel kind {channel_kind!r}; expected one of {', '.join(CHANNEL_KINDS)}"]
    errors = validator(config)
    target_url = _TARGET_URLS.get(channel_kind)
    if not errors and target_url is not None and (error := egress.target_error(target_url(config))):
        errors.append(error)
    return errors


def send(channel_kind: str, config: Mapping[str, Any], notification: Notification) -> DeliveryResult:
    sender = _SENDERS.get(channel_kind)
    if sender is None:
        return DeliveryResult.config_error(
            f"unknown channel kind {channel_kind!r}; expected one of {', '.join(CHANNEL_KINDS)}"
        )
    return sender(config, notification)
