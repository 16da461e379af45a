"""Collections of clusters that do not answer, or not to everything.

A cluster that answers but cannot list its consumer groups (on real Kafka, a broker that died and is
still registered does that; see test_dead_broker.py) is simulated refusing the group listing alone,
which real Kafka cannot be made to do on demand.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from controlplane.clusters.models import Cluster
from monitoring import collector
from monitoring.alerting.choices import IncidentState
from monitoring.alerting.models import Incident
from monitoring.collector import collect_cluster
from monitoring.conditions import CONSUMER_LAG_STATUS
from monitoring.lag_state import load_groups
from monitoring.models import ClusterHealth, HealthStatus
from provisioning.kafka_admin.base import ConsumerGroupState, KafkaUnavailableError
from tests.monitoring.test_collect import T0
from tests.support.alerting import make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant


class GroupsUnanswered(SimulatedKafkaCluster):
    refuse_groups = False

    def list_consumer_groups(self) -> list[ConsumerGroupState]:
        if self.refuse_groups:
            raise KafkaUnavailableError("list consumer groups failed: Local: Timed out (_TIMED_OUT)")
        return super().list_consumer_groups()


def test_groups_that_cannot_be_listed_leave_lag_as_it_was(tenant: Tenant) -> None:
    kafka = GroupsUnanswered.with_brokers(3, seed=5)
    kafka.create_topic("orders", 1, 3, {"min.insync.replicas": "2"})
    kafka.produce("orders", 0, 100)
    kafka.commit("billing", "orders", 0, 10)
    cluster = make_cluster(tenant.organization)
    for step in range(3):  # a committed offset that never moves while messages wait: paged
        collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=10 * step))
    stalled = Incident.objects.get(cluster=cluster, rule_key=CONSUMER_LAG_STATUS)
    assert stalled.state == IncidentState.FIRING

    kafka.refuse_groups = True
    kafka.fail_broker(3)
    snapshot = collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(seconds=30))

    assert snapshot is not None and snapshot.reachable and "list consumer groups" in snapshot.lag_error
    health = ClusterHealth.objects.get(pk=cluster.pk)
    assert (health.status, health.brokers_up) == (HealthStatus.CRITICAL, 2)  # health is judged
    assert [g.group_id for g in load_groups(cluster.pk)] == ["billing"]  # lag kept as it was
    stalled.refresh_from_db()
    assert stalled.state == IncidentState.FIRING  # not resolved by a collection that could not see it


def test_a_cluster_nobody_listens_for_is_unreachable_at_once(tenant: Tenant) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    cluster = make_cluster(tenant.organization, bootstrap_servers=f"{address},{address}")

    snapshot = collect_cluster(cluster.pk, now=T0)

    assert snapshot is not None and not snapshot.reachable
    assert snapshot.error == (
        f"every bootstrap address refused the connection ({address}, {address}): no broker listens there"
    )


def test_an_unreachable_cluster_is_collected_less_and_less_often(tenant: Tenant) -> None:
    kafka = SimulatedKafkaCluster.with_brokers(3)
    cluster = make_cluster(tenant.organization)
    Cluster.objects.filter(pk=cluster.pk).update(collection_interval_seconds=10)
    collect_cluster(cluster.pk, admin=kafka, now=T0)
    kafka.set_reachable(False)

    def next_gap(at: datetime) -> float:
        collect_cluster(cluster.pk, admin=kafka, now=at)
        due = ClusterHealth.objects.get(pk=cluster.pk).next_collection_at
        return (due - at).total_seconds()

    # Its own interval at first, then half the time it has been unreachable, at most a minute.
    assert next_gap(T0 + timedelta(seconds=10)) == 10
    assert next_gap(T0 + timedelta(seconds=50)) == 25
    assert next_gap(T0 + timedelta(minutes=10)) == 60
    kafka.set_reachable(True)
    collect_cluster(cluster.pk, admin=kafka, now=T0 + timedelta(minutes=11))
    assert collector.claim_due_clusters(now=T0 + timedelta(minutes=11, seconds=11)) == [cluster.pk]
