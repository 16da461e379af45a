"""Dashboard pages for clusters and operations, through Django's test client.

No worker runs: a new cluster stays `requested` with its provisioning operation pending, and tests
that need an operation further along move it with the operations engine's own actions.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from controlplane.api.serializers import LOG_LINES_SHOWN
from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from controlplane.operations.actions import (
    append_log,
    claim_operation,
    fail_operation,
    mark_step_running,
    mark_step_succeeded,
    record_step_progress,
)
from controlplane.operations.choices import LogLevel
from controlplane.operations.models import Operation
from tests.dashboard.conftest import create_cluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_login_page_signs_in_and_lands_on_the_cluster_list(client: Client, tenant: Tenant) -> None:
    assert b"Sign in" in client.get("/login/").content

    response = client.post(
        "/login/", {"username": tenant.admin.username, "password": "correct-horse-battery"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/"
    assert b"Clusters" in response.content
    assert tenant.admin.username.encode() in response.content


def test_wrong_password_shows_an_error(client: Client, tenant: Tenant) -> None:
    response = client.post("/login/", {"username": tenant.admin.username, "password": "nope"})

    assert response.status_code == 200
    assert b"correct username and password" in response.content


class TestClusterList:
    def test_lists_the_organizations_clusters_with_their_operation(
        self, tenant: Tenant, other_tenant: Tenant, cluster: Cluster
    ) -> None:
        create_cluster(other_tenant, name="not-yours")

        page = signed_in(tenant.viewer).get("/").content.decode()

        assert 'data-cluster="orders"' in page
        assert "not-yours" not in page
        assert "eu-west-1b" in page
        assert "badge-requested" in page
        assert "Provision · pending" in page
        assert f"/clusters/{cluster.pk}/" in page

    def test_new_cluster_button_only_for_those_who_may_write(self, tenant: Tenant) -> None:
        assert b"New cluster" in signed_in(tenant.admin).get("/").content
        viewer_page = signed_in(tenant.viewer).get("/").content
        assert b"New cluster" not in viewer_page
        assert b"read-only" in viewer_page

    def test_deleted_clusters_are_not_listed(self, tenant: Tenant, cluster: Cluster) -> None:
        Cluster.objects.filter(pk=cluster.pk).update(status="deleted")

        assert b'data-cluster="orders"' not in signed_in(tenant.admin).get("/").content


class TestClusterDetail:
    def test_shows_status_settings_brokers_by_rack_and_the_operation(
        self, tenant: Tenant, cluster: Cluster
    ) -> None:
        Cluster.objects.filter(pk=cluster.pk).update(
            bootstrap_servers="127.0.0.1:9092,127.0.0.1:9093", status_reason="broker 2 is down"
        )

        response = signed_in(tenant.viewer).get(f"/clusters/{cluster.pk}/")

        assert response.status_code == 200
        page = response.content.decode()
        assert 'value="127.0.0.1:9092,127.0.0.1:9093"' in page
        assert "broker 2 is down" in page
        for rack in ("eu-west-1a", "eu-west-1b", "eu-west-1c"):
            assert f'data-rack="{rack}"' in page
        assert [rack.name for rack in response.context["racks"]] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        assert [[b.node_id for b in rack.brokers] for rack in response.context["racks"]] == [
            [0, 3],
            [1, 4],
            [2, 5],
        ]
        operation = Operation.objects.get(cluster=cluster)
        assert response.context["operation"] == operation
        assert f'data-operation-url="/api/v1/operations/{operation.pk}/"' in page
        assert "Check the layout against the backend" in page

    def test_viewer_sees_no_write_buttons(self, tenant: Tenant, cluster: Cluster) -> None:
        page = signed_in(tenant.viewer).get(f"/clusters/{cluster.pk}/").content.decode()

        assert "Delete cluster" not in page
        assert "Cancel operation" not in page
        assert "Turn self-healing" not in page

    def test_admin_sees_the_write_buttons(self, tenant: Tenant, cluster: Cluster) -> None:
        page = signed_in(tenant.admin).get(f"/clusters/{cluster.pk}/").content.decode()

        assert "Delete cluster" in page
        assert "Cancel operation" in page
        assert "Turn self-healing off" in page


class TestPermissions:
    """Allowed and denied cases share one setup: a cluster of Acme's with a pending operation."""

    def test_another_organization_gets_404_everywhere(self, other_tenant: Tenant, cluster: Cluster) -> None:
        client = signed_in(other_tenant.owner)
        operation = Operation.objects.get(cluster=cluster)

        assert client.get(f"/clusters/{cluster.pk}/").status_code == 404
        assert client.get(f"/clusters/{cluster.pk}/delete/").status_code == 404
        assert client.post(f"/clusters/{cluster.pk}/delete/", {"confirm_name": "orders"}).status_code == 404
        assert client.post(f"/clusters/{cluster.pk}/settings/", {"self_healing": "false"}).status_code == 404
        assert client.get(f"/operations/{operation.pk}/").status_code == 404
        assert client.post(f"/operations/{operation.pk}/cancel/").status_code == 404
        assert Cluster.objects.get(pk=cluster.pk).status == "requested"

    def test_viewer_posts_are_refused_with_403(self, tenant: Tenant, cluster: Cluster) -> None:
        client = signed_in(tenant.viewer)
        operation = Operation.objects.get(cluster=cluster)

        assert client.get(f"/clusters/{cluster.pk}/delete/").status_code == 403
        assert client.post(f"/clusters/{cluster.pk}/delete/", {"confirm_name": "orders"}).status_code == 403
        assert client.post(f"/clusters/{cluster.pk}/settings/", {"self_healing": "false"}).status_code == 403
        assert client.post(f"/operations/{operation.pk}/cancel/").status_code == 403
        assert client.get("/clusters/new/").status_code == 403
        assert client.post("/clusters/new/", {"name": "x", "brokers": "1"}).status_code == 403
        cluster.refresh_from_db()
        operation.refresh_from_db()
        assert (cluster.status, cluster.self_healing, operation.state) == ("requested", True, "pending")

    def test_posts_need_the_csrf_token(self, tenant: Tenant, cluster: Cluster) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(tenant.admin)

        assert client.post(f"/clusters/{cluster.pk}/settings/", {"self_healing": "false"}).status_code == 403
        assert Cluster.objects.get(pk=cluster.pk).self_healing is True


