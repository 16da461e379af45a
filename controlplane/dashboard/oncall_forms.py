"""Forms of the alerts and on-call pages. As with clusters, the REST API's serializers and the
alerting actions decide what is acceptable, so the dashboard and the API give the same messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting.api.serializers import (
    MaintenanceWindowWriteSerializer,
    NotificationChannelWriteSerializer,
    SilenceWriteSerializer,
)
from monitoring.alerting.choices import ChannelKind, IncidentState, Severity
from monitoring.alerting.models import Incident, NotificationChannel
from monitoring.conditions import RULES

OPEN = "open"
ALL = "all"
STATE_FILTERS = [
    (OPEN, "Open"),
    (IncidentState.FIRING, "Firing"),
    (IncidentState.ACKNOWLEDGED, "Acknowledged"),
    (IncidentState.PENDING, "Pending"),
    (IncidentState.RESOLVED, "Resolved"),
    (ALL, "All"),
]
# Choice -> (label, length), for silences and maintenance windows alike.
DURATIONS: Mapping[str, tuple[str, timedelta]] = {
    "30m": ("30 minutes", timedelta(minutes=30)),
    "1h": ("1 hour", timedelta(hours=1)),
    "2h": ("2 hours", timedelta(hours=2)),
    "4h": ("4 hours", timedelta(hours=4)),
    "8h": ("8 hours", timedelta(hours=8)),
    "1d": ("1 day", timedelta(days=1)),
    "3d": ("3 days", timedelta(days=3)),
    "7d": ("7 days", timedelta(days=7)),
}
DURATION_CHOICES = [(key, label) for key, (label, _) in DURATIONS.items()]
REPEAT_INTERVALS = [
    ("1800", "every 30 minutes"),
    ("3600", "every hour"),
    ("14400", "every 4 hours"),
    ("43200", "every 12 hours"),
    ("86400", "every day"),
]
# Form field -> channel config key, per kind. Every secret is typed into a password input, which is
# never filled back in: not after a validation error, not ever.
CHANNEL_FIELDS: Mapping[str, Mapping[str, str]] = {
    ChannelKind.PAGERDUTY: {"routing_key": "routing_key"},
    ChannelKind.SLACK: {"slack_webhook_url": "webhook_url"},
    ChannelKind.EMAIL: {"email_to": "to"},
    ChannelKind.WEBHOOK: {"webhook_url": "url", "webhook_secret": "secret"},
}


# Secrets that are URLs: shown again after the URL itself was refused, so that it can be corrected (it
# is what this person just typed); every other secret, and a URL that was fine, is never filled back in.
URL_FIELDS = ("slack_webhook_url", "webhook_url")


def _secret(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        required=False,
        label=label,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


def _messages(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        key: [str(m) for m in (value if isinstance(value, list) else [value])]
        for key, value in errors.items()
    }


def _organization_field(form: forms.Form, organizations: Iterable[Organization]) -> dict[str, Organization]:
    """The organization choice, hidden when the user may write to only one."""
    by_slug = {org.slug: org for org in organizations}
    organization = form.fields["organization"]
    organization.choices = [(org.slug, org.name) for org in by_slug.values()]
    if len(by_slug) <= 1:
        organization.widget = forms.HiddenInput()
        organization.initial = next(iter(by_slug), None)
        # Nothing to choose: a request without the field (a script's, say) means the only one.
        organization.required = False
    return by_slug


def _chosen_organization(form: forms.Form, organizations: Mapping[str, Organization]) -> Organization:
    slug = form.cleaned_data.get("organization") or next(iter(organizations))
    return organizations[slug]


def _cluster_label(cluster: Cluster, several_organizations: bool) -> str:
    return f"{cluster.organization.name} / {cluster.name}" if several_organizations else cluster.name


class IncidentFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_FILTERS, required=False, initial=OPEN)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    cluster = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, clusters: Iterable[Cluster], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clusters = list(clusters)
        several = len({c.organization_id for c in clusters}) > 1
        self.fields["cluster"].choices = [("", "Any cluster")] + [
            (str(c.pk), _cluster_label(c, several)) for c in clusters
        ]

    def filter(self, incidents: QuerySet[Incident]) -> QuerySet[Incident]:
        """The incidents the filters select; a filter with an invalid value is ignored."""
        values = self.cleaned_data if self.is_valid() else {}
        state = values.get("state") or OPEN
        if state == OPEN:
            incidents = incidents.exclude(state=IncidentState.RESOLVED)
        elif state != ALL:
            incidents = incidents.filter(state=state)
        if values.get("severity"):
            incidents = incidents.filter(severity=values["severity"])
        if values.get("cluster"):
            incidents = incidents.filter(cluster_id=values["cluster"])
        return incidents


class SilenceForm(forms.Form):
    organization = forms.ChoiceField(choices=())
    cluster = forms.ChoiceField(required=False, help_text="Empty: every cluster of the organization.")
    rule = forms.ChoiceField(required=False, help_text="Empty: every rule.")
    subject = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "group:billing-*", "autocomplete": "off"}),
        help_text="A shell-style pattern such as topic:orders, broker:3 or group:billing-*. "
        "Empty: every subject.",
    )
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial="2h", label="For")
    comment = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why, so the next person on call knows.",
    )

    def __init__(
        self,
        *args: Any,
        organizations: Iterable[Organization],
        clusters: Iterable[Cluster],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.organizations = _organization_field(self, organizations)
        self.clusters = {str(c.pk): c for c in clusters}
        several = len(self.organizations) > 1
        self.fields["cluster"].choices = [("", "Every cluster")] + [
            (pk, _cluster_label(c, several)) for pk, c in self.clusters.items()
        ]
        self.fields["rule"].choices = [("", "Every rule")] + [
            (key, rule.title) for key, rule in sorted(RULES.items(), key=lambda item: item[1].title)
        ]
        self.values: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        cluster = self.clusters.get(cleaned.get("cluster") or "")
        # A silence of one cluster belongs to that cluster's organization, whichever was selected.
        organization = cluster.organization if cluster else _chosen_organization(self, self.organizations)
        payload = {
            "rule": cleaned.get("rule") or "",
            "subject": cleaned.get("subject") or "",
            "ends_at": (timezone.now() + DURATIONS[cleaned["duration"]][1]).isoformat(),
            "comment": cleaned.get("comment") or "",
        }
        serializer = SilenceWriteSerializer(data=payload, context={"form_values": True})
        if not serializer.is_valid():
            for name, messages in _messages(serializer.errors).items():
                self.add_error(name if name in self.fields else None, messages)
            return cleaned
        self.values = {
            "organization": organization,
            "cluster": cluster,
            "rule_key": serializer.validated_data.get("rule", ""),
            "subject": serializer.validated_data.get("subject", ""),
            "starts_at": serializer.validated_data["starts_at"],
            "ends_at": serializer.validated_data["ends_at"],
            "comment": serializer.validated_data["comment"],
        }
        return cleaned


class MaintenanceWindowForm(forms.Form):
    cluster = forms.ChoiceField()
    starts_at = forms.DateTimeField(
        required=False,
        label="Starts (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Empty: now.",
    )
    duration = forms.ChoiceField(choices=DURATION_CHOICES, initial="1h", label="For")
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What is planned.",
    )

    def __init__(self, *args: Any, clusters: Iterable[Cluster], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clusters = {str(c.pk): c for c in clusters}
        several = len({c.organization_id for c in self.clusters.values()}) > 1
        self.fields["cluster"].choices = [(pk, _cluster_label(c, several)) for pk, c in self.clusters.items()]
        self.values: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        # The label says UTC: a datetime-local input carries no zone of its own.
        starts_at = (cleaned.get("starts_at") or timezone.now()).replace(tzinfo=UTC)
        payload = {
            "cluster": cleaned["cluster"],
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + DURATIONS[cleaned["duration"]][1]).isoformat(),
            "comment": cleaned.get("comment") or "",
        }
        serializer = MaintenanceWindowWriteSerializer(data=payload, context={"form_values": True})
        if not serializer.is_valid():
            for name, messages in _messages(serializer.errors).items():
                self.add_error(name if name in self.fields else None, messages)
            return cleaned
        self.values = {
            "cluster": self.clusters[cleaned["cluster"]],
            "starts_at": serializer.validated_data["starts_at"],
            "ends_at": serializer.validated_data["ends_at"],
            "comment": serializer.validated_data.get("comment", ""),
        }
        return cleaned


class ChannelForm(forms.Form):
    organization = forms.ChoiceField(choices=())
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "payments-on-call", "autocomplete": "off"}),
    )
    kind = forms.ChoiceField(choices=ChannelKind.choices, initial=ChannelKind.PAGERDUTY)
    routing_key = _secret("Routing key", "The integration key of an Events API v2 integration.")
    slack_webhook_url = _secret("Webhook URL", "The incoming webhook's https://hooks.slack.com/… URL.")
    email_to = forms.CharField(
        required=False,
        label="To",
        widget=forms.TextInput(attrs={"placeholder": "oncall@example.com, kafka-team@example.com"}),
        help_text="Comma separated addresses.",
    )
    webhook_url = _secret("URL", "Where to POST the JSON body.")
    webhook_secret = _secret("Signing secret", "Each request carries an HMAC-SHA256 signature made with it.")
    min_severity = forms.ChoiceField(
        choices=Severity.choices,
        initial=Severity.WARNING,
        label="Least severity sent",
        help_text="Less severe incidents are not sent here.",
    )
    repeat_interval_seconds = forms.ChoiceField(
        choices=REPEAT_INTERVALS,
        initial="14400",
        label="Repeat",
        help_text="How often a firing, unacknowledged incident is sent again.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, organizations: Iterable[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organizations = _organization_field(self, organizations)
        self.values: dict[str, Any] = {}

    def kind_fields(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(kind, label, its config fields), for the form's per-kind sections."""
        labels = dict(ChannelKind.choices)
        return [
            (kind, labels[kind], [self[name] for name in fields]) for kind, fields in CHANNEL_FIELDS.items()
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        kind = cleaned["kind"]
        fields = CHANNEL_FIELDS[kind]
        config = {key: cleaned[name].strip() for name, key in fields.items() if cleaned.get(name, "").strip()}
        organization = _chosen_organization(self, self.organizations)
        payload = {
            "organization": organization.slug,
            "name": cleaned["name"],
            "kind": kind,
            "config": config,
            "min_severity": cleaned["min_severity"],
            "enabled": cleaned.get("enabled", False),
            "repeat_interval_seconds": cleaned["repeat_interval_seconds"],
        }
        serializer = NotificationChannelWriteSerializer(data=payload, context={"form_values": True})
        if not serializer.is_valid():
            for name, messages in _messages(serializer.errors).items():
                if name == "config":
                    self.add_config_errors(messages)
                else:
                    self.add_error(name if name in self.fields else None, messages)
            return cleaned
        if NotificationChannel.objects.filter(organization=organization, name=cleaned["name"]).exists():
            self.add_error("name", f"A channel named {cleaned['name']!r} already exists.")
            return cleaned
        self.values = {
            "organization": organization,
            **{k: v for k, v in serializer.validated_data.items() if k != "organization"},
        }
        return cleaned

    def add_config_errors(self, errors: Iterable[str]) -> None:
        """Put each of the notifier's messages under the field it is about; they start with the key."""
        fields = CHANNEL_FIELDS[self.cleaned_data["kind"]]
        for message in errors:
            target = next(
                (name for name, key in fields.items() if message.startswith(key)), next(iter(fields))
            )
            self.add_error(target, message)
            if target in URL_FIELDS:
                self.fields[target].widget = forms.TextInput(
                    attrs={"autocomplete": "off", "spellcheck": "false"}
                )
