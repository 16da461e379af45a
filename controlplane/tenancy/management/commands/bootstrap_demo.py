from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from controlplane.audit.actions import Actor
from controlplane.tenancy.actions import create_api_token, create_organization
from controlplane.tenancy.models import ApiToken, Organization

DEMO_ORG = "Demo"
DEMO_TOKEN_NAME = "make-run"


class Command(BaseCommand):
    help = "Create (once) a demo organization, an admin user and an API token, and print how to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("bootstrap")
        username = options["username"]
        credentials = settings.VAR_DIR / "demo-credentials"
        with transaction.atomic():
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
                user = get_user_model().objects.create_superuser(
                    username=username, email="", password=password
                )
                create_organization(name=DEMO_ORG, owner=user, actor=actor)
                _, token = create_api_token(user=user, name=DEMO_TOKEN_NAME, actor=actor)
                # Kept (owner-only) so the next `make run` can print the same login again.
                credentials.write_text(f"{password}\n{token}\n")
                credentials.chmod(0o600)
            elif not Organization.objects.filter(memberships__user=user).exists():
                create_organization(name=DEMO_ORG, owner=user, actor=actor)
        password, token = (
            ([*credentials.read_text().split("\n"), "", ""])[:2] if credentials.exists() else ("", "")
        )
        if token and not ApiToken.objects.filter(prefix=token[:12], revoked_at__isnull=True).exists():
            token = ""
        url = f"http://127.0.0.1:{options['port']}/"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Kafka Control Plane is starting.",
                    f"  Dashboard:  {url}",
                    f"  API docs:   {url}api/docs/",
                    f"  Login:      {username} / {password or '(set earlier; see ADMIN_PASSWORD)'}",
                    f"  API token:  {token or '(revoked; create one with manage.py create_api_token ' + username + ')'}",
                    "",
                    f'  curl -H "Authorization: Bearer {token or "<token>"}" {url}api/v1/clusters/',
                    "",
                ]
            )
        )
