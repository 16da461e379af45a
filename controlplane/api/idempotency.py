"""`Idempotency-Key` for creates (the IETF httpapi draft's header, as Stripe and cloud APIs use it).

A client that retries a create after a timeout sends the same key again and gets the first request's
answer (status, body, Location, and `Idempotent-Replayed: true`) instead of a second object. The key
belongs to the account that sent it, for `IDEMPOTENCY_KEY_TTL_SECONDS`. The same key with a different
request (method, path or body) is refused with 422; while the first request is still being processed, a
retry gets 409. Only successful answers are kept: after a refusal or an error the key may be used again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255

PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (e.g. a UUID) of at most 255 printable characters. A retry with the same "
    "key answers what the first request answered, without creating anything again.",
)
RESPONSES = {
    422: OpenApiResponse(
        {"type": "object", "properties": {"detail": {"type": "string"}}},
        description="The Idempotency-Key was used before with a different request.",
    ),
}


def _key_error(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"An {HEADER} has 1 to {MAX_KEY_LENGTH} characters."
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in key):
        return f"An {HEADER} uses printable ASCII characters only."
    return None


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    """Answer with `handler()`, or with what an earlier request carrying the same key was answered."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if error := _key_error(key):
        return Response({HEADER: [error]}, status=status.HTTP_400_BAD_REQUEST)
    fingerprint = _fingerprint(request)
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotentRequest.objects.filter(user=request.user, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            record = IdempotentRequest.objects.create(user=request.user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        return _replay(request, key, fingerprint)
    try:
        response = handler()
    except BaseException:
        record.delete()
        raise
    if not status.is_success(response.status_code):
        record.delete()
        return response
    record.finished = True
    record.status_code = response.status_code
    # As rendered, so the replay is byte for byte the same JSON (dates and ids as strings).
    record.response = json.loads(JSONRenderer().render(response.data))
    record.location = response.headers.get("Location", "")
    record.save(update_fields=["finished", "status_code", "response", "location"])
    return response


def _replay(request: Request, key: str, fingerprint: str) -> Response:
    record = IdempotentRequest.objects.filter(user=request.user, key=key).first()
    if record is None:  # finished with an error and forgotten meanwhile: the caller may try again
        return Response(
            {"detail": f"The request with this {HEADER} has just failed; send it again."},
            status=status.HTTP_409_CONFLICT,
        )
    if record.fingerprint != fingerprint:
        return Response(
            {"detail": f"This {HEADER} was used with a different request; use a new key for a new request."},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if not record.finished:
        return Response(
            {
                "detail": f"The first request with this {HEADER} is still being processed; retry in a moment.",
                "code": "idempotent_request_in_progress",
            },
            status=status.HTTP_409_CONFLICT,
        )
    headers = {"Idempotent-Replayed": "true"}
    if record.location:
        headers["Location"] = record.location
    return Response(record.response, status=record.status_code, headers=headers)
