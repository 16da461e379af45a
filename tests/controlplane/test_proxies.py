"""Client addresses behind the operator's reverse proxies (controlplane.proxies): what the per-address
limits on failed authentication and the audit log count as one client."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from controlplane.audit.models import AuditEvent
from controlplane.proxies import forwarded_client
from tests.support.tenants import Tenant

PROXIES = ["10.0.0.0/8", "fd00::/8"]


@pytest.mark.parametrize(
    ("remote", "forwarded_for", "client"),
    [
        # No proxy in between: the peer is the client, whatever it claims.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # One ingress: the address it appended.
        ("10.1.2.3", "203.0.113.9", "203.0.113.9"),
        # A load balancer, then the ingress: the first address no trusted proxy is in.
        ("10.1.2.3", "203.0.113.9, 10.9.9.9", "203.0.113.9"),
        # What the client wrote itself (left of its own address) is never believed.
        ("10.1.2.3", "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("10.1.2.3", "not-an-address, 10.2.2.2", "10.2.2.2"),
        # A trusted peer without the header, or only trusted hops: the last one vouched for.
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "10.4.4.4", "10.4.4.4"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_is_the_first_address_no_trusted_proxy_is_in(
    remote: str, forwarded_for: str, client: str
) -> None:
    assert forwarded_client(remote, forwarded_for, PROXIES) == client


# Addresses above 10.0.0.0/8 (outside the trusted proxies' network), and inside it.
public_ipv4 = st.integers(0x0B000000, 0xDFFFFFFF).map(lambda n: str(ipaddress.ip_address(n)))
proxy_ipv4 = st.integers(0, 2**24 - 1).map(lambda n: str(ipaddress.ip_address(0x0A000000 + n)))


@given(
    forged=st.lists(st.one_of(public_ipv4, proxy_ipv4, st.text(max_size=20)), max_size=5),
    client=public_ipv4,
    chain=st.lists(proxy_ipv4, min_size=1, max_size=4),
)
def test_nothing_a_client_writes_changes_its_address(
    forged: list[str], client: str, chain: list[str]
) -> None:
    """Whatever a client puts into X-Forwarded-For, behind any chain of trusted proxies (each
    appending its peer, the last one connecting to us) its address is the one the first proxy saw."""
    header = ", ".join([*(f.replace(",", "") for f in forged), client, *chain[:-1]])
    assert forwarded_client(chain[-1], header, PROXIES) == client


def test_clients_behind_one_ingress_are_throttled_apart(tenant: Tenant, settings: Any) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    settings.AUTH_FAILURES_PER_ADDRESS = 3

    def call(token: str, client: str) -> int:
        api = APIClient(REMOTE_ADDR="10.244.1.17", HTTP_X_FORWARDED_FOR=client)  # the ingress pod
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api.get("/api/v1/clusters/").status_code

    assert [call(f"kcp_guess-{i}", "203.0.113.9") for i in range(4)] == [401, 401, 401, 429]
    # Another client behind the same ingress is not locked out by the first one's guesses ...
    assert call("kcp_guess-other", "198.51.100.4") == 401
    # ... and the guesser cannot shed its limit by writing another address in front of its own.
    assert call("kcp_guess-again", "198.51.100.4, 203.0.113.9") == 429


def test_the_audit_log_records_the_client_behind_the_ingress(tenant: Tenant, settings: Any) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    client = APIClient(REMOTE_ADDR="10.244.1.17", HTTP_X_FORWARDED_FOR="203.0.113.9")
    client.force_authenticate(tenant.admin)
    response = client.post(
        "/api/v1/clusters/",
        {"name": "orders", "brokers": 1, "organization": tenant.organization.slug},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert AuditEvent.objects.latest("id").source_address == "203.0.113.9"
