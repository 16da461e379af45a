"""Dashboard forms. They collect what a person types; the REST API's serializers and the domain's
validation decide whether it is acceptable, so the dashboard and the API give the same messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.forms.utils import pretty_name
from django.utils import timezone

from controlplane.api.serializers import DEFAULT_NODE_SIZE, ClusterCreateSerializer
from controlplane.clusters.choices import Backend
from controlplane.clusters.layout import Layout, layout_errors
from controlplane.clusters.specs import available_backends
from controlplane.clusters.validation import new_cluster_errors
from controlplane.targets.models import Target
from controlplane.tenancy.models import ApiToken, Organization
from provisioning import security
from provisioning.placement import place_brokers

# Form field -> key inside the API's `node_size` object.
NODE_SIZE_FIELDS = {"node_cpu": "cpu", "node_memory_mb": "memory_mb", "node_disk_gb": "disk_gb"}
LAYOUT_FIELDS = ("brokers", "racks", "replication_factor", "min_insync_replicas")


def _number(**attrs: Any) -> forms.NumberInput:
    return forms.NumberInput(attrs={"inputmode": "numeric", **attrs})


def split_racks(text: str) -> list[str]:
    return [rack.strip() for rack in text.split(",") if rack.strip()]


def api_payload(data: Mapping[str, Any]) -> dict[str, Any]:
    """The body the REST API would receive for these form values. Blank optional fields are left out,
    so the API's defaults apply."""
    # The name is always sent, so a blank one reads "may not be blank" exactly as in the API.
    payload: dict[str, Any] = {"name": data.get("name") or ""}
    for name in (
        "backend",
        "target",
        "kafka_version",
        "brokers",
        "replication_factor",
        "min_insync_replicas",
    ):
        value = data.get(name)
        if value not in (None, ""):
            payload[name] = value
    if racks := split_racks(data.get("racks") or ""):
        payload["racks"] = racks
    node_size = {
        key: data[name] for name, key in NODE_SIZE_FIELDS.items() if data.get(name) not in (None, "")
    }
    if node_size:
        payload["node_size"] = node_size
    if "self_healing" in data:
        payload["self_healing"] = bool(data["self_healing"])
    if data.get("client_authentication"):
        payload["client_authentication"] = list(data["client_authentication"])
    return payload


def _messages(value: Any) -> list[str]:
    return [str(message) for message in (value if isinstance(value, list) else [value])]


def api_errors_by_field(errors: Mapping[str, Any]) -> dict[str | None, list[str]]:
    """The API's 400 body as form field -> messages (None for messages that belong to no field)."""
    by_field: dict[str | None, list[str]] = {}
    for key, value in errors.items():
        if key == "node_size" and isinstance(value, Mapping):
            form_fields = {api_key: name for name, api_key in NODE_SIZE_FIELDS.items()}
            for sub_key, messages in value.items():
                by_field.setdefault(form_fields.get(sub_key), []).extend(_messages(messages))
        elif key == "racks" and isinstance(value, Mapping):
            # Errors about single rack names come keyed by their position in the list.
            for index, messages in value.items():
                by_field.setdefault("racks", []).extend(
                    f"Rack {int(index) + 1}: {m}" for m in _messages(messages)
                )
        elif key == "node_size":
            by_field.setdefault("node_cpu", []).extend(_messages(value))
        else:
            target = None if key == "non_field_errors" else key
            by_field.setdefault(target, []).extend(_messages(value))
    return by_field


# Broker counts the form suggests, the first the default backend accepts: three over three racks where
# it can run them (the single-node development broker cannot).
SUGGESTED_BROKERS = (3, 1)


def default_brokers(organization: Organization) -> int:
    """The broker count the form starts with: one the default backend accepts, so that the form's
    defaults alone create a cluster."""
    for brokers in SUGGESTED_BROKERS:
        serializer = ClusterCreateSerializer(data={"name": "defaults", "brokers": brokers})
        if serializer.is_valid() and "brokers" not in new_cluster_errors(
            organization, serializer.validated_data
        ):
            return brokers
    return SUGGESTED_BROKERS[-1]


