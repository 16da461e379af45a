"""Members and roles of an organization (owners only) and its audit log (owners and admins), through
Django's test client: every change through the tenancy actions, recorded with who and from where."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from controlplane.audit.models import AuditEvent
from controlplane.tenancy.models import Membership
from tests.dashboard.conftest import create_cluster
from tests.support.tenants import Tenant, make_user

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.7")
    client.force_login(user)
    return client


def members_url(tenant: Tenant, suffix: str = "") -> str:
    return f"/organizations/{tenant.organization.slug}/members/{suffix}"


def role_of(tenant: Tenant, username: str) -> str | None:
    membership = Membership.objects.filter(organization=tenant.organization, user__username=username).first()
    return membership.role if membership else None


def test_an_owner_adds_changes_and_removes_a_member(tenant: Tenant) -> None:
    make_user("dana")
    client = signed_in(tenant.owner)

    added = client.post(members_url(tenant), {"username": "dana", "role": "viewer"}, follow=True)
    assert role_of(tenant, "dana") == "viewer" and b"dana is now viewer" in added.content
    dana = Membership.objects.get(user__username="dana")

    client.post(members_url(tenant, f"{dana.pk}/role/"), {"role": "admin"})
    assert role_of(tenant, "dana") == "admin"

    client.post(members_url(tenant, f"{dana.pk}/remove/"))
    assert role_of(tenant, "dana") is None
    events = AuditEvent.objects.filter(action__startswith="membership.", details__user="dana").order_by("id")
    assert [(e.action, e.actor_name, e.source_address) for e in events] == [
        ("membership.set", tenant.owner.username, "203.0.113.7"),
        ("membership.set", tenant.owner.username, "203.0.113.7"),
        ("membership.remove", tenant.owner.username, "203.0.113.7"),
    ]


def test_an_unknown_account_is_named_by_the_field(tenant: Tenant) -> None:
    response = signed_in(tenant.owner).post(members_url(tenant), {"username": "nobody", "role": "admin"})
    assert response.context["form"].errors == {
        "username": ["No account named 'nobody': invite them by email instead."]
    }


def test_the_last_owner_can_neither_leave_nor_step_down(tenant: Tenant) -> None:
    client = signed_in(tenant.owner)
    own = Membership.objects.get(user=tenant.owner)

    demoted = client.post(members_url(tenant, f"{own.pk}/role/"), {"role": "viewer"}, follow=True)
    removed = client.post(members_url(tenant, f"{own.pk}/remove/"), follow=True)

    for response in (demoted, removed):
        assert b"Acme needs at least one owner" in response.content
    assert role_of(tenant, tenant.owner.username) == "owner"


def test_admins_and_viewers_see_members_but_change_nothing(tenant: Tenant) -> None:
    target = Membership.objects.get(user=tenant.viewer)
    for user in (tenant.admin, tenant.viewer):
        client = signed_in(user)
        page = client.get(members_url(tenant)).content.decode()
        assert f'data-member="{tenant.owner.username}"' in page
        assert "Add member" not in page and "/role/" not in page and "/remove/" not in page
        assert (
            client.post(members_url(tenant), {"username": user.username, "role": "owner"}).status_code == 403
        )
        assert client.post(members_url(tenant, f"{target.pk}/role/"), {"role": "owner"}).status_code == 403
        assert client.post(members_url(tenant, f"{target.pk}/remove/")).status_code == 403
    assert role_of(tenant, tenant.viewer.username) == "viewer"
    assert role_of(tenant, tenant.admin.username) == "admin"


def test_another_organization_is_a_404(tenant: Tenant, other_tenant: Tenant) -> None:
    client = signed_in(other_tenant.owner)
    target = Membership.objects.get(user=tenant.viewer)
    assert client.get(members_url(tenant)).status_code == 404
    assert client.post(members_url(tenant, f"{target.pk}/remove/")).status_code == 404
    assert client.get(f"/organizations/{tenant.organization.slug}/audit/").status_code == 404
    # Nor can an owner reach another organization's member through their own.
    own = f"/organizations/{other_tenant.organization.slug}/members/{target.pk}/remove/"
    assert client.post(own).status_code == 404
    assert role_of(tenant, tenant.viewer.username) == "viewer"


def test_the_audit_log_says_who_did_what_when_and_from_where(tenant: Tenant, other_tenant: Tenant) -> None:
    create_cluster(tenant, name="orders")
    create_cluster(other_tenant, name="secret")
    signed_in(tenant.admin).post(f"/organizations/{tenant.organization.slug}/members/", {"username": "x"})
    AuditEvent.objects.filter(action="cluster.create").update(source_address="198.51.100.4")

    page = signed_in(tenant.admin).get(f"/organizations/{tenant.organization.slug}/audit/").content.decode()
    clusters_only = signed_in(tenant.owner).get(
        f"/organizations/{tenant.organization.slug}/audit/", {"action": "cluster"}
    )

    row = page.split('data-action="cluster.create"')[1].split("</tr>")[0]
    assert tenant.admin.username in row and "orders" in row and "198.51.100.4" in row and "<time" in row
    assert "secret" not in page
    assert {e.action for e in clusters_only.context["page"]} == {"cluster.create"}
    assert (
        signed_in(tenant.viewer).get(f"/organizations/{tenant.organization.slug}/audit/").status_code == 403
    )


def test_the_navigation_leads_to_the_organization(tenant: Tenant) -> None:
    response = signed_in(tenant.viewer).get("/organization/")
    assert response.status_code == 302 and response.url == members_url(tenant)
