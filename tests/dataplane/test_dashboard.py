"""The data plane's dashboard pages (topics, users with their ACL rules and quotas, the client
configuration on the cluster page), on the simulated six-broker cluster over three racks: the same
checks and messages as the API, secrets shown once, viewers see and never change, other tenants get
404. Their layout and accessibility in a real Chromium are in test_dashboard_browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from controlplane.clusters.models import Cluster
from controlplane.dataplane.models import AclRule, KafkaUser, Topic
from tests.dataplane.test_access_api import WRITE_ORDERS
from tests.support.simulated_backend import StandInKafkaCluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_page(tenant: Tenant) -> Client:
    return signed_in(tenant.admin)


@pytest.fixture
def viewer_page(tenant: Tenant) -> Client:
    return signed_in(tenant.viewer)


def url(cluster: Cluster, path: str) -> str:
    return f"/clusters/{cluster.pk}/{path}"


def create_topic(client: Client, cluster: Cluster, **fields: str) -> Any:
    return client.post(url(cluster, "new-topic/"), {"name": "orders", "partitions": "6", **fields})


class TestTopics:
    def test_created_from_the_form_rack_aware_and_shown_by_rack(
        self, admin_page: Client, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        response = create_topic(
            admin_page, cluster, replication_factor="3", config="retention.ms=3600000\n# a comment\n"
        )

        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == url(cluster, "topics/orders/")
        assert Topic.objects.get(cluster=cluster, name="orders").config == {"retention.ms": "3600000"}
        page = admin_page.get(response["Location"]).content.decode()
        # One column per rack; each partition has one replica in each, the leader marked.
        for rack in cluster.racks:
            assert f'data-rack="{rack}"' in page
        assert page.count('data-partition="') == 6
        assert page.count("replica-chip replica-chip-leader") == 6 + 1  # and the legend's
        assert 'data-config="retention.ms"' in page
        listed = admin_page.get(url(cluster, "topics/")).content.decode()
        assert 'data-topic="orders"' in listed and 'data-topic="__consumer_offsets"' in listed

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"name": "orders!"}, "name", "letters, digits"),
            ({"name": "__mine"}, "name", "reserved for Kafka"),
            ({"partitions": "0"}, "partitions", "greater than or equal to 1"),
            ({"replication_factor": "7"}, "replication_factor", "needs as many brokers"),
            ({"config": "retention.ms"}, "config", "Line 1: write key=value"),
            ({"config": "no.such.config=1"}, "config", "no.such.config"),
        ],
    )
    def test_bad_input_shows_the_apis_message_and_creates_nothing(
        self, admin_page: Client, cluster: Cluster, fields: dict, field: str, message: str
    ) -> None:
        response = create_topic(admin_page, cluster, **fields)

        assert response.status_code == 400
        assert message in " ".join(response.context["errors"][field])
        assert not Topic.objects.exists()

    def test_grow_edit_and_a_refused_decrease(
        self, admin_page: Client, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create_topic(admin_page, cluster, config="retention.ms=3600000")
        edit = url(cluster, "topics/orders/edit/")

        grown = admin_page.post(edit, {"partitions": "9", "config": "cleanup.policy=compact"})

        assert grown.status_code == 302
        assert len(kafka.describe_topics(["orders"])["orders"].partitions) == 9
        # The line left out went back to the default; the new one is set.
        assert kafka.topic_config("orders") == {"cleanup.policy": "compact"}
        shrunk = admin_page.post(edit, {"partitions": "3", "config": "cleanup.policy=compact"})
        assert shrunk.status_code == 400
        assert "only grow" in " ".join(shrunk.context["errors"]["partitions"])
        assert len(kafka.describe_topics(["orders"])["orders"].partitions) == 9

    def test_delete_protection_holds(
        self, admin_page: Client, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create_topic(admin_page, cluster, deletion_protected="on")
        delete = url(cluster, "topics/orders/delete/")

        wrong_name = admin_page.post(delete, {"confirm_name": "order"})
        refused = admin_page.post(delete, {"confirm_name": "orders"})

        assert wrong_name.status_code == 400 and refused.status_code == 400
        assert "protected" in " ".join(refused.context["refusals"])
        assert "orders" in kafka.describe_topics(["orders"])
        admin_page.post(url(cluster, "topics/orders/edit/"), {"partitions": "6", "config": ""})
        deleted = admin_page.post(delete, {"confirm_name": "orders"})
        assert deleted.status_code == 302
        assert not Topic.objects.exists() and "orders" not in kafka.describe_topics(["orders"])

    def test_internal_topics_are_read_only(self, admin_page: Client, cluster: Cluster) -> None:
        page = admin_page.get(url(cluster, "topics/__consumer_offsets/"))

        assert page.status_code == 200
        assert "One of Kafka's own topics" in page.content.decode()
        assert 'id="edit-topic"' not in page.content.decode()
        assert admin_page.post(url(cluster, "topics/__consumer_offsets/edit/"), {}).status_code == 404
        assert admin_page.get(url(cluster, "topics/nothing/")).status_code == 404

    def test_viewers_see_and_never_change(
        self, admin_page: Client, viewer_page: Client, cluster: Cluster
    ) -> None:
        create_topic(admin_page, cluster)

        page = viewer_page.get(url(cluster, "topics/orders/")).content.decode()
        listed = viewer_page.get(url(cluster, "topics/")).content.decode()

        assert 'data-partition="0"' in page and 'id="edit-topic"' not in page and "Delete topic" not in page
        assert "Create topic" not in listed
        assert create_topic(viewer_page, cluster, name="other").status_code == 403
        assert viewer_page.post(url(cluster, "topics/orders/edit/"), {"partitions": "12"}).status_code == 403
        assert (
            viewer_page.post(url(cluster, "topics/orders/delete/"), {"confirm_name": "orders"}).status_code
            == 403
        )
        assert Topic.objects.get(name="orders").partitions == 6

    def test_other_tenants_get_404(self, other_tenant: Tenant, admin_page: Client, cluster: Cluster) -> None:
        create_topic(admin_page, cluster)
        stranger = signed_in(other_tenant.admin)

        for path in ("topics/", "topics/orders/", "users/"):
            assert stranger.get(url(cluster, path)).status_code == 404
        assert create_topic(stranger, cluster, name="x").status_code == 404


class TestUsers:
    def test_a_scram_user_with_quotas_its_password_shown_once(
        self, admin_page: Client, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        created = admin_page.post(
            url(secured, "users/"),
            {"name": "alice", "mechanism": "SCRAM-SHA-512", "producer_byte_rate": "1048576"},
        )

        assert created.status_code == 302
        page = admin_page.get(url(secured, "users/")).content.decode()
        password = kafka.scram_password("alice")
        assert password and password in page
        assert password not in admin_page.get(url(secured, "users/")).content.decode()
        assert kafka.user_quotas() == {"alice": {"producer_byte_rate": 1048576.0}}
        assert "1.0 MiB/s" in page

    def test_an_mtls_user_gets_its_certificate_and_key_once(
        self, admin_page: Client, secured: Cluster
    ) -> None:
        admin_page.post(url(secured, "users/"), {"name": "bob", "mechanism": "mTLS"})

        page = admin_page.get(url(secured, "users/")).content.decode()

        assert "BEGIN CERTIFICATE" in page and "PRIVATE KEY" in page
        assert "PRIVATE KEY" not in admin_page.get(url(secured, "users/")).content.decode()

    def test_bad_input_shows_the_apis_messages(self, admin_page: Client, secured: Cluster) -> None:
        response = admin_page.post(
            url(secured, "users/"), {"name": "al ice", "password": "short", "consumer_byte_rate": "0"}
        )

        assert response.status_code == 400
        errors = response.context["errors"]
        assert "letters, digits" in " ".join(errors["name"])
        assert "12 to 256" in " ".join(errors["password"])
        assert "greater than or equal to 1" in " ".join(errors["consumer_byte_rate"])
        assert not KafkaUser.objects.exists()

    def test_rotation_quota_change_acl_and_delete(
        self, admin_page: Client, secured: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        admin_page.post(url(secured, "users/"), {"name": "alice", "mechanism": "SCRAM-SHA-512"})
        old = kafka.scram_password("alice")

        admin_page.post(url(secured, "users/alice/rotate/"))
        assert kafka.scram_password("alice") not in (None, old)
        admin_page.post(url(secured, "users/alice/quota/"), {"consumer_byte_rate": "2048"})
        assert kafka.user_quotas() == {"alice": {"consumer_byte_rate": 2048.0}}
        acl = WRITE_ORDERS  # a form posts each operation as one value of the field
        assert admin_page.post(url(secured, "acls/"), acl).status_code == 302
        rule = AclRule.objects.get()
        assert (rule.operations, rule.resource_name) == (["write", "describe"], "orders")
        page = admin_page.get(url(secured, "users/")).content.decode()
        assert f'data-acl="{rule.pk}"' in page and "allow write, describe on topic" in page
        wrong = admin_page.post(
            url(secured, "acls/"), {**acl, "operations": ["read"], "resource_type": "cluster"}
        )
        assert wrong.status_code == 400 and "kafka-cluster" in " ".join(
            wrong.context["errors"]["resource_name"]
        )

        admin_page.post(url(secured, "users/alice/delete/"))
        assert not KafkaUser.objects.exists() and not AclRule.objects.exists()
        assert kafka.scram_password("alice") is None

    def test_an_unsecured_cluster_says_why_there_are_no_users(
        self, admin_page: Client, cluster: Cluster
    ) -> None:
        page = admin_page.get(url(cluster, "users/")).content.decode()

        assert 'data-role="unsecured"' in page and 'id="create-user"' not in page
        refused = admin_page.post(url(cluster, "users/"), {"name": "alice"})
        assert refused.status_code == 400 and "without authentication" in " ".join(
            refused.context["refusals"]
        )

    def test_viewers_see_users_and_acls_and_change_nothing(
        self, admin_page: Client, viewer_page: Client, secured: Cluster
    ) -> None:
        admin_page.post(url(secured, "users/"), {"name": "alice", "mechanism": "SCRAM-SHA-512"})

        page = viewer_page.get(url(secured, "users/")).content.decode()

        assert 'data-user="alice"' in page and 'id="create-user"' not in page and "Rotate" not in page
        for path in ("users/", "users/alice/rotate/", "users/alice/quota/", "users/alice/delete/", "acls/"):
            assert viewer_page.post(url(secured, path), {"name": "mallory"}).status_code == 403
        assert KafkaUser.objects.get().name == "alice"


class TestClientConfiguration:
    def test_the_cluster_page_gives_the_secured_clients_settings(
        self, admin_page: Client, secured: Cluster
    ) -> None:
        page = admin_page.get(f"/clusters/{secured.pk}/").content.decode()

        assert "SASL_SSL" in page and "SCRAM-SHA-512" in page and "BEGIN CERTIFICATE" in page
        assert "sasl.mechanism=SCRAM-SHA-512" in page and "ScramLoginModule" in page
        assert "ssl.certificate.location" in page  # the mTLS listener's librdkafka settings
        assert url(secured, "topics/") in page and url(secured, "users/") in page

    def test_an_unsecured_cluster_says_plaintext(self, viewer_page: Client, cluster: Cluster) -> None:
        page = viewer_page.get(f"/clusters/{cluster.pk}/").content.decode()

        assert '<code data-role="security-protocol">PLAINTEXT</code>' in page
        assert "any client can connect" in page


class TestClusterForm:
    """The new-cluster form offers client authentication with the API's checks."""

    def form(self, **fields: Any) -> dict[str, Any]:
        return {
            "name": "secure",
            "organization": "acme",
            "backend": "local",
            "brokers": "3",
            "node_cpu": "1",
            "node_memory_mb": "2048",
            "node_disk_gb": "10",
            **fields,
        }

    def test_a_secured_cluster_from_the_form(self, admin_page: Client, settings: Any, tmp_path: Any) -> None:
        from controlplane.clusters.specs import get_backend

        settings.LOCAL_ENGINE = "kafka"  # validated as Apache Kafka; no worker runs, so nothing starts
        settings.LOCAL_BACKEND_STATE_DIR = tmp_path
        get_backend.cache_clear()

        response = admin_page.post("/clusters/new/", self.form(client_authentication=["mtls", "scram"]))

        assert response.status_code == 302, response.content.decode()
        created = Cluster.objects.get(name="secure")
        assert created.client_authentication == ["scram", "mtls"]
        get_backend.cache_clear()

    def test_the_development_broker_refuses_it_with_the_apis_message(self, admin_page: Client) -> None:
        response = admin_page.post("/clusters/new/", self.form(brokers="1", client_authentication=["scram"]))

        assert response.status_code == 200
        assert "development broker cannot authenticate" in " ".join(
            response.context["form"].errors["client_authentication"]
        )
        assert not Cluster.objects.filter(name="secure").exists()
