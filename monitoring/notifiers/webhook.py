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

from monitoring.notifiers.base import DeliveryResult, Notification, encode_json, post, timeout_from

SIGNATURE_HEADER = "X-KCP-Signature"
TIMESTAMP_HEADER = "X-KCP-Timestamp"
EVENT_HEADER = "X-KCP-Event"
DELIVERY_HEADER = "X-KCP-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300
PAYLOAD_VERSION = 1


def validate_config(config: Mapping[str, Any]) -> list[str]:
    errors = []
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        errors.append("url must be an http(s) URL")
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret:
        errors.append("secret is required to sign requests")
    headers = config.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        errors.append("headers must map header names to string values")
    elif any(k.lower().startswith("x-kcp-") for k in headers):
        errors.append("headers may not set X-KCP-* headers; those are reserved for signing")
    return errors


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
