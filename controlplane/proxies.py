"""The address a request came from, when it reached the control plane through reverse proxies.

Behind an ingress controller or a load balancer, `REMOTE_ADDR` is the proxy's address for every
client, so per-address limits would count all clients as one. `TRUSTED_PROXIES` lists the networks
those proxies run in; a request whose peer is one of them is traced back through `X-Forwarded-For`,
right to left, to the first address no trusted proxy is in: the client as the outermost trusted proxy
saw it. Entries further left were written by the client and are never believed. Without trusted
proxies (the default) the peer address is the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(configured: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in configured)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(remote: str, forwarded_for: str, trusted: Sequence[str]) -> str:
    """The client's address for a request from peer `remote` carrying `X-Forwarded-For: forwarded_for`."""
    networks = _networks(tuple(trusted))
    if not _trusted(remote, networks):
        return remote
    vouched = remote  # the last address a trusted party stands behind
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return vouched  # not an address a proxy wrote: what is left of it is the client's own
        if not _trusted(hop, networks):
            return hop
        vouched = hop
    return vouched


def client_address(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    if remote is None or not settings.TRUSTED_PROXIES:
        return remote
    return forwarded_client(remote, request.META.get("HTTP_X_FORWARDED_FOR", ""), settings.TRUSTED_PROXIES)
