from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from controlplane.tenancy import throttle
from controlplane.tenancy.models import TOKEN_PREFIX_LENGTH, ApiToken, hash_token

# last_used_at is written at most this often per token, to keep reads from turning into writes.
LAST_USED_RESOLUTION_SECONDS = 60


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (or `Token <token>`) with a per-user API token."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request):
        raw = bearer_token(request)
        if raw is None:
            return None
        try:
            token = authenticate_token(raw, address=throttle.client_address(request))
        except throttle.AuthenticationThrottled as exc:
            raise exceptions.Throttled(
                wait=exc.retry_after, detail="Too many failed authentications from this address or account."
            ) from None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def bearer_token(request: HttpRequest | Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` (or `Token <token>`) header, if there is one."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].decode(errors="replace").lower() not in ApiTokenAuthentication.keywords:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
    return header[1].decode(errors="replace")


def authenticate_token(raw: str, *, address: str | None) -> ApiToken | None:
    """The valid token `raw` is, or None; failures count against the address and the account whose
    token it claims to be (by its prefix), and raise AuthenticationThrottled beyond the limits."""
    owner = ApiToken.objects.filter(prefix=raw[:TOKEN_PREFIX_LENGTH]).values_list("user__username", flat=True)
    keys = throttle.keys_for(account=owner.first(), address=address)
    throttle.check(keys)
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None or not token.user.is_active:
        throttle.record_failure(keys, now=now)
        return None
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (dashboard → API tokens, or `manage.py create_api_token`).",
        }
