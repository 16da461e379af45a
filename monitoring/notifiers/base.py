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
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from monitoring.conditions import Condition

USER_AGENT = "kafka-control-plane-notifier/1"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Connecting should be quick; a slow connect means the endpoint is unreachable, so it gets a shorter
# limit than the whole request.
MAX_CONNECT_TIMEOUT_SECONDS = 5.0
SEVERITIES = ("critical", "error", "warning", "info")
MAX_EXCERPT_CHARS = 500


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
    severity: str  # critical, error, warning or info
    summary: str  # one plain sentence
    cluster: str  # the cluster's display name
    rule: str  # rule key, e.g. "under_min_isr"
    subject: str  # e.g. "topic:orders", "broker:3", "group:billing"
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    links: tuple[Link, ...] = ()
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")

    @classmethod
    def from_condition(
        cls,
        condition: Condition,
        *,
        event: Event,
        cluster: str,
        links: tuple[Link, ...] = (),
        occurred_at: datetime | None = None,
    ) -> Notification:
        return cls(
            event=event,
            dedup_key=condition.dedup_key,
            severity=condition.severity.value,
            summary=condition.summary,
            cluster=cluster,
            rule=condition.rule_key,
            subject=condition.subject,
            details=dict(condition.details),
            links=links,
            occurred_at=occurred_at,
        )

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
    response_excerpt: str = ""

    @classmethod
    def delivered(cls, status_code: int | None = None, response_excerpt: str = "") -> DeliveryResult:
        return cls(ok=True, status_code=status_code, response_excerpt=response_excerpt)

    @classmethod
    def config_error(cls, message: str) -> DeliveryResult:
        return cls(ok=False, error=f"channel configuration: {message}", retryable=False)


def is_retryable_status(status_code: int) -> bool:
    """5xx, 429 (rate limited) and 408 (request timeout) may succeed later; other 4xx never will."""
    return status_code >= 500 or status_code in (408, 429)


def timeout_from(config: Mapping[str, Any]) -> tuple[float, float]:
    total = float(config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
    return (min(MAX_CONNECT_TIMEOUT_SECONDS, total), total)


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]) -> DeliveryResult:
    """POST a body and classify the outcome.

    Redirects are not followed: a webhook answering 3xx is misconfigured, and following it would
    send a signed body to wherever the redirect points. Error texts never contain the URL, because
    Slack and many webhook URLs are themselves secrets.
    """
    all_headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
    try:
        response = requests.post(url, data=body, headers=all_headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        return DeliveryResult(ok=False, error=f"no answer within {timeout[1]:g} s", retryable=True)
    except requests.ConnectionError:
        return DeliveryResult(ok=False, error="could not connect to the receiver", retryable=True)
    except requests.RequestException as exc:
        return DeliveryResult(ok=False, error=f"request not sent: {type(exc).__name__}", retryable=False)

    excerpt = response.text[:MAX_EXCERPT_CHARS]
    if 200 <= response.status_code < 300:
        return DeliveryResult.delivered(response.status_code, excerpt)
    return DeliveryResult(
        ok=False,
        status_code=response.status_code,
        error=f"receiver answered {response.status_code} {response.reason}".rstrip(),
        retryable=is_retryable_status(response.status_code),
        retry_after_seconds=_retry_after(response.headers.get("Retry-After")),
        response_excerpt=excerpt,
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
