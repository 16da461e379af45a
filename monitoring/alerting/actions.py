"""Every write people make to alerting: incidents, silences, maintenance windows, rule overrides,
notification channels. Each runs in one transaction, records an audit event, and leaves anything
outside the database (sending notifications) to after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring import notifiers
from monitoring.alerting import delivery
from monitoring.alerting.choices import OPEN_STATES, DeliveryEvent, IncidentState
from monitoring.alerting.evaluation import closing_deliveries
from monitoring.alerting.models import (
    Delivery,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    RuleOverrideRecord,
    Silence,
)
from monitoring.alerting.rules import OVERRIDE_FIELDS, normalized_threshold


class IncidentStateConflict(Exception):
    """The incident is not in a state that allows the change (e.g. acknowledging a resolved one)."""


class ChannelConfigInvalid(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


# Incidents


@transaction.atomic
def acknowledge_incident(*, incident: Incident, actor: Actor) -> Incident:
    """Firing -> acknowledged: repeats stop and channels that got the trigger are told."""
    now = timezone.now()
    updated = Incident.objects.filter(pk=incident.pk, state=IncidentState.FIRING).update(
        state=IncidentState.ACKNOWLEDGED,
        acknowledged_at=now,
        acknowledged_by=actor.account,
        acknowledged_by_name=actor.name,
    )
    if not updated:
        state = Incident.objects.values_list("state", flat=True).get(pk=incident.pk)
        raise IncidentStateConflict(f"Only a firing incident can be acknowledged; this one is {state}.")
    incident.refresh_from_db()
    record_event(
        actor=actor,
        action="incident.acknowledge",
        target=incident,
        organization=incident.cluster.organization,
        details={"rule": incident.rule_key, "subject": incident.subject},
    )
    delivery.schedule(
        closing_deliveries([incident], DeliveryEvent.ACKNOWLEDGE), now=now, requested_by=actor.name
    )
    return incident


@transaction.atomic
def resolve_incident(*, incident: Incident, actor: Actor) -> Incident:
    """Resolve by hand. If the condition still holds, the next evaluation opens a new incident."""
    now = timezone.now()
    updated = Incident.objects.filter(pk=incident.pk, state__in=OPEN_STATES).update(
        state=IncidentState.RESOLVED, resolved_at=now, resolved_by_name=actor.name
    )
    if not updated:
        raise IncidentStateConflict("This incident is already resolved.")
    incident.refresh_from_db()
    record_event(
        actor=actor,
        action="incident.resolve",
        target=incident,
        organization=incident.cluster.organization,
        details={"rule": incident.rule_key, "subject": incident.subject, "cleared": False},
    )
    if incident.last_notified_at is not None:
        delivery.schedule(
            closing_deliveries([incident], DeliveryEvent.RESOLVE), now=now, requested_by=actor.name
        )
    return incident


# Silences and maintenance windows


@transaction.atomic
def create_silence(
    *,
    organization: Organization,
    cluster: Cluster | None,
    rule_key: str,
    subject: str,
    starts_at: datetime,
    ends_at: datetime,
    comment: str,
    actor: Actor,
) -> Silence:
    silence = Silence.objects.create(
        organization=organization,
        cluster=cluster,
        rule_key=rule_key,
        subject=subject,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment,
        created_by=actor.account,
        created_by_name=actor.name,
    )
    record_event(
        actor=actor,
        action="silence.create",
        target=silence,
        organization=organization,
        details=_silence_details(silence),
    )
    return silence


@transaction.atomic
def update_silence(*, silence: Silence, changes: Mapping[str, Any], actor: Actor) -> Silence:
    fields = sorted(changes)
    for name in fields:
        setattr(silence, name, changes[name])
    silence.save(update_fields=[*fields, "updated_at"])
    record_event(
        actor=actor,
        action="silence.update",
        target=silence,
        organization=silence.organization,
        details=_silence_details(silence),
    )
    return silence


@transaction.atomic
def expire_silence(*, silence: Silence, actor: Actor) -> Silence:
    """End a silence now; it stays listed as history. Muted incidents notify at the next evaluation."""
    now = timezone.now()
    if silence.ends_at > now:
        silence.ends_at = now
        if silence.starts_at >= now:
            # One that has not started yet never takes effect; the constraint wants end after start.
            silence.starts_at = now - timedelta(microseconds=1)
        silence.save(update_fields=["starts_at", "ends_at", "updated_at"])
    record_event(actor=actor, action="silence.expire", target=silence, organization=silence.organization)
    return silence


def _silence_details(silence: Silence) -> dict[str, Any]:
    return {
        "cluster": str(silence.cluster_id) if silence.cluster_id else None,
        "rule": silence.rule_key,
        "subject": silence.subject,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
    }


@transaction.atomic
def create_maintenance_window(
    *, cluster: Cluster, starts_at: datetime, ends_at: datetime, comment: str, actor: Actor
) -> MaintenanceWindow:
    window = MaintenanceWindow.objects.create(
        cluster=cluster,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment,
        created_by=actor.account,
        created_by_name=actor.name,
    )
    record_event(
        actor=actor,
        action="maintenance_window.create",
        target=window,
        organization=cluster.organization,
        details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    return window


@transaction.atomic
def update_maintenance_window(
    *, window: MaintenanceWindow, changes: Mapping[str, Any], actor: Actor
) -> MaintenanceWindow:
    fields = sorted(changes)
    for name in fields:
        setattr(window, name, changes[name])
    window.save(update_fields=[*fields, "updated_at"])
    record_event(
        actor=actor,
        action="maintenance_window.update",
        target=window,
        organization=window.cluster.organization,
        details={"starts_at": window.starts_at.isoformat(), "ends_at": window.ends_at.isoformat()},
    )
    return window


@transaction.atomic
def delete_maintenance_window(*, window: MaintenanceWindow, actor: Actor) -> None:
    record_event(
        actor=actor,
        action="maintenance_window.delete",
        target=window,
        organization=window.cluster.organization,
    )
    window.delete()


# Rule overrides


@transaction.atomic
def set_rule_override(
    *,
    organization: Organization,
    cluster: Cluster | None,
    rule_key: str,
    values: Mapping[str, Any],
    actor: Actor,
) -> RuleOverrideRecord:
    """Create or replace the override of one rule for an organization or one of its clusters.

    `values` are already validated (`rules.override_errors`); fields left out inherit.
    """
    defaults = {
        "threshold": normalized_threshold(rule_key, values.get("threshold")),
        "for_seconds": values.get("for_seconds"),
        "severity": values.get("severity") or "",
        "enabled": values.get("enabled"),
        "updated_by_name": actor.name,
    }
    record, created = RuleOverrideRecord.objects.select_for_update().update_or_create(
        organization=organization, cluster=cluster, rule_key=rule_key, defaults=defaults
    )
    record_event(
        actor=actor,
        action="alert_rule.override" if created else "alert_rule.override_update",
        target=record,
        organization=organization,
        details={
            "rule": rule_key,
            "cluster": str(cluster.pk) if cluster else None,
            **{name: values.get(name) for name in OVERRIDE_FIELDS if values.get(name) is not None},
        },
    )
    return record


@transaction.atomic
def delete_rule_override(*, record: RuleOverrideRecord, actor: Actor) -> None:
    record_event(
        actor=actor,
        action="alert_rule.override_delete",
        target=record,
        organization=record.organization,
        details={"rule": record.rule_key, "cluster": str(record.cluster_id) if record.cluster_id else None},
    )
    record.delete()


# Notification channels


@transaction.atomic
def create_channel(
    *,
    organization: Organization,
    name: str,
    kind: str,
    config: Mapping[str, Any],
    min_severity: str,
    enabled: bool,
    repeat_interval_seconds: int | None,
    actor: Actor,
) -> NotificationChannel:
    if errors := notifiers.validate_config(kind, config):
        raise ChannelConfigInvalid(errors)
    channel = NotificationChannel(
        organization=organization,
        name=name,
        kind=kind,
        config=dict(config),
        min_severity=min_severity,
        enabled=enabled,
        created_by_name=actor.name,
    )
    if repeat_interval_seconds is not None:
        channel.repeat_interval_seconds = repeat_interval_seconds
    channel.save()
    record_event(
        actor=actor,
        action="notification_channel.create",
        target=channel,
        organization=organization,
        details={"kind": kind, "min_severity": min_severity, "enabled": enabled},
    )
    return channel


@transaction.atomic
def update_channel(
    *, channel: NotificationChannel, changes: Mapping[str, Any], actor: Actor
) -> NotificationChannel:
    """Change a channel. A `config` change is merged into the stored one, so secrets need not be sent
    again to change something else; a key set to null is removed."""
    changes = dict(changes)
    if "config" in changes:
        merged = {**channel.config, **changes["config"]}
        changes["config"] = {key: value for key, value in merged.items() if value is not None}
        if errors := notifiers.validate_config(channel.kind, changes["config"]):
            raise ChannelConfigInvalid(errors)
    fields = sorted(changes)
    for name in fields:
        setattr(channel, name, changes[name])
    channel.save(update_fields=[*fields, "updated_at"])
    record_event(
        actor=actor,
        action="notification_channel.update",
        target=channel,
        organization=channel.organization,
        # Which settings changed, never their values: config holds secrets.
        details={"changed": fields},
    )
    return channel


@transaction.atomic
def delete_channel(*, channel: NotificationChannel, actor: Actor) -> None:
    record_event(
        actor=actor,
        action="notification_channel.delete",
        target=channel,
        organization=channel.organization,
        details={"name": channel.name, "kind": channel.kind},
    )
    channel.delete()


@transaction.atomic
def send_test_notification(*, channel: NotificationChannel, actor: Actor) -> Delivery:
    """Queue a test event to the channel; its delivery rows show whether it arrived."""
    now = timezone.now()
    (row,) = delivery.schedule(
        [delivery.Planned(channel.pk, None, DeliveryEvent.TEST, delivery.new_test_dedup_key(channel))],
        now=now,
        requested_by=actor.name,
    )
    record_event(
        actor=actor, action="notification_channel.test", target=channel, organization=channel.organization
    )
    return row
