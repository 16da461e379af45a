"""Periodic alerting work (every 30 s from the beat schedule).

- Lift mutes whose silence or maintenance window has ended, and notify incidents that fired meanwhile.
- Repeat triggers of firing, unacknowledged incidents after each channel's repeat interval.
- Recover deliveries whose task was lost (a worker died mid-send, or a queued message vanished).
- Resolve incidents of deleted clusters, which are no longer evaluated.
- Prune history older than the retention period.

Each part runs in its own transaction, locking with SKIP LOCKED, so overlapping runs share the work
instead of doing it twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from controlplane.clusters.choices import ClusterStatus
from monitoring.alerting import delivery
from monitoring.alerting.choices import OPEN_STATES, DeliveryEvent, DeliveryStatus, IncidentState
from monitoring.alerting.evaluation import SYSTEM, notify
from monitoring.alerting.models import (
    Delivery,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    Silence,
)
from monitoring.alerting.muting import active_mutes

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
# A send is bounded by the notifier timeouts (seconds); an attempt still "sending" after this lost
# its worker.
LOST_SENDING_AFTER = timedelta(minutes=2)
# A pending attempt this far past due lost its queued task.
LOST_PENDING_AFTER = timedelta(minutes=1)
BATCH = 500


def run(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    done = {
        "unmuted": lift_ended_mutes(now),
        "repeated": repeat_notifications(now),
        "recovered": recover_lost_deliveries(now),
        "orphans_resolved": resolve_incidents_of_deleted_clusters(now),
        "pruned": prune_history(now),
    }
    if any(done.values()):
        logger.info("alerting housekeeping %s", " ".join(f"{k}={v}" for k, v in done.items()))
    return done


@transaction.atomic
def lift_ended_mutes(now: datetime) -> int:
    """Re-check muted incidents against the silences and windows in force now."""
    muted = list(
        Incident.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("cluster")
        .filter(state__in=OPEN_STATES, silenced=True)
        .filter(
            Q(silence__isnull=True, maintenance_window__isnull=True)
            | Q(silence__ends_at__lte=now)
            | Q(maintenance_window__ends_at__lte=now)
        )[:BATCH]
    )
    if not muted:
        return 0
    by_organization: dict[int, list[Incident]] = defaultdict(list)
    for incident in muted:
        by_organization[incident.cluster.organization_id].append(incident)
    lifted = 0
    for organization_id, incidents in by_organization.items():
        mutes = active_mutes(organization_id, {i.cluster_id for i in incidents}, now)
        changed = []
        for incident in incidents:
            silence_id, window_id = mutes[incident.cluster_id].match(incident.rule_key, incident.subject)
            silenced = silence_id is not None or window_id is not None
            if (incident.silenced, incident.silence_id, incident.maintenance_window_id) != (
                silenced,
                silence_id,
                window_id,
            ):
                incident.silenced, incident.silence_id, incident.maintenance_window_id = (
                    silenced,
                    silence_id,
                    window_id,
                )
                changed.append(incident)
        Incident.objects.bulk_update(changed, ["silenced", "silence", "maintenance_window"])
        lifted += sum(not i.silenced for i in changed)
        due = [
            i
            for i in changed
            if i.state == IncidentState.FIRING and not i.muted and i.last_notified_at is None
        ]
        notify(organization_id, due, (), now=now)
    return lifted


@transaction.atomic
def repeat_notifications(now: datetime) -> int:
    """Send a firing, unacknowledged, unmuted incident again to each channel whose interval passed."""
    incidents = list(
        Incident.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("cluster")
        .filter(
            state=IncidentState.FIRING,
            silenced=False,
            suppressed_by_operation=False,
            last_notified_at__isnull=False,
        )
        .order_by("last_notified_at")[:BATCH]
    )
    if not incidents:
        return 0
    organization_ids = {i.cluster.organization_id for i in incidents}
    channels: dict[int, list[NotificationChannel]] = defaultdict(list)
    for channel in NotificationChannel.objects.filter(organization_id__in=organization_ids, enabled=True):
        channels[channel.organization_id].append(channel)
    last_sent = {
        (incident_id, channel_id): last
        for incident_id, channel_id, last in Delivery.objects.filter(
            incident__in=incidents, event=DeliveryEvent.TRIGGER
        )
        .values("incident_id", "channel_id")
        .annotate(last=Max("created_at"))
        .values_list("incident_id", "channel_id", "last")
    }
    in_flight = set(
        Delivery.objects.filter(
            incident__in=incidents,
            event=DeliveryEvent.TRIGGER,
            status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING),
        ).values_list("incident_id", "channel_id")
    )
    planned: list[delivery.Planned] = []
    repeated: set[int] = set()
    for incident in incidents:
        for channel in delivery.channels_for(channels[incident.cluster.organization_id], incident.severity):
            pair = (incident.pk, channel.pk)
            if pair in in_flight:
                continue
            # A channel added or re-routed after the incident fired counts from its last notification.
            last = last_sent.get(pair, incident.last_notified_at)
            if now - last >= timedelta(seconds=channel.repeat_interval_seconds):
                planned.append(
                    delivery.Planned(
                        channel.pk, incident.pk, DeliveryEvent.TRIGGER, incident.notification_key
                    )
                )
                repeated.add(incident.pk)
    if planned:
        Incident.objects.filter(pk__in=repeated).update(last_notified_at=now)
        delivery.schedule(planned, now=now, requested_by=SYSTEM.name)
    return len(planned)


def recover_lost_deliveries(now: datetime) -> int:
    recovered = 0
    with transaction.atomic():
        lost = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.SENDING, started_at__lt=now - LOST_SENDING_AFTER)
            .values_list("pk", flat=True)[:BATCH]
        )
    for pk in lost:
        delivery.record_result(
            pk,
            delivery.DeliveryResult(
                ok=False, error="the worker sending this attempt was lost", retryable=True
            ),
            now=now,
        )
        recovered += 1
    stale = list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING, due_at__lt=now - LOST_PENDING_AFTER
        ).values_list("pk", flat=True)[:BATCH]
    )
    delivery.dispatch(stale)
    return recovered + len(stale)


@transaction.atomic
def resolve_incidents_of_deleted_clusters(now: datetime) -> int:
    orphans = list(
        Incident.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("cluster")
        .filter(state__in=OPEN_STATES, cluster__status=ClusterStatus.DELETED)[:BATCH]
    )
    if not orphans:
        return 0
    Incident.objects.filter(pk__in=[i.pk for i in orphans], state__in=OPEN_STATES).update(
        state=IncidentState.RESOLVED, resolved_at=now, resolved_by_name=SYSTEM.name
    )
    by_organization: dict[int, list[Incident]] = defaultdict(list)
    for incident in orphans:
        incident.state, incident.resolved_at = IncidentState.RESOLVED, now
        if incident.last_notified_at is not None:
            by_organization[incident.cluster.organization_id].append(incident)
    for organization_id, incidents in by_organization.items():
        notify(organization_id, (), incidents, now=now)
    return len(orphans)


def retention() -> timedelta:
    return timedelta(days=float(getattr(settings, "ALERT_HISTORY_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)))


def prune_history(now: datetime) -> int:
    """Delete resolved incidents (with their deliveries), ended silences and windows, old tests."""
    cutoff = now - retention()
    deleted = 0
    for queryset in (
        Incident.objects.filter(state=IncidentState.RESOLVED, resolved_at__lt=cutoff),
        Delivery.objects.filter(incident__isnull=True, created_at__lt=cutoff),
        Silence.objects.filter(ends_at__lt=cutoff),
        MaintenanceWindow.objects.filter(ends_at__lt=cutoff),
    ):
        ids = list(queryset.values_list("pk", flat=True)[:BATCH])
        if ids:
            deleted += (
                queryset.model.objects.filter(pk__in=ids).delete()[1].get(queryset.model._meta.label, 0)
            )
    return deleted
