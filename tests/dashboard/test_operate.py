"""Operations started from the dashboard: each shows what will happen before it does, gives the API's
messages by the field they belong to, starts the operation the API would, and is refused to viewers
(403, also for a hand-made POST) and to other organizations (404)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from controlplane.audit.models import AuditEvent
from controlplane.clusters import actions as cluster_actions
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import get_backend
from controlplane.operations.models import Operation
from monitoring import assignment
from tests.dashboard.conftest import monitored_cluster
from tests.support.tenants import Tenant, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def multi_broker_backend(settings: Any) -> Iterator[None]:
    """`local` clusters validated as Apache Kafka ones, which may have several brokers (nothing runs)."""
    settings.LOCAL_ENGINE = "kafka"
    get_backend.cache_clear()
    yield
    get_backend.cache_clear()


@pytest.fixture
def running(tenant: Tenant) -> Cluster:
    return monitored_cluster(tenant)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(cluster: Cluster, kind: str) -> str:
    return f"/clusters/{cluster.pk}/operate/{kind}/"


def test_scale_out_shows_brokers_per_rack_and_replica_moves_before_starting(
    tenant: Tenant, running: Cluster
) -> None:
    client = signed_in(tenant.admin)
    assert client.get(url(running, "scale")).status_code == 200

    review = client.post(url(running, "scale"), {"brokers": "9"})

    preview = review.context["preview"]
    assert preview.summary == "Scale out from 6 to 9 brokers."
    assert [(r.rack, r.kept, r.added, r.removed) for r in preview.racks] == [
        ("rack-0", [1, 4], [7], []),
        ("rack-1", [2, 5], [8], []),
        ("rack-2", [3, 6], [9], []),
    ]
    # Planned by the placement engine from the assignment the last collection stored.
    assert preview.moves and preview.moves > 0 and preview.seen_at is not None
    assert {b.node_id for b in preview.by_broker if b.replicas_in} <= {7, 8, 9}
    page = review.content.decode()
    assert "+ broker 7" in page and "replica move" in page
    assert not Operation.objects.filter(cluster=running).exists()

    started = client.post(url(running, "scale"), {"brokers": "9", "confirm": "1"})

    assert started.status_code == 302 and started.url == f"/clusters/{running.pk}/"
    operation = Operation.objects.get(cluster=running)
    assert (operation.kind, operation.params["add_node_ids"]) == ("scale", [7, 8, 9])
    assert AuditEvent.objects.get(action="cluster.scale").actor_name == tenant.admin.username


def test_scale_in_names_the_brokers_drained_in_each_rack(tenant: Tenant, running: Cluster) -> None:
    preview = signed_in(tenant.admin).post(url(running, "scale"), {"brokers": "3"}).context["preview"]
    assert [(r.rack, r.removed) for r in preview.racks] == [("rack-0", [4]), ("rack-1", [5]), ("rack-2", [6])]
    assert {b.node_id for b in preview.by_broker if b.replicas_out} <= {4, 5, 6}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("scale", {"brokers": 8}),
        ("scale", {"brokers": 6}),
        ("scale", {"brokers": "many"}),
        ("replace-broker", {"node_id": 42, "keep_disk": False}),
        ("upgrade", {"kafka_version": "3.9.2"}),
        ("upgrade", {"kafka_version": "4.3.2"}),
    ],
)
def test_messages_are_the_apis_shown_by_their_field(
    tenant: Tenant, running: Cluster, kind: str, body: dict[str, Any]
) -> None:
    api = token_client(tenant.admin).post(f"/api/v1/clusters/{running.pk}/{kind}/", body, format="json")
    assert api.status_code == 400, api.content
    form = {
        name: ("on" if value is True else "" if value is False else str(value))
        for name, value in body.items()
    }

    response = signed_in(tenant.admin).post(url(running, kind), form)

    assert response.context["errors"] == {name: messages for name, messages in api.json().items()}
    assert response.context["preview"] is None
    page = response.content.decode()
    for name, messages in api.json().items():
        field = page.split(f'data-field="{name}"')[1].split("</div>")[0]
        for message in messages:
            assert message.replace("'", "&#x27;") in field
    assert not Operation.objects.filter(cluster=running).exists()


def test_restart_says_the_order_with_the_controller_last(tenant: Tenant, running: Cluster) -> None:
    client = signed_in(tenant.admin)
    controller = assignment.load(running.pk).controller_id
    assert controller is not None

    preview = client.get(url(running, "restart")).context["preview"]

    assert preview.order[-1] == controller and sorted(preview.order) == [1, 2, 3, 4, 5, 6]
    assert client.post(url(running, "restart"), {"confirm": "1"}).status_code == 302
    assert Operation.objects.get(cluster=running).kind == "restart"


def test_upgrade_says_the_order_and_that_there_is_no_way_back(tenant: Tenant, running: Cluster) -> None:
    client = signed_in(tenant.admin)
    review = client.post(url(running, "upgrade"), {"kafka_version": "4.4.0"})
    preview = review.context["preview"]
    assert preview.summary == "Upgrade every broker from Kafka 4.3.2 to 4.4.0, one at a time."
    assert any("cannot go back to 4.3.2" in note for note in preview.notes)

    client.post(url(running, "upgrade"), {"kafka_version": "4.4.0", "confirm": "1"})
    assert Operation.objects.get(cluster=running).params["kafka_version"] == "4.4.0"


def test_replace_says_whether_the_data_is_kept(tenant: Tenant, running: Cluster) -> None:
    client = signed_in(tenant.admin)

    kept = client.post(url(running, "replace-broker"), {"node_id": "4", "keep_disk": "on"}).context["preview"]
    lost = client.post(url(running, "replace-broker"), {"node_id": "4"}).context["preview"]

    assert "keeps its node id and its data" in kept.summary
    assert (
        lost.summary
        == "Replace broker 4 in rack-0 by a new broker 7 in the same rack. Broker 4's data is not kept."
    )
    moves = {b.node_id: b for b in lost.by_broker}
    assert moves[7].replicas_in > 0 and moves[4].replicas_out > 0 and moves[4].replicas_in == 0
    client.post(url(running, "replace-broker"), {"node_id": "4", "confirm": "1"})
    operation = Operation.objects.get(cluster=running)
    assert {key: operation.params[key] for key in ("node_id", "keep_disk", "replacement_node_id")} == {
        "node_id": 4,
        "keep_disk": False,
        "replacement_node_id": 7,
    }


def test_a_running_operation_is_named_and_nothing_else_starts(tenant: Tenant, running: Cluster) -> None:
    client = signed_in(tenant.admin)
    client.post(url(running, "restart"), {"confirm": "1"})
    first = Operation.objects.get(cluster=running)

    response = client.post(url(running, "scale"), {"brokers": "9", "confirm": "1"})

    assert response.status_code == 200
    assert f"Operation {first.id}" in response.context["refusals"][0]
    assert Operation.objects.filter(cluster=running).count() == 1


def test_viewers_see_no_operate_controls_and_a_forged_post_is_refused(
    tenant: Tenant, running: Cluster
) -> None:
    viewer = signed_in(tenant.viewer)
    page = viewer.get(f"/clusters/{running.pk}/").content.decode()
    assert "/operate/" not in page and 'id="operate"' not in page
    assert 'id="operate"' in signed_in(tenant.admin).get(f"/clusters/{running.pk}/").content.decode()

    for kind, body in [("scale", {"brokers": "9"}), ("restart", {}), ("upgrade", {"kafka_version": "4.4.0"})]:
        assert viewer.get(url(running, kind)).status_code == 403
        assert viewer.post(url(running, kind), {**body, "confirm": "1"}).status_code == 403
    assert not Operation.objects.filter(cluster=running).exists()


def test_another_organization_gets_404(other_tenant: Tenant, running: Cluster) -> None:
    response = signed_in(other_tenant.owner).post(url(running, "restart"), {"confirm": "1"})
    assert response.status_code == 404
    assert not Operation.objects.filter(cluster=running).exists()


def test_certificate_rotation_is_offered_for_secured_clusters_only(tenant: Tenant, running: Cluster) -> None:
    client = signed_in(tenant.admin)
    assert "/operate/rotate-certificates/" not in client.get(f"/clusters/{running.pk}/").content.decode()
    refused = client.post(url(running, "rotate-certificates"), {"confirm": "1"})
    assert "no certificates to rotate" in refused.context["refusals"][0]
    assert not Operation.objects.filter(cluster=running).exists()

    running.client_authentication = ["scram"]
    running.save(update_fields=["client_authentication"])
    cluster_actions._create_certificate_authority(running)
    assert "/operate/rotate-certificates/" in client.get(f"/clusters/{running.pk}/").content.decode()
    preview = client.get(url(running, "rotate-certificates")).context["preview"]
    assert preview.order[-1] == assignment.load(running.pk).controller_id
    assert any("reconnect" in note for note in preview.notes)

    assert client.post(url(running, "rotate-certificates"), {"confirm": "1"}).status_code == 302
    operation = Operation.objects.get(cluster=running)
    assert (operation.kind, operation.params["certificate_generation"]) == ("rotate_certificates", 2)
    assert (
        signed_in(tenant.viewer).post(url(running, "rotate-certificates"), {"confirm": "1"}).status_code
        == 403
    )
