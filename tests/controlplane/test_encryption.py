"""Secrets at rest: notification channel configs are stored encrypted, keys rotate, and a database
written before encryption is encrypted by its migration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from controlplane.encryption import SecretDecryptionError, new_key
from monitoring.alerting.models import NotificationChannel
from tests.support.migrations import fully_migrated_afterwards, migrate  # noqa: F401
from tests.support.tenants import Tenant, token_client

ROUTING_KEY = "R0UT1NGKEY-very-secret-0001"
CHANNELS = "/api/v1/notification-channels/"


def stored(channel_id: int) -> str:
    """The column as the database holds it, past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM alerting_notificationchannel WHERE id = %s", [channel_id])
        return str(cursor.fetchone()[0])


def create_channel(tenant: Tenant) -> NotificationChannel:
    response = token_client(tenant.admin).post(
        CHANNELS,
        {"name": "on-call", "kind": "pagerduty", "config": {"routing_key": ROUTING_KEY}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return NotificationChannel.objects.get(pk=response.json()["id"])


def test_channel_secrets_are_encrypted_in_the_database(tenant: Tenant) -> None:
    channel = create_channel(tenant)
    raw = stored(channel.pk)
    assert "enc:v1:" in raw
    assert ROUTING_KEY not in raw
    assert NotificationChannel.objects.get(pk=channel.pk).config == {"routing_key": ROUTING_KEY}
    shown = token_client(tenant.admin).get(f"{CHANNELS}{channel.pk}/").json()
    assert ROUTING_KEY not in str(shown)


def test_keys_rotate_without_losing_a_secret(tenant: Tenant, settings: Any) -> None:
    old = settings.SECRETS_ENCRYPTION_KEYS[0]
    channel = create_channel(tenant)
    before = stored(channel.pk)

    new = new_key()
    settings.SECRETS_ENCRYPTION_KEYS = [new, old]
    assert NotificationChannel.objects.get(pk=channel.pk).config["routing_key"] == ROUTING_KEY
    call_command("rotate_secrets", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert stored(channel.pk) != before

    settings.SECRETS_ENCRYPTION_KEYS = [new]  # the old key dropped after rotating
    assert NotificationChannel.objects.get(pk=channel.pk).config["routing_key"] == ROUTING_KEY

    settings.SECRETS_ENCRYPTION_KEYS = [new_key()]  # a key that never encrypted it
    with pytest.raises(SecretDecryptionError, match="rotate_secrets"):
        NotificationChannel.objects.get(pk=channel.pk)


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_what_was_stored_in_plain_text(fully_migrated_afterwards: None) -> None:  # noqa: F811
    apps = migrate([("alerting", "0002_incident_values_at")])
    organization = apps.get_model("tenancy", "Organization").objects.create(name="Acme", slug="acme")
    channel = apps.get_model("alerting", "NotificationChannel").objects.create(
        organization=organization,
        name="legacy",
        kind="pagerduty",
        config={"routing_key": ROUTING_KEY},
        created_by_name="admin",
    )
    assert ROUTING_KEY in stored(channel.pk)

    migrate([("alerting", "0003_encrypt_channel_config")])
    assert ROUTING_KEY not in stored(channel.pk)
    assert NotificationChannel.objects.get(pk=channel.pk).config == {"routing_key": ROUTING_KEY}

    migrate([("alerting", "0002_incident_values_at")])  # and back
    assert ROUTING_KEY in stored(channel.pk)


def test_the_var_directory_and_generated_keys_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {**os.environ, "CONTROLPLANE_VAR_DIR": str(var)}
    subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert var.stat().st_mode & 0o777 == 0o700
    assert (var / "secrets_encryption_key").stat().st_mode & 0o777 == 0o600
