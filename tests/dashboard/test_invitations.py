"""Invitations by email: an owner invites an address with a role, the mail arrives at a real SMTP server,
and whoever opens its link creates an account (or signs in) and joins with that role. A link works
once, until it expires, and not after it was renewed or withdrawn; only owners invite, and nobody sees
another organization's invitations."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from controlplane.audit.actions import Actor
from controlplane.audit.models import AuditEvent
from controlplane.tenancy import invitations
from controlplane.tenancy.models import Invitation, Membership, Role
from tests.support.smtp_receiver import ReceivedMail, SmtpReceiver
from tests.support.tenants import Tenant, make_user

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/invitations/[^/\s]+/)")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite(tenant: Tenant, email: str, role: str = "viewer", *, by: Any = None) -> Any:
    return signed_in(by or tenant.owner).post(
        f"/organizations/{tenant.organization.slug}/invitations/",
        {"invite-email": email, "invite-role": role},
        follow=True,
    )


def link_in(mail: ReceivedMail) -> str:
    match = LINK.search(mail.body)
    assert match, mail.body
    return match[1]


def test_an_invited_person_creates_an_account_and_joins_with_the_role(
    tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    response = invite(tenant, "Dana@Example.COM", "admin")
    assert "Invitation emailed to Dana@example.com (admin)" in response.content.decode()
    (mail,) = smtp_receiver.wait_for(1)
    assert mail.recipients == ["Dana@example.com"]
    assert mail.message["Subject"] == "acme-owner invited you to Acme on Kafka Control Plane"
    assert "as admin: create, change and delete clusters" in mail.body
    link = link_in(mail)
    page = signed_in(tenant.owner).get(f"/organizations/{tenant.organization.slug}/members/")
    assert 'data-invitation="Dana@example.com"' in page.content.decode()

    newcomer = Client()
    offer = newcomer.get(link)
    assert offer.status_code == 200
    assert "join <strong>Acme</strong> as <strong>admin</strong>" in offer.content.decode()
    joined = newcomer.post(
        link, {"username": "dana", "password1": "blue-kafka-meadow-42", "password2": "blue-kafka-meadow-42"}
    )

    assert joined.status_code == 302 and joined.url == f"/organizations/{tenant.organization.slug}/members/"
    dana = get_user_model().objects.get(username="dana")
    assert dana.email == "Dana@example.com"
    assert Membership.objects.get(organization=tenant.organization, user=dana).role == Role.ADMIN
    assert newcomer.get("/").status_code == 200  # signed in as dana
    used = Client().get(link)
    assert used.status_code == 410 and "already been used" in used.content.decode()
    assert [
        (e.action, e.actor_name) for e in AuditEvent.objects.filter(action__startswith="invitation.")
    ] == [
        ("invitation.accept", "dana"),
        ("invitation.create", "acme-owner"),
    ]
    page = signed_in(tenant.owner).get(f"/organizations/{tenant.organization.slug}/members/")
    assert 'data-member="dana"' in page.content.decode() and "data-invitation=" not in page.content.decode()


def test_a_signed_in_user_joins_with_their_account(tenant: Tenant, smtp_receiver: SmtpReceiver) -> None:
    erin = make_user("erin")
    invite(tenant, "erin@example.com", "viewer")
    link = link_in(smtp_receiver.wait_for(1)[0])
    client = signed_in(erin)

    assert "Join as erin" in client.get(link).content.decode()
    assert client.post(link).status_code == 302
    assert Membership.objects.get(organization=tenant.organization, user=erin).role == Role.VIEWER


def test_a_member_accepting_keeps_a_role_that_gives_more(tenant: Tenant) -> None:
    issued = invitations.invite(
        organization=tenant.organization, email="a@example.com", role=Role.VIEWER, actor=Actor(tenant.owner)
    )
    membership = invitations.accept(raw_key=issued.raw_key, user=tenant.admin, actor=Actor(tenant.admin))
    assert membership.role == Role.ADMIN


def test_account_checks_are_djangos_and_a_refused_form_creates_nothing(
    tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    invite(tenant, "fay@example.com")
    link = link_in(smtp_receiver.wait_for(1)[0])

    weak = Client().post(link, {"username": "fay", "password1": "password", "password2": "password"})
    taken = Client().post(
        link,
        {"username": "acme-viewer", "password1": "blue-kafka-meadow-42", "password2": "blue-kafka-meadow-42"},
    )

    assert "This password is too common." in weak.content.decode()
    assert "A user with that username already exists." in taken.content.decode()
    assert not get_user_model().objects.filter(username="fay").exists()
    assert Client().get(link).status_code == 200  # still open


def test_renewing_replaces_the_link_and_withdrawing_or_expiry_ends_it(
    tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    invite(tenant, "gus@example.com", "viewer")
    invite(tenant, "gus@example.com", "admin")
    first, second = (link_in(mail) for mail in smtp_receiver.wait_for(2))
    invitation = Invitation.objects.get(email="gus@example.com")  # one open invitation, renewed
    assert invitation.role == Role.ADMIN

    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200
    invitation.expires_at = timezone.now() - timedelta(seconds=1)
    invitation.save(update_fields=["expires_at"])
    expired = Client().get(second)
    assert expired.status_code == 410 and "expired" in expired.content.decode()

    invite(tenant, "gus@example.com", "admin")
    third = link_in(smtp_receiver.wait_for(3)[2])
    withdrawn = signed_in(tenant.owner).post(
        f"/organizations/{tenant.organization.slug}/invitations/{invitation.pk}/revoke/", follow=True
    )
    assert "The invitation to gus@example.com is withdrawn" in withdrawn.content.decode()
    answer = Client().get(third)
    assert answer.status_code == 410 and "withdrawn" in answer.content.decode()


def test_only_owners_invite_and_nobody_reaches_another_organizations_invitations(
    tenant: Tenant, other_tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    slug = tenant.organization.slug
    for user in (tenant.admin, tenant.viewer):
        assert (
            signed_in(user)
            .post(f"/organizations/{slug}/invitations/", {"invite-email": "x@example.com"})
            .status_code
            == 403
        )
    assert (
        signed_in(other_tenant.owner)
        .post(f"/organizations/{slug}/invitations/", {"invite-email": "x@example.com"})
        .status_code
        == 404
    )
    invite(tenant, "hal@example.com")
    invitation = Invitation.objects.get(email="hal@example.com")
    assert (
        signed_in(other_tenant.owner)
        .post(f"/organizations/{other_tenant.organization.slug}/invitations/{invitation.pk}/revoke/")
        .status_code
        == 404
    )
    assert (
        "hal@example.com"
        not in signed_in(tenant.admin).get(f"/organizations/{slug}/members/").content.decode()
    )
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None
    assert len(smtp_receiver.received) == 1


def test_wrong_addresses_and_members_are_refused_with_a_reason(
    tenant: Tenant, smtp_receiver: SmtpReceiver
) -> None:
    tenant.admin.email = "ada@example.com"
    tenant.admin.save(update_fields=["email"])

    bad = invite(tenant, "not-an-address", "viewer").content.decode()
    member = invite(tenant, "ADA@example.com", "owner").content.decode()

    assert "Email address: Enter a valid email address." in bad
    assert "ADA@example.com is already a member of Acme." in member
    assert not Invitation.objects.exists() and smtp_receiver.received == []


def test_a_mail_server_that_cannot_be_reached_is_said_and_the_invitation_stays_open(
    tenant: Tenant, settings: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2

    page = invite(tenant, "ivy@example.com").content.decode()

    assert "The invitation to ivy@example.com could not be emailed" in page
    assert "not emailed" in page  # listed, marked, and inviting again sends a new link
    assert Invitation.objects.get(email="ivy@example.com").sent_at is None
