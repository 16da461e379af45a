"""Failed sign-ins and API tokens are throttled per account and per address, in the database that every
web process shares; /metrics answers only the operator's Prometheus token and staff API tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.audit.actions import Actor
from controlplane.tenancy.actions import create_api_token
from controlplane.tenancy.models import AuthFailureWindow
from tests.support.tenants import Tenant, make_user
from tests.support.workers import ROOT, database_url

PASSWORD = "correct-horse-battery"  # tests/support/tenants.py
SYSTEM = Actor.system("tests")


def sign_in(username: str, password: str, address: str = "127.0.0.1") -> Any:
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def end_windows() -> None:
    """As if the window had passed (the throttle compares stored times with the clock)."""
    AuthFailureWindow.objects.update(window_started_at=timezone.now() - timedelta(hours=1))


def test_forty_wrong_passwords_lock_the_account_for_the_window(tenant: Tenant) -> None:
    username = tenant.owner.username
    limit = django_settings.AUTH_FAILURES_PER_ACCOUNT

    answers = [sign_in(username, f"guess-{i}") for i in range(40)]

    assert [a.status_code for a in answers[:limit]] == [200] * limit  # the form, with its error
    refused = answers[limit:]
    assert {a.status_code for a in refused} == {429}
    assert 0 < int(refused[-1]["Retry-After"]) <= django_settings.AUTH_FAILURE_WINDOW_SECONDS
    assert b"Too many failed sign-ins" in refused[-1].content
    # The right password is refused too while the window lasts, then works.
    assert sign_in(username, PASSWORD, address="10.1.1.1").status_code == 429
    end_windows()
    assert sign_in(username, PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_is_throttled(tenant: Tenant, settings: Any) -> None:
    settings.AUTH_FAILURES_PER_ADDRESS = 5

    answers = [sign_in(f"user-{i}", "guess", address="203.0.113.9") for i in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert sign_in(tenant.owner.username, PASSWORD, address="203.0.113.9").status_code == 429
    assert sign_in(tenant.owner.username, PASSWORD, address="203.0.113.10").status_code == 302


def test_the_admin_sign_in_is_throttled_too(tenant: Tenant, settings: Any) -> None:
    settings.AUTH_FAILURES_PER_ACCOUNT = 2
    client = Client()
    for _ in range(2):
        client.post("/admin/login/", {"username": tenant.owner.username, "password": "guess"})

    response = client.post("/admin/login/", {"username": tenant.owner.username, "password": PASSWORD})

    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_wrong_tokens_throttle_the_address_and_the_account_they_claim(tenant: Tenant, settings: Any) -> None:
    settings.AUTH_FAILURES_PER_ADDRESS = 5
    _, raw = create_api_token(user=tenant.admin, name="ci", actor=SYSTEM)

    def call(token: str, address: str) -> Any:
        client = APIClient(REMOTE_ADDR=address)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.get("/api/v1/clusters/")

    guesses = [call(f"kcp_random-guess-{i}", "198.51.100.7") for i in range(6)]
    assert [g.status_code for g in guesses] == [401] * 5 + [429]
    assert int(guesses[-1]["Retry-After"]) > 0
    assert call(raw, "198.51.100.7").status_code == 429
    assert call(raw, "198.51.100.8").status_code == 200

    # Guesses at the admin's token (its prefix is not secret) lock that account from anywhere.
    settings.AUTH_FAILURES_PER_ADDRESS = 1000
    for i in range(django_settings.AUTH_FAILURES_PER_ACCOUNT):
        assert call(raw[:12] + f"-guess-{i}", f"192.0.2.{i}").status_code == 401
    assert call(raw, "192.0.2.200").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_failures_counted_by_another_process_count_here() -> None:
    make_user("remote-target")
    script = (
        "import django; django.setup()\n"
        "from controlplane.tenancy import throttle\n"
        "keys = throttle.keys_for(account='remote-target', address='192.0.2.77')\n"
        f"for _ in range({django_settings.AUTH_FAILURES_PER_ACCOUNT}): throttle.record_failure(keys)\n"
    )
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "controlplane.settings"}
    env.pop("TEST_DATABASE_NAME", None)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=120)

    assert sign_in("remote-target", PASSWORD, address="192.0.2.78").status_code == 429


# /metrics


@pytest.fixture
def metrics_token(settings: Any, db: None) -> str:
    settings.METRICS_BEARER_TOKEN = "prometheus-scrape-token"
    return settings.METRICS_BEARER_TOKEN


def scrape(authorization: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return Client().get("/metrics", **headers)


def test_metrics_answer_the_configured_token(metrics_token: str) -> None:
    response = scrape(f"Bearer {metrics_token}")

    assert response.status_code == 200
    assert b"controlplane_http_requests_total" in response.content


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer a b"]
)
def test_metrics_refuse_anyone_else(metrics_token: str, authorization: str | None) -> None:
    response = scrape(authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"kafka_" not in response.content and b"controlplane_" not in response.content


def test_metrics_answer_staff_api_tokens_only(tenant: Tenant) -> None:
    staff = make_user("operator")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    _, staff_token = create_api_token(user=staff, name="ops", actor=SYSTEM)
    _, owner_token = create_api_token(user=tenant.owner, name="mine", actor=SYSTEM)

    assert scrape(f"Bearer {staff_token}").status_code == 200
    assert scrape(f"Bearer {owner_token}").status_code == 401


def test_without_a_configured_token_no_bearer_matches(db: None) -> None:
    assert django_settings.METRICS_BEARER_TOKEN == ""
    assert scrape("Bearer ").status_code == 401
    assert scrape("Bearer x").status_code == 401
