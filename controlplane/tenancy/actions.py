"""Writes to organizations, memberships and tokens."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from controlplane.audit.actions import Actor, record_event
from controlplane.tenancy.models import (
    TOKEN_PREFIX_LENGTH,
    ApiToken,
    Membership,
    Organization,
    Role,
    generate_raw_token,
    hash_token,
)


@transaction.atomic
def create_organization(*, name: str, owner: AbstractBaseUser, actor: Actor) -> Organization:
    organization = Organization.objects.create(name=name, slug=slugify(name)[:63])
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    record_event(actor=actor, action="organization.create", target=organization, organization=organization)
    return organization


class LastOwner(Exception):
    """The change would leave an organization without an owner, and so without anyone who can
    manage its members."""

    def __init__(self, organization: Organization) -> None:
        super().__init__(f"{organization.name} needs at least one owner: make someone else owner first.")


def _keep_an_owner(organization: Organization, user: AbstractBaseUser) -> None:
    """Refuse when `user` is the organization's only owner. The owners' rows are locked, so two
    owners demoting each other at once cannot both succeed."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Role.OWNER)
        .values_list("user_id", flat=True)
    )
    if owners == [user.pk]:
        raise LastOwner(organization)


@transaction.atomic
def set_membership(
    *, organization: Organization, user: AbstractBaseUser, role: Role, actor: Actor
) -> Membership:
    if role != Role.OWNER:
        _keep_an_owner(organization, user)
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    record_event(
        actor=actor,
        action="membership.set",
        target=membership,
        organization=organization,
        details={"user": user.get_username(), "role": str(role)},
    )
    return membership


@transaction.atomic
def create_api_token(
    *, user: AbstractBaseUser, name: str, actor: Actor, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the raw secret, which is never retrievable again."""
    raw = generate_raw_token()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=hash_token(raw),
        prefix=raw[:TOKEN_PREFIX_LENGTH],
        expires_at=expires_at,
    )
    record_event(actor=actor, action="api_token.create", target=token, details={"name": name})
    return token, raw


@transaction.atomic
def revoke_api_token(*, token: ApiToken, actor: Actor) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    record_event(actor=actor, action="api_token.revoke", target=token)


@transaction.atomic
def remove_membership(*, membership: Membership, actor: Actor) -> None:
    """Take a user out of an organization; their API tokens stay theirs but reach nothing of it."""
    _keep_an_owner(membership.organization, membership.user)
    record_event(
        actor=actor,
        action="membership.remove",
        target=membership,
        organization=membership.organization,
        details={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
