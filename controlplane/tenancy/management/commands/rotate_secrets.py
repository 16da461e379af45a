"""Re-encrypt every stored secret with the first key of SECRETS_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from controlplane.encryption import encrypted_models


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest key, so older keys can be dropped afterwards."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model, field in encrypted_models():
            with transaction.atomic():
                # Reading decrypts with whichever key fits; writing encrypts with the newest.
                for pk, value in model.objects.select_for_update().values_list("pk", field):
                    model.objects.filter(pk=pk).update(**{field: value})
                    total += 1
        self.stdout.write(f"re-encrypted {total} stored secret(s) with the newest key")
