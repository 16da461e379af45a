"""The API tokens page: a new token's secret is shown exactly once and works; revoking stops it."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from controlplane.tenancy.actions import create_api_token
from controlplane.tenancy.models import ApiToken
from tests.support.tenants import SYSTEM, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of(tenant: Tenant) -> Client:
    client = Client()
    client.force_login(tenant.viewer)
    return client


def api_status(raw: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/api/v1/clusters/").status_code


def test_a_new_token_is_shown_once_and_works(client_of: Client, tenant: Tenant) -> None:
    response = client_of.post("/tokens/", {"name": "ci", "expires_in": "30"}, follow=True)

    raw = re.search(
        r'id="new-token-value" class="mono" type="text" readonly value="([^"]+)"', response.content.decode()
    )
    assert raw is not None
    token = ApiToken.objects.get(user=tenant.viewer)
    assert raw.group(1).startswith(token.prefix)
    assert token.expires_at is not None
    assert api_status(raw.group(1)) == 200

    again = client_of.get("/tokens/").content.decode()
    assert raw.group(1) not in again
    assert f"{token.prefix}…" in again


def test_a_token_needs_a_name(client_of: Client) -> None:
    response = client_of.post("/tokens/", {"name": "", "expires_in": ""})

    assert response.status_code == 200
    assert "This field is required." in response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()


def test_revoke_stops_the_token(client_of: Client, tenant: Tenant) -> None:
    token, raw = create_api_token(user=tenant.viewer, name="old", actor=SYSTEM)

    response = client_of.post(f"/tokens/{token.pk}/revoke/", follow=True)

    assert b"Token old revoked" in response.content
    assert b"Revoked" in response.content
    assert api_status(raw) == 401


def test_someone_elses_token_answers_404(client_of: Client, tenant: Tenant) -> None:
    token, raw = create_api_token(user=tenant.admin, name="theirs", actor=SYSTEM)

    assert client_of.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert b"theirs" not in client_of.get("/tokens/").content
    assert api_status(raw) == 200
