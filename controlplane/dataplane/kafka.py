"""The cluster's admin client for data-plane reads and writes, with its failures in the domain's terms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import admin_for
from controlplane.dataplane.errors import ClusterUnreachable, DataPlaneConflict
from provisioning.kafka_admin.base import KafkaAdmin, KafkaUnavailableError

# Clusters whose brokers serve clients; topics and users are managed only on them.
SERVING_STATUSES = (ClusterStatus.RUNNING, ClusterStatus.DEGRADED, ClusterStatus.UPDATING)


def require_serving(cluster: Cluster) -> None:
    if cluster.status not in SERVING_STATUSES or not cluster.bootstrap_servers:
        raise DataPlaneConflict(
            f"Cluster {cluster.name} is {cluster.status}; topics, users and ACLs are managed once it runs."
        )


@contextmanager
def cluster_admin(cluster: Cluster) -> Iterator[KafkaAdmin]:
    """The cluster's admin client for a `with` block; an unreachable cluster is `ClusterUnreachable`."""
    require_serving(cluster)
    admin = admin_for(cluster)
    try:
        yield admin
    except KafkaUnavailableError as exc:
        raise ClusterUnreachable(f"Cluster {cluster.name} did not answer: {exc}") from exc
    finally:
        admin.close()
