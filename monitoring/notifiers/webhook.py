"""Generic signed webhooks.

The body is the notification as JSON. Each request carries

    X-KCP-Timestamp: <unix seconds>
    X-KCP-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the channel secret>

Signing the timestamp together with the body lets a receiver reject replays of an old request
(`verify_signature` allows five minutes of clock difference by default). `X-KCP-Delivery` is unique
per request so a receiver can drop duplicates caused by our retries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from typing import Any

from monitoring.notifiers import egress
from monitoring.notifiers.base import (
    DeliveryResult,
    Notification,
    config_errors,
    encode_json,
    post,
    timeout_from,
)

SIGNATURE_HEADER = "X-KCP-Signature"
TIMESTAMP_HEADER = "X-KCP-Timestamp"
EVENT_HEADER = "X-KCP-Event"
DELIVERY_HEADER = "X-KCP-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300
PAYLOAD_VERSION = 1


CONFIG_KEYS = frozenset({"url", "secret", "headers"})
# Headers that say how the request travels (or where): set by the HTTP client, never by a tenant.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
        "proxy-connection",
        "user-agent",
    }
)
MAX_HEADERS = 20
MAX_HEADER_VALUE_CHARS = 4096
# RFC 9110 token characters: a header name can carry nothing else.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def validate_config(config: Mapping[str, Any]) -> list[str]:
    errors = config_errors(config, CONFIG_KEYS)
    if error := egress.url_shape_error(target_url(config)):
        errors.append(f"url {error}")
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret:
        errors.append("secret is required to sign requests")
    headers = config.get("headers") or {}
    if isinstance(headers, Mapping):
        errors += header_errors(headers)
    else:
        errors.append("headers must map header names to string values")
    return errors


def header_errors(headers: Mapping[Any, Any]) -> list[str]:
    if len(headers) > MAX_HEADERS:
        return [f"headers: at most {MAX_HEADERS}"]
    errors = []
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
            errors.append(f"headers: {str(name)[:40]!r} is not a header name")
        elif name.lower() in FORBIDDEN_HEADERS:
            errors.append(f"headers may not set {name}; the HTTP client sets it")
        elif name.lower().startswith("x-kcp-"):
            errors.append("headers may not set X-KCP-* headers; those are reserved for signing")
        elif not isinstance(value, str) or len(value) > MAX_HEADER_VALUE_CHARS:
            errors.append(
                f"headers: the value of {name} must be text of at most {MAX_HEADER_VALUE_CHARS} characters"
            )
        elif any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
            errors.append(f"headers: the value of {name} may not contain line breaks or control characters")
    return errors


def target_url(config: Mapping[str, Any]) -> Any:
    return config.get("url")


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """For receivers: True when the signature matches and the timestamp is recent enough."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def build_body(notification: Notification) -> dict[str, Any]:
    return {"version": PAYLOAD_VERSION, **notification.to_dict()}


def send(
    config: Mapping[str, Any], notification: Notification, *, now: float | None = None
) -> DeliveryResult:
    errors = validate_config(config)
    if errors:
        return DeliveryResult.config_error("; ".join(errors))
    body = encode_json(build_body(notification))
    timestamp = str(int(time.time() if now is None else now))
    headers = {
        **dict(config.get("headers") or {}),
        EVENT_HEADER: notification.event.value,
        DELIVERY_HEADER: str(uuid.uuid4()),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(config["secret"], timestamp, body),
    }
    return post(config["url"], body, headers, timeout_from(config))