class ClusterForm(forms.Form):
    """A new cluster. Fields are plain text on purpose: parsing and range checks are the API
    serializer's, so a person sees exactly the messages an API client gets."""

    name = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "orders", "autofocus": True}),
        help_text="Lowercase letters, digits and '-'; unique in the organization.",
    )
    organization = forms.ChoiceField(choices=())
    backend = forms.CharField(required=False, initial=Backend.LOCAL)
    # Text, offered as a choice of the organizations' targets: whether the name fits the backend is the
    # API's check, with its message.
    target = forms.CharField(
        required=False,
        help_text="Where the brokers run: a registered target of the backend (see Targets). Empty: the "
        "organization's only one; local clusters need none.",
    )
    kafka_version = forms.CharField(required=False, label="Kafka version")
    brokers = forms.CharField(required=False, initial=SUGGESTED_BROKERS[0], widget=_number(min=1))
    racks = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "eu-west-1a, eu-west-1b, eu-west-1c"}),
        help_text="Comma separated rack or availability-zone names. Leave empty for rack-1 … rack-N, "
        "one per replica.",
    )
    replication_factor = forms.CharField(
        required=False, widget=_number(min=1), help_text="Leave empty for min(3, brokers)."
    )
    min_insync_replicas = forms.CharField(
        required=False,
        label="Min in-sync replicas",
        widget=_number(min=1),
        help_text="Leave empty for replication factor - 1 (at least 1).",
    )
    node_cpu = forms.CharField(
        required=False, label="CPU cores", initial=DEFAULT_NODE_SIZE["cpu"], widget=_number(step="0.5")
    )
    node_memory_mb = forms.CharField(
        required=False, label="Memory (MB)", initial=DEFAULT_NODE_SIZE["memory_mb"], widget=_number(step=512)
    )
    node_disk_gb = forms.CharField(
        required=False, label="Disk (GB)", initial=DEFAULT_NODE_SIZE["disk_gb"], widget=_number(min=1)
    )
    self_healing = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Replace a broker that stays down, keeping its rack.",
    )

    client_authentication = forms.MultipleChoiceField(
        required=False,
        label="Client authentication",
        choices=[
            (security.SCRAM, "SCRAM passwords (SASL_SSL)"),
            (security.MTLS, "Client certificates (mTLS)"),
        ],
        widget=forms.CheckboxSelectMultiple,
        help_text="None: any client can connect (PLAINTEXT). With either, clients connect over TLS with "
        "certificates from the cluster's own CA, and Kafka allows only what ACL rules grant.",
    )

    def __init__(
        self, *args: Any, organizations: Iterable[Organization], dry_run: bool = False, **kwargs: Any
    ) -> None:
        """`dry_run`: checked for a preview only (no target need be registered)."""
        super().__init__(*args, **kwargs)
        self.dry_run = dry_run
        self.organizations = {org.slug: org for org in organizations}
        organization = self.fields["organization"]
        organization.choices = [(org.slug, org.name) for org in self.organizations.values()]
        if not self.asks_for_organization:
            organization.widget = forms.HiddenInput()
            organization.initial = next(iter(self.organizations), None)
        configured = set(available_backends())
        self.fields["backend"].widget = forms.Select(
            choices=[
                (value, label if value in configured else f"{label} (not configured)")
                for value, label in Backend.choices
            ]
        )
        targets = Target.objects.filter(organization__in=self.organizations.values()).select_related(
            "organization"
        )
        if targets:
            self.fields["target"].widget = forms.Select(
                choices=[
                    ("", "The organization's only one"),
                    *(
                        (
                            t.name,
                            f"{t.organization.name} / {t.name}" if self.asks_for_organization else t.name,
                        )
                        for t in targets.order_by("organization__name", "name")
                    ),
                ]
            )
        else:
            self.fields["target"].widget = forms.HiddenInput()
        self.fields["kafka_version"].widget = forms.Select(choices=[(v, v) for v in settings.KAFKA_VERSIONS])
        self.fields["kafka_version"].initial = settings.DEFAULT_KAFKA_VERSION
        if self.organizations:
            self.fields["brokers"].initial = default_brokers(next(iter(self.organizations.values())))
        self.spec: dict[str, Any] = {}

    @property
    def asks_for_organization(self) -> bool:
        return len(self.organizations) > 1

    def initial_values(self) -> dict[str, Any]:
        return {name: self.get_initial_for_field(field, name) for name, field in self.fields.items()}

    def target_organization(self) -> Organization:
        return self.organizations[self.cleaned_data["organization"]]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "organization" not in cleaned:
            return cleaned
        serializer = ClusterCreateSerializer(data=api_payload(cleaned), context={"form_values": True})
        if not serializer.is_valid():
            self._add_errors(api_errors_by_field(serializer.errors))
            return cleaned
        values = dict(serializer.validated_data)
        if errors := new_cluster_errors(self.target_organization(), values, dry_run=self.dry_run):
            self._add_errors({field: [message] for field, message in errors.items()})
            return cleaned
        self.spec = values
        return cleaned

    def _add_errors(self, errors: Mapping[str | None, list[str]]) -> None:
        for field_name, messages in errors.items():
            self.add_error(field_name if field_name in self.fields else None, messages)


