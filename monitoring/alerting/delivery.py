"""Sending incident events to channels: one Delivery row per attempt, one task per row.

Scheduling creates the rows inside the caller's transaction and queues their tasks after commit, so a
notification exists exactly when the state change that caused it does. A failed attempt that may
succeed later (`DeliveryResult.retryable`) becomes a new row due after an exponential backoff; each
channel has its own rows and tasks, so a dead channel never holds up a healthy one.

Per incident and channel, events must arrive in order (PagerDuty opens an incident that never closes
when a trigger overtakes its resolve). Scheduling an acknowledge or resolve therefore supersedes that
channel's unsent triggers, and an attempt waits while an earlier one for the same pair is in flight.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring import notifiers
from monitoring.alerting.choices import DeliveryEvent, DeliveryStatus, Severity
from monitoring.alerting.models import Delivery, Incident, NotificationChannel
from monitoring.collection_sql import insert_all, new, trigger_deliveries, update_by_pk
from monitoring.notifiers import DeliveryResult, Event, Link, Notification

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_RETRY_BASE_SECONDS = 2.0
DEFAULT_RETRY_MAX_SECONDS = 600.0
# How long an attempt waits for an earlier attempt of the same incident and channel to finish
# before asking again; sends are bounded by the notifier timeouts, so this is short.
ORDERING_WAIT_SECONDS = 1.0
TEST_SUMMARY = "Test notification from Kafka Control Plane: this channel is configured correctly."


def max_attempts() -> int:
    return int(getattr(settings, "ALERT_DELIVERY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`: doubling from the base, at least what the receiver asked."""
    base = float(getattr(settings, "ALERT_DELIVERY_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS))
    ceiling = float(getattr(settings, "ALERT_DELIVERY_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS))
    return min(max(base * 2 ** (attempt - 1), retry_after or 0.0), ceiling)


@dataclass(frozen=True)
class Planned:
    channel_id: int
    incident_id: int | None
    event: DeliveryEvent
    dedup_key: str
    # An acknowledge or resolve: the incident's unsent triggers to this channel, superseded by it.
    supersedes: tuple[int, ...] = ()


def channels_for(channels: Iterable[NotificationChannel], severity: str) -> list[NotificationChannel]:
    """Enabled channels whose minimum severity the incident reaches."""
    rank = Severity(severity).rank
    return [c for c in channels if c.enabled and rank >= Severity(c.min_severity).rank]


def triggered_channels(incident_ids: Sequence[int]) -> dict[int, dict[int, list[int]]]:
    """Incident id -> id of each channel a trigger was scheduled for (sent or not) -> the ids of
    its trigger attempts still pending there."""
    found: dict[int, dict[int, list[int]]] = {}
    for pk, incident_id, channel_id, status in trigger_deliveries(incident_ids):
        pending = found.setdefault(incident_id, {}).setdefault(channel_id, [])
        if status == DeliveryStatus.PENDING:
            pending.append(pk)
    return found


def schedule(planned: Sequence[Planned], *, now: datetime, requested_by: str) -> list[Delivery]:
    """Record first attempts and queue them once the caller's transaction commits."""
    if not planned:
        return []
    supersede_pending_triggers([pk for p in planned for pk in p.supersedes], now=now)
    rows = [
        new(
            Delivery,
            channel_id=p.channel_id,
            incident_id=p.incident_id,
            event=p.event,
            dedup_key=p.dedup_key,
            created_at=now,
            due_at=now,
            requested_by_name=requested_by,
        )
        for p in planned
    ]
    insert_all(Delivery, rows)
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: hand_over(ids))
    return rows


def hand_over(delivery_ids: Sequence[int]) -> None:
    """Queue attempts in one message: the notification workers turn it into one task per attempt.

    Each attempt stays its own task (one dead channel never holds up another), but a collection
    whose evaluation opened many incidents pays for one message, not one per notification: the
    fan-out runs on the notifications queue, off the path of collections."""
    if len(delivery_ids) == 1:
        dispatch(delivery_ids)
    elif delivery_ids:
        from monitoring.alerting.tasks import dispatch_deliveries

        dispatch_deliveries.delay(list(delivery_ids))


def supersede_pending_triggers(stale: Sequence[int], *, now: datetime) -> None:
    """Mark these trigger attempts superseded unless they left pending meanwhile."""
    if stale:
        update_by_pk(
            Delivery,
            stale,
            {
                "status": DeliveryStatus.SUPERSEDED,
                "finished_at": now,
                "error": "not sent: the incident was acknowledged or resolved first",
            },
            where={"status": [DeliveryStatus.PENDING]},
        )


def dispatch(delivery_ids: Iterable[int], *, countdown: float | None = None) -> None:
    from monitoring.alerting.tasks import deliver_notification

    for delivery_id in delivery_ids:
        deliver_notification.apply_async((delivery_id,), countdown=countdown)


def attempt_delivery(delivery_id: int, *, now: datetime | None = None) -> DeliveryStatus | None:
    """Send one pending attempt and record the outcome; returns the attempt's final status.

    Safe to run twice: only the run that moves the row from pending to sending sends anything.
    Returns None when there was nothing to send (not pending, not yet due, or waiting for order).
    `now` fixes the clock for tests; otherwise the attempt finishes at the real time it finished.
    """
    fixed_clock = now
    now = now or timezone.now()
    delivery = Delivery.objects.select_related("channel", "incident__cluster").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.due_at > now:
        # Celery delivered it early (a countdown lost across a broker restart, or a re-dispatch).
        dispatch([delivery.pk], countdown=(delivery.due_at - now).total_seconds())
        return None
    if (
        delivery.incident_id is not None
        and Delivery.objects.filter(
            incident_id=delivery.incident_id,
            channel_id=delivery.channel_id,
            status=DeliveryStatus.SENDING,
            pk__lt=delivery.pk,
        ).exists()
    ):
        dispatch([delivery.pk], countdown=ORDERING_WAIT_SECONDS)
        return None
    claimed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SENDING, started_at=now
    )
    if not claimed:
        return None
    channel = delivery.channel
    if not channel.enabled:
        result = DeliveryResult(ok=False, error="channel disabled before the attempt", retryable=False)
    else:
        try:
            result = notifiers.send(channel.kind, channel.config, build_notification(delivery))
        except Exception as exc:  # a notifier bug must still leave a record, not a row stuck sending
            logger.exception("delivery=%s channel=%s notifier raised", delivery.pk, channel.pk)
            result = DeliveryResult(ok=False, error=f"notifier error: {type(exc).__name__}", retryable=False)
    return record_result(delivery.pk, result, now=fixed_clock)


@transaction.atomic
def record_result(delivery_id: int, result: DeliveryResult, *, now: datetime | None = None) -> DeliveryStatus:
    now = now or timezone.now()
    delivery = Delivery.objects.get(pk=delivery_id)
    retry = not result.ok and result.retryable and delivery.attempt < max_attempts()
    if result.ok:
        status = DeliveryStatus.DELIVERED
    elif retry:
        status = DeliveryStatus.RETRYING
    else:
        status = DeliveryStatus.FAILED
    updated = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).update(
        status=status,
        finished_at=now,
        response_code=result.status_code,
        error=result.error or "",
    )
    if not updated:
        # Housekeeping gave up on this attempt as lost (and scheduled the next one) meanwhile.
        return DeliveryStatus(Delivery.objects.values_list("status", flat=True).get(pk=delivery_id))
    if retry:
        schedule_retry(delivery, now=now, delay=backoff_seconds(delivery.attempt, result.retry_after_seconds))
    if not result.ok:
        logger.warning(
            "delivery=%s channel=%s event=%s attempt=%s failed retry=%s error=%s",
            delivery.pk,
            delivery.channel_id,
            delivery.event,
            delivery.attempt,
            retry,
            result.error,
        )
    return status


def schedule_retry(delivery: Delivery, *, now: datetime, delay: float) -> Delivery:
    """The next attempt of `delivery` as its own row, due after `delay` seconds."""
    retry = Delivery.objects.create(
        channel_id=delivery.channel_id,
        incident_id=delivery.incident_id,
        event=delivery.event,
        dedup_key=delivery.dedup_key,
        attempt=delivery.attempt + 1,
        first_attempt_id=delivery.first_attempt_id or delivery.pk,
        created_at=now,
        due_at=now + timedelta(seconds=delay),
        requested_by_name=delivery.requested_by_name,
    )
    transaction.on_commit(lambda: dispatch([retry.pk], countdown=delay))
    return retry


def build_notification(delivery: Delivery) -> Notification:
    event = Event(delivery.event)
    channel = delivery.channel
    incident = delivery.incident
    if incident is None:
        return Notification(
            event=event,
            dedup_key=delivery.dedup_key,
            severity="info",
            summary=TEST_SUMMARY,
            cluster="kafka-control-plane",
            rule="test",
            subject=f"channel:{channel.name}",
            details={"channel": channel.name, "requested_by": delivery.requested_by_name},
            occurred_at=delivery.created_at,
        )
    return Notification(
        event=event,
        dedup_key=delivery.dedup_key,
        severity=incident.severity,
        summary=incident.summary,
        cluster=incident.cluster.name,
        rule=incident.rule_key,
        subject=incident.subject,
        details=incident_details(incident),
        links=incident_links(incident),
        occurred_at=incident.fired_at or incident.first_seen_at,
    )


def incident_details(incident: Incident) -> dict[str, Any]:
    details: dict[str, Any] = {
        "incident": incident.pk,
        "state": incident.state,
        "value": incident.value,
        "threshold": incident.threshold,
        "cluster_id": str(incident.cluster_id),
        **dict(incident.details or {}),
    }
    if incident.acknowledged_by_name:
        details["acknowledged_by"] = incident.acknowledged_by_name
    if incident.resolved_at is not None:
        details["resolved_at"] = incident.resolved_at.isoformat()
    return details


def incident_links(incident: Incident) -> tuple[Link, ...]:
    base = str(getattr(settings, "CONTROLPLANE_PUBLIC_URL", "") or "").rstrip("/")
    if not base:
        return ()
    return (Link(f"{base}/api/v1/alerts/{incident.pk}/", "Open the alert in Kafka Control Plane"),)


def new_test_dedup_key(channel: NotificationChannel) -> str:
    return f"kcp:test:{channel.pk}:{uuid.uuid4().hex}"
