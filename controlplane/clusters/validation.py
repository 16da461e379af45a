"""Rules a cluster request must meet that involve more than one field or object."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.layout import Layout, layout_errors
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import BackendNotAvailable, get_backend
from controlplane.tenancy.models import Organization
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.placement import place_brokers


def new_cluster_errors(organization: Organization, values: Mapping[str, Any]) -> dict[str, str]:
    """Field -> message for everything wrong with a request to create a cluster."""
    errors = layout_errors(
        Layout(
            brokers=values["brokers"],
            racks=tuple(values["racks"]),
            replication_factor=values["replication_factor"],
            min_insync_replicas=values["min_insync_replicas"],
        )
    )
    if (
        Cluster.objects.filter(organization=organization, name=values["name"])
        .exclude(status=ClusterStatus.DELETED)
        .exists()
    ):
        errors["name"] = f"A cluster named {values['name']!r} already exists in {organization.name}."
    try:
        backend = get_backend(values["backend"])
    except BackendNotAvailable as exc:
        errors["backend"] = str(exc)
        return errors
    if errors:
        return errors
    node_size = values["node_size"]
    layout = place_brokers(list(values["racks"]), values["brokers"])
    spec = ClusterSpec(
        cluster_id="00000000-0000-0000-0000-000000000000",
        name=values["name"],
        kafka_version=values["kafka_version"],
        brokers=tuple(BrokerSpec(node_id=n, rack=r) for n, r in sorted(layout.items())),
        replication_factor=values["replication_factor"],
        min_insync_replicas=values["min_insync_replicas"],
        node_size=NodeSize(
            cpu=float(Decimal(str(node_size["cpu"]))),
            memory_mb=node_size["memory_mb"],
            disk_gb=node_size["disk_gb"],
        ),
        config=tuple(sorted((values.get("config") or {}).items())),
    )
    return dict(backend.validate(spec))
