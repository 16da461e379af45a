"""Targets in the dashboard: where an organization's clusters are placed. Listed for every member;
registered, tested and removed by owners and admins. Registration goes through the API's serializer
and `registration`, so the checks and messages are the API's; credentials are write-only here too.

The page is per kind: the form has a section of fields per target kind (`KIND_FIELDS`), as the
notification channels' form has per channel kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from controlplane.api.permissions import OrganizationRolePermission, organizations_of
from controlplane.api.targets import (
    ConnectionReportSerializer,
    TargetSerializer,
    TargetWriteSerializer,
    registration,
)
from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.dashboard.oncall_forms import _chosen_organization, _organization_field
from controlplane.dashboard.queries import require_write, writable_organizations
from controlplane.targets import actions
from controlplane.targets.choices import TargetKind
from controlplane.targets.models import Target
from controlplane.targets.resolve import check_connection
from provisioning.kubernetes.target import (
    DEFAULT_IMAGE,
    DEFAULT_NAMESPACE,
    DEFAULT_TOPOLOGY_KEY,
    VolumeRetention,
)

# The form's fields of each kind, and the API settings each one fills ("" for a top-level field).
KIND_FIELDS: Mapping[str, Mapping[str, str]] = {
    TargetKind.KUBERNETES: {
        "kubeconfig": "",
        "in_cluster": "",
        "context": "settings",
        "namespace": "settings",
        "topology_key": "settings",
        "storage_class": "settings",
        "image": "settings",
        "volume_retention": "settings",
        "allowed_cidrs": "settings",
    },
    TargetKind.VM: {
        "hosts": "settings",
        "racks": "settings",
        "ssh_private_key": "",
        "known_hosts": "",
        "service_manager": "settings",
        "kafka_user": "settings",
        "java_home": "settings",
    },
}
# Where a test's report waits for the page it redirects to.
SESSION_REPORT = "target_connection_report"


class SecretTextarea(forms.Textarea):
    """A textarea that never shows its value again: what was pasted is a credential."""

    def format_value(self, value: Any) -> str:
        return ""


class TargetForm(forms.Form):
    organization = forms.ChoiceField(choices=())
    name = forms.SlugField(
        max_length=63, widget=forms.TextInput(attrs={"placeholder": "prod-eu", "autocomplete": "off"})
    )
    # Only the kinds this form has fields for (a kind without them is registered through the API).
    kind = forms.ChoiceField(
        choices=[(kind, label) for kind, label in TargetKind.choices if kind in KIND_FIELDS],
        initial=TargetKind.KUBERNETES,
    )
    kubeconfig = forms.CharField(
        required=False,
        strip=False,
        widget=SecretTextarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        help_text="With its credentials embedded. Stored encrypted and never shown again.",
    )
    in_cluster = forms.BooleanField(
        required=False, label="The control plane runs in this Kubernetes cluster: use its own service account"
    )
    context = forms.CharField(required=False, help_text="The kubeconfig's context; empty: its current one.")
    namespace = forms.CharField(initial=DEFAULT_NAMESPACE)
    topology_key = forms.CharField(
        initial=DEFAULT_TOPOLOGY_KEY, label="Zone label", help_text="Node label whose values are the racks."
    )
    storage_class = forms.CharField(required=False, help_text="Empty: the cluster's default class.")
    image = forms.CharField(initial=DEFAULT_IMAGE, help_text="{version} becomes the cluster's Kafka version.")
    volume_retention = forms.ChoiceField(
        choices=[
            (VolumeRetention.DELETE.value, "Delete the volumes with the cluster"),
            (VolumeRetention.RETAIN.value, "Keep the volumes for an administrator"),
        ],
        initial=VolumeRetention.DELETE.value,
        label="Volumes of a deleted cluster",
    )
    allowed_cidrs = forms.CharField(
        required=False,
        label="Allowed networks",
        widget=forms.TextInput(attrs={"placeholder": "10.20.0.0/16, 192.0.2.0/24"}),
        help_text="Outside the Kubernetes cluster, allowed to reach the brokers (the control plane). Comma separated.",
    )

    hosts = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "spellcheck": "false",
                "placeholder": "kafka-1 10.0.1.11 a\nkafka-2 10.0.2.11 b admin 2222",
            }
        ),
        help_text="One host per line: name, address, rack, and optionally the SSH user (root) and port (22).",
    )
    racks = forms.CharField(
        required=False, help_text="The pool's racks, comma separated; empty: whatever racks the hosts name."
    )
    ssh_private_key = forms.CharField(
        required=False,
        strip=False,
        label="SSH private key",
        widget=SecretTextarea(attrs={"rows": 5, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Without a passphrase. Stored encrypted and never shown again.",
    )
    known_hosts = forms.CharField(
        required=False,
        strip=False,
        label="Host keys (known_hosts)",
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Every host's public key, as ssh-keyscan prints them; no other key is accepted.",
    )
    service_manager = forms.ChoiceField(
        required=False,
        choices=[("systemd", "systemd"), ("supervised", "The playbooks' supervisor (no systemd)")],
        initial="systemd",
    )
    kafka_user = forms.CharField(
        required=False, initial="kafka", help_text="The account Kafka runs as; empty: the SSH user."
    )
    java_home = forms.CharField(
        required=False, label="Java home", help_text="Empty: java on the hosts' PATH."
    )

    def __init__(self, *args: Any, organizations: Iterable[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organizations = _organization_field(self, organizations)
        self.values: dict[str, Any] = {}

    def kind_fields(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(kind, label, its fields), for the form's per-kind sections."""
        labels = dict(TargetKind.choices)
        return [(kind, labels[kind], [self[name] for name in fields]) for kind, fields in KIND_FIELDS.items()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The fields of the kinds not chosen are not filled in (their section is hidden).
        chosen = KIND_FIELDS.get(cleaned.get("kind", ""), {})
        for kind_fields in KIND_FIELDS.values():
            for name in kind_fields:
                if name not in chosen:
                    self.errors.pop(name, None)
        if self.errors:
            return cleaned
        payload: dict[str, Any] = {"name": cleaned["name"], "kind": cleaned["kind"], "settings": {}}
        for name, place in KIND_FIELDS[cleaned["kind"]].items():
            value = cleaned.get(name)
            if name in ("allowed_cidrs", "racks"):
                value = [part.strip() for part in (value or "").split(",") if part.strip()]
            elif name == "hosts":
                value = self._hosts(value or "")
            elif name == "service_manager":
                value = value or "systemd"
            if place == "settings":
                payload["settings"][name] = value
            elif value:
                payload[name] = value
        serializer = TargetWriteSerializer(data=payload)
        organization = _chosen_organization(self, self.organizations)
        try:
            serializer.is_valid(raise_exception=True)
            values = dict(serializer.validated_data)
            config, credentials = registration(organization, values)
        except ValidationError as exc:
            self._add_api_errors(exc.detail)
            return cleaned
        self.values = {
            "organization": organization,
            "name": values["name"],
            "kind": values["kind"],
            "config": config,
            "credentials": credentials,
        }
        return cleaned

    def _hosts(self, text: str) -> list[dict[str, Any]]:
        """The pool's hosts from the form's lines (name address rack [ssh_user [ssh_port]])."""
        hosts: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words:
                continue
            if not 3 <= len(words) <= 5 or (len(words) == 5 and not words[4].isdigit()):
                self.add_error(
                    "hosts", f"Line {number}: give name, address and rack, then optionally SSH user and port."
                )
                continue
            host: dict[str, Any] = dict(zip(("name", "address", "rack", "ssh_user"), words, strict=False))
            if len(words) == 5:
                host["ssh_port"] = int(words[4])
            hosts.append(host)
        return hosts

    def _add_api_errors(self, detail: Any) -> None:
        if not isinstance(detail, Mapping):
            self.add_error(None, [str(m) for m in detail])
            return
        for name, messages_ in detail.items():
            if name == "settings" and isinstance(messages_, Mapping):
                self._add_api_errors(messages_)
            elif name == "settings":  # about the settings as a whole (a pool without hosts)
                self.add_error("hosts", [str(m) for m in messages_])
            elif name == "non_field_errors" or name not in self.fields:
                self.add_error(
                    None, [f"{name}: {m}" if name != "non_field_errors" else str(m) for m in messages_]
                )
            else:
                self.add_error(name, [str(m) for m in messages_])


def _visible(request: HttpRequest) -> QuerySet[Target]:
    return Target.objects.filter(organization__in=organizations_of(request.user)).select_related(
        "organization"
    )


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return (
            ", ".join(map(str, value)) if all(isinstance(v, str) for v in value) else f"{len(value)} entries"
        )
    return str(value)


@login_required
@require_http_methods(["GET", "POST"])
def target_list(request: HttpRequest) -> HttpResponse:
    organizations = list(writable_organizations(request.user))
    if request.method == "POST" and not organizations:
        raise PermissionDenied(OrganizationRolePermission.message)  # a forged POST from a viewer
    form = TargetForm(request.POST if request.method == "POST" else None, organizations=organizations)
    if form.is_valid() and form.values:
        target = actions.register_target(**form.values, actor=Actor.from_request(request))
        messages.success(
            request, f"Target {target.name} registered. Test its connection to see what it allows."
        )
        return redirect("dashboard:target-list")
    targets = list(
        _visible(request)
        .annotate(clusters=Count("placements", filter=~Q(placements__cluster__status=ClusterStatus.DELETED)))
        .order_by("organization__name", "name")
    )
    for target in targets:
        target.shown_config = {
            key: _shown(value) for key, value in target.config.items() if value not in ("", [])
        }
        target.authentication = TargetSerializer().get_authentication(target)
        if target.kind == TargetKind.VM:
            target.shown_config["hosts"] = ", ".join(
                f"{h['name']} {h['address']} ({h['rack']})" for h in target.config.get("hosts", [])
            )
    report = request.session.pop(SESSION_REPORT, None)
    context = {
        "form": form,
        "targets": targets,
        "several_organizations": len({t.organization_id for t in targets}) > 1,
        "writable": {org.pk for org in organizations},
        "may_write": bool(organizations),
        "report": report,
    }
    return render(request, "dashboard/target_list.html", context)


def _target_write(request: HttpRequest, pk: Any) -> Target:
    target = get_object_or_404(_visible(request), pk=pk)
    require_write(request.user, target.organization_id)
    return target


@login_required
@require_POST
def target_test(request: HttpRequest, pk: Any) -> HttpResponse:
    """Test the connection now (a few requests to the target, bounded by its request timeout) and show
    the report on the list, once."""
    target = _target_write(request, pk)
    report = ConnectionReportSerializer(check_connection(target)).data
    request.session[SESSION_REPORT] = {"target": target.name, "target_id": str(target.pk), **report}
    return redirect(f"{reverse('dashboard:target-list')}#connection-report")


@login_required
@require_POST
def target_delete(request: HttpRequest, pk: Any) -> HttpResponse:
    target = _target_write(request, pk)
    try:
        actions.remove_target(target=target, actor=Actor.from_request(request))
    except actions.TargetInUse as exc:
        messages.error(request, f"Target {target.name} was not removed: {exc}")
    else:
        messages.success(request, f"Target {target.name} removed.")
    return redirect("dashboard:target-list")
