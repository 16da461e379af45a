"""Email through Django's configured mail backend.

Django is imported only when an email is sent, so the rest of the monitoring package stays free of
it. SMTP answers in the 4xx range are temporary by definition (RFC 5321) and retried; 5xx answers
and refused recipients are not.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Mapping, Sequence
from typing import Any

from monitoring.notifiers.base import (
    DEFAULT_TIMEOUT_SECONDS,
    DeliveryResult,
    Event,
    Notification,
    config_errors,
    timeout_from,
    truncate,
)

MAX_SUBJECT_CHARS = 200


def recipients(config: Mapping[str, Any]) -> list[str]:
    to = config.get("to")
    if isinstance(to, str):
        to = to.split(",")
    if not isinstance(to, Sequence):
        return []
    return [address.strip() for address in to if isinstance(address, str) and address.strip()]


CONFIG_KEYS = frozenset({"to", "from_email"})


def validate_config(config: Mapping[str, Any]) -> list[str]:
    errors = config_errors(config, CONFIG_KEYS)
    addresses = recipients(config)
    if not addresses:
        errors.append("to must list at least one email address")
    invalid = [a for a in addresses if not _is_address(a)]
    if invalid:
        errors.append(f"not an email address: {', '.join(invalid)}")
    sender = config.get("from_email")
    if sender is not None and not (isinstance(sender, str) and _is_address(sender)):
        errors.append("from_email must be an email address")
    return errors


def _is_address(text: str) -> bool:
    return "@" in text and not any(c.isspace() or ord(c) < 32 for c in text)


def build_email(notification: Notification) -> tuple[str, str]:
    """Subject and plain-text body."""
    # Header injection: a subject must be one line whatever a topic or group name contains.
    subject = " ".join(f"{notification.title}: {notification.summary}".split())
    lines = []
    if notification.event == Event.RESOLVE:
        lines += ["This alert has cleared.", ""]
    elif notification.event == Event.ACKNOWLEDGE:
        lines += ["Someone has acknowledged this alert.", ""]
    elif notification.event == Event.TEST:
        lines += ["This is a test notification; the channel works.", ""]
    lines += [
        notification.summary,
        "",
        f"Cluster:  {notification.cluster}",
        f"Rule:     {notification.rule}",
        f"Subject:  {notification.subject}",
        f"Severity: {notification.severity}",
    ]
    if notification.occurred_at is not None:
        lines.append(f"Since:    {notification.occurred_at.isoformat()}")
    if notification.links:
        lines += ["", *(f"{link.text}: {link.href}" for link in notification.links)]
    if notification.details:
        lines += ["", "Details:", json.dumps(dict(notification.details), indent=2, default=str)]
    lines += ["", f"Incident key: {notification.dedup_key}"]
    return truncate(subject, MAX_SUBJECT_CHARS), "\n".join(lines) + "\n"


def send(config: Mapping[str, Any], notification: Notification) -> DeliveryResult:
    errors = validate_config(config)
    if errors:
        return DeliveryResult.config_error("; ".join(errors))
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.mail import get_connection, send_mail

    subject, body = build_email(notification)
    try:
        # Django's SMTP backend waits forever unless EMAIL_TIMEOUT is set; a hung mail server must
        # not hold a notification worker.
        timeout = timeout_from(config)[1] if config.get("timeout_seconds") else settings.EMAIL_TIMEOUT
        timeout = timeout or DEFAULT_TIMEOUT_SECONDS
        sent = send_mail(
            subject,
            body,
            config.get("from_email") or None,
            recipients(config),
            fail_silently=False,
            connection=get_connection(fail_silently=False, timeout=timeout),
        )
    except smtplib.SMTPRecipientsRefused:
        return DeliveryResult(ok=False, error="the mail server refused every recipient", retryable=False)
    except smtplib.SMTPResponseException as exc:
        return DeliveryResult(
            ok=False,
            status_code=exc.smtp_code,
            error=f"the mail server answered {exc.smtp_code}",
            retryable=400 <= exc.smtp_code < 500,
        )
    except ImproperlyConfigured as exc:
        return DeliveryResult.config_error(f"email is not configured: {exc}")
    except (smtplib.SMTPException, OSError) as exc:
        return DeliveryResult(
            ok=False, error=f"could not reach the mail server: {type(exc).__name__}", retryable=True
        )
    if not sent:
        return DeliveryResult(ok=False, error="the mail backend sent nothing", retryable=True)
    return DeliveryResult.delivered()