class _LayoutSerializer(ClusterCreateSerializer):
    """The API's rules and defaults for the layout fields alone, so a placement can be previewed
    before the rest of the form is filled in."""

    name = None


@dataclass(frozen=True)
class PlacementPreview:
    errors: list[str] = field(default_factory=list)
    racks: list[tuple[str, list[int]]] = field(default_factory=list)
    replication_factor: int | None = None
    min_insync_replicas: int | None = None

    @property
    def broker_count(self) -> int:
        return sum(len(node_ids) for _, node_ids in self.racks)

    @property
    def widest(self) -> int:
        return max((len(node_ids) for _, node_ids in self.racks), default=0)


def _label(field_name: str | None) -> str:
    if field_name not in ClusterForm.base_fields:
        return "Layout"
    return ClusterForm.base_fields[field_name].label or pretty_name(field_name)


def placement_preview(data: Mapping[str, Any]) -> PlacementPreview:
    """Which broker would go to which rack for the layout fields in `data` (form values)."""
    payload = {key: value for key, value in api_payload(data).items() if key in LAYOUT_FIELDS}
    if "brokers" not in payload:
        return PlacementPreview(errors=["Enter the number of brokers to see where each one goes."])
    serializer = _LayoutSerializer(data=payload, context={"form_values": True})
    if not serializer.is_valid():
        return PlacementPreview(
            errors=[
                f"{_label(name)}: {message}"
                for name, messages in api_errors_by_field(serializer.errors).items()
                for message in messages
            ]
        )
    values = serializer.validated_data
    layout = Layout(
        brokers=values["brokers"],
        racks=tuple(values["racks"]),
        replication_factor=values["replication_factor"],
        min_insync_replicas=values["min_insync_replicas"],
    )
    if errors := layout_errors(layout):
        return PlacementPreview(errors=list(errors.values()))
    by_rack: dict[str, list[int]] = {rack: [] for rack in layout.racks}
    for node_id, rack in sorted(place_brokers(list(layout.racks), layout.brokers).items()):
        by_rack[rack].append(node_id)
    return PlacementPreview(
        racks=list(by_rack.items()),
        replication_factor=layout.replication_factor,
        min_insync_replicas=layout.min_insync_replicas,
    )


TOKEN_LIFETIMES = {"": "Never", "30": "30 days", "90": "90 days", "365": "1 year"}


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=ApiToken._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"placeholder": "ci-deploys", "autocomplete": "off"}),
        help_text="What the token is for, so you can tell your tokens apart.",
    )
    expires_in = forms.ChoiceField(choices=list(TOKEN_LIFETIMES.items()), required=False, label="Expires")

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None
