"""Throttling of failed authentication, per account and per address, shared by every web process.

Each failed sign-in (dashboard or admin) and each failed API token counts against the account it
named and the address it came from, in a fixed window stored in the database. Once either has
`AUTH_FAILURES_PER_ACCOUNT` / `AUTH_FAILURES_PER_ADDRESS` failures in the window, further attempts
are refused with 429 and `Retry-After` until the window ends, whether or not the password or token is
right (otherwise guessing would simply go on until it is). Accounts and addresses are stored hashed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from controlplane import proxies
from controlplane.tenancy.models import AuthFailureWindow

ACCOUNT = "account"
ADDRESS = "address"
Key = tuple[str, str]  # (scope, hashed value)


class AuthenticationThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed attempts; try again in {retry_after} s.")


def window() -> timedelta:
    return timedelta(seconds=settings.AUTH_FAILURE_WINDOW_SECONDS)


def keys_for(*, account: str | None, address: str | None) -> list[Key]:
    keys = []
    if account:
        keys.append((ACCOUNT, _digest(account.lower())))
    if address:
        keys.append((ADDRESS, _digest(address)))
    return keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode(errors="replace")).hexdigest()


def _limit(scope: str) -> int:
    return settings.AUTH_FAILURES_PER_ACCOUNT if scope == ACCOUNT else settings.AUTH_FAILURES_PER_ADDRESS


def retry_after(keys: Sequence[Key], *, now: datetime | None = None) -> int | None:
    """Seconds until these keys may try again, or None when none of them is over its limit."""
    if not keys:
        return None
    now = now or timezone.now()
    match = Q()
    for scope, key in keys:
        match |= Q(scope=scope, key=key)
    waits = [
        (row.window_started_at + window() - now).total_seconds()
        for row in AuthFailureWindow.objects.filter(match, window_started_at__gt=now - window())
        if row.failures >= _limit(row.scope)
    ]
    return max(1, math.ceil(max(waits))) if waits else None


def check(keys: Sequence[Key], *, now: datetime | None = None) -> None:
    if wait := retry_after(keys, now=now):
        raise AuthenticationThrottled(wait)


def record_failure(keys: Sequence[Key], *, now: datetime | None = None) -> None:
    """Count one failure against each key, starting a new window where the last one has ended."""
    now = now or timezone.now()
    expired = Q(window_started_at__lte=now - window())
    with transaction.atomic():
        AuthFailureWindow.objects.filter(window_started_at__lt=now - 2 * window()).delete()
        for scope, key in keys:
            if _increment(scope, key, expired, now):
                continue
            try:
                with transaction.atomic():
                    AuthFailureWindow.objects.create(scope=scope, key=key, window_started_at=now, failures=1)
            except IntegrityError:  # another process created it meanwhile
                _increment(scope, key, expired, now)


def _increment(scope: str, key: str, expired: Q, now: datetime) -> bool:
    # One statement, so concurrent failures in several processes are all counted.
    return bool(
        AuthFailureWindow.objects.filter(scope=scope, key=key).update(
            failures=Case(When(expired, then=Value(1)), default=F("failures") + 1),
            window_started_at=Case(When(expired, then=Value(now)), default=F("window_started_at")),
        )
    )


def client_address(request: HttpRequest) -> str | None:
    return proxies.client_address(request)


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, refused while the account or address is throttled."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: object,
    ) -> AbstractBaseUser | None:
        if request is None:  # management commands and tests calling authenticate() directly
            return super().authenticate(request, username=username, password=password, **kwargs)
        keys = keys_for(account=username, address=client_address(request))
        check(keys)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(keys)
        return user


class ThrottledMiddleware:
    """429 with Retry-After for a throttled sign-in that no view turned into a page (the admin's)."""

    def __init__(self, get_response: object) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)  # type: ignore[operator]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AuthenticationThrottled):
            return None
        response = HttpResponse(str(exception), status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(exception.retry_after)
        return response
