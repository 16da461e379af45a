"""Recording who did what. Every action that changes state calls `record_event` in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from controlplane.audit.models import AuditEvent
from controlplane.proxies import client_address


@dataclass(frozen=True)
class Actor:
    """Whoever causes a change: a user (with the address they came from) or the system itself."""

    user: AbstractBaseUser | None
    source_address: str | None = None
    name_override: str | None = None

    @property
    def account(self) -> AbstractBaseUser | None:
        """The user to record as having done it: None for the system and for anonymous requests."""
        return self.user if self.user is not None and self.user.is_authenticated else None

    @property
    def name(self) -> str:
        if self.name_override:
            return self.name_override
        return self.user.get_username() if self.user is not None else "system"

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(user=None, name_override=f"system:{component}")

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        return cls(user=request.user, source_address=client_address(request))


def record_event(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    organization: Any | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor.account,
        actor_name=actor.name,
        source_address=actor.source_address,
        organization=organization,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        details=details or {},
    )
