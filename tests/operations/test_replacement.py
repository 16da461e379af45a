"""Replacing a broker, with and without its disk, and self-healing, on the simulated cluster stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from controlplane.clusters.actions import (
    heal_broker_anomalies,
    record_broker_observations,
    record_broker_unreachable,
    record_brokers_reachable,
    request_replace_broker,
    request_restart,
)
from controlplane.clusters.models import Broker, BrokerAnomaly, Cluster
from controlplane.clusters.reconcile import reconcile_cluster
from controlplane.operations.models import Operation
from provisioning.backends.base import BackendError
from provisioning.backends.local import IN_MEMORY_ONLY
from tests.operations.conftest import ClusterFactory, Driver
from tests.operations.test_scaling import fully_replicated, rack_aware
from tests.support.simulated_backend import Simulation
from tests.support.tenants import SYSTEM, Tenant, token_client


def test_replacing_a_broker_that_kept_its_disk_restarts_it_in_place(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    before = kafka.describe_cluster().assignment()
    kafka.fail_broker(3)

    operation = request_replace_broker(cluster=cluster, node_id=3, keep_disk=True, actor=SYSTEM)
    operation = driver.run(operation.id)

    assert operation.state == "succeeded", operation.error
    assert [s.name for s in operation.steps.all()] == ["replace_in_place", "wait_in_sync", "elect_leaders"]
    assert "broker 3 started again with its data" in [line.message for line in operation.log_lines.all()]
    assert ("replace", 3, {"keep_disk": True}) in simulation.events
    assert kafka.describe_cluster().assignment() == before  # nothing moved
    assert fully_replicated(kafka, 3)
    assert Broker.objects.get(cluster=cluster, node_id=3).state == "running"


def test_a_backend_that_keeps_no_data_never_claims_a_broker_came_back_with_it(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, tenant: Tenant
) -> None:
    """The development broker keeps data in memory only: replacing it "keeping the disk" or
    restarting it loses every topic, and the operation log, the cluster and the API say so."""
    cluster, kafka = simulated_cluster(brokers=6)
    simulation.durability_note = IN_MEMORY_ONLY
    kafka.fail_broker(3)

    replaced = driver.run(request_replace_broker(cluster=cluster, node_id=3, keep_disk=True, actor=SYSTEM).id)
    restarted = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert (replaced.state, restarted.state) == ("succeeded", "succeeded")
    for operation in (replaced, restarted):
        log = [line.message for line in operation.log_lines.all()]
        assert not [line for line in log if "with its data" in line], log
        assert f"started again empty: {IN_MEMORY_ONLY}" in "\n".join(log)
    body = token_client(tenant.owner).get(f"/api/v1/clusters/{cluster.pk}/").json()
    assert (body["durable"], body["durability_note"]) == (False, IN_MEMORY_ONLY)


def test_replacing_a_broker_without_its_disk_moves_its_replicas_to_a_new_broker_in_its_rack(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    held = kafka.replicas_on(3)
    kafka.fail_broker(3)

    operation = request_replace_broker(cluster=cluster, node_id=3, keep_disk=False, actor=SYSTEM)
    assert operation.params["replacement_node_id"] == 6
    operation = driver.run(operation.id)

    assert operation.state == "succeeded", operation.error
    assert kafka.members[6] == "rack-1" == Broker.objects.filter(cluster=cluster, node_id=6).get().rack
    assert 3 not in kafka.members
    assert not Broker.objects.filter(cluster=cluster, node_id=3).exists()
    assert ("remove", 3, {"replicas": 0}) in simulation.events
    # The replacement case: the dead broker's replicas land on the new broker, and nothing else moves.
    assert kafka.replicas_on(6) == held == operation.steps.get(name="plan_moves").output["plan"]["moves"]
    assert fully_replicated(kafka, 3)
    assert rack_aware(kafka)
    assert kafka.throttles == {}
    cluster.refresh_from_db()
    assert (cluster.status, cluster.broker_count) == ("running", 6)


def test_a_killed_broker_is_healed_once_it_has_been_gone_long_enough(
    simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.fail_broker(4)

    reconcile_cluster(cluster)
    anomaly = BrokerAnomaly.objects.get(cluster=cluster)
    assert (anomaly.node_id, anomaly.state, anomaly.source) == (4, "open", "reconcile")
    assert "crashed" in anomaly.detail
    assert not Operation.objects.filter(cluster=cluster, kind="replace_broker").exists()
    assert Cluster.objects.get(pk=cluster.pk).status == "degraded"

    settings.SELF_HEALING_AFTER_SECONDS = 0  # as if the threshold had passed
    reconcile_cluster(cluster)
    anomaly.refresh_from_db()
    assert anomaly.state == "healing"
    assert anomaly.operation.kind == "replace_broker"
    assert anomaly.operation.params["keep_disk"] is False
    assert anomaly.operation.requested_by_name == "system:self-healing"

    operation = driver.run(anomaly.operation.id)

    assert operation.state == "succeeded", operation.error
    anomaly.refresh_from_db()
    assert anomaly.state == "resolved"
    assert 4 not in kafka.members
    assert fully_replicated(kafka, 3)
    assert rack_aware(kafka)
    reconcile_cluster(cluster)
    assert Cluster.objects.get(pk=cluster.pk).status == "running"
    assert BrokerAnomaly.objects.filter(cluster=cluster).count() == 1


def test_a_broker_missing_from_observations_is_healed_after_the_delay_between_observations(
    simulated_cluster: ClusterFactory, settings: Any
) -> None:
    """Observations carry their own time (a collection's): how long a broker has been gone is the
    time between the observation that first missed it and the latest one, not the wall clock."""
    settings.SELF_HEALING_AFTER_SECONDS = 300
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.fail_broker(4)
    first_seen = timezone.now() - timedelta(days=1)  # observations replayed late, e.g. a backlog

    def observe(at: datetime) -> str:
        record_broker_observations(cluster.id, expected=range(1, 7), registered=[1, 2, 3, 5, 6], seen_at=at)
        return BrokerAnomaly.objects.get(cluster=cluster).state

    assert observe(first_seen) == "open"
    assert observe(first_seen + timedelta(seconds=290)) == "open"  # a day ago by the wall clock
    assert observe(first_seen + timedelta(seconds=301)) == "healing"


def test_anomalies_found_while_self_healing_is_off_are_acted_on_when_it_is_turned_on(
    tenant: Tenant,
    simulated_cluster: ClusterFactory,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SELF_HEALING_AFTER_SECONDS = 0
    cluster, kafka = simulated_cluster(brokers=6)
    Cluster.objects.filter(pk=cluster.pk).update(self_healing=False)
    kafka.fail_broker(2)
    reconcile_cluster(cluster)
    heal_broker_anomalies()
    assert BrokerAnomaly.objects.get(cluster=cluster).state == "open"
    client = token_client(tenant.admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(f"/api/v1/clusters/{cluster.id}/", {"self_healing": True}, format="json")

    assert response.status_code == 200
    anomaly = BrokerAnomaly.objects.get(cluster=cluster)
    assert anomaly.state == "healing"
    listed = client.get(f"/api/v1/clusters/{cluster.id}/anomalies/").json()["results"]
    assert [(a["node_id"], a["state"], a["operation"]) for a in listed] == [
        (2, "healing", str(anomaly.operation_id))
    ]


def test_a_broker_that_comes_back_resolves_its_anomaly(simulated_cluster: ClusterFactory) -> None:
    cluster, kafka = simulated_cluster(brokers=3)
    kafka.fail_broker(1)
    reconcile_cluster(cluster)
    kafka.restore_broker(1)

    reconcile_cluster(cluster)

    anomaly = BrokerAnomaly.objects.get(cluster=cluster)
    assert anomaly.state == "resolved"
    assert anomaly.resolved_at is not None


def test_observations_extend_one_anomaly_and_ignore_brokers_not_started(
    simulated_cluster: ClusterFactory,
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    Broker.objects.create(cluster=cluster, node_id=9, rack="rack-1")  # planned, not started
    first = timezone.now()

    one = record_broker_unreachable(cluster.id, 1, seen_at=first, detail="missing from metadata")
    two = record_broker_unreachable(cluster.id, 1, seen_at=first + timedelta(seconds=30))
    planned = record_broker_unreachable(cluster.id, 9, seen_at=first)
    unknown = record_broker_unreachable(cluster.id, 42, seen_at=first)
    stale = record_brokers_reachable(cluster.id, [1], seen_at=first - timedelta(seconds=5))

    assert one is not None and two is not None and one.pk == two.pk
    two.refresh_from_db()
    assert (two.detected_at, two.last_seen_at, two.source) == (
        first,
        first + timedelta(seconds=30),
        "monitoring",
    )
    assert planned is None and unknown is None
    assert stale == 0  # an observation from before it went missing says nothing
    assert record_brokers_reachable(cluster.id, [1], seen_at=first + timedelta(seconds=31)) == 1


def test_most_brokers_unreachable_at_once_is_not_healed_automatically(
    simulated_cluster: ClusterFactory, tenant: Tenant, settings: Any
) -> None:
    settings.SELF_HEALING_AFTER_SECONDS = 0
    cluster, kafka = simulated_cluster(brokers=3)
    kafka.fail_broker(1)
    kafka.fail_broker(2)

    reconcile_cluster(cluster)

    assert set(BrokerAnomaly.objects.filter(cluster=cluster).values_list("state", flat=True)) == {"open"}
    assert not Operation.objects.filter(cluster=cluster, kind="replace_broker").exists()
    shown = token_client(tenant.admin).get(f"/api/v1/clusters/{cluster.id}/anomalies/").json()
    held = [a["held_because"] for a in shown["results"] if a["state"] == "open"]
    assert held and all("2 of 3 brokers are unreachable at once" in reason for reason in held)


def test_a_one_broker_cluster_is_not_healed_and_its_anomaly_says_why(
    simulated_cluster: ClusterFactory, tenant: Tenant, settings: Any
) -> None:
    settings.SELF_HEALING_AFTER_SECONDS = 0
    cluster, kafka = simulated_cluster(brokers=1, racks=1, replication_factor=1, min_insync_replicas=1)
    only = cluster.brokers.get().node_id
    kafka.fail_broker(only)

    reconcile_cluster(cluster)

    assert not Operation.objects.filter(cluster=cluster, kind="replace_broker").exists()
    [anomaly] = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.id}/anomalies/").json()["results"]
    assert anomaly["state"] == "open"
    assert "does not act on a one-broker cluster" in anomaly["held_because"]


def test_a_failed_healing_reopens_the_anomaly_and_waits_before_trying_again(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, settings: Any
) -> None:
    settings.SELF_HEALING_AFTER_SECONDS = 0
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.fail_broker(4)
    simulation.fail_next("provision", BackendError("no capacity left in rack-2"))
    reconcile_cluster(cluster)
    anomaly = BrokerAnomaly.objects.get(cluster=cluster)

    assert driver.run(anomaly.operation_id).state == "failed"

    anomaly.refresh_from_db()
    assert (anomaly.state, anomaly.attempts) == ("open", 1)
    assert anomaly.retry_after is not None
    assert not Broker.objects.filter(cluster=cluster, node_id=6).exists()  # the replacement never started
    settings.SELF_HEALING_AFTER_SECONDS = 3600
    heal_broker_anomalies()
    assert BrokerAnomaly.objects.get(pk=anomaly.pk).state == "open"
    BrokerAnomaly.objects.filter(pk=anomaly.pk).update(
        retry_after=timezone.now() - timedelta(seconds=1), detected_at=timezone.now() - timedelta(hours=2)
    )
    assert len(heal_broker_anomalies()) == 1
    assert BrokerAnomaly.objects.get(pk=anomaly.pk).attempts == 2


def test_a_replacement_tried_again_continues_with_the_broker_it_already_started(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=6)
    kafka.fail_broker(3)
    simulation.fail_next("remove_brokers", BackendError("volume still attached"))
    first = driver.run(request_replace_broker(cluster=cluster, node_id=3, keep_disk=False, actor=SYSTEM).id)
    assert first.state == "failed"
    assert Cluster.objects.get(pk=cluster.pk).broker_count == 7  # what exists: the new broker and the old

    second = request_replace_broker(cluster=cluster, node_id=3, keep_disk=False, actor=SYSTEM)
    second = driver.run(second.id)

    assert second.state == "succeeded", second.error
    assert second.params["replacement_node_id"] == first.params["replacement_node_id"] == 6
    assert sorted(kafka.members) == [0, 1, 2, 4, 5, 6]
    assert [e for e in simulation.events if e[0] == "start"][-1][1] == 6
    assert Cluster.objects.get(pk=cluster.pk).broker_count == 6
    assert fully_replicated(kafka, 3)


def test_self_healing_restarts_in_place_when_moving_replicas_would_lose_data(
    simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    settings.SELF_HEALING_AFTER_SECONDS = 0
    cluster, kafka = simulated_cluster(brokers=3, replication_factor=1, min_insync_replicas=1)
    kafka.fail_broker(1)

    reconcile_cluster(cluster)

    operation = BrokerAnomaly.objects.get(cluster=cluster).operation
    assert operation.params["keep_disk"] is True
    assert driver.run(operation.id).state == "succeeded"
    assert kafka.down == set()