class TestClusterActions:
    def test_toggle_self_healing_is_recorded(self, tenant: Tenant, cluster: Cluster) -> None:
        response = signed_in(tenant.admin).post(
            f"/clusters/{cluster.pk}/settings/", {"self_healing": "false"}, follow=True
        )

        assert b"Self-healing is now off" in response.content
        assert Cluster.objects.get(pk=cluster.pk).self_healing is False
        event = AuditEvent.objects.get(action="cluster.update", target_id=str(cluster.pk))
        assert (event.actor_name, event.details) == (tenant.admin.username, {"self_healing": False})

    def test_drift_policy_and_metrics_interval_change_from_the_cluster_page(
        self, tenant: Tenant, cluster: Cluster
    ) -> None:
        client = signed_in(tenant.admin)
        page = client.get(f"/clusters/{cluster.pk}/").content.decode()
        assert "are <strong>reported</strong> and left as they are" in page

        response = client.post(
            f"/clusters/{cluster.pk}/settings/",
            {"drift_policy": "revert", "collection_interval_seconds": "60"},
            follow=True,
        )

        page = response.content.decode()
        assert "Topic changes made outside the control plane are now reverted" in page
        assert "Metrics are now collected every 60 s" in page
        cluster.refresh_from_db()
        assert (cluster.drift_policy, cluster.collection_interval_seconds, cluster.self_healing) == (
            "revert",
            60,
            True,
        )
        event = AuditEvent.objects.get(action="cluster.update", target_id=str(cluster.pk))
        assert event.details == {"drift_policy": "revert", "collection_interval_seconds": 60}

    def test_wrong_settings_get_the_apis_messages_and_change_nothing(
        self, tenant: Tenant, cluster: Cluster
    ) -> None:
        response = signed_in(tenant.admin).post(
            f"/clusters/{cluster.pk}/settings/",
            {"drift_policy": "ignore", "collection_interval_seconds": "2"},
            follow=True,
        )

        page = response.content.decode()
        assert "Drift policy: &quot;ignore&quot; is not a valid choice." in page
        assert "Collection interval seconds: Ensure this value is greater than or equal to 5." in page
        cluster.refresh_from_db()
        assert (cluster.drift_policy, cluster.collection_interval_seconds) == ("report", 10)
        assert not AuditEvent.objects.filter(action="cluster.update").exists()

    def test_cancel_a_pending_operation(self, tenant: Tenant, cluster: Cluster) -> None:
        operation = Operation.objects.get(cluster=cluster)

        response = signed_in(tenant.admin).post(f"/operations/{operation.pk}/cancel/", follow=True)

        assert response.redirect_chain[-1][0] == f"/clusters/{cluster.pk}/"
        assert b"Provision cancelled" in response.content
        assert Operation.objects.get(pk=operation.pk).state == "cancelled"
        assert Cluster.objects.get(pk=cluster.pk).status == "failed"

    def test_cancel_goes_back_to_a_local_page_only(self, tenant: Tenant, cluster: Cluster) -> None:
        operation = Operation.objects.get(cluster=cluster)

        response = signed_in(tenant.admin).post(
            f"/operations/{operation.pk}/cancel/", {"next": "https://evil.example/"}
        )

        assert response["Location"] == f"/clusters/{cluster.pk}/"

    def test_delete_while_an_operation_runs_explains_the_conflict(
        self, tenant: Tenant, cluster: Cluster
    ) -> None:
        operation = Operation.objects.get(cluster=cluster)

        response = signed_in(tenant.admin).post(
            f"/clusters/{cluster.pk}/delete/", {"confirm_name": "orders"}, follow=True
        )

        assert f"Operation {operation.pk}" in response.content.decode()
        assert Cluster.objects.get(pk=cluster.pk).status == "requested"

    def test_delete_needs_the_name_typed(self, tenant: Tenant, cluster: Cluster) -> None:
        Operation.objects.filter(cluster=cluster).update(state="succeeded")
        client = signed_in(tenant.admin)

        assert b"Type <code>orders</code> to confirm" in client.get(f"/clusters/{cluster.pk}/delete/").content
        wrong = client.post(f"/clusters/{cluster.pk}/delete/", {"confirm_name": "order"})
        assert wrong.status_code == 200
        assert b"Type orders to confirm." in wrong.content
        assert Cluster.objects.get(pk=cluster.pk).status == "requested"

        done = client.post(f"/clusters/{cluster.pk}/delete/", {"confirm_name": "orders"}, follow=True)

        assert b"Deleting cluster orders" in done.content
        assert Cluster.objects.get(pk=cluster.pk).status == "deleting"
        assert Operation.objects.filter(cluster=cluster, kind="delete", state="pending").exists()
        assert b"Delete cluster</a>" not in done.content


