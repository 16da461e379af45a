"""Turning database rows into the plain data backends and workflows take."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from controlplane.clusters.models import Cluster
from provisioning.backends.base import Backend, BrokerSpec, ClusterSpec, NodeSize
from provisioning.kafka_admin.base import KafkaAdmin


def cluster_spec(cluster: Cluster) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=str(cluster.id),
        name=cluster.name,
        kafka_version=cluster.kafka_version,
        brokers=tuple(
            BrokerSpec(node_id=b.node_id, rack=b.rack) for b in cluster.brokers.order_by("node_id")
        ),
        replication_factor=cluster.replication_factor,
        min_insync_replicas=cluster.min_insync_replicas,
        node_size=NodeSize(
            cpu=float(cluster.node_cpu), memory_mb=cluster.node_memory_mb, disk_gb=cluster.node_disk_gb
        ),
        config=tuple(sorted((str(k), str(v)) for k, v in (cluster.config or {}).items())),
    )


@cache
def get_backend(name: str) -> Backend:
    """The configured backend for a name; `BackendNotAvailable` when this installation has none."""
    factory_path = settings.CONTROLPLANE_BACKENDS.get(name)
    if not factory_path:
        raise BackendNotAvailable(name)
    return import_string(factory_path)()


def available_backends() -> list[str]:
    return sorted(settings.CONTROLPLANE_BACKENDS)


class BackendNotAvailable(Exception):
    def __init__(self, name: str) -> None:
        configured = ", ".join(available_backends()) or "none"
        super().__init__(
            f"The {name!r} backend is not configured on this installation (configured: {configured})."
        )


def admin_for(spec: ClusterSpec, bootstrap_servers: str) -> KafkaAdmin:
    return import_string(settings.KAFKA_ADMIN_FACTORY)(spec, bootstrap_servers)
