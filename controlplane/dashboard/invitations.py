"""The page an invitation's link opens (invitations are made on an organization's members page): sign
in or create an account, then join. Open to anyone holding the link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from controlplane.audit.actions import Actor
from controlplane.tenancy import invitations
from controlplane.tenancy.models import ROLE_DESCRIPTIONS, Membership, Role


class NewAccountForm(BaseUserCreationForm):
    """Django's own checks: a free username, a password its validators accept, typed twice."""

    class Meta(BaseUserCreationForm.Meta):
        fields = ("username",)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, key: str) -> HttpResponse:
    """Open to anyone holding the link. Signed in: join as that account. Otherwise: create an account
    (its email is the invited address) or sign in first and come back."""
    try:
        invitation = invitations.find(key)
    except invitations.InvitationUnusable as exc:
        status = 404 if exc.state is None else 410
        return render(request, "dashboard/invitation_accept.html", {"problem": str(exc)}, status=status)
    signed_in: AbstractBaseUser | None = request.user if request.user.is_authenticated else None
    form = NewAccountForm(request.POST if request.method == "POST" and signed_in is None else None)
    if request.method == "POST" and (signed_in is not None or form.is_valid()):
        try:
            membership = _join(request, key, signed_in, form)
        except invitations.InvitationUnusable as exc:  # used or withdrawn meanwhile
            return render(request, "dashboard/invitation_accept.html", {"problem": str(exc)}, status=410)
        except IntegrityError:  # the username was taken between the form's check and the insert
            form.add_error("username", "A user with that username already exists.")
        else:
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect("dashboard:member-list", slug=membership.organization.slug)
    context = {
        "invitation": invitation,
        "role_description": ROLE_DESCRIPTIONS[Role(invitation.role)],
        "signed_in": signed_in,
        "form": form,
        "login_url": f"{reverse('dashboard:login')}?next={request.path}",
    }
    return render(request, "dashboard/invitation_accept.html", context)


def _join(
    request: HttpRequest, key: str, signed_in: AbstractBaseUser | None, form: NewAccountForm
) -> Membership:
    actor = Actor.from_request(request)
    if signed_in is not None:
        return invitations.accept(raw_key=key, user=signed_in, actor=actor)
    membership = invitations.accept_with_new_account(
        raw_key=key,
        username=form.cleaned_data["username"],
        password=form.cleaned_data["password1"],
        actor=actor,
    )
    login(request, membership.user)
    return membership