class TestOperationDetail:
    @pytest.fixture
    def failed_operation(self, cluster: Cluster) -> Operation:
        """The provisioning operation moved on by the engine's actions: one step done, one failed."""
        operation = Operation.objects.get(cluster=cluster)
        lease = claim_operation(operation.pk, stale_after=timedelta(minutes=1))
        first, second, _ = operation.steps.all()
        mark_step_running(first, lease)
        append_log(operation.pk, "3 brokers planned over 3 racks", step=first)
        mark_step_succeeded(first, lease, output={}, progress=None)
        mark_step_running(second, lease)
        record_step_progress(second, lease, done=2, total=6, output={})
        append_log(operation.pk, "broker 2 did not start", step=second, level=LogLevel.ERROR)
        fail_operation(
            operation.pk, lease, step=second, code="broker_start", message="broker 2 did not start"
        )
        return operation

    def test_shows_steps_attempts_durations_error_and_log(
        self, tenant: Tenant, failed_operation: Operation
    ) -> None:
        response = signed_in(tenant.viewer).get(f"/operations/{failed_operation.pk}/")

        assert response.status_code == 200
        page = response.content.decode()
        assert "Provision of orders" in page
        assert "<strong>broker_start</strong>: broker 2 did not start" in page
        assert page.count('data-role="step-attempts">1<') == 2
        assert "2 / 6" in page
        assert 'class="badge badge-failed badge-op" data-role="step-state"' in page
        assert 'class="badge badge-cancelled badge-op" data-role="step-state"' in page
        assert "3 brokers planned over 3 racks" in page
        assert "log-line log-error" in page
        assert "Cancel operation" not in page

    def test_the_full_log_is_shown(self, tenant: Tenant, cluster: Cluster) -> None:
        operation = Operation.objects.get(cluster=cluster)
        for i in range(LOG_LINES_SHOWN + 10):
            append_log(operation.pk, f"line {i:04d}")

        detail = signed_in(tenant.viewer).get(f"/operations/{operation.pk}/").content.decode()
        cluster_page = signed_in(tenant.viewer).get(f"/clusters/{cluster.pk}/").content.decode()

        last = f"line {LOG_LINES_SHOWN + 9:04d}"
        assert "line 0000" in detail and last in detail
        # The cluster page shows the API's window, which the live updates continue.
        assert "line 0000" not in cluster_page and last in cluster_page
