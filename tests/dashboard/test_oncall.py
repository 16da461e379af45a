"""The on-call pages through Django's test client: silences, maintenance windows and notification
channels, written through the alerting actions; secrets never rendered; viewers refused (403) and
other organizations' objects not found (404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from controlplane.tenancy.actions import set_membership
from controlplane.tenancy.models import Role
from monitoring.alerting.choices import DeliveryEvent, DeliveryStatus
from monitoring.alerting.models import MaintenanceWindow, NotificationChannel, Silence
from tests.dashboard.conftest import create_cluster
from tests.support.tenants import SYSTEM, Tenant, token_client

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0UT1NGKEY-very-secret-0001"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
HOOK_URL = "https://hooks.example.com/kcp/XXXXsecretpathXXXX"
SIGNING_SECRET = "whsec-very-secret-signing-key"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_silence(tenant: Tenant, **values) -> Silence:
    now = timezone.now()
    return Silence.objects.create(
        organization=tenant.organization,
        starts_at=values.pop("starts_at", now - timedelta(minutes=5)),
        ends_at=values.pop("ends_at", now + timedelta(hours=1)),
        comment=values.pop("comment", "deploying"),
        created_by_name="tests",
        **values,
    )


def make_channel(tenant: Tenant, name: str = "pager", **values) -> NotificationChannel:
    return NotificationChannel.objects.create(
        organization=tenant.organization,
        name=name,
        kind=values.pop("kind", "pagerduty"),
        config=values.pop("config", {"routing_key": ROUTING_KEY}),
        created_by_name="tests",
        **values,
    )


# Silences


def test_create_a_silence_for_one_clusters_consumer_groups(tenant: Tenant, cluster: Cluster) -> None:
    client = signed_in(tenant.admin)

    response = client.post(
        "/oncall/silences/",
        {
            "organization": tenant.organization.slug,
            "cluster": str(cluster.pk),
            "rule": "consumer_lag_status",
            "subject": "group:billing-*",
            "duration": "4h",
            "comment": "billing replays yesterday's events",
        },
        follow=True,
    )

    silence = Silence.objects.get()
    assert (silence.organization, silence.cluster, silence.rule_key, silence.subject) == (
        tenant.organization,
        cluster,
        "consumer_lag_status",
        "group:billing-*",
    )
    assert abs(silence.ends_at - silence.starts_at - timedelta(hours=4)) < timedelta(seconds=5)
    assert silence.created_by_name == tenant.admin.username
    page = response.content.decode()
    assert f'data-silence="{silence.pk}"' in page.split('id="active-silences"')[1].split("</table>")[0]
    assert "billing replays yesterday&#x27;s events" in page
    assert AuditEvent.objects.filter(action="silence.create", actor=tenant.admin).exists()


def test_a_silence_needs_a_comment_and_a_known_rule(tenant: Tenant) -> None:
    client = signed_in(tenant.admin)

    page = client.post(
        "/oncall/silences/", {"rule": "no_such_rule", "duration": "1h", "comment": ""}
    ).content.decode()

    assert "This field is required." in page.split('data-field="comment"')[1].split("</div>")[0]
    assert "Select a valid choice." in page.split('data-field="rule"')[1].split("</div>")[0]
    assert not Silence.objects.exists()


def test_silence_form_is_filled_in_from_an_incident_link(tenant: Tenant, cluster: Cluster) -> None:
    page = (
        signed_in(tenant.admin)
        .get(f"/oncall/silences/?cluster={cluster.pk}&rule=broker_down&subject=broker:3")
        .content.decode()
    )

    assert f'<option value="{cluster.pk}" selected>' in page
    assert '<option value="broker_down" selected>' in page
    assert 'value="broker:3"' in page


def test_expire_a_silence(tenant: Tenant) -> None:
    silence = make_silence(tenant)

    signed_in(tenant.owner).post(f"/oncall/silences/{silence.pk}/expire/")

    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now()
    assert AuditEvent.objects.filter(action="silence.expire").exists()


def test_viewers_cannot_change_silences(tenant: Tenant) -> None:
    silence = make_silence(tenant)
    client = signed_in(tenant.viewer)

    page = client.get("/oncall/silences/").content.decode()

    assert 'id="silence-form"' not in page and "Expire</button>" not in page
    assert f'data-silence="{silence.pk}"' in page
    assert client.post("/oncall/silences/", {"duration": "1h", "comment": "x"}).status_code == 403
    assert client.post(f"/oncall/silences/{silence.pk}/expire/").status_code == 403
    silence.refresh_from_db()
    assert silence.ends_at > timezone.now()


def test_other_organizations_silences_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    silence = make_silence(tenant)
    outsider = signed_in(other_tenant.owner)

    assert f'data-silence="{silence.pk}"' not in outsider.get("/oncall/silences/").content.decode()
    assert outsider.post(f"/oncall/silences/{silence.pk}/expire/").status_code == 404


def test_a_cluster_of_another_organization_cannot_be_silenced(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = create_cluster(other_tenant, name="theirs")

    page = (
        signed_in(tenant.admin)
        .post("/oncall/silences/", {"cluster": str(theirs.pk), "duration": "1h", "comment": "x"})
        .content.decode()
    )

    assert "Select a valid choice." in page and not Silence.objects.exists()


# Maintenance windows


def test_plan_end_and_cancel_maintenance(tenant: Tenant, cluster: Cluster) -> None:
    client = signed_in(tenant.admin)

    client.post(
        "/oncall/maintenance/", {"cluster": str(cluster.pk), "duration": "2h", "comment": "disk swap"}
    )
    later = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.post("/oncall/maintenance/", {"cluster": str(cluster.pk), "starts_at": later, "duration": "1h"})

    now_window, planned = MaintenanceWindow.objects.order_by("starts_at")
    assert now_window.starts_at <= timezone.now() < now_window.ends_at and now_window.comment == "disk swap"
    assert planned.starts_at.strftime("%Y-%m-%dT%H:%M") == later
    page = client.get("/oncall/maintenance/").content.decode()
    assert f'data-window="{now_window.pk}"' in page.split('id="active-windows"')[1].split("</table>")[0]
    assert f'data-window="{planned.pk}"' in page.split('id="upcoming-windows"')[1].split("</table>")[0]

    client.post(f"/oncall/maintenance/{now_window.pk}/end/")
    client.post(f"/oncall/maintenance/{planned.pk}/end/")

    now_window.refresh_from_db()
    assert now_window.ends_at <= timezone.now()
    assert not MaintenanceWindow.objects.filter(pk=planned.pk).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"maintenance_window.create", "maintenance_window.update", "maintenance_window.delete"} <= actions


def test_maintenance_permissions(tenant: Tenant, other_tenant: Tenant, cluster: Cluster) -> None:
    window = MaintenanceWindow.objects.create(
        cluster=cluster,
        starts_at=timezone.now() - timedelta(minutes=1),
        ends_at=timezone.now() + timedelta(hours=1),
        created_by_name="tests",
    )
    viewer = signed_in(tenant.viewer)

    assert 'id="maintenance-form"' not in viewer.get("/oncall/maintenance/").content.decode()
    assert (
        viewer.post("/oncall/maintenance/", {"cluster": str(cluster.pk), "duration": "1h"}).status_code == 403
    )
    assert viewer.post(f"/oncall/maintenance/{window.pk}/end/").status_code == 403
    outsider = signed_in(other_tenant.owner)
    assert f'data-window="{window.pk}"' not in outsider.get("/oncall/maintenance/").content.decode()
    assert outsider.post(f"/oncall/maintenance/{window.pk}/end/").status_code == 404
    window.refresh_from_db()
    assert window.ends_at > timezone.now()


# Notification channels


@pytest.mark.parametrize(
    ("kind", "fields", "config", "secrets"),
    [
        ("pagerduty", {"routing_key": ROUTING_KEY}, {"routing_key": ROUTING_KEY}, [ROUTING_KEY]),
        ("slack", {"slack_webhook_url": SLACK_URL}, {"webhook_url": SLACK_URL}, [SLACK_URL, "XXXXsecret"]),
        (
            "webhook",
            {"webhook_url": HOOK_URL, "webhook_secret": SIGNING_SECRET},
            {"url": HOOK_URL, "secret": SIGNING_SECRET},
            [HOOK_URL, SIGNING_SECRET, "XXXXsecretpath"],
        ),
        (
            "email",
            {"email_to": "oncall@example.com, kafka@example.com"},
            {"to": "oncall@example.com, kafka@example.com"},
            [],
        ),
    ],
)
def test_create_a_channel_of_each_kind_without_showing_its_secrets(
    tenant: Tenant, kind: str, fields: dict[str, str], config: dict[str, str], secrets: list[str]
) -> None:
    client = signed_in(tenant.admin)

    response = client.post(
        "/oncall/channels/",
        {
            "organization": tenant.organization.slug,
            "name": f"{kind}-on-call",
            "kind": kind,
            "min_severity": "critical",
            "repeat_interval_seconds": "3600",
            "enabled": "on",
            **fields,
        },
        follow=True,
    )

    channel = NotificationChannel.objects.get()
    assert (channel.kind, channel.config, channel.min_severity, channel.enabled) == (
        kind,
        config,
        "critical",
        True,
    )
    assert channel.repeat_interval_seconds == 3600
    page = response.content.decode()
    assert f'data-channel="{kind}-on-call"' in page
    for secret in secrets:
        assert secret not in page
    if kind == "email":
        assert "oncall@example.com" in page
    else:
        assert "****" in page


def test_a_rejected_channel_does_not_echo_its_secrets(tenant: Tenant) -> None:
    make_channel(tenant, name="taken")
    client = signed_in(tenant.admin)

    missing_secret = client.post(
        "/oncall/channels/",
        {
            "name": "hook",
            "kind": "webhook",
            "webhook_url": HOOK_URL,
            "min_severity": "warning",
            "repeat_interval_seconds": "14400",
        },
    ).content.decode()
    duplicate = client.post(
        "/oncall/channels/",
        {
            "name": "taken",
            "kind": "pagerduty",
            "routing_key": ROUTING_KEY,
            "min_severity": "warning",
            "repeat_interval_seconds": "14400",
        },
    ).content.decode()

    assert (
        "secret is required to sign requests"
        in missing_secret.split('data-field="webhook_secret"')[1].split("</div>")[0]
    )
    assert HOOK_URL not in missing_secret
    assert "A channel named &#x27;taken&#x27; already exists." in duplicate
    assert ROUTING_KEY not in duplicate
    assert NotificationChannel.objects.count() == 1


def test_a_bad_slack_url_is_explained_by_its_field_and_kept_for_correcting(tenant: Tenant) -> None:
    typo = "hooks.slack.com/services/T000/B000/XXXX"
    api = token_client(tenant.admin).post(
        "/api/v1/notification-channels/",
        {"name": "slack", "kind": "slack", "config": {"webhook_url": typo}},
        format="json",
    )
    response = signed_in(tenant.admin).post(
        "/oncall/channels/",
        {
            "name": "slack",
            "kind": "slack",
            "slack_webhook_url": typo,
            "min_severity": "warning",
            "repeat_interval_seconds": "14400",
        },
    )

    assert api.json() == {"config": ["webhook_url must be an http(s) URL"]}
    assert response.context["form"].errors == {"slack_webhook_url": ["webhook_url must be an http(s) URL"]}
    field = response.content.decode().split('data-field="slack_webhook_url"')[1].split("</div>")[0]
    assert "webhook_url must be an http(s) URL" in field and f'value="{typo}"' in field
    assert not NotificationChannel.objects.exists()


def test_disable_enable_and_test_a_channel(tenant: Tenant) -> None:
    channel = make_channel(tenant)
    client = signed_in(tenant.admin)

    client.post(f"/oncall/channels/{channel.pk}/enabled/", {"enabled": "false"})
    channel.refresh_from_db()
    assert channel.enabled is False
    client.post(f"/oncall/channels/{channel.pk}/enabled/", {"enabled": "true"})
    channel.refresh_from_db()
    assert channel.enabled is True

    response = client.post(f"/oncall/channels/{channel.pk}/test/", follow=True)

    delivery = channel.deliveries.get()
    assert (delivery.event, delivery.status, delivery.incident) == (
        DeliveryEvent.TEST,
        DeliveryStatus.PENDING,
        None,
    )
    assert response.redirect_chain[-1][0] == f"/oncall/channels/?channel={channel.pk}#deliveries"
    page = response.content.decode()
    assert f'data-delivery="{delivery.pk}"' in page and "Test notification to pager queued" in page
    assert ROUTING_KEY not in page
    assert AuditEvent.objects.filter(action="notification_channel.test", actor=tenant.admin).exists()


def test_viewers_see_channels_but_cannot_change_them(tenant: Tenant) -> None:
    channel = make_channel(tenant)
    client = signed_in(tenant.viewer)

    page = client.get("/oncall/channels/").content.decode()

    assert 'data-channel="pager"' in page and ROUTING_KEY not in page
    assert 'id="channel-form"' not in page and "Send test notification" not in page
    assert client.post(f"/oncall/channels/{channel.pk}/test/").status_code == 403
    assert client.post(f"/oncall/channels/{channel.pk}/enabled/", {"enabled": "false"}).status_code == 403
    assert (
        client.post("/oncall/channels/", {"name": "x", "kind": "email", "email_to": "a@b.c"}).status_code
        == 403
    )
    assert not channel.deliveries.exists()
    channel.refresh_from_db()
    assert channel.enabled is True


def test_other_organizations_channels_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    channel = make_channel(tenant)
    outsider = signed_in(other_tenant.owner)

    assert 'data-channel="pager"' not in outsider.get("/oncall/channels/").content.decode()
    assert outsider.post(f"/oncall/channels/{channel.pk}/test/").status_code == 404
    assert outsider.post(f"/oncall/channels/{channel.pk}/enabled/", {"enabled": "false"}).status_code == 404
    assert outsider.get(f"/oncall/channels/?channel={channel.pk}").status_code == 200
    assert not channel.deliveries.exists()


def test_an_organization_is_chosen_only_by_members_of_several(tenant: Tenant, other_tenant: Tenant) -> None:
    assert (
        '<input type="hidden" name="organization"'
        in signed_in(tenant.admin).get("/oncall/channels/").content.decode()
    )
    set_membership(organization=other_tenant.organization, user=tenant.admin, role=Role.ADMIN, actor=SYSTEM)
    client = signed_in(tenant.admin)

    page = client.get("/oncall/channels/").content.decode()
    assert '<select name="organization"' in page

    client.post(
        "/oncall/channels/",
        {
            "organization": other_tenant.organization.slug,
            "name": "globex-mail",
            "kind": "email",
            "email_to": "ops@globex.example",
            "min_severity": "warning",
            "repeat_interval_seconds": "14400",
        },
    )
    assert NotificationChannel.objects.get().organization == other_tenant.organization
