"""Scaling out and in on the simulated cluster stand-in, driven in-process."""

from __future__ import annotations

from collections import Counter
from typing import Any

from controlplane.clusters.actions import request_scale
from controlplane.clusters.models import Broker, Cluster
from controlplane.operations.actions import request_cancel
from controlplane.operations.models import Operation
from provisioning.backends.base import BackendError
from tests.operations.conftest import ClusterFactory, Driver
from tests.support.simulated_backend import Simulation, StandInKafkaCluster
from tests.support.tenants import SYSTEM, Tenant, token_client


def replica_counts(kafka: StandInKafkaCluster) -> Counter[int]:
    counts = Counter({node_id: 0 for node_id in kafka.members})
    counts.update(r for t in kafka.describe_cluster().topics for p in t.partitions for r in p.replicas)
    return counts


def rack_aware(kafka: StandInKafkaCluster) -> bool:
    return all(
        len({kafka.members[r] for r in p.replicas}) == len(p.replicas)
        for t in kafka.describe_cluster().topics
        for p in t.partitions
    )


def fully_replicated(kafka: StandInKafkaCluster, replication_factor: int) -> bool:
    return all(
        len(p.replicas) == replication_factor and set(p.isr) == set(p.replicas) and p.leader is not None
        for t in kafka.describe_cluster().topics
        for p in t.partitions
    )


def step(operation: Operation, name: str) -> Any:
    return operation.steps.get(name=name)


