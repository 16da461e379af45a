"""An organization's pages: its members and their roles, and invitations by email (both managed by
owners only), and its audit log (who did what, when and from where; for owners and admins)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from controlplane.api.permissions import organizations_of
from controlplane.audit.actions import Actor
from controlplane.audit.models import AuditEvent
from controlplane.tenancy import invitations
from controlplane.tenancy.actions import LastOwner, remove_membership, set_membership
from controlplane.tenancy.models import WRITE_ROLES, Membership, Role

EVENTS_PER_PAGE = 50
OWNERS_ONLY = "Only an owner of this organization manages its members."
AUDIT_FOR_WRITERS = "The audit log is for the organization's owners and admins; your role is viewer."


class MemberForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if not get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(f"No account named {username!r}: invite them by email instead.")
        return username


class InvitationForm(forms.Form):
    """On the members page beside the add-member form, hence its prefix (field names and ids)."""

    prefix = "invite"
    email = forms.EmailField(
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    role = forms.ChoiceField(label="Invite as", choices=Role.choices, initial=Role.VIEWER)


def _membership(request: HttpRequest, slug: str) -> Membership:
    """The user's own membership of the organization; 404 for one they do not belong to."""
    membership = (
        Membership.objects.filter(user=request.user, organization__slug=slug)
        .select_related("organization")
        .first()
    )
    if membership is None:
        raise Http404(slug)
    return membership


def _require_owner(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        raise PermissionDenied(OWNERS_ONLY)


@login_required
@require_GET
def organization_home(request: HttpRequest) -> HttpResponse:
    """The navigation's entry: the members of the user's first organization."""
    organization = organizations_of(request.user).order_by("name").first()
    if organization is None:
        raise Http404("no organization")
    return redirect("dashboard:member-list", slug=organization.slug)


def _context(request: HttpRequest, membership: Membership) -> dict[str, object]:
    return {
        "organization": membership.organization,
        "membership": membership,
        "organizations": organizations_of(request.user).order_by("name"),
        "is_owner": membership.role == Role.OWNER,
        "may_audit": membership.role in WRITE_ROLES,
    }


@login_required
@require_http_methods(["GET", "POST"])
def member_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _membership(request, slug)
    organization = membership.organization
    form = MemberForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        _require_owner(membership)
        if form.is_valid():
            user = get_user_model().objects.get(username=form.cleaned_data["username"])
            try:
                set_membership(
                    organization=organization,
                    user=user,
                    role=Role(form.cleaned_data["role"]),
                    actor=Actor.from_request(request),
                )
            except LastOwner as exc:
                form.add_error("role", str(exc))
            else:
                messages.success(
                    request,
                    f"{user.get_username()} is now {form.cleaned_data['role']} of {organization.name}.",
                )
                return redirect("dashboard:member-list", slug=slug)
    context = {
        **_context(request, membership),
        "form": form,
        "invitation_form": InvitationForm(),
        "invitation_valid_days": settings.INVITATION_VALID_DAYS,
        "invitations": invitations.pending(organization) if membership.role == Role.OWNER else [],
        "members": organization.memberships.select_related("user").order_by("user__username"),
        "roles": Role.choices,
    }
    return render(request, "dashboard/member_list.html", context)


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = _membership(request, slug)
    _require_owner(membership)
    member = get_object_or_404(membership.organization.memberships.select_related("user"), pk=pk)
    if request.POST.get("role") not in Role.values:
        messages.error(request, "Choose owner, admin or viewer.")
        return redirect("dashboard:member-list", slug=slug)
    try:
        set_membership(
            organization=membership.organization,
            user=member.user,
            role=Role(request.POST["role"]),
            actor=Actor.from_request(request),
        )
    except LastOwner as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{member.user.get_username()} is now {request.POST['role']}.")
    return redirect("dashboard:member-list", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = _membership(request, slug)
    _require_owner(membership)
    member = get_object_or_404(
        membership.organization.memberships.select_related("user", "organization"), pk=pk
    )
    try:
        remove_membership(membership=member, actor=Actor.from_request(request))
    except LastOwner as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{member.user.get_username()} removed from {membership.organization.name}."
        )
    return redirect("dashboard:member-list", slug=slug)


@login_required
@require_GET
def audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _membership(request, slug)
    if membership.role not in WRITE_ROLES:
        raise PermissionDenied(AUDIT_FOR_WRITERS)
    events = AuditEvent.objects.filter(organization=membership.organization)
    if action := request.GET.get("action", "").strip():
        events = events.filter(action__startswith=action)
    context = {
        **_context(request, membership),
        "page": Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page")),
        "query": f"action={action}" if action else "",
        "action": action,
        "actions": sorted(
            {name.split(".")[0] for name in events.values_list("action", flat=True).distinct()[:200]}
        ),
    }
    return render(request, "dashboard/audit_log.html", context)


def _accept_url(request: HttpRequest, raw_key: str) -> str:
    path = reverse("dashboard:invitation-accept", args=[raw_key])
    public = settings.CONTROLPLANE_PUBLIC_URL.rstrip("/")
    return f"{public}{path}" if public else request.build_absolute_uri(path)


@login_required
@require_POST
def invitation_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _membership(request, slug)
    _require_owner(membership)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        for name, problems in form.errors.items():
            messages.error(request, f"{form.fields[name].label}: {' '.join(problems)}")
        return redirect("dashboard:member-list", slug=slug)
    try:
        issued = invitations.invite(
            organization=membership.organization,
            email=form.cleaned_data["email"],
            role=Role(form.cleaned_data["role"]),
            actor=Actor.from_request(request),
        )
        invitations.send(issued, _accept_url(request, issued.raw_key))
    except invitations.InvitationError as exc:
        messages.error(request, str(exc))
    else:
        invitation = issued.invitation
        messages.success(
            request,
            f"Invitation emailed to {invitation.email} ({invitation.role}); the link works until "
            f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
        )
    return redirect("dashboard:member-list", slug=slug)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    membership = _membership(request, slug)
    _require_owner(membership)
    invitation = get_object_or_404(membership.organization.invitations, pk=pk)
    invitations.revoke(invitation=invitation, actor=Actor.from_request(request))
    messages.success(request, f"The invitation to {invitation.email} is withdrawn; its link no longer works.")
    return redirect("dashboard:member-list", slug=slug)
