"""Shared setup for the dashboard tests: clusters created the way the API creates them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from controlplane.api.serializers import ClusterCreateSerializer
from controlplane.audit.actions import Actor
from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from monitoring.collector import collect_cluster
from tests.support.alerting import make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant

COLLECTION_INTERVAL = timedelta(seconds=30)


def create_cluster(tenant: Tenant, **body: Any) -> Cluster:
    """A cluster as an admin's API request would record it; no worker runs, so it stays requested.

    Backend validation is not applied, so layouts the development backend refuses (several brokers
    without KAFKA_HOME) can still be shown.
    """
    serializer = ClusterCreateSerializer(data={"name": "orders", "brokers": 1, **body})
    serializer.is_valid(raise_exception=True)
    cluster, _ = request_cluster_create(
        organization=tenant.organization, spec=serializer.validated_data, actor=Actor(user=tenant.admin)
    )
    return cluster


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return create_cluster(tenant, brokers=6, racks=["eu-west-1a", "eu-west-1b", "eu-west-1c"])


def monitored_cluster(
    tenant: Tenant, *, name: str = "payments", until: datetime | None = None, quiet_groups: int = 0
) -> Cluster:
    """A running six-broker cluster over three racks, collected a few times by the real collector.

    A multi-broker Kafka cluster cannot run here, so `SimulatedKafkaCluster` stands in for it. By the
    last collection broker 6 has died: `audit` (two replicas, min ISR 2) is under min ISR, `orders` is
    under-replicated, and alerting has opened incidents for them. Consumer group `billing` is stuck
    (STALL), `search` falls behind (WARN) and `mirror` keeps up (OK). Every collection adds a history
    point, the last one at `until` (default now), so charts of the last hour show them.
    `quiet_groups` more groups (`quiet-1`, ...) keep up with `audit`.
    """
    until = until or timezone.now()
    cluster = make_cluster(tenant.organization, name=name, brokers=6, min_insync_replicas=2)
    simulated = SimulatedKafkaCluster.with_brokers(6, seed=3)
    simulated.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
    simulated.create_topic("audit", 3, 2, {"min.insync.replicas": "2"})
    simulated.set_group_state("billing", "Stable", members=2)
    simulated.set_group_state("search", "Stable", members=3)
    simulated.set_group_state("mirror", "Stable", members=1)
    steps = 6
    for step in range(steps):
        simulated.produce("orders", 0, 400)
        simulated.produce("audit", 1, 50)
        simulated.commit("billing", "orders", 0, 120)
        simulated.commit("search", "orders", 0, 300 * (step + 1))
        simulated.commit("mirror", "audit", 1, 50 * (step + 1))
        for number in range(1, quiet_groups + 1):
            simulated.commit(f"quiet-{number}", "audit", 1, 50 * (step + 1))
        if step == steps - 1:
            simulated.fail_broker(6)
        collect_cluster(cluster.pk, admin=simulated, now=until - COLLECTION_INTERVAL * (steps - 1 - step))
    return cluster
