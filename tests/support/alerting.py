"""Helpers for tests and benchmarks of alerting: clusters as the database records them, snapshots
of simulated or real clusters at any moment, and running due deliveries without a worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.models import Broker, Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting.choices import DeliveryStatus
from monitoring.alerting.delivery import attempt_delivery
from monitoring.alerting.models import Delivery
from monitoring.collector import ClusterSnapshot, CollectionTarget, take_snapshot
from monitoring.lag_windows import ClusterWindows
from provisioning.kafka_admin.base import KafkaAdmin


def make_cluster(
    organization: Organization,
    *,
    name: str = "orders",
    brokers: int = 3,
    min_insync_replicas: int = 2,
    broker_ids: list[int] | None = None,
    bootstrap_servers: str = "127.0.0.1:9",
) -> Cluster:
    """A running cluster record with its brokers, as provisioning leaves it."""
    ids = broker_ids or list(range(1, brokers + 1))
    cluster = Cluster.objects.create(
        organization=organization,
        name=name,
        kafka_version="4.3.2",
        backend="local",
        broker_count=len(ids),
        racks=["rack-0", "rack-1", "rack-2"],
        node_cpu=Decimal(1),
        node_memory_mb=2048,
        node_disk_gb=10,
        replication_factor=min(3, len(ids)),
        min_insync_replicas=min_insync_replicas,
        status=ClusterStatus.RUNNING,
        bootstrap_servers=bootstrap_servers,
    )
    Broker.objects.bulk_create(
        Broker(cluster=cluster, node_id=node_id, rack=f"rack-{i % 3}", state=BrokerState.RUNNING)
        for i, node_id in enumerate(ids)
    )
    return cluster


class Observer:
    """Takes snapshots of one cluster through a `KafkaAdmin`, keeping lag windows between them like
    the collector does, at whatever moments the test chooses."""

    def __init__(self, cluster: Cluster, admin: KafkaAdmin) -> None:
        self.cluster = cluster
        self.admin = admin
        self.windows = ClusterWindows()
        self.target = CollectionTarget(
            cluster_id=cluster.pk,
            cluster_name=cluster.name,
            expected_broker_ids=frozenset(cluster.brokers.values_list("node_id", flat=True)),
            min_insync_replicas=cluster.min_insync_replicas,
        )

    def snapshot(self, at: datetime) -> ClusterSnapshot:
        snapshot, self.windows = take_snapshot(self.admin, self.target, self.windows, at)
        return snapshot


def unreachable_snapshot(
    cluster: Cluster, at: datetime, error: str = "connection refused"
) -> ClusterSnapshot:
    return ClusterSnapshot(
        cluster_id=cluster.pk,
        cluster_name=cluster.name,
        collected_at=at,
        reachable=False,
        expected_broker_ids=frozenset(cluster.brokers.values_list("node_id", flat=True)),
        min_insync_replicas=cluster.min_insync_replicas,
        error=error,
    )


def run_due_deliveries(now: datetime | None = None, *, cluster_id: uuid.UUID | None = None) -> int:
    """Attempt every pending delivery due at `now`, oldest first, in this process; returns how many.

    Stands in for the worker in tests that check what is sent rather than how it is queued (on_commit
    callbacks, which queue the tasks, do not run inside a test's transaction).
    """
    now = now or timezone.now()
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lte=now)
    if cluster_id is not None:
        pending = pending.filter(incident__cluster_id=cluster_id)
    attempted = 0
    for delivery_id in pending.order_by("pk").values_list("pk", flat=True):
        attempt_delivery(delivery_id, now=now)
        attempted += 1
    return attempted
