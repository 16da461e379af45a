"""The alerting API: tenancy (other organizations answer 404), roles (viewers read, 403 on writes),
specific 400s, and channel secrets that are accepted but never shown again.

These tests stop at the database: deliveries are recorded but no worker sends them (on_commit
callbacks do not fire inside a test transaction). Sending is covered in test_delivery.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from monitoring.alerting.choices import DeliveryEvent, IncidentState
from monitoring.alerting.evaluation import evaluate_cluster
from monitoring.alerting.models import Delivery, Incident, NotificationChannel, RuleOverrideRecord, Silence
from tests.support.alerting import make_cluster, unreachable_snapshot
from tests.support.tenants import Tenant, token_client

ALERTS = "/api/v1/alerts/"
SILENCES = "/api/v1/silences/"
WINDOWS = "/api/v1/maintenance-windows/"
RULES = "/api/v1/alert-rules/"
CHANNELS = "/api/v1/notification-channels/"

ROUTING_KEY = "R0UT1NGKEY-very-secret-0001"
SIGNING_SECRET = "whsec-very-secret-signing-key"
SECRET_URL = "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX"


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return make_cluster(tenant.organization, name="payments")


@pytest.fixture
def incident(cluster: Cluster) -> Incident:
    evaluate_cluster(cluster.pk, unreachable_snapshot(cluster, timezone.now()))
    return Incident.objects.get(cluster=cluster)


def later(**delta: float) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


# Alerts


def test_alerts_are_listed_for_the_callers_organizations_only(
    tenant: Tenant, other_tenant: Tenant, incident: Incident
) -> None:
    theirs = make_cluster(other_tenant.organization, name="theirs")
    evaluate_cluster(theirs.pk, unreachable_snapshot(theirs, timezone.now()))
    foreign = Incident.objects.get(cluster=theirs)

    body = token_client(tenant.viewer).get(ALERTS).json()

    assert [a["id"] for a in body["results"]] == [incident.pk]
    alert = body["results"][0]
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["rule"] == "cluster_unreachable" and alert["rule_title"] == "Cluster unreachable"
    assert alert["cluster_name"] == "payments" and alert["notification_key"] == incident.notification_key
    assert token_client(tenant.viewer).get(f"{ALERTS}{foreign.pk}/").status_code == 404
    assert token_client(tenant.admin).post(f"{ALERTS}{foreign.pk}/acknowledge/").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=open", 1),
        ("state=firing", 1),
        ("state=resolved", 0),
        ("severity=warning", 0),
        ("severity=critical", 1),
    ],
)
def test_alerts_filter_by_state_and_severity(
    tenant: Tenant, incident: Incident, query: str, expected: int
) -> None:
    assert token_client(tenant.viewer).get(f"{ALERTS}?{query}").json()["count"] == expected


def test_alerts_filter_by_cluster(tenant: Tenant, incident: Incident) -> None:
    client = token_client(tenant.viewer)
    other = make_cluster(tenant.organization, name="other")

    assert client.get(f"{ALERTS}?cluster={incident.cluster_id}").json()["count"] == 1
    assert client.get(f"{ALERTS}?cluster={other.pk}").json()["count"] == 0
    assert client.get(f"{ALERTS}?state=bogus").status_code == 400


def test_acknowledging_needs_a_write_role_and_a_firing_incident(tenant: Tenant, incident: Incident) -> None:
    denied = token_client(tenant.viewer).post(f"{ALERTS}{incident.pk}/acknowledge/")
    assert denied.status_code == 403

    response = token_client(tenant.admin).post(f"{ALERTS}{incident.pk}/acknowledge/")

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_by"] == tenant.admin.username
    again = token_client(tenant.admin).post(f"{ALERTS}{incident.pk}/acknowledge/")
    assert again.status_code == 409 and "acknowledged" in again.json()["detail"]
    assert AuditEvent.objects.filter(action="incident.acknowledge", actor=tenant.admin).exists()


def test_resolving_by_hand_sends_a_resolve_to_the_channels_that_were_paged(
    tenant: Tenant, cluster: Cluster
) -> None:
    hook = NotificationChannel.objects.create(
        organization=tenant.organization,
        name="hook",
        kind="webhook",
        config={"url": "http://127.0.0.1:9/hook", "secret": SIGNING_SECRET},
        created_by_name="tests",
    )
    evaluate_cluster(cluster.pk, unreachable_snapshot(cluster, timezone.now()))
    incident = Incident.objects.get()

    response = token_client(tenant.owner).post(f"{ALERTS}{incident.pk}/resolve/")

    assert response.status_code == 200
    assert response.json()["state"] == "resolved" and response.json()["resolved_by"] == tenant.owner.username
    events = list(hook.deliveries.order_by("pk").values_list("event", flat=True))
    assert events == [DeliveryEvent.TRIGGER, DeliveryEvent.RESOLVE]
    assert token_client(tenant.owner).post(f"{ALERTS}{incident.pk}/resolve/").status_code == 409
    listed = token_client(tenant.viewer).get(f"{ALERTS}{incident.pk}/deliveries/").json()
    assert [d["event"] for d in listed["results"]] == ["resolve", "trigger"]


def test_alerts_cannot_be_created_or_deleted_through_the_api(tenant: Tenant, incident: Incident) -> None:
    client = token_client(tenant.owner)

    assert client.post(ALERTS, {}, format="json").status_code == 405
    assert client.delete(f"{ALERTS}{incident.pk}/").status_code == 405


# Silences


def test_creating_a_silence(tenant: Tenant, cluster: Cluster) -> None:
    body = {
        "cluster": str(cluster.pk),
        "rule": "under_replicated",
        "subject": "topic:orders-*",
        "ends_at": later(hours=2),
        "comment": "rebalancing orders topics",
    }

    response = token_client(tenant.admin).post(SILENCES, body, format="json")

    assert response.status_code == 201, response.content
    silence = response.json()
    assert silence["organization"] == tenant.organization.slug
    assert silence["cluster"] == str(cluster.pk) and silence["rule"] == "under_replicated"
    assert silence["active"] is True and silence["created_by"] == tenant.admin.username
    assert AuditEvent.objects.filter(action="silence.create", target_id=str(silence["id"])).exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rule": "no_such_rule"}, "rule", "Unknown rule"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at", "after starts_at"),
        ({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"}, "ends_at", "future"),
        ({"comment": ""}, "comment", "blank"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_silence_input_errors_are_specific(
    tenant: Tenant, body: dict[str, Any], field: str, words: str
) -> None:
    payload = {"ends_at": later(hours=1), "comment": "maintenance", **body}

    response = token_client(tenant.admin).post(SILENCES, payload, format="json")

    assert response.status_code == 400
    assert words in json.dumps(response.json()[field])


def test_viewers_cannot_silence_and_other_organizations_clusters_are_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = make_cluster(other_tenant.organization, name="theirs")
    body = {"ends_at": later(hours=1), "comment": "maintenance"}

    assert token_client(tenant.viewer).post(SILENCES, body, format="json").status_code == 403
    response = token_client(tenant.admin).post(SILENCES, {**body, "cluster": str(theirs.pk)}, format="json")
    assert response.status_code == 400 and "No cluster" in response.json()["cluster"][0]


def test_deleting_a_silence_expires_it_and_keeps_it_as_history(tenant: Tenant) -> None:
    client = token_client(tenant.admin)
    created = client.post(SILENCES, {"ends_at": later(hours=1), "comment": "deploy"}, format="json").json()

    extended = client.patch(f"{SILENCES}{created['id']}/", {"ends_at": later(hours=3)}, format="json")
    assert extended.status_code == 200
    assert token_client(tenant.viewer).delete(f"{SILENCES}{created['id']}/").status_code == 403
    assert client.delete(f"{SILENCES}{created['id']}/").status_code == 204

    silence = client.get(f"{SILENCES}{created['id']}/").json()
    assert silence["active"] is False
    assert client.get(f"{SILENCES}?active=true").json()["count"] == 0
    assert client.get(f"{SILENCES}?active=false").json()["count"] == 1
    assert Silence.objects.get().ends_at <= timezone.now()


def test_silences_of_another_organization_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = token_client(other_tenant.admin).post(
        SILENCES, {"ends_at": later(hours=1), "comment": "theirs"}, format="json"
    )

    assert token_client(tenant.admin).get(f"{SILENCES}{theirs.json()['id']}/").status_code == 404
    assert token_client(tenant.admin).delete(f"{SILENCES}{theirs.json()['id']}/").status_code == 404
    assert token_client(tenant.admin).get(SILENCES).json()["count"] == 0


# Maintenance windows


def test_maintenance_windows_crud(tenant: Tenant, cluster: Cluster) -> None:
    client = token_client(tenant.admin)
    body = {"cluster": str(cluster.pk), "ends_at": later(hours=1), "comment": "kernel upgrade"}

    assert token_client(tenant.viewer).post(WINDOWS, body, format="json").status_code == 403
    created = client.post(WINDOWS, body, format="json")
    assert created.status_code == 201, created.content
    window = created.json()
    assert window["active"] is True and window["created_by"] == tenant.admin.username

    changed = client.patch(f"{WINDOWS}{window['id']}/", {"comment": "kernel and firmware"}, format="json")
    assert changed.status_code == 200 and changed.json()["comment"] == "kernel and firmware"
    backwards = client.patch(f"{WINDOWS}{window['id']}/", {"ends_at": "2020-01-01T00:00:00Z"}, format="json")
    assert backwards.status_code == 400 and "after starts_at" in backwards.json()["ends_at"][0]
    assert client.get(f"{WINDOWS}?cluster={cluster.pk}&active=true").json()["count"] == 1
    assert client.delete(f"{WINDOWS}{window['id']}/").status_code == 204
    assert client.get(WINDOWS).json()["count"] == 0


def test_maintenance_windows_need_a_cluster_of_the_callers_organization(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = make_cluster(other_tenant.organization, name="theirs")
    client = token_client(tenant.admin)

    missing = client.post(WINDOWS, {"ends_at": later(hours=1)}, format="json")
    foreign = client.post(WINDOWS, {"cluster": str(theirs.pk), "ends_at": later(hours=1)}, format="json")

    assert missing.status_code == 400 and "cluster" in missing.json()
    assert foreign.status_code == 400 and "No cluster" in foreign.json()["cluster"][0]


# Alert rules


def rule(body: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next(r for r in body if r["key"] == key)


def test_rules_list_the_catalogue_with_effective_values(tenant: Tenant) -> None:
    body = token_client(tenant.viewer).get(RULES).json()

    keys = {r["key"] for r in body}
    assert {"under_replicated", "under_min_isr", "broker_down", "cluster_unreachable"} <= keys
    urp = rule(body, "under_replicated")
    assert (
        urp["default"]
        == urp["effective"]
        == {
            "threshold": 0,
            "for_seconds": 300,
            "severity": "warning",
            "enabled": True,
        }
    )
    assert urp["suppressible"] is True and urp["overrides"] == []
    assert rule(body, "consumer_lag_status")["effective"]["threshold"] == "STALL"


def test_organization_and_cluster_overrides_layer_in_order(tenant: Tenant, cluster: Cluster) -> None:
    client = token_client(tenant.admin)

    org = client.put(
        f"{RULES}consumer_lag_offsets/override/", {"threshold": 5000, "for_seconds": 60}, format="json"
    )
    assert org.status_code == 200, org.content
    assert org.json()["effective"]["threshold"] == 5000 and org.json()["effective"]["for_seconds"] == 60
    one = client.put(
        f"{RULES}consumer_lag_offsets/override/",
        {"cluster": str(cluster.pk), "threshold": 100, "severity": "critical"},
        format="json",
    )
    assert one.status_code == 200, one.content

    for_cluster = client.get(f"{RULES}consumer_lag_offsets/?cluster={cluster.pk}").json()
    assert for_cluster["effective"] == {
        "threshold": 100,
        "for_seconds": 60,
        "severity": "critical",
        "enabled": True,
    }
    assert [o["scope"] for o in for_cluster["overrides"]] == ["organization", "cluster"]
    for_org = client.get(f"{RULES}consumer_lag_offsets/").json()
    assert for_org["effective"]["threshold"] == 5000 and for_org["effective"]["severity"] == "warning"

    deleted = client.delete(f"{RULES}consumer_lag_offsets/override/?cluster={cluster.pk}")
    assert deleted.status_code == 204
    assert (
        client.get(f"{RULES}consumer_lag_offsets/?cluster={cluster.pk}").json()["effective"]["threshold"]
        == 5000
    )
    assert RuleOverrideRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="alert_rule.override_delete").exists()


def test_a_lag_status_threshold_is_given_by_name(tenant: Tenant) -> None:
    response = token_client(tenant.admin).put(
        f"{RULES}consumer_lag_status/override/", {"threshold": "stop"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["effective"]["threshold"] == "STOP"


@pytest.mark.parametrize(
    ("key", "body", "field", "words"),
    [
        ("under_replicated", {"threshold": "lots"}, "threshold", "must be a number"),
        ("under_replicated", {"threshold": -1}, "threshold", "0 or more"),
        ("disk_usage", {"threshold": 150}, "threshold", "at most 100"),
        ("consumer_lag_status", {"threshold": "SLOW"}, "threshold", "OK, WARN, ERR, REWIND, STALL, STOP"),
        ("under_replicated", {"for_seconds": -5}, "for_seconds", "whole number >= 0"),
        ("under_replicated", {"for_seconds": 1.5}, "for_seconds", "whole number >= 0"),
        ("under_replicated", {"for_seconds": 10**7}, "for_seconds", "at most"),
        ("under_replicated", {"severity": "urgent"}, "severity", "critical, warning, info"),
        ("under_replicated", {"enabled": "yes"}, "enabled", "true or false"),
        ("under_replicated", {}, "non_field_errors", "at least one"),
        ("under_replicated", {"treshold": 5}, "treshold", "Unknown field"),
        ("under_replicated", {"cluster": "not-a-uuid", "threshold": 1}, "cluster", "UUID"),
    ],
)
def test_override_errors_are_specific(
    tenant: Tenant, key: str, body: dict[str, Any], field: str, words: str
) -> None:
    response = token_client(tenant.admin).put(f"{RULES}{key}/override/", body, format="json")

    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json()[field])
    assert not RuleOverrideRecord.objects.exists()


def test_rule_overrides_need_a_write_role_and_a_known_rule(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = make_cluster(other_tenant.organization, name="theirs")

    assert (
        token_client(tenant.viewer)
        .put(f"{RULES}broker_down/override/", {"enabled": False}, format="json")
        .status_code
        == 403
    )
    assert (
        token_client(tenant.admin)
        .put(f"{RULES}nope/override/", {"enabled": False}, format="json")
        .status_code
        == 404
    )
    assert token_client(tenant.admin).get(f"{RULES}nope/").status_code == 404
    foreign = token_client(tenant.admin).put(
        f"{RULES}broker_down/override/", {"cluster": str(theirs.pk), "enabled": False}, format="json"
    )
    assert foreign.status_code == 400
    assert token_client(tenant.admin).delete(f"{RULES}broker_down/override/").status_code == 404


# Notification channels


def all_text(response: Any) -> str:
    return response.content.decode()


def test_channel_secrets_are_write_only_and_shown_masked(tenant: Tenant) -> None:
    client = token_client(tenant.admin)

    pager = client.post(
        CHANNELS,
        {
            "name": "pager",
            "kind": "pagerduty",
            "config": {"routing_key": ROUTING_KEY},
            "min_severity": "critical",
        },
        format="json",
    )
    hook = client.post(
        CHANNELS,
        {
            "name": "hook",
            "kind": "webhook",
            "config": {
                "url": SECRET_URL,
                "secret": SIGNING_SECRET,
                "headers": {"Authorization": "Bearer abc123"},
            },
        },
        format="json",
    )
    slack = client.post(
        CHANNELS, {"name": "chat", "kind": "slack", "config": {"webhook_url": SECRET_URL}}, format="json"
    )

    assert pager.status_code == hook.status_code == slack.status_code == 201, (pager.content, hook.content)
    assert pager.json()["config"] == {"routing_key": "****0001"}
    assert hook.json()["config"] == {
        "url": "https://hooks.example.com/****",
        "secret": "****-key",
        "headers": {"Authorization": "****"},
    }
    assert slack.json()["config"] == {"webhook_url": "https://hooks.example.com/****"}
    responses = [
        pager,
        hook,
        slack,
        client.get(CHANNELS),
        token_client(tenant.viewer).get(f"{CHANNELS}{hook.json()['id']}/"),
    ]
    for response in responses:
        text = all_text(response)
        assert ROUTING_KEY not in text and SIGNING_SECRET not in text and "XXXXsecretXXXX" not in text
        assert "abc123" not in text
    events = AuditEvent.objects.filter(action__startswith="notification_channel")
    assert not any(
        SIGNING_SECRET in json.dumps(e.details) or ROUTING_KEY in json.dumps(e.details) for e in events
    )


def test_changing_a_channel_keeps_secrets_not_sent_again(tenant: Tenant) -> None:
    client = token_client(tenant.admin)
    created = client.post(
        CHANNELS,
        {"name": "hook", "kind": "webhook", "config": {"url": SECRET_URL, "secret": SIGNING_SECRET}},
        format="json",
    ).json()

    renamed = client.patch(
        f"{CHANNELS}{created['id']}/", {"name": "ops", "min_severity": "info"}, format="json"
    )
    resigned = client.patch(
        f"{CHANNELS}{created['id']}/", {"config": {"secret": "another-long-secret"}}, format="json"
    )

    assert renamed.status_code == 200 and renamed.json()["name"] == "ops"
    assert resigned.status_code == 200
    assert NotificationChannel.objects.get().config == {"url": SECRET_URL, "secret": "another-long-secret"}
    removed = client.patch(f"{CHANNELS}{created['id']}/", {"config": {"secret": None}}, format="json")
    assert removed.status_code == 400 and "secret is required" in removed.json()["config"][0]
    kind = client.patch(f"{CHANNELS}{created['id']}/", {"kind": "slack"}, format="json")
    assert kind.status_code == 400 and "cannot change" in kind.json()["kind"][0]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "pagerduty", "config": {}}, "config", "routing_key"),
        ({"kind": "webhook", "config": {"url": "ftp://x"}}, "config", "http(s) URL"),
        ({"kind": "email", "config": {"to": ["not-an-address"]}}, "config", "not an email address"),
        ({"kind": "carrier-pigeon", "config": {}}, "kind", "not a valid choice"),
        (
            {"kind": "slack", "config": {"webhook_url": SECRET_URL}, "min_severity": "urgent"},
            "min_severity",
            "valid",
        ),
        (
            {"kind": "slack", "config": {"webhook_url": SECRET_URL}, "repeat_interval_seconds": 5},
            "repeat_interval_seconds",
            "greater than or equal to 60",
        ),
    ],
)
def test_channel_input_errors_are_specific(
    tenant: Tenant, body: dict[str, Any], field: str, words: str
) -> None:
    response = token_client(tenant.admin).post(CHANNELS, {"name": "c", **body}, format="json")

    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json()[field])


def test_channel_names_are_unique_per_organization(tenant: Tenant, other_tenant: Tenant) -> None:
    body = {"name": "chat", "kind": "slack", "config": {"webhook_url": SECRET_URL}}

    assert token_client(tenant.admin).post(CHANNELS, body, format="json").status_code == 201
    again = token_client(tenant.admin).post(CHANNELS, body, format="json")
    assert again.status_code == 400 and "already exists" in again.json()["name"][0]
    assert token_client(other_tenant.admin).post(CHANNELS, body, format="json").status_code == 201


def test_channel_permissions(tenant: Tenant, other_tenant: Tenant) -> None:
    created = (
        token_client(tenant.admin)
        .post(
            CHANNELS, {"name": "chat", "kind": "slack", "config": {"webhook_url": SECRET_URL}}, format="json"
        )
        .json()
    )
    url = f"{CHANNELS}{created['id']}/"

    assert token_client(tenant.viewer).get(url).status_code == 200
    assert (
        token_client(tenant.viewer)
        .post(CHANNELS, {"name": "x", "kind": "slack", "config": {}}, format="json")
        .status_code
        == 403
    )
    assert token_client(tenant.viewer).patch(url, {"enabled": False}, format="json").status_code == 403
    assert token_client(tenant.viewer).post(f"{url}test/").status_code == 403
    assert token_client(tenant.viewer).delete(url).status_code == 403
    for method in ("get", "patch", "delete"):
        assert getattr(token_client(other_tenant.owner), method)(url).status_code == 404
    assert token_client(other_tenant.owner).post(f"{url}test/").status_code == 404
    assert token_client(tenant.owner).delete(url).status_code == 204


def test_a_test_notification_is_queued_and_listed_with_the_channels_deliveries(tenant: Tenant) -> None:
    client = token_client(tenant.admin)
    created = client.post(
        CHANNELS, {"name": "chat", "kind": "slack", "config": {"webhook_url": SECRET_URL}}, format="json"
    ).json()

    response = client.post(f"{CHANNELS}{created['id']}/test/")

    assert response.status_code == 202
    delivery = response.json()
    assert delivery["event"] == "test" and delivery["status"] == "pending" and delivery["attempt"] == 1
    listed = token_client(tenant.viewer).get(f"{CHANNELS}{created['id']}/deliveries/?event=test").json()
    assert [d["id"] for d in listed["results"]] == [delivery["id"]]
    assert Delivery.objects.get().requested_by_name == tenant.admin.username
    bad = client.get(f"{CHANNELS}{created['id']}/deliveries/?status=lost")
    assert bad.status_code == 400


def test_the_openapi_schema_documents_every_alerting_endpoint(tenant: Tenant) -> None:
    schema = token_client(tenant.viewer).get("/api/schema/?format=json").json()

    for path in (
        "/api/v1/alerts/",
        "/api/v1/alerts/{id}/acknowledge/",
        "/api/v1/alerts/{id}/resolve/",
        "/api/v1/silences/{id}/",
        "/api/v1/maintenance-windows/",
        "/api/v1/alert-rules/{key}/override/",
        "/api/v1/notification-channels/{id}/test/",
        "/api/v1/notification-channels/{id}/deliveries/",
    ):
        assert path in schema["paths"], path
    channel = schema["components"]["schemas"]["NotificationChannel"]["properties"]
    assert "masked" in channel["config"]["description"]


def test_states_shown_are_the_lifecycle_states(tenant: Tenant, incident: Incident) -> None:
    Incident.objects.filter(pk=incident.pk).update(state=IncidentState.PENDING, fired_at=None)

    body = token_client(tenant.viewer).get(f"{ALERTS}{incident.pk}/").json()

    assert body["state"] == "pending" and body["fired_at"] is None
    assert datetime.fromisoformat(body["first_seen_at"]).tzinfo is not None
    assert datetime.fromisoformat(body["first_seen_at"]) <= datetime.now(UTC)


def test_prometheus_rules_follow_the_effective_rules_and_load_in_promtool(
    tenant: Tenant, other_tenant: Tenant, cluster: Cluster, tmp_path: Any
) -> None:
    import shutil
    import subprocess

    admin = token_client(tenant.admin)
    admin.put(f"{RULES}consumer_lag_offsets/override/", {"threshold": 5000}, format="json")

    response = admin.get(f"{RULES}prometheus/", {"cluster": str(cluster.id)})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml"
    text = response.content.decode()
    assert f'cluster="{cluster.name}"' in text and f'organization="{tenant.organization.slug}"' in text
    assert "> 5000" in text
    # Another organization's cluster is not found (a query parameter, so 400 like the rest of this API).
    foreign = token_client(other_tenant.owner).get(f"{RULES}prometheus/", {"cluster": str(cluster.id)})
    assert foreign.status_code == 400 and "No cluster" in foreign.json()["cluster"][0]
    fleet = token_client(tenant.viewer).get(f"{RULES}prometheus/").content.decode()
    assert "cluster=" not in fleet and f'organization="{tenant.organization.slug}"' in fleet
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (make test installs the Debian prometheus package)")
    (tmp_path / "rules.yml").write_text(text)
    check = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
