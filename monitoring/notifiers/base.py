"""What every notifier receives and returns, and the HTTP delivery they share.

Notifiers never raise for a failed delivery or a bad channel configuration: they return a
`DeliveryResult` saying whether retrying can help, so the task that sends notifications can store
the outcome and schedule a retry without knowing which channel it used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import urllib3

from monitoring.conditions import Severity
from monitoring.notifiers import egress

USER_AGENT = "kafka-control-plane-notifier/1"
DEFAULT_TIMEOUT_SECONDS = 10.0
# A delivery holds a worker slot for up to this long; receivers that take longer are broken, and a
# tenant's slow receiver must not starve everyone else's notifications.
MIN_TIMEOUT_SECONDS = 1.0
MAX_TIMEOUT_SECONDS = 30.0
# Connecting should be quick; a slow connect means the endpoint is unreachable, so it gets a shorter
# limit than the whole request.
MAX_CONNECT_TIMEOUT_SECONDS = 5.0


class Event(StrEnum):
    TRIGGER = "trigger"  # the condition fired (or fires again after a resolve: a new incident)
    ACKNOWLEDGE = "acknowledge"  # a person took it
    RESOLVE = "resolve"  # the condition cleared or a person resolved it
    TEST = "test"  # sent from the channel settings to check the configuration


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Notification:
    event: Event
    dedup_key: str  # the same for every event of one incident
    severity: str  # a `Severity` value: critical, warning or info
    summary: str  # one plain sentence
    cluster: str  # the cluster's display name
    rule: str  # rule key, e.g. "under_min_isr"
    subject: str  # e.g. "topic:orders", "broker:3", "group:billing"
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    links: tuple[Link, ...] = ()
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.severity not in Severity.values:
            raise ValueError(f"severity must be one of {', '.join(Severity.values)}, got {self.severity!r}")

    @property
    def title(self) -> str:
        """A short headline: what happened where."""
        state = {
            Event.TRIGGER: self.severity.upper(),
            Event.ACKNOWLEDGE: "ACKNOWLEDGED",
            Event.RESOLVE: "RESOLVED",
            Event.TEST: "TEST",
        }[self.event]
        return f"[{state}] {self.cluster}: {self.rule.replace('_', ' ')} on {self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.value,
            "dedup_key": self.dedup_key,
            "severity": self.severity,
            "summary": self.summary,
            "cluster": self.cluster,
            "rule": self.rule,
            "subject": self.subject,
            "details": dict(self.details),
            "links": [{"href": link.href, "text": link.text} for link in self.links],
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
        }


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after_seconds: float | None = None  # what the receiver asked for (Retry-After), if anything

    @classmethod
    def delivered(cls, status_code: int | None = None) -> DeliveryResult:
        return cls(ok=True, status_code=status_code)

    @classmethod
    def config_error(cls, message: str) -> DeliveryResult:
        return cls(ok=False, error=f"channel configuration: {message}", retryable=False)


def is_retryable_status(status_code: int) -> bool:
    """5xx, 429 (rate limited) and 408 (request timeout) may succeed later; other 4xx never will."""
    return status_code >= 500 or status_code in (408, 429)


def config_errors(config: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    """Problems every channel kind shares: keys it does not know, and the timeout's bounds."""
    unknown = sorted(str(key) for key in set(config) - keys - {"timeout_seconds"})
    errors = []
    if unknown:
        allowed = ", ".join(sorted(keys | {"timeout_seconds"}))
        errors.append(f"unknown config keys {', '.join(unknown)}; allowed: {allowed}")
    timeout = config.get("timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS
    ):
        errors.append(
            f"timeout_seconds must be a number from {MIN_TIMEOUT_SECONDS:g} to {MAX_TIMEOUT_SECONDS:g}"
        )
    return errors


def timeout_from(config: Mapping[str, Any]) -> tuple[float, float]:
    # Capped here too: a channel stored before the bound existed must not hold a worker for hours.
    total = min(float(config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS), MAX_TIMEOUT_SECONDS)
    return (min(MAX_CONNECT_TIMEOUT_SECONDS, total), total)


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]) -> DeliveryResult:
    """POST a body to a judged target (`egress`) and classify the outcome.

    Redirects are not followed: a webhook answering 3xx is misconfigured, and following it would
    send a signed body to wherever the redirect points. Error texts never contain the URL, because
    Slack and many webhook URLs are themselves secrets, nor anything the receiver answered but its
    status.
    """
    try:
        target = egress.resolve(url)
    except egress.TargetRefused as exc:
        return DeliveryResult.config_error(str(exc))
    except (OSError, UnicodeError):
        return DeliveryResult(ok=False, error="the receiver's host name does not resolve", retryable=True)
    all_headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
    try:
        answer = egress.post(target, body, all_headers, timeout)
    except urllib3.exceptions.NewConnectionError:  # before TimeoutError: urllib3 derives it from that
        return DeliveryResult(ok=False, error="could not connect to the receiver", retryable=True)
    except urllib3.exceptions.TimeoutError:
        return DeliveryResult(ok=False, error=f"no answer within {timeout[1]:g} s", retryable=True)
    except urllib3.exceptions.SSLError:
        return DeliveryResult(ok=False, error="TLS with the receiver failed", retryable=True)
    except (urllib3.exceptions.ProtocolError, OSError):
        return DeliveryResult(ok=False, error="could not connect to the receiver", retryable=True)
    except urllib3.exceptions.HTTPError as exc:
        return DeliveryResult(ok=False, error=f"request not sent: {type(exc).__name__}", retryable=False)

    if 200 <= answer.status < 300:
        return DeliveryResult.delivered(answer.status)
    error = f"receiver answered {egress.status_text(answer.status)}"
    if 300 <= answer.status < 400:
        error += " (redirects are not followed)"
    return DeliveryResult(
        ok=False,
        status_code=answer.status,
        error=error,
        retryable=is_retryable_status(answer.status),
        retry_after_seconds=_retry_after(answer.retry_after),
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
