"""Requests the API remembers: creates sent with an `Idempotency-Key`, so that a retry is answered with
the first answer instead of creating a second object."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from controlplane.encryption import EncryptedJSONField


class IdempotentRequest(models.Model):
    """The first request made with one key by one account, and the answer it got once it finished."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of method, path and body: the same key with another request is refused, not replayed.
    fingerprint = models.CharField(max_length=64)
    finished = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # Encrypted: an answer may carry a secret shown once (a generated password).
    response = EncryptedJSONField(null=True, blank=True)
    location = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_request_per_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({'finished' if self.finished else 'in progress'})"
