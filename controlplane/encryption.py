"""Secrets at rest: values encrypted with keys the operator provides.

Notification routing keys and URLs, webhook signing secrets and, as backends need them, kubeconfigs,
SSH keys and SCRAM credentials are stored through `EncryptedJSONField`, never in plain text. The
cipher is Fernet (AES-128-CBC with an HMAC-SHA256 tag, from `cryptography`); a stored value reads
`enc:v1:<token>`. `SECRETS_ENCRYPTION_KEYS` lists Fernet keys, newest first: the first encrypts, every
one decrypts, so rotating means putting a new key first, running `manage.py rotate_secrets` (which
re-encrypts every stored secret with it), then dropping the old key.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc:v1:"


class SecretDecryptionError(Exception):
    """A stored secret was encrypted with a key that is not in SECRETS_ENCRYPTION_KEYS (any more)."""


@functools.cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEYS is empty: secrets cannot be stored")
    try:
        return MultiFernet([Fernet(key.encode("ascii")) for key in keys])
    except (ValueError, UnicodeEncodeError) as exc:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded "
            "bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)"
        ) from exc


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.SECRETS_ENCRYPTION_KEYS))


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(text: str) -> str:
    return PREFIX + cipher().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(value: str) -> str:
    try:
        return cipher().decrypt(value.removeprefix(PREFIX).encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretDecryptionError(
            "a stored secret cannot be decrypted with any key of SECRETS_ENCRYPTION_KEYS; the key it was "
            "encrypted with must stay listed until `manage.py rotate_secrets` has run"
        ) from None


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class EncryptedJSONField(models.JSONField):
    """A JSON value stored encrypted: the column holds one JSON string, `enc:v1:<token>`.

    Reads also accept a plain (not yet encrypted) value, which is what rows written before the field
    became encrypted hold until their migration encrypts them. Lookups into the value are impossible
    by design.
    """

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is not None and not is_encrypted(value):
            value = encrypt(json.dumps(value, sort_keys=True))
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        decoded = super().from_db_value(value, expression, connection)
        if is_encrypted(decoded):
            return json.loads(decrypt(decoded))
        return decoded


def encrypted_models() -> Sequence[tuple[type[models.Model], str]]:
    """Every (model, field name) stored with `EncryptedJSONField`."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, EncryptedJSONField)
    ]
