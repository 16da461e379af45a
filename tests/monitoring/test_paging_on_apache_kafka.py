"""Paging proven on real Apache Kafka, end to end: a four-broker cluster created through the REST API,
collected on Celery beat's schedule by a real worker, brokers SIGKILLed behind the control plane's back.

What pages is what the real cluster's metadata says; notifications reach a real HTTP receiver as a
signed webhook and as PagerDuty Events API v2 requests; self-healing replaces the dead broker in its
rack; every incident resolves and its resolve is delivered; a producer at acks=all runs throughout and
loses nothing it was told was written.

The cluster has four brokers in four racks, so that two can die without losing the KRaft quorum: its
controllers are the brokers of racks a, b and c (one per rack, in rack order), and the broker of rack d
is a broker only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.clusters.choices import AnomalyState
from controlplane.clusters.models import BrokerAnomaly, Cluster
from monitoring.alerting.choices import OPEN_STATES, IncidentState
from monitoring.alerting.models import Incident
from monitoring.conditions import BROKER_DOWN, UNDER_MIN_ISR, UNDER_REPLICATED
from monitoring.notifiers import verify_signature
from monitoring.notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.http_receiver import HttpReceiver, RecordedRequest
from tests.support.operated_kafka import ControlPlane, OperatedCluster
from tests.support.workers import BeatProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SECRET = "whsec-paging-0123456789abcdef"
TOPIC = "payments"
# Self-healing waits this long after a broker went missing before it replaces it (5 minutes by
# default); long enough here for the second broker's death to be seen first.
SELF_HEALING_AFTER_SECONDS = "45"
# The broker of rack d is no controller; that of rack c is one.
BROKER_ONLY_RACK, CONTROLLER_RACK = "d", "c"
WEBHOOK, PAGERDUTY = "/hook", "/v2/enqueue"
# Detection takes Kafka's session timeout plus a collection interval; operations take longer.
DETECTION_TIMEOUT = 90
HEALING_TIMEOUT = 300


@pytest.fixture
def paging_control_plane(http_receiver: HttpReceiver, control_plane: ControlPlane) -> Iterator[ControlPlane]:
    # The receiver (which allows loopback targets) and self-healing's delay are set up before
    # `control_plane` starts its worker, which takes the settings and environment as they are then.
    yield control_plane


@pytest.fixture(autouse=True)
def quick_self_healing(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setenv("SELF_HEALING_AFTER_SECONDS", SELF_HEALING_AFTER_SECONDS)
    settings.SELF_HEALING_AFTER_SECONDS = float(SELF_HEALING_AFTER_SECONDS)


def incident(
    cluster: OperatedCluster, rule: str, subject: str | None = None, **filters: Any
) -> Incident | None:
    found = Incident.objects.filter(cluster_id=cluster.id, rule_key=rule, **filters)
    if subject is not None:
        found = found.filter(subject=subject)
    return found.order_by("-pk").first()


def firing(cluster: OperatedCluster, rule: str, subject: str | None = None) -> Incident:
    return wait_for(
        lambda: incident(cluster, rule, subject, state=IncidentState.FIRING),
        DETECTION_TIMEOUT,
        what=f"{rule} {subject or ''} firing",
    )


def events(receiver: HttpReceiver, path: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.path == path]


def webhook_event(receiver: HttpReceiver, event: str, key: str) -> RecordedRequest:
    def arrived() -> RecordedRequest | None:
        return next(
            (
                r
                for r in receiver.requests
                if r.path == WEBHOOK and (r.json()["event"], r.json()["dedup_key"]) == (event, key)
            ),
            None,
        )

    return wait_for(arrived, 60, what=f"webhook {event} of {key}")


def pagerduty_event(receiver: HttpReceiver, action: str, key: str) -> dict[str, Any]:
    def arrived() -> dict[str, Any] | None:
        return next(
            (e for e in events(receiver, PAGERDUTY) if (e["event_action"], e["dedup_key"]) == (action, key)),
            None,
        )

    return wait_for(arrived, 60, what=f"PagerDuty {action} of {key}")


def test_brokers_killed_page_heal_and_resolve(
    paging_control_plane: ControlPlane, http_receiver: HttpReceiver, start_beat: Any, start_worker: Any
) -> None:
    plane = paging_control_plane
    client = plane.client
    cluster = plane.create_cluster(
        name="payments",
        brokers=4,
        racks=["a", "b", "c", "d"],
        replication_factor=3,
        min_insync_replicas=2,
        self_healing=True,
    )
    organization = Cluster.objects.get(pk=cluster.id).organization.slug
    for body in (
        {
            "name": "hook",
            "kind": "webhook",
            "config": {"url": http_receiver.url_for(WEBHOOK), "secret": SECRET},
            "min_severity": "warning",
        },
        {
            "name": "pager",
            "kind": "pagerduty",
            "config": {"routing_key": "R0UT1NGKEY0123456789", "url": http_receiver.url_for(PAGERDUTY)},
            "min_severity": "critical",
        },
    ):
        response = client.post(
            "/api/v1/notification-channels/", {**body, "organization": organization}, format="json"
        )
        assert response.status_code == 201, response.content
    # Under-replication warns after 5 minutes by default; at once here, so the test need not wait.
    response = client.put(
        f"/api/v1/alert-rules/{UNDER_REPLICATED}/override/",
        {"cluster": cluster.id, "for_seconds": 0},
        format="json",
    )
    assert response.status_code == 200, response.content
    cluster.topic(TOPIC, partitions=6)
    # Collections and notifications get a worker of their own, as `make run` gives them.
    start_worker(queues=["monitoring", "notifications"])
    beat: BeatProcess = start_beat()
    wait_for(
        lambda: client.get(f"/api/v1/clusters/{cluster.id}/health/").json()["status"] == "ok",
        DETECTION_TIMEOUT,
        what="a first healthy collection",
    )
    kafka = cluster.kafka()
    racks = {b.node_id: b.rack for b in kafka.spec.brokers}
    broker_only = next(n for n, rack in racks.items() if rack == BROKER_ONLY_RACK)
    controller = next(n for n, rack in racks.items() if rack == CONTROLLER_RACK)

    with AckedTraffic(kafka.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(200)

        # One broker dies: under-replicated partitions from the real metadata, and the broker down.
        kafka.kill(broker_only)
        under_replicated = firing(cluster, UNDER_REPLICATED, f"broker:{broker_only}")
        down = firing(cluster, BROKER_DOWN, f"broker:{broker_only}")
        out_of_sync = {
            f"{t.name}[{p.partition}]"
            for t in cluster.state().topics
            for p in t.partitions
            if broker_only in p.replicas and broker_only not in p.isr
        }
        assert set(under_replicated.details["partitions"]) == out_of_sync
        assert under_replicated.value == len(out_of_sync) > 0
        hook = webhook_event(http_receiver, "trigger", under_replicated.notification_key)
        assert verify_signature(
            SECRET, hook.header(TIMESTAMP_HEADER), hook.body, hook.header(SIGNATURE_HEADER)
        )
        assert hook.json()["rule"] == UNDER_REPLICATED and hook.json()["severity"] == "warning"
        page = pagerduty_event(http_receiver, "trigger", down.notification_key)
        assert page["routing_key"] == "R0UT1NGKEY0123456789"
        assert (page["payload"]["severity"], page["payload"]["component"]) == (
            "critical",
            f"broker:{broker_only}",
        )
        # The dead broker reports no disk; the others do.
        health = client.get(f"/api/v1/clusters/{cluster.id}/health/").json()
        assert sorted(health["disks"]) == sorted(str(n) for n in racks if n != broker_only)

        # A second one dies: partitions on both are left with one in-sync replica, under
        # min.insync.replicas, and acks=all producers are refused there. That pages.
        kafka.kill(controller)
        under_min_isr = firing(cluster, UNDER_MIN_ISR, f"topic:{TOPIC}")
        page = pagerduty_event(http_receiver, "trigger", under_min_isr.notification_key)
        assert page["payload"]["class"] == UNDER_MIN_ISR

        # The controller's machine comes back; acks=all writes go through again.
        kafka.backend.restart_broker(kafka.spec, controller)
        wait_for(
            lambda: incident(
                cluster, UNDER_MIN_ISR, f"topic:{TOPIC}", pk=under_min_isr.pk, state=IncidentState.RESOLVED
            ),
            DETECTION_TIMEOUT,
            what="under-min-ISR resolved",
        )
        pagerduty_event(http_receiver, "resolve", under_min_isr.notification_key)

        # Self-healing replaces the broker that stays dead, in its rack, with a new node id.
        anomaly = wait_for(
            lambda: BrokerAnomaly.objects.filter(
                cluster_id=cluster.id, node_id=broker_only, state=AnomalyState.RESOLVED
            ).first(),
            HEALING_TIMEOUT,
            what="the dead broker replaced",
        )
        assert anomaly.operation is not None and anomaly.operation.state == "succeeded"
        brokers = {b["node_id"]: b for b in cluster.info()["broker_nodes"]}
        (replacement,) = set(brokers) - set(racks)
        assert (brokers[replacement]["rack"], brokers[replacement]["state"]) == (BROKER_ONLY_RACK, "running")
        state = cluster.state()
        assert {b.node_id: b.rack for b in state.brokers}[replacement] == BROKER_ONLY_RACK
        assert not any(broker_only in p.replicas for t in state.topics for p in t.partitions)
        assert all(set(p.isr) == set(p.replicas) for t in state.topics for p in t.partitions)

        traffic.wait_for_acks(len(traffic.acked) + 200)

    assert traffic.missing() == set()

    # Everything resolves, and each channel hears the resolve of what it was told.
    wait_for(
        lambda: not Incident.objects.filter(cluster_id=cluster.id, state__in=OPEN_STATES).exists(),
        DETECTION_TIMEOUT,
        what="every incident resolved",
    )
    for path, event_name, trigger, resolve in (
        (WEBHOOK, "event", "trigger", "resolve"),
        (PAGERDUTY, "event_action", "trigger", "resolve"),
    ):

        def resolved_all(
            path: str = path, name: str = event_name, t: str = trigger, r: str = resolve
        ) -> bool:
            sent = events(http_receiver, path)
            return {e["dedup_key"] for e in sent if e[name] == t} == {
                e["dedup_key"] for e in sent if e[name] == r
            }

        wait_for(resolved_all, 60, what=f"a resolve for every trigger sent to {path}")
    assert {down.notification_key, under_min_isr.notification_key} <= {
        e["dedup_key"] for e in events(http_receiver, PAGERDUTY) if e["event_action"] == "resolve"
    }
    assert beat.process.poll() is None, "beat ran throughout"
