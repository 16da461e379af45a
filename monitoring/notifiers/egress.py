"""Where notifications may go, and the one HTTP request that takes them there.

Channel URLs are typed in by tenants, so a request to one must not reach what only the control plane
can reach: loopback, link-local (cloud metadata at 169.254.169.254), private networks, or 0.0.0.0.
A URL's host is resolved once, every address it resolves to is judged (numeric forms such as
`2130706433`, `127.1` or `[::ffff:127.0.0.1]` included, since the resolver reads them too), and the
request then connects to the address that was judged, so a name that resolves differently a moment
later (DNS rebinding) cannot slip through. TLS still verifies the certificate of the host name.

Operators with on-premise receivers name them in the setting `NOTIFICATION_ALLOWED_HOSTS` (host
names, addresses or networks). Redirects are never followed, and nothing of the receiver's answer but
its status is kept.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

import certifi
import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(Exception):
    """The URL may not be a notification target; the message says why, without the URL's secrets."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL, for the Host header and TLS verification
    port: int
    address: str  # the judged address the request connects to
    path: str  # path and query
    host_header: str
    basic_auth: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None


def allowed_hosts() -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Names and networks the operator allows although they are not public."""
    from django.conf import settings

    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in settings.NOTIFICATION_ALLOWED_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return frozenset(names), tuple(networks)


def url_shape_error(url: object) -> str | None:
    """What is wrong with a URL before anything is resolved; None when it may be used."""
    if not isinstance(url, str):
        return "must be an http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "must be an http(s) URL"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return "must be an http(s) URL"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "must not contain spaces or control characters"
    return None


def resolve(url: str) -> Target:
    """The URL's judged target; raises TargetRefused, or OSError when the name does not resolve."""
    if error := url_shape_error(url):
        raise TargetRefused(f"the URL {error}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    names, networks = allowed_hosts()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if host.lower().rstrip(".") not in names:
        for address in addresses:
            if reason := refused_reason(address, networks):
                raise TargetRefused(
                    f"{host} resolves to {address}, {reason}; notifications go only to public addresses "
                    "unless the operator allows the host (NOTIFICATION_ALLOWED_HOSTS)"
                )
    host_header = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != DEFAULT_PORTS[parts.scheme]:
        host_header += f":{parts.port}"
    auth = None
    if parts.username is not None:
        auth = f"{parts.username}:{parts.password or ''}"
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port,
        address=str(addresses[0]),
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        host_header=host_header,
        basic_auth=auth,
    )


def refused_reason(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why the address is no place for a notification; None for a public or allowed one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a private or reserved address"
    return None


def target_error(url: object) -> str | None:
    """For validating a channel: why its URL is refused, or None. A name that does not resolve now is
    accepted: it reaches nothing, and every delivery judges it again."""
    try:
        resolve(url)  # type: ignore[arg-type]
    except TargetRefused as exc:
        return str(exc)
    except (OSError, UnicodeError):
        return None
    return None


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]) -> Answer:
    """POST to the judged address; raises urllib3's errors. Redirects come back as answers."""
    all_headers = {**headers, "Host": target.host_header}
    if target.basic_auth is not None:
        all_headers |= urllib3.util.make_headers(basic_auth=target.basic_auth)
    options: dict[str, object] = {
        "timeout": urllib3.Timeout(connect=timeout[0], read=timeout[1]),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
    with pool:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        # The body is never read: what a receiver says is not ours to store or show.
        answer = Answer(status=response.status, retry_after=response.headers.get("Retry-After"))
        response.close()
    return answer


def status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
