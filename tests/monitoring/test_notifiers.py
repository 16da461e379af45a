"""Notifiers against a real HTTP server on loopback (tests/support/http_receiver.py)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from monitoring import notifiers
from monitoring.notifiers import Event, Link, Notification, send, validate_config, verify_signature
from monitoring.notifiers.base import is_retryable_status
from monitoring.notifiers.email import build_email
from monitoring.notifiers.webhook import sign
from tests.support.http_receiver import HttpReceiver
from tests.support.smtp_receiver import SmtpReceiver

NOTIFICATION = Notification(
    event=Event.TRIGGER,
    dedup_key="kcp:c-1:under_min_isr:topic:orders",
    severity="critical",
    summary="Topic orders has 3 partitions with fewer in-sync replicas than min.insync.replicas.",
    cluster="prod-eu",
    rule="under_min_isr",
    subject="topic:orders",
    details={"brokers": [3], "partitions": ["orders[0]", "orders[1]", "orders[2]"]},
    links=(Link("https://kcp.example/alerts/17", "Open in Kafka Control Plane"),),
    occurred_at=datetime(2026, 11, 3, 12, 0, tzinfo=UTC),
)


def with_event(event: Event) -> Notification:
    return Notification(**{**NOTIFICATION.__dict__, "event": event})


# PagerDuty


def test_pagerduty_trigger_payload(http_receiver: HttpReceiver) -> None:
    http_receiver.respond_with(202, '{"status":"success","dedup_key":"x"}')
    config = {"routing_key": "R0UT1NGKEY", "url": http_receiver.url_for("/v2/enqueue")}

    result = send("pagerduty", config, NOTIFICATION)

    assert result.ok and result.status_code == 202
    (request,) = http_receiver.requests
    assert request.method == "POST" and request.path == "/v2/enqueue"
    assert request.header("Content-Type") == "application/json"
    event = request.json()
    assert event["routing_key"] == "R0UT1NGKEY"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == NOTIFICATION.dedup_key
    payload = event["payload"]
    assert payload["summary"] == f"prod-eu: {NOTIFICATION.summary}"
    assert payload["source"] == "prod-eu"
    assert payload["severity"] == "critical"
    assert payload["component"] == "topic:orders"
    assert payload["class"] == "under_min_isr"
    assert payload["timestamp"] == "2026-11-03T12:00:00+00:00"
    assert payload["custom_details"]["partitions"] == ["orders[0]", "orders[1]", "orders[2]"]
    assert event["links"] == [
        {"href": "https://kcp.example/alerts/17", "text": "Open in Kafka Control Plane"}
    ]


@pytest.mark.parametrize("event", [Event.ACKNOWLEDGE, Event.RESOLVE])
def test_pagerduty_acknowledge_and_resolve_carry_only_the_key(
    http_receiver: HttpReceiver, event: Event
) -> None:
    http_receiver.respond_with(202, "{}")
    config = {"routing_key": "R", "url": http_receiver.url}
    assert send("pagerduty", config, with_event(event)).ok
    assert http_receiver.requests[0].json() == {
        "routing_key": "R",
        "event_action": event.value,
        "dedup_key": NOTIFICATION.dedup_key,
    }


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("warning", "warning"), ("info", "info")],
)
def test_pagerduty_severity_mapping(http_receiver: HttpReceiver, severity: str, expected: str) -> None:
    http_receiver.respond_with(202, "{}")
    notification = Notification(**{**NOTIFICATION.__dict__, "severity": severity})
    send("pagerduty", {"routing_key": "R", "url": http_receiver.url}, notification)
    assert http_receiver.requests[0].json()["payload"]["severity"] == expected


def test_pagerduty_test_event_resolves_itself(http_receiver: HttpReceiver) -> None:
    http_receiver.respond_with(202, "{}")
    result = send("pagerduty", {"routing_key": "R", "url": http_receiver.url}, with_event(Event.TEST))
    assert result.ok
    assert [r.json()["event_action"] for r in http_receiver.requests] == ["trigger", "resolve"]


def test_pagerduty_rejects_invalid_event_without_retry(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first(1, 400, '{"status":"invalid event","message":"Event object is invalid"}')
    result = send("pagerduty", {"routing_key": "R", "url": http_receiver.url}, NOTIFICATION)
    assert not result.ok and not result.retryable
    assert result.status_code == 400
    # Only the status is kept: what a receiver answers is not ours to store or show.
    assert result.error == "receiver answered 400 Bad Request"


def test_pagerduty_rate_limit_is_retryable_then_succeeds(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first(1, 429, "slow down", headers={"Retry-After": "7"})
    http_receiver.respond_with(202, "{}")
    config = {"routing_key": "R", "url": http_receiver.url}
    first = send("pagerduty", config, NOTIFICATION)
    assert not first.ok and first.retryable and first.retry_after_seconds == 7
    assert send("pagerduty", config, NOTIFICATION).ok
    assert len(http_receiver.requests) == 2


def test_pagerduty_defaults_to_the_events_api() -> None:
    assert notifiers.pagerduty.EVENTS_API_URL == "https://events.pagerduty.com/v2/enqueue"
    assert validate_config("pagerduty", {}) == [
        "routing_key (the integration key of an Events API v2 integration) is required"
    ]


# Slack


def test_slack_message_is_readable(http_receiver: HttpReceiver) -> None:
    result = send("slack", {"webhook_url": http_receiver.url_for("/services/T/B/X")}, NOTIFICATION)
    assert result.ok
    message = http_receiver.requests[0].json()
    assert message["text"].startswith("Critical: under min isr on prod-eu: Topic orders has 3 partitions")
    header, summary, fields, actions, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Critical: under min isr on prod-eu", "emoji": True},
    }
    assert summary["text"]["text"] == f":red_circle: {NOTIFICATION.summary}"
    assert {"type": "mrkdwn", "text": "*Subject*\ntopic:orders"} in fields["fields"]
    assert actions["elements"][0]["url"] == "https://kcp.example/alerts/17"
    assert NOTIFICATION.dedup_key in context["elements"][0]["text"]


def test_slack_resolved_notice_and_escaping(http_receiver: HttpReceiver) -> None:
    notification = Notification(
        **{**with_event(Event.RESOLVE).__dict__, "summary": "Group <b&b> recovered.", "links": ()}
    )
    assert send("slack", {"webhook_url": http_receiver.url}, notification).ok
    message = http_receiver.requests[0].json()
    assert message["blocks"][0]["text"]["text"] == "Resolved: under min isr on prod-eu"
    assert message["blocks"][1]["text"]["text"] == (
        ":white_check_mark: This has cleared. It was: Group &lt;b&amp;b&gt; recovered."
    )
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "context"]


def test_slack_archived_channel_is_not_retryable(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first(1, 410, "channel_is_archived")
    result = send("slack", {"webhook_url": http_receiver.url}, NOTIFICATION)
    assert not result.ok and not result.retryable and result.status_code == 410


# Generic webhook


def test_webhook_is_signed_and_verifiable(http_receiver: HttpReceiver) -> None:
    config = {"url": http_receiver.url_for("/hook"), "secret": "s3cret", "headers": {"X-Team": "payments"}}
    assert send("webhook", config, NOTIFICATION).ok

    request = http_receiver.requests[0]
    timestamp = request.header("X-KCP-Timestamp")
    signature = request.header("X-KCP-Signature")
    assert timestamp is not None and signature is not None
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify_signature("s3cret", timestamp, request.body, signature)
    assert not verify_signature("other", timestamp, request.body, signature)
    assert not verify_signature("s3cret", timestamp, request.body + b" ", signature)
    assert request.header("X-Team") == "payments"
    assert request.header("X-KCP-Event") == "trigger"
    assert request.header("X-KCP-Delivery")
    body = request.json()
    assert body["version"] == 1
    assert body["dedup_key"] == NOTIFICATION.dedup_key
    assert body["details"]["brokers"] == [3]


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == f"sha256={expected}"


def test_verify_signature_rejects_stale_and_malformed_timestamps() -> None:
    signature = sign("k", "1000", b"{}")
    assert verify_signature("k", "1000", b"{}", signature, now=1100)
    assert not verify_signature("k", "1000", b"{}", signature, now=1000 + 301)
    assert not verify_signature("k", "soon", b"{}", signature, now=1000)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (429, True), (408, True), (400, False), (401, False),
     (403, False), (404, False), (410, False), (301, False)],
)  # fmt: skip
def test_retry_classification_over_http(http_receiver: HttpReceiver, status: int, retryable: bool) -> None:
    http_receiver.fail_first(
        1, status, headers={"Location": "http://127.0.0.1:1/"} if status == 301 else None
    )
    result = send("webhook", {"url": http_receiver.url, "secret": "k"}, NOTIFICATION)
    assert not result.ok
    assert result.status_code == status
    assert result.retryable is retryable
    assert is_retryable_status(status) is retryable


def test_fail_first_n_then_success(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first(2, 503)
    config = {"url": http_receiver.url, "secret": "k"}
    results = [send("webhook", config, NOTIFICATION) for _ in range(3)]
    assert [(r.ok, r.retryable) for r in results] == [(False, True), (False, True), (True, False)]
    deliveries = {r.header("X-KCP-Delivery") for r in http_receiver.wait_for_requests(3)}
    assert len(deliveries) == 3


def test_connection_refused_is_retryable_and_hides_the_url(allow_loopback_receivers: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/SECRET-TOKEN"
    result = send("slack", {"webhook_url": url}, NOTIFICATION)
    assert not result.ok and result.retryable and result.status_code is None
    assert result.error is not None and "SECRET-TOKEN" not in result.error


def test_timeout_is_retryable(http_receiver: HttpReceiver) -> None:
    http_receiver.delay_responses(3.0)
    result = send("webhook", {"url": http_receiver.url, "secret": "k", "timeout_seconds": 1}, NOTIFICATION)
    assert not result.ok and result.retryable
    assert result.error == "no answer within 1 s"


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("webhook", {"url": "ftp://x", "secret": "k"}, "url must be an http(s) URL"),
        ("webhook", {"url": "http://x"}, "secret is required"),
        ("webhook", {"url": "http://x", "secret": "k", "headers": {"X-KCP-Signature": "x"}}, "reserved"),
        ("slack", {}, "webhook_url"),
        ("email", {"to": []}, "at least one email address"),
        ("email", {"to": "ops@example.com, not an address"}, "not an email address"),
        ("sms", {}, "unknown channel kind 'sms'"),
    ],
)
def test_bad_configuration_is_reported_not_raised(kind: str, config: dict, message: str) -> None:
    result = send(kind, config, NOTIFICATION)
    assert not result.ok and not result.retryable
    assert result.error is not None and message in result.error
    assert any(message in e for e in validate_config(kind, config))


@pytest.mark.parametrize("severity", ["urgent", "error"])
def test_a_severity_outside_the_one_scale_is_rejected(severity: str) -> None:
    with pytest.raises(ValueError, match="severity must be one of critical, warning, info"):
        Notification(**{**NOTIFICATION.__dict__, "severity": severity})


# Email


def test_email_subject_and_body() -> None:
    notification = Notification(**{**NOTIFICATION.__dict__, "subject": "topic:evil\r\nBcc: x@y"})
    subject, body = build_email(notification)
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("[CRITICAL] prod-eu: under min isr on topic:evil Bcc: x@y: Topic orders")
    assert "Cluster:  prod-eu" in body
    assert "Open in Kafka Control Plane: https://kcp.example/alerts/17" in body
    assert f"Incident key: {NOTIFICATION.dedup_key}" in body


def test_email_goes_through_djangos_mail_backend_to_a_real_smtp_server(
    smtp_receiver: SmtpReceiver, settings: Any
) -> None:
    settings.DEFAULT_FROM_EMAIL = "kcp@localhost"

    result = send("email", {"to": "ops@example.com, oncall@example.com"}, with_event(Event.RESOLVE))

    assert result.ok
    (mail,) = smtp_receiver.wait_for(1)
    assert mail.recipients == ["ops@example.com", "oncall@example.com"]
    assert mail.sender == "kcp@localhost"
    assert mail.message["Subject"].startswith("[RESOLVED] prod-eu: under min isr on topic:orders")
    assert mail.body.startswith("This alert has cleared.")


def test_unreachable_mail_server_is_retryable() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    from django.test import override_settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_TIMEOUT=2,
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
    ):
        result = send("email", {"to": ["ops@example.com"]}, NOTIFICATION)
    assert not result.ok and result.retryable


def _texts(value: Any) -> list[tuple[str, str]]:
    """(kind, text) of every text in a Slack message: the top-level text and each text object."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            found.append((value.get("type", "top-level"), value["text"]))
        for child in value.values():
            found += _texts(child)
    elif isinstance(value, list):
        for child in value:
            found += _texts(child)
    return found


