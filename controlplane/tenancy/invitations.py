"""Invitations to join an organization by email.

An owner invites an address with a role; the address gets a link that works once, until it expires.
Whoever opens it signs in, or creates an account, and becomes a member with that role. As for API
tokens, only a hash of the link's secret is stored. Inviting an address that has an open invitation
renews it: a new link (the old one stops working), a new expiry, the role now asked for.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.tenancy.models import (
    ROLE_DESCRIPTIONS,
    ROLE_RANK,
    Invitation,
    InvitationState,
    Membership,
    Organization,
    Role,
    generate_raw_token,
    hash_token,
)


class InvitationError(Exception):
    """Why an invitation cannot be made, sent or used, in words for the person trying."""


class AlreadyMember(InvitationError):
    pass


class InvitationUnusable(InvitationError):
    def __init__(self, invitation: Invitation | None, state: InvitationState | None) -> None:
        self.state = state
        reasons = {
            None: "This invitation link is not valid: check that it was copied whole.",
            InvitationState.ACCEPTED: "This invitation has already been used.",
            InvitationState.REVOKED: "This invitation was withdrawn.",
            InvitationState.EXPIRED: "This invitation has expired: ask for a new one.",
        }
        super().__init__(reasons[state])


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    raw_key: str  # the link's secret: in the email only, never stored


@transaction.atomic
def invite(*, organization: Organization, email: str, role: Role, actor: Actor) -> IssuedInvitation:
    email = BaseUserManager.normalize_email(email.strip())
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise AlreadyMember(f"{email} is already a member of {organization.name}.")
    raw = generate_raw_token()
    fields = {
        "role": role,
        "key_hash": hash_token(raw),
        "invited_by_id": actor.account.pk if actor.account is not None else None,
        "expires_at": timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
        "sent_at": None,
    }
    invitation = (
        Invitation.objects.select_for_update()
        .filter(organization=organization, email__iexact=email, accepted_at=None, revoked_at=None)
        .first()
    )
    renewed = invitation is not None
    if invitation is None:
        invitation = Invitation.objects.create(organization=organization, email=email, **fields)
    else:
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=list(fields))
    record_event(
        actor=actor,
        action="invitation.renew" if renewed else "invitation.create",
        target=invitation,
        organization=organization,
        details={"email": email, "role": str(role)},
    )
    return IssuedInvitation(invitation, raw)


def send(issued: IssuedInvitation, accept_url: str) -> None:
    """Email the link; raises InvitationError when the mail server refuses or cannot be reached (the
    invitation stays open, and inviting the address again sends a new link)."""
    invitation = issued.invitation
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An owner"
    organization = invitation.organization.name
    role = Role(invitation.role)
    body = (
        f"{inviter} invited you to join {organization} on Kafka Control Plane as {role.label.lower()}: "
        f"{ROLE_DESCRIPTIONS[role]}.\n\n"
        f"Accept the invitation:\n{accept_url}\n\n"
        f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not expect this invitation, ignore this email.\n"
    )
    try:
        send_mail(
            f"{inviter} invited you to {organization} on Kafka Control Plane",
            body,
            None,  # DEFAULT_FROM_EMAIL
            [invitation.email],
        )
    except (smtplib.SMTPException, OSError) as exc:
        raise InvitationError(f"The invitation to {invitation.email} could not be emailed: {exc}") from exc
    invitation.sent_at = timezone.now()
    invitation.save(update_fields=["sent_at"])


def pending(organization: Organization) -> list[Invitation]:
    """The invitations that can still be accepted, newest first."""
    now = timezone.now()
    open_ones = Invitation.objects.filter(organization=organization, accepted_at=None, revoked_at=None)
    return [i for i in open_ones.select_related("invited_by") if i.state(now) == InvitationState.PENDING]


def find(raw_key: str) -> Invitation:
    """The pending invitation a link's secret opens; InvitationUnusable says why there is none."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(key_hash=hash_token(raw_key))
        .first()
    )
    if invitation is None:
        raise InvitationUnusable(None, None)
    state = invitation.state(timezone.now())
    if state != InvitationState.PENDING:
        raise InvitationUnusable(invitation, state)
    return invitation


@transaction.atomic
def accept(*, raw_key: str, user: AbstractBaseUser, actor: Actor) -> Membership:
    """Make `user` a member with the invitation's role; a member keeps a role that gives more."""
    found = find(raw_key)
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    state = invitation.state(timezone.now())
    if state != InvitationState.PENDING:  # used or withdrawn since it was looked up
        raise InvitationUnusable(invitation, state)
    membership, created = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    if not created and ROLE_RANK[Role(invitation.role)] > ROLE_RANK[Role(membership.role)]:
        membership.role = invitation.role
        membership.save(update_fields=["role"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_event(
        actor=actor,
        action="invitation.accept",
        target=invitation,
        organization=invitation.organization,
        details={"email": invitation.email, "user": user.get_username(), "role": membership.role},
    )
    return membership


@transaction.atomic
def accept_with_new_account(*, raw_key: str, username: str, password: str, actor: Actor) -> Membership:
    """Create the account (its email is the invited address) and accept, in one transaction: a used
    or withdrawn invitation creates no account."""
    invitation = find(raw_key)
    user = get_user_model().objects.create_user(username=username, email=invitation.email, password=password)
    return accept(raw_key=raw_key, user=user, actor=Actor(user, source_address=actor.source_address))


@transaction.atomic
def revoke(*, invitation: Invitation, actor: Actor) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        return
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_event(
        actor=actor,
        action="invitation.revoke",
        target=invitation,
        organization=invitation.organization,
        details={"email": invitation.email},
    )