def test_scale_out_ends_balanced_rack_aware_with_exactly_the_planned_moves_under_a_throttle(
    tenant: Tenant, simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    # A low throttle, so the moves take many polls and progress is visible in between.
    settings.OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND = 2**20
    cluster, kafka = simulated_cluster(brokers=6)
    before = kafka.describe_cluster().assignment()
    client = token_client(tenant.admin)

    response = client.post(f"/api/v1/clusters/{cluster.id}/scale/", {"brokers": 9}, format="json")
    assert response.status_code == 202, response.content
    operation_id = response.json()["operation"]["id"]

    midway = driver.run(
        operation_id,
        until=lambda op: (
            0 < step(op, "execute_moves").progress_done < step(op, "execute_moves").progress_total
        ),
    )
    shown = client.get(f"/api/v1/operations/{operation_id}/").json()
    executing = next(s for s in shown["steps"] if s["name"] == "execute_moves")
    assert executing["state"] == "running"
    assert 0 < executing["progress"]["done"] < executing["progress"]["total"]
    assert 0 < shown["progress"] < 100
    assert midway.state == "running"

    operation = driver.run(operation_id)

    assert operation.state == "succeeded", operation.error
    assert sorted(kafka.members) == list(range(9))
    counts = replica_counts(kafka)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert rack_aware(kafka)
    assert fully_replicated(kafka, 3)
    # Exactly the planned moves, which are the minimum: the new brokers' fair share and nothing more.
    after = kafka.describe_cluster().assignment()
    moved = sum(len(set(after[key]) - set(before[key])) for key in before)
    planned = step(operation, "plan_moves").output["plan"]
    assert moved == planned["moves"] == sum(counts[n] for n in (6, 7, 8))
    assert step(operation, "execute_moves").progress_done == planned["moves"]
    # Every reassignment was submitted under a throttle on all the brokers, removed at the end.
    assert kafka.submissions
    assert all(set(throttles) == set(range(9)) for _, throttles in kafka.submissions)
    assert kafka.throttle_changes[0][0] == "set" and kafka.throttle_changes[-1][0] == "clear"
    assert kafka.throttles == {}
    cluster.refresh_from_db()
    assert (cluster.status, cluster.broker_count) == ("running", 9)
    assert set(Broker.objects.filter(cluster=cluster).values_list("state", flat=True)) == {"running"}
    log = [line.message for line in operation.log_lines.all()]
    assert any(line.startswith("plan: ") for line in log)
    assert any("throttle removed" in line for line in log)


def test_scale_in_drains_brokers_before_removing_them(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, kafka = simulated_cluster(brokers=9)

    operation = request_scale(cluster=cluster, brokers=6, actor=SYSTEM)
    assert sorted(operation.params["remove_node_ids"]) == [6, 7, 8]
    assert set(Broker.objects.filter(cluster=cluster, node_id__gte=6).values_list("state", flat=True)) == {
        "draining"
    }
    operation = driver.run(operation.id)

    assert operation.state == "succeeded", operation.error
    removals = [event for event in simulation.events if event[0] == "remove"]
    assert [(node_id, details["replicas"]) for _, node_id, details in removals] == [(6, 0), (7, 0), (8, 0)]
    assert sorted(kafka.members) == list(range(6))
    assert sorted(Broker.objects.filter(cluster=cluster).values_list("node_id", flat=True)) == list(range(6))
    counts = replica_counts(kafka)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert rack_aware(kafka)
    assert fully_replicated(kafka, 3)
    assert kafka.throttles == {}
    names = [s.name for s in operation.steps.all()]
    assert names.index("execute_moves") < names.index("verify_drained") < names.index("remove_brokers")
    cluster.refresh_from_db()
    assert (cluster.status, cluster.broker_count) == ("running", 6)


def test_cancelling_mid_rebalance_stops_between_polls_and_cleans_up(
    simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    settings.OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND = 2**20
    cluster, kafka = simulated_cluster(brokers=6)
    operation = request_scale(cluster=cluster, brokers=9, actor=SYSTEM)
    driver.run(operation.id, until=lambda op: bool(step(op, "execute_moves").output))
    assert kafka.list_partition_reassignments()

    request_cancel(operation=Operation.objects.get(pk=operation.id), actor=SYSTEM)
    operation = driver.run(operation.id)

    assert operation.state == "cancelled"
    states = {s.name: s.state for s in operation.steps.all()}
    assert states["plan_moves"] == "succeeded"
    assert states["execute_moves"] == states["verify_balance"] == "cancelled"
    # Nothing left behind: in-flight moves cancelled (replicas back where they were), no throttle.
    assert kafka.list_partition_reassignments() == {}
    assert kafka.throttles == {}
    assert fully_replicated(kafka, 3)
    cluster.refresh_from_db()
    # The brokers already started stay part of the cluster, and the count says so.
    assert (cluster.status, cluster.broker_count) == ("running", 9)


def test_a_permanent_failure_fails_the_scale_and_restores_the_brokers_records(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, _ = simulated_cluster(brokers=9)
    simulation.fail_next("remove_brokers", BackendError("the cloud refused to delete the volumes"))

    operation = driver.run(request_scale(cluster=cluster, brokers=6, actor=SYSTEM).id)

    assert operation.state == "failed"
    assert operation.error["code"] == "BackendError"
    assert "refused to delete the volumes" in operation.error["message"]
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.status == "degraded"
    assert "refused to delete the volumes" in cluster.status_reason
    assert cluster.broker_count == 9
    assert set(Broker.objects.filter(cluster=cluster).values_list("state", flat=True)) == {"running"}


def test_no_replica_is_planned_onto_a_broker_that_is_down(
    simulated_cluster: ClusterFactory, driver: Driver
) -> None:
    # (A scale-out starts brokers that are down again as it provisions; a scale-in does not.)
    cluster, kafka = simulated_cluster(brokers=9)
    kafka.fail_broker(2)

    operation = driver.run(request_scale(cluster=cluster, brokers=6, actor=SYSTEM).id)

    assert operation.state == "failed"
    assert operation.error["code"] == "brokers_down"
    assert "Brokers 2 are not registered" in operation.error["message"]
    assert kafka.submissions == []


def test_scaling_a_cluster_without_partitions_moves_nothing(
    simulated_cluster: ClusterFactory, driver: Driver
) -> None:
    cluster, kafka = simulated_cluster(brokers=3, topics=())

    operation = driver.run(request_scale(cluster=cluster, brokers=6, actor=SYSTEM).id)

    assert operation.state == "succeeded", operation.error
    assert kafka.submissions == [] and kafka.throttle_changes == []
    assert sorted(kafka.members) == list(range(6))
