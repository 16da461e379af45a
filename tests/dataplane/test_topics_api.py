"""Topics through the REST API, on a simulated six-broker cluster over three racks: rack-aware
placement, validation with a message per field, growth only, deletion protection, drift, idempotent
creates, roles and tenants."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rest_framework.test import APIClient

from controlplane.audit.models import AuditEvent
from controlplane.clusters.models import Cluster
from controlplane.dataplane.actions import check_drift
from controlplane.dataplane.models import Topic
from tests.dataplane.conftest import topics_url
from tests.support.simulated_backend import StandInKafkaCluster
from tests.support.tenants import Tenant, token_client

pytestmark = pytest.mark.django_db


def create(client: APIClient, cluster: Cluster, *, key: str | None = None, **body: Any) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        topics_url(cluster), {"name": "orders", "partitions": 6, **body}, format="json", **headers
    )


def racks_of(kafka: StandInKafkaCluster, topic: str) -> list[list[str | None]]:
    racks = {b.node_id: b.rack for b in kafka.describe_cluster().brokers}
    state = kafka.describe_topics([topic])[topic]
    return [sorted(racks[r] for r in p.replicas) for p in state.partitions]


class TestCreate:
    def test_creates_the_topic_rack_aware_and_records_it(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        response = create(admin, cluster, replication_factor=3, config={"retention.ms": "3600000"})

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["name"] == "orders" and body["managed"] and body["status"] == "ok"
        assert body["partitions"] == 6 and body["replication_factor"] == 3
        assert body["observed"]["partitions"] == 6
        assert response["Location"].endswith(f"/api/v1/clusters/{cluster.id}/topics/orders/")
        assert racks_of(kafka, "orders") == [["rack-0", "rack-1", "rack-2"]] * 6
        leaders = Counter(p.replicas[0] for p in kafka.describe_topics(["orders"])["orders"].partitions)
        assert sorted(leaders.values()) == [1] * 6
        assert kafka.topic_config("orders") == {"retention.ms": "3600000"}
        assert Topic.objects.get(cluster=cluster, name="orders").config == {"retention.ms": "3600000"}
        assert AuditEvent.objects.filter(action="topic.create", target_id=body["id"]).exists()

    def test_defaults_come_from_the_cluster(self, admin: APIClient, cluster: Cluster) -> None:
        response = admin.post(topics_url(cluster), {"name": "events"}, format="json")

        assert response.status_code == 201, response.content
        assert (response.json()["partitions"], response.json()["replication_factor"]) == (3, 3)

    def test_more_replicas_than_racks_spread_as_far_as_possible(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        response = create(admin, cluster, replication_factor=5)

        assert response.status_code == 201, response.content
        for racks in racks_of(kafka, "orders"):
            assert sorted(Counter(racks).values()) == [1, 2, 2]

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("", "may not be blank"),
            ("orders!", "letters, digits"),
            ("with space", "letters, digits"),
            ("ünïcode", "letters, digits"),
            (".", "cannot be '.' or '..'"),
            ("..", "cannot be '.' or '..'"),
            ("x" * 250, "at most 249"),
            ("__internal", "reserved for Kafka's internal topics"),
        ],
    )
    def test_names_follow_kafkas_rules(
        self, admin: APIClient, cluster: Cluster, name: str, message: str
    ) -> None:
        response = create(admin, cluster, name=name)

        assert response.status_code == 400
        assert message in response.json()["name"][0]
        assert not Topic.objects.exists()

    def test_a_name_colliding_once_dots_and_underscores_are_alike_is_refused(
        self, admin: APIClient, cluster: Cluster
    ) -> None:
        assert create(admin, cluster, name="metrics.cpu").status_code == 201

        response = create(admin, cluster, name="metrics_cpu")

        assert response.status_code == 400
        assert "collides with topic 'metrics.cpu'" in response.json()["name"][0]

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            (
                {"retention.msx": "1"},
                "retention.msx: not a topic config of Apache Kafka 4.3.2; did you mean 'retention.ms'?",
            ),
            ({"retention.ms": "a week"}, "retention.ms: must be a whole number of at least -1"),
            ({"cleanup.policy": "forever"}, "'forever' is not one of compact, delete"),
            ({"message.format.version": "3.0"}, "not a topic config of Apache Kafka 4.3.2"),
            ({"leader.replication.throttled.replicas": "*"}, "cannot be set"),
        ],
    )
    def test_configs_are_checked_against_the_brokers_known_configs(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, config: dict, message: str
    ) -> None:
        response = create(admin, cluster, config=config)

        assert response.status_code == 400
        assert message in response.json()["config"][0]
        assert "orders" not in kafka.describe_topics(["orders"])

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"partitions": 0}, "partitions"),
            ({"partitions": "many"}, "partitions"),
            ({"replication_factor": 0}, "replication_factor"),
            ({"config": {"retention.ms": {"nested": 1}}}, "config"),
            ({"config": "retention.ms=1"}, "config"),
            ({"color": "blue"}, "color"),
        ],
    )
    def test_malformed_fields_are_400(
        self, admin: APIClient, cluster: Cluster, body: dict, field: str
    ) -> None:
        response = create(admin, cluster, **body)

        assert response.status_code == 400
        assert field in response.json()

    def test_more_replicas_than_brokers_is_400(self, admin: APIClient, cluster: Cluster) -> None:
        response = create(admin, cluster, replication_factor=7)

        assert response.status_code == 400
        assert "needs as many brokers; cluster payments has 6" in response.json()["replication_factor"][0]

    def test_an_existing_name_is_409(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        assert create(admin, cluster).status_code == 201
        kafka.create_topic("made-elsewhere", 1, 1)

        assert create(admin, cluster).status_code == 409
        response = create(admin, cluster, name="made-elsewhere")
        assert response.status_code == 409
        assert "created outside the control plane" in response.json()["detail"]
        assert list(Topic.objects.values_list("name", flat=True)) == ["orders"]

    def test_a_cluster_that_does_not_answer_is_503_and_nothing_is_recorded(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        kafka.set_reachable(False)

        response = create(admin, cluster)

        assert response.status_code == 503
        assert response["Retry-After"]
        assert response.json()["code"] == "cluster_unreachable"
        assert not Topic.objects.exists()

    def test_a_cluster_not_running_yet_is_409(self, admin: APIClient, cluster: Cluster) -> None:
        Cluster.objects.filter(pk=cluster.pk).update(status="provisioning")

        response = create(admin, cluster)

        assert response.status_code == 409
        assert "provisioning" in response.json()["detail"]


class TestIdempotency:
    def test_a_retried_create_answers_the_first_topic(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        first = create(admin, cluster, key="create-orders-1")
        again = create(admin, cluster, key="create-orders-1")

        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert again["Location"] == first["Location"]
        assert Topic.objects.count() == 1

    def test_the_same_key_with_another_request_is_422(self, admin: APIClient, cluster: Cluster) -> None:
        assert create(admin, cluster, key="k").status_code == 201

        response = create(admin, cluster, name="payments", key="k")

        assert response.status_code == 422
        assert not Topic.objects.filter(name="payments").exists()

    def test_keys_belong_to_their_account(self, tenant: Tenant, cluster: Cluster) -> None:
        assert create(token_client(tenant.admin), cluster, key="k").status_code == 201

        # Another account's same key is its own: the request runs, and finds the name taken.
        assert create(token_client(tenant.owner), cluster, key="k").status_code == 409

    def test_a_refused_request_does_not_use_up_its_key(self, admin: APIClient, cluster: Cluster) -> None:
        assert create(admin, cluster, partitions=0, key="k").status_code == 400

        assert create(admin, cluster, key="k").status_code == 201

    @pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
    def test_malformed_keys_are_400(self, admin: APIClient, cluster: Cluster, key: str) -> None:
        response = create(admin, cluster, key=key)

        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()
        assert not Topic.objects.exists()


class TestChange:
    @pytest.fixture
    def orders(self, admin: APIClient, cluster: Cluster) -> dict:
        response = create(admin, cluster, config={"retention.ms": "3600000", "cleanup.policy": "delete"})
        assert response.status_code == 201, response.content
        return response.json()

    def test_partitions_grow_rack_aware(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: dict
    ) -> None:
        response = admin.patch(topics_url(cluster, "orders"), {"partitions": 12}, format="json")

        assert response.status_code == 200, response.content
        assert response.json()["partitions"] == 12 and response.json()["observed"]["partitions"] == 12
        assert racks_of(kafka, "orders") == [["rack-0", "rack-1", "rack-2"]] * 12
        state = kafka.describe_topics(["orders"])["orders"]
        assert sorted(Counter(r for p in state.partitions for r in p.replicas).values()) == [6] * 6
        assert sorted(Counter(p.replicas[0] for p in state.partitions).values()) == [2] * 6

    def test_a_decrease_is_refused_and_changes_nothing(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: dict
    ) -> None:
        before = kafka.describe_topics(["orders"])

        response = admin.patch(topics_url(cluster, "orders"), {"partitions": 3}, format="json")

        assert response.status_code == 400
        assert (
            "Partitions can only grow: the topic has 6 and 3 were asked" in response.json()["partitions"][0]
        )
        assert kafka.describe_topics(["orders"]) == before
        assert Topic.objects.get(name="orders").partitions == 6

    def test_configs_change_incrementally(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: dict
    ) -> None:
        response = admin.patch(
            topics_url(cluster, "orders"),
            {"config": {"retention.ms": "60000", "cleanup.policy": None, "max.message.bytes": "2097152"}},
            format="json",
        )

        assert response.status_code == 200, response.content
        expected = {"retention.ms": "60000", "max.message.bytes": "2097152"}
        assert response.json()["config"] == expected
        assert kafka.topic_config("orders") == expected
        assert response.json()["status"] == "ok"

    def test_a_bad_config_change_changes_nothing(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: dict
    ) -> None:
        response = admin.patch(
            topics_url(cluster, "orders"),
            {"config": {"retention.ms": "1", "segment.bytes": "10"}},
            format="json",
        )

        assert response.status_code == 400
        assert "segment.bytes: must be of at least 1048576" in response.json()["config"][0]
        assert kafka.topic_config("orders") == {"retention.ms": "3600000", "cleanup.policy": "delete"}

    def test_an_empty_change_is_400(self, admin: APIClient, cluster: Cluster, orders: dict) -> None:
        response = admin.patch(topics_url(cluster, "orders"), {}, format="json")

        assert response.status_code == 400

    def test_deletion_protection_holds_until_turned_off(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: dict
    ) -> None:
        assert admin.patch(topics_url(cluster, "orders"), {"deletion_protected": True}, format="json").json()[
            "deletion_protected"
        ]

        refused = admin.delete(topics_url(cluster, "orders"))

        assert refused.status_code == 409
        assert "protected from deletion" in refused.json()["detail"]
        assert "orders" in kafka.describe_topics(["orders"])
        admin.patch(topics_url(cluster, "orders"), {"deletion_protected": False}, format="json")
        assert admin.delete(topics_url(cluster, "orders")).status_code == 204
        assert admin.get(topics_url(cluster, "orders")).status_code == 404
        assert kafka.describe_topics(["orders"]) == {}


class TestRead:
    def test_lists_managed_internal_and_unmanaged_topics(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create(admin, cluster)
        kafka.create_topic("legacy", 2, 2)

        body = admin.get(topics_url(cluster)).json()

        by_name = {t["name"]: t for t in body["results"]}
        assert list(by_name) == ["__consumer_offsets", "legacy", "orders"]
        assert (
            by_name["__consumer_offsets"]["status"] == "internal"
            and by_name["__consumer_offsets"]["read_only"]
        )
        assert by_name["legacy"]["status"] == "unmanaged" and by_name["legacy"]["partitions"] == 2
        assert (
            by_name["orders"]["status"] == "ok"
            and by_name["orders"]["observed"]["under_replicated_partitions"] == 0
        )

    def test_detail_shows_partitions_with_racks_and_offsets(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create(admin, cluster)
        kafka.produce("orders", 0, 5)

        body = admin.get(topics_url(cluster, "orders")).json()

        first = body["partition_details"][0]
        assert sorted(r["rack"] for r in first["replicas"]) == ["rack-0", "rack-1", "rack-2"]
        assert first["leader"] == first["replicas"][0]["broker"]
        assert (first["start_offset"], first["end_offset"]) == (0, 5)
        assert first["size_bytes"] == 5 * kafka.record_bytes

    def test_under_replicated_partitions_are_counted(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create(admin, cluster)

        kafka.fail_broker(1)

        observed = admin.get(topics_url(cluster, "orders")).json()["observed"]
        assert observed["under_replicated_partitions"] == 3

    def test_kafkas_own_topics_are_read_only(self, admin: APIClient, cluster: Cluster) -> None:
        for response in (
            admin.patch(topics_url(cluster, "__consumer_offsets"), {"partitions": 50}, format="json"),
            admin.delete(topics_url(cluster, "__consumer_offsets")),
        ):
            assert response.status_code == 409
            assert "internal topic" in response.json()["detail"]

    def test_an_unknown_topic_is_404(self, admin: APIClient, cluster: Cluster) -> None:
        assert admin.get(topics_url(cluster, "nope")).status_code == 404
        assert admin.patch(topics_url(cluster, "nope"), {"partitions": 2}, format="json").status_code == 404
        assert admin.delete(topics_url(cluster, "nope")).status_code == 404

    def test_an_unreachable_cluster_lists_what_the_control_plane_knows(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create(admin, cluster)
        kafka.set_reachable(False)

        listed = admin.get(topics_url(cluster)).json()["results"]
        one = admin.get(topics_url(cluster, "orders"))

        assert [(t["name"], t["status"], t["observed"]) for t in listed] == [("orders", "unknown", None)]
        assert one.status_code == 200 and one.json()["status"] == "unknown"


class TestAccess:
    def test_viewers_see_but_cannot_change(
        self, admin: APIClient, viewer: APIClient, cluster: Cluster, kafka: StandInKafkaCluster
    ) -> None:
        create(admin, cluster)

        assert viewer.get(topics_url(cluster)).status_code == 200
        assert viewer.get(topics_url(cluster, "orders")).status_code == 200
        assert create(viewer, cluster, name="mine").status_code == 403
        assert (
            viewer.patch(topics_url(cluster, "orders"), {"partitions": 9}, format="json").status_code == 403
        )
        assert viewer.delete(topics_url(cluster, "orders")).status_code == 403
        assert sorted(Topic.objects.values_list("name", flat=True)) == ["orders"]
        assert len(kafka.describe_topics(["orders"])["orders"].partitions) == 6

    def test_other_organizations_see_nothing(
        self, other_tenant: Tenant, cluster: Cluster, admin: APIClient
    ) -> None:
        create(admin, cluster)
        stranger = token_client(other_tenant.owner)

        for response in (
            stranger.get(topics_url(cluster)),
            stranger.get(topics_url(cluster, "orders")),
            create(stranger, cluster, name="theirs"),
            stranger.delete(topics_url(cluster, "orders")),
        ):
            assert response.status_code == 404

    def test_a_malformed_cluster_id_is_404(self, admin: APIClient) -> None:
        assert admin.get("/api/v1/clusters/not-a-uuid/topics/").status_code == 404


class TestDrift:
    @pytest.fixture
    def orders(self, admin: APIClient, cluster: Cluster) -> None:
        assert create(admin, cluster, config={"retention.ms": "3600000"}).status_code == 201

    def test_changes_made_outside_are_reported(
        self, admin: APIClient, cluster: Cluster, kafka: StandInKafkaCluster, orders: None
    ) -> None:
        kafka.alter_topic_config("orders", {"retention.ms": "1000", "cleanup.policy": "compact"})
        kafka.create_partitions("orders", 8, [[1, 2, 3], [4, 5, 6]])

        body = admin.get(topics_url(cluster, "orders")).json()

        assert body["status"] == "drifted"
        assert {(d["field"], d["desired"], d["actual"], d["revertible"]) for d in body["drift"]} == {
            ("partitions", 6, 8, False),
            ("config.retention.ms", "3600000", "1000", True),
            ("config.cleanup.policy", None, "compact", True),
        }

    def test_the_report_policy_records_and_leaves_kafka_alone(
        self, cluster: Cluster, kafka: StandInKafkaCluster, orders: None
    ) -> None:
        kafka.alter_topic_config("orders", {"retention.ms": "1000"})

        found = check_drift(cluster=cluster)

        assert [d["field"] for d in found["orders"]] == ["config.retention.ms"]
        assert kafka.topic_config("orders") == {"retention.ms": "1000"}
        assert Topic.objects.get(name="orders").drift[0]["actual"] == "1000"
        assert AuditEvent.objects.filter(action="topic.drift").count() == 1
        check_drift(cluster=cluster)
        assert AuditEvent.objects.filter(action="topic.drift").count() == 1  # recorded once, not every check

    def test_the_revert_policy_undoes_what_kafka_allows(
        self, cluster: Cluster, kafka: StandInKafkaCluster, orders: None, admin: APIClient
    ) -> None:
        Cluster.objects.filter(pk=cluster.pk).update(drift_policy="revert")
        cluster.refresh_from_db()
        kafka.alter_topic_config("orders", {"retention.ms": "1000", "cleanup.policy": "compact"})
        kafka.create_partitions("orders", 7, [[1, 2, 3]])

        check_drift(cluster=cluster)

        assert kafka.topic_config("orders") == {"retention.ms": "3600000"}
        assert [d["field"] for d in Topic.objects.get(name="orders").drift] == ["partitions"]
        assert AuditEvent.objects.filter(action="topic.drift_reverted").exists()

    def test_the_revert_policy_creates_a_deleted_topic_again(
        self, cluster: Cluster, kafka: StandInKafkaCluster, orders: None, admin: APIClient
    ) -> None:
        Cluster.objects.filter(pk=cluster.pk).update(drift_policy="revert")
        cluster.refresh_from_db()
        kafka.delete_topic("orders")
        assert admin.get(topics_url(cluster, "orders")).json()["status"] == "missing"

        check_drift(cluster=cluster)

        assert admin.get(topics_url(cluster, "orders")).json()["status"] == "ok"
        assert racks_of(kafka, "orders") == [["rack-0", "rack-1", "rack-2"]] * 6