@pytest.mark.parametrize("length", [10, 5000])
def test_slack_escapes_every_text_and_keeps_within_limits(http_receiver: HttpReceiver, length: int) -> None:
    group = "<!channel> & <@U123> " + "<&>" * length
    notification = Notification(
        **{
            **NOTIFICATION.__dict__,
            "summary": f"Consumer group {group} committed nothing while 12 messages wait.",
            "subject": f"group:{group}",
            "dedup_key": f"kcp:c-1:consumer_lag:group:{group}"[:255],
        }
    )

    assert send("slack", {"webhook_url": http_receiver.url}, notification).ok
    message = http_receiver.requests[0].json()

    texts = _texts(message)
    assert len(texts) >= 8
    for kind, text in texts:
        assert "<" not in text and ">" not in text, (kind, text[:200])
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", ""), kind
    assert message["text"].startswith("Critical: under min isr on prod-eu: Consumer group &lt;!channel&gt;")
    header, summary, fields = message["blocks"][0], message["blocks"][1], message["blocks"][2]
    assert len(header["text"]["text"]) <= 150
    assert len(summary["text"]["text"]) <= 3000 and len(message["text"]) <= 3000
    assert all(len(f["text"]) <= 2000 for f in fields["fields"])
    assert fields["fields"][3]["text"].startswith("*Subject*\ngroup:&lt;!channel&gt; &amp; &lt;@U123&gt;")
