"""What a collection sees of each broker reaches self-healing as persisted anomalies.

`SimulatedKafkaCluster` stands in for a multi-broker Kafka cluster, which cannot run here.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from controlplane.clusters.choices import AnomalyState
from controlplane.clusters.models import BrokerAnomaly, Cluster
from monitoring.collector import collect_cluster
from tests.monitoring.test_collect import make_cluster, simulated_three_brokers
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant


def test_a_broker_missing_from_the_metadata_opens_an_anomaly_that_its_return_resolves(tenant: Tenant) -> None:
    simulated = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3], replication_factor=3)
    Cluster.objects.filter(pk=cluster.pk).update(
        self_healing=False
    )  # record only; healing is tested elsewhere
    now = timezone.now()

    collect_cluster(cluster.pk, admin=simulated, now=now)
    assert not BrokerAnomaly.objects.exists()

    simulated.fail_broker(2)
    collect_cluster(cluster.pk, admin=simulated, now=now + timedelta(seconds=10))
    collect_cluster(cluster.pk, admin=simulated, now=now + timedelta(seconds=20))

    anomaly = BrokerAnomaly.objects.get()
    assert (anomaly.node_id, anomaly.state, anomaly.source) == (2, AnomalyState.OPEN, "monitoring")
    assert anomaly.last_seen_at - anomaly.detected_at == timedelta(seconds=10)

    simulated.restore_broker(2)
    collect_cluster(cluster.pk, admin=simulated, now=now + timedelta(seconds=30))

    anomaly.refresh_from_db()
    assert anomaly.state == AnomalyState.RESOLVED


def test_an_unreachable_cluster_says_nothing_about_single_brokers(tenant: Tenant) -> None:
    simulated: SimulatedKafkaCluster = simulated_three_brokers()
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3], replication_factor=3)
    simulated.set_reachable(False)

    collect_cluster(cluster.pk, admin=simulated, now=timezone.now())

    assert not BrokerAnomaly.objects.exists()
