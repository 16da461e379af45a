"""Where notifications may go (monitoring/notifiers/egress.py), and what a tenant may configure.

Channel URLs that resolve to loopback, link-local, private or unspecified addresses are refused when
the channel is created and again at every delivery; the operator may allow named on-premise hosts.
A request connects to the address that was judged (shown by a name only this test's resolver knows),
redirects are not followed, custom headers cannot say how the request travels, and a channel's
timeout is bounded. The receivers are real HTTP servers on 127.0.0.1 (tests/support/http_receiver.py).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from monitoring.alerting.choices import DeliveryStatus
from monitoring.alerting.models import NotificationChannel
from monitoring.notifiers import egress, send, validate_config
from monitoring.notifiers.base import MAX_TIMEOUT_SECONDS, timeout_from
from tests.monitoring.test_notifiers import NOTIFICATION
from tests.support.alerting import run_due_deliveries
from tests.support.http_receiver import HttpReceiver
from tests.support.tenants import Tenant, token_client

CHANNELS = "/api/v1/notification-channels/"
INTERNAL_URLS = [
    "http://127.0.0.1/hook",
    "http://localhost:8000/hook",
    "http://2130706433/hook",
    "http://127.1/hook",
    "http://0x7f.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "https://192.168.1.10/hook",
    "http://100.64.0.1/hook",
]


def channel_body(kind: str, url: str) -> dict[str, Any]:
    config = {
        "webhook": {"url": url, "secret": "whsec-secret"},
        "slack": {"webhook_url": url},
        "pagerduty": {"routing_key": "R0UT1NG", "url": url},
    }[kind]
    return {"name": f"{kind}-channel", "kind": kind, "config": config}


@pytest.mark.parametrize("kind", ["webhook", "slack", "pagerduty"])
@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_targets_are_refused_at_creation(tenant: Tenant, kind: str, url: str) -> None:
    response = token_client(tenant.admin).post(CHANNELS, channel_body(kind, url), format="json")

    assert response.status_code == 400, response.content
    (message,) = response.json()["config"]
    assert "notifications go only to public addresses" in message
    assert not NotificationChannel.objects.exists()


def test_an_allowed_host_may_be_a_target(tenant: Tenant, settings: Any) -> None:
    settings.NOTIFICATION_ALLOWED_HOSTS = ["localhost", "10.0.0.0/8"]
    client = token_client(tenant.admin)

    by_name = client.post(CHANNELS, channel_body("webhook", "http://localhost:9/hook"), format="json")
    by_network = client.post(CHANNELS, channel_body("slack", "http://10.1.2.3/hook"), format="json")
    elsewhere = client.post(CHANNELS, channel_body("pagerduty", "http://192.168.0.1/"), format="json")

    assert (by_name.status_code, by_network.status_code, elsewhere.status_code) == (201, 201, 400)


def test_a_host_that_does_not_resolve_yet_is_accepted_and_judged_at_delivery(tenant: Tenant) -> None:
    body = channel_body("webhook", "https://receiver.invalid/hook")

    assert token_client(tenant.admin).post(CHANNELS, body, format="json").status_code == 201
    result = send("webhook", body["config"], NOTIFICATION)
    assert not result.ok and result.retryable
    assert result.error == "the receiver's host name does not resolve"


def test_every_delivery_judges_the_target_again(
    tenant: Tenant, settings: Any, http_receiver: HttpReceiver
) -> None:
    config = {"url": http_receiver.url_for("/hook"), "secret": "k"}
    assert send("webhook", config, NOTIFICATION).ok
    settings.NOTIFICATION_ALLOWED_HOSTS = []  # the operator withdraws the permission

    result = send("webhook", config, NOTIFICATION)

    assert not result.ok and not result.retryable
    assert "127.0.0.1, a loopback address" in (result.error or "")
    assert len(http_receiver.requests) == 1


def test_the_request_goes_to_the_judged_address(
    http_receiver: HttpReceiver, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in resolver: `receiver.test` exists only here, so the request can reach the receiver
    # only by connecting to the address judged from that one resolution.
    settings.NOTIFICATION_ALLOWED_HOSTS = ["receiver.test"]
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real("127.0.0.1" if host == "receiver.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = http_receiver.url.rsplit(":", 1)[1]

    result = send("webhook", {"url": f"http://receiver.test:{port}/hook?x=1", "secret": "k"}, NOTIFICATION)

    assert result.ok, result.error
    (request,) = http_receiver.requests
    assert request.header("Host") == f"receiver.test:{port}"
    assert request.path == "/hook?x=1"
    assert lookups.count("receiver.test") == 1


def test_redirects_are_not_followed(http_receiver: HttpReceiver) -> None:
    http_receiver.respond_with(302, headers={"Location": "http://169.254.169.254/"})

    result = send("slack", {"webhook_url": http_receiver.url}, NOTIFICATION)

    assert not result.ok and not result.retryable
    assert result.error == "receiver answered 302 Found (redirects are not followed)"
    assert len(http_receiver.requests) == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Host": "internal.example"}, "may not set Host"),
        ({"content-length": "0"}, "may not set content-length"),
        ({"Transfer-Encoding": "chunked"}, "may not set Transfer-Encoding"),
        ({"X-Evil\r\nHost": "x"}, "is not a header name"),
        ({"X-Token": "a\r\nHost: internal"}, "line breaks or control characters"),
        ({"X-Token": 5}, "must be text"),
        ({"X-KCP-Signature": "x"}, "reserved for signing"),
        ({f"X-H{i}": "v" for i in range(21)}, "at most 20"),
    ],
)
def test_custom_headers_cannot_say_how_the_request_travels(
    tenant: Tenant, headers: dict[str, Any], message: str
) -> None:
    body = channel_body("webhook", "https://hooks.example.com/x")
    body["config"]["headers"] = headers

    response = token_client(tenant.admin).post(CHANNELS, body, format="json")

    assert response.status_code == 400
    assert any(message in m for m in response.json()["config"]), response.json()


def test_allowed_custom_headers_arrive(http_receiver: HttpReceiver) -> None:
    config = {"url": http_receiver.url, "secret": "k", "headers": {"Authorization": "Bearer abc"}}

    assert send("webhook", config, NOTIFICATION).ok
    assert http_receiver.requests[0].header("Authorization") == "Bearer abc"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timeout_seconds": "abc"}, "timeout_seconds must be a number from 1 to 30"),
        ({"timeout_seconds": 100000}, "timeout_seconds must be a number from 1 to 30"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a number from 1 to 30"),
        ({"timeout_seconds": True}, "timeout_seconds must be a number from 1 to 30"),
        ({"retries": 3}, "unknown config keys retries"),
        ({"nested": {"deep": 1}}, "unknown config keys nested"),
    ],
)
@pytest.mark.parametrize("kind", ["webhook", "slack", "pagerduty", "email"])
def test_config_values_are_checked_when_stored(
    tenant: Tenant, kind: str, config: dict[str, Any], message: str
) -> None:
    base = {
        "webhook": {"url": "https://hooks.example.com/x", "secret": "k"},
        "slack": {"webhook_url": "https://hooks.example.com/x"},
        "pagerduty": {"routing_key": "R"},
        "email": {"to": "ops@example.com"},
    }[kind]
    body = {"name": "c", "kind": kind, "config": {**base, **config}}

    response = token_client(tenant.admin).post(CHANNELS, body, format="json")

    assert response.status_code == 400
    assert any(message in m for m in response.json()["config"]), response.json()
    assert any(message in m for m in validate_config(kind, body["config"]))


def test_a_stored_timeout_beyond_the_bound_is_capped_at_delivery() -> None:
    # Channels stored before the bound existed must not hold a worker slot for a day.
    assert timeout_from({"timeout_seconds": 100000}) == (5.0, MAX_TIMEOUT_SECONDS)


def test_a_receivers_answer_is_never_recorded(tenant: Tenant, http_receiver: HttpReceiver) -> None:
    http_receiver.respond_with(500, body="internal secrets of the target " * 40)
    client = token_client(tenant.admin)
    created = client.post(
        CHANNELS, channel_body("webhook", http_receiver.url_for("/hook")), format="json"
    ).json()
    client.post(f"{CHANNELS}{created['id']}/test/")

    run_due_deliveries()

    body = client.get(f"{CHANNELS}{created['id']}/deliveries/").content.decode()
    assert "internal secrets" not in body
    (first, *_) = client.get(f"{CHANNELS}{created['id']}/deliveries/").json()["results"][::-1]
    assert first["status"] == DeliveryStatus.RETRYING
    assert first["error"] == "receiver answered 500 Internal Server Error"


def test_refused_reasons() -> None:
    assert egress.refused_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert egress.refused_reason(ipaddress.ip_address("::ffff:10.0.0.1")) == "a private or reserved address"
    assert egress.refused_reason(ipaddress.ip_address("fe80::1")) == "a link-local address"
    assert egress.refused_reason(ipaddress.ip_address("224.0.0.1")) == "a multicast address"
