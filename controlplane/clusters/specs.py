"""Turning database rows into the plain data backends and workflows take."""

from __future__ import annotations

import copy
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from controlplane.clusters.models import Cluster, ClusterSecurity
from controlplane.targets.models import Placement, Target
from controlplane.targets.resolve import kubernetes_backend, vm_backend
from provisioning.backends.base import (
    NULL_EVENTS,
    Backend,
    BackendEvents,
    BrokerSpec,
    ClusterSpec,
    KafkaConnection,
    NodeSize,
    SecuritySpec,
)
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
        security=security_spec(cluster),
    )


def security_spec(cluster: Cluster) -> SecuritySpec | None:
    if not cluster.client_authentication:
        return None
    stored = ClusterSecurity.objects.filter(cluster_id=cluster.pk).first()
    if stored is None:
        return None  # refused by validation before a cluster could be recorded this way
    return SecuritySpec(
        authentication=tuple(cluster.client_authentication),
        ca_certificate_pem=stored.ca_certificate_pem,
        ca_private_key_pem=stored.secrets["ca_private_key_pem"],
        admin_password=stored.secrets.get("admin_password", ""),
        certificate_generation=stored.certificate_generation,
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


def admin_for(cluster: Cluster, spec: ClusterSpec | None = None) -> KafkaAdmin:
    """The cluster's Kafka admin client, connected as its backend says."""
    spec = spec or cluster_spec(cluster)
    return connect_admin(spec, backend_for(cluster).connection(spec, cluster.bootstrap_servers))


def connect_admin(spec: ClusterSpec, connection: KafkaConnection) -> KafkaAdmin:
    """`KAFKA_ADMIN_FACTORY`: (spec, connection) -> admin; tests put a simulator there."""
    return import_string(settings.KAFKA_ADMIN_FACTORY)(spec, connection)


def cluster_target(cluster: Cluster) -> Target | None:
    """The registered target the cluster runs on; None: its backend's implicit one (`local`)."""
    placement = Placement.objects.filter(cluster_id=cluster.pk).select_related("target").first()
    return placement.target if placement is not None else None


def make_backend(
    name: str,
    target: Target | None,
    *,
    events: BackendEvents = NULL_EVENTS,
    offline: bool = False,
    cluster_id: object = None,
) -> Backend:
    """A backend instance for one target (a registered one, or None for the backend's implicit
    target), reporting what it does to `events`. `offline`: for plans only, never reaching the target.
    `cluster_id`: the cluster it works for (a host pool's backend needs its hosts)."""
    if name == "kubernetes" and "kubernetes" in settings.CONTROLPLANE_BACKENDS:
        backend: Backend = kubernetes_backend(target, offline=offline)
    elif name == "vm" and "vm" in settings.CONTROLPLANE_BACKENDS:
        from controlplane.clusters.backends import vm_release  # it imports the targets' resolver too

        backend = vm_backend(target, cluster_id=cluster_id, release=vm_release, offline=offline)
    else:
        # Backends without registered targets are one shared instance; each caller gets its own
        # copy, so its events go to its own log.
        backend = copy.copy(get_backend(name))
    backend.events = events
    return backend


def backend_for(cluster: Cluster, *, events: BackendEvents = NULL_EVENTS) -> Backend:
    return make_backend(cluster.backend, cluster_target(cluster), events=events, cluster_id=cluster.pk)
