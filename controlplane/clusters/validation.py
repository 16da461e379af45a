"""Rules a cluster request must meet that involve more than one field or object."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.conf import settings

from controlplane.clusters.actions import brokers_to_remove
from controlplane.clusters.choices import BrokerState, ClusterStatus
from controlplane.clusters.layout import MAX_BROKERS, Layout, layout_errors
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import (
    BackendNotAvailable,
    admin_for,
    backend_for,
    cluster_spec,
    cluster_target,
    make_backend,
)
from controlplane.targets.models import Target
from controlplane.targets.resolve import DEFAULT_TARGET_NAME, TargetNotFound, choose_target
from controlplane.tenancy.models import Organization
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize, ProvisioningPlan, SecuritySpec
from provisioning.kafka_admin.base import KafkaAdminError
from provisioning.placement import place_brokers

logger = logging.getLogger(__name__)

# The id validation gives a cluster that does not exist yet (backends refuse ids that are no UUID).
UNSAVED_CLUSTER_ID = "00000000-0000-0000-0000-000000000000"


def new_cluster_errors(
    organization: Organization, values: Mapping[str, Any], *, dry_run: bool = False
) -> dict[str, str]:
    """Field -> message for everything wrong with a request to create a cluster (or, `dry_run`, to
    plan one: then no target need be registered)."""
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
        target = choose_target(organization, values["backend"], values.get("target"), dry_run=dry_run)
        backend = make_backend(values["backend"], target, offline=True)
    except BackendNotAvailable as exc:
        errors["backend"] = str(exc)
        return errors
    except TargetNotFound as exc:
        errors["target"] = str(exc)
        return errors
    if errors:
        return errors
    return dict(backend.validate(new_cluster_spec(values)))


def new_cluster_spec(values: Mapping[str, Any], cluster_id: str = UNSAVED_CLUSTER_ID) -> ClusterSpec:
    """The spec a validated create request describes, brokers placed as the cluster will have them."""
    node_size = values["node_size"]
    layout = place_brokers(list(values["racks"]), values["brokers"])
    return ClusterSpec(
        cluster_id=cluster_id,
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
        # What the backend is asked about is whether it can authenticate at all; the CA and the
        # credential are made once the cluster is recorded.
        security=SecuritySpec(tuple(values["client_authentication"]), "", "", "")
        if values.get("client_authentication")
        else None,
    )


@dataclass(frozen=True)
class ClusterPlan:
    """What a cluster request would create, shown before anything is (dry run, manifests)."""

    organization: Organization
    backend: str
    spec: ClusterSpec
    target: Target | None
    plan: ProvisioningPlan

    @property
    def placement(self) -> dict[str, str]:
        return {str(b.node_id): b.rack for b in self.spec.brokers}

    @property
    def target_name(self) -> str:
        return self.target.name if self.target is not None else DEFAULT_TARGET_NAME

    @property
    def broker_count(self) -> int:
        return len(self.spec.brokers)

    @property
    def node_size_values(self) -> dict[str, Any]:
        size = self.spec.node_size
        return {"cpu": size.cpu, "memory_mb": size.memory_mb, "disk_gb": size.disk_gb}

    @property
    def config_values(self) -> dict[str, str]:
        return dict(self.spec.config)


def plan_new_cluster(organization: Organization, values: Mapping[str, Any]) -> ClusterPlan:
    """The plan of a request `new_cluster_errors(..., dry_run=True)` found nothing wrong with. It needs
    no reachable target: a cluster not yet created has nothing recorded there to read."""
    target = choose_target(organization, values["backend"], values.get("target"), dry_run=True)
    # A fresh id, so the names in the plan look like the ones a real cluster gets.
    spec = new_cluster_spec(values, str(uuid.uuid4()))
    backend = make_backend(values["backend"], target, offline=True)
    return ClusterPlan(organization, values["backend"], spec, target, backend.plan(spec))


def plan_cluster(cluster: Cluster) -> ClusterPlan:
    """The plan of an existing cluster: the objects its backend has applied, or would apply now."""
    spec = cluster_spec(cluster)
    plan = backend_for(cluster).plan(spec)
    return ClusterPlan(cluster.organization, cluster.backend, spec, cluster_target(cluster), plan)


def _with_brokers(cluster: Cluster, layout: dict[int, str], **changes: Any) -> ClusterSpec:
    spec = cluster_spec(cluster)
    brokers = tuple(BrokerSpec(node_id=n, rack=r) for n, r in sorted(layout.items()))
    return replace(spec, brokers=brokers, **changes)


def _backend_errors(cluster: Cluster, spec: ClusterSpec, field: str) -> dict[str, str]:
    try:
        problems = backend_for(cluster).validate(spec)
    except BackendNotAvailable as exc:
        return {field: str(exc)}
    if not problems:
        return {}
    return {field: "; ".join(f"{name}: {message}" for name, message in sorted(problems.items()))}


def highest_replication_factor(cluster: Cluster) -> int | None:
    """The highest replication factor of any partition, asked of the cluster; None when it does not
    answer (the scale-in's planning step refuses an impossible layout anyway)."""
    if not cluster.bootstrap_servers:
        return None
    try:
        admin = admin_for(cluster)
        try:
            state = admin.describe_cluster()
        finally:
            admin.close()
    except KafkaAdminError as exc:
        logger.info("cluster=%s replication factors unknown: %s", cluster.id, exc)
        return None
    return max((len(p.replicas) for t in state.topics for p in t.partitions), default=None)


def scale_errors(cluster: Cluster, brokers: int) -> dict[str, str]:
    """Field -> message for everything wrong with scaling `cluster` to `brokers`."""
    existing = dict(cluster.brokers.values_list("node_id", "rack"))
    racks = list(cluster.racks)
    current = len(existing)
    if brokers == current:
        return {"brokers": f"Cluster {cluster.name} already has {current} brokers."}
    if brokers > MAX_BROKERS:
        return {"brokers": f"At most {MAX_BROKERS} brokers per cluster."}
    if brokers < len(racks):
        return {
            "brokers": f"Every rack keeps at least one broker: {len(racks)} racks need at least "
            f"{len(racks)} brokers; got {brokers}."
        }
    if brokers % len(racks):
        lower = brokers - brokers % len(racks)
        return {
            "brokers": f"{brokers} brokers cannot be spread evenly over {len(racks)} racks; use a multiple "
            f"of {len(racks)} (e.g. {lower} or {lower + len(racks)})."
        }
    if brokers < cluster.replication_factor:
        return {
            "brokers": f"The cluster's replication factor is {cluster.replication_factor}: it needs at "
            f"least {cluster.replication_factor} brokers."
        }
    if brokers > current:
        layout = place_brokers(racks, brokers, existing)
        return _backend_errors(cluster, _with_brokers(cluster, layout), "brokers")
    removed = brokers_to_remove(existing, racks, brokers)
    if len(removed) != current - brokers:
        return {
            "brokers": f"The brokers are not spread evenly over the racks ({_rack_counts(existing, racks)}); "
            "replace or add brokers to even them out before scaling in."
        }
    in_use = highest_replication_factor(cluster)
    if in_use is not None and brokers < in_use:
        return {
            "brokers": f"Some partitions have {in_use} replicas, so at least {in_use} brokers must remain; "
            f"got {brokers}."
        }
    remaining = {n: rack for n, rack in existing.items() if n not in removed}
    return _backend_errors(cluster, _with_brokers(cluster, remaining), "brokers")


def _rack_counts(existing: dict[int, str], racks: list[str]) -> str:
    counts = dict.fromkeys(racks, 0)
    for rack in existing.values():
        counts[rack] = counts.get(rack, 0) + 1
    return ", ".join(f"{rack}: {count}" for rack, count in sorted(counts.items()))


def replace_broker_errors(cluster: Cluster, node_id: int, keep_disk: bool) -> dict[str, str]:
    existing = dict(cluster.brokers.values_list("node_id", "rack"))
    broker = cluster.brokers.filter(node_id=node_id).first()
    if broker is None:
        known = ", ".join(str(n) for n in sorted(existing)) or "none"
        return {"node_id": f"Cluster {cluster.name} has no broker {node_id}; its brokers are {known}."}
    if broker.state in (BrokerState.PENDING, BrokerState.DRAINING):
        return {"node_id": f"Broker {node_id} is {broker.state}; it cannot be replaced now."}
    if keep_disk:
        return {}
    # The replacement runs next to the old broker until the old one's replicas have moved, then the
    # old one goes: both layouts must be possible.
    replacement = max(existing) + 1
    meanwhile = {**existing, replacement: broker.rack}
    if errors := _backend_errors(cluster, _with_brokers(cluster, meanwhile), "keep_disk"):
        return errors
    after = {n: rack for n, rack in meanwhile.items() if n != node_id}
    if errors := _backend_errors(cluster, _with_brokers(cluster, after), "keep_disk"):
        return {
            "keep_disk": f"Broker {node_id} cannot be replaced without its disk ({errors['keep_disk']}); "
            "replace it with its disk (keep_disk: true) instead."
        }
    return {}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def upgrade_errors(cluster: Cluster, kafka_version: str) -> dict[str, str]:
    if kafka_version not in settings.KAFKA_VERSIONS:
        return {
            "kafka_version": f"Unknown Kafka version {kafka_version!r}; supported: "
            f"{', '.join(settings.KAFKA_VERSIONS)}."
        }
    if kafka_version == cluster.kafka_version:
        return {"kafka_version": f"Cluster {cluster.name} already runs Kafka {kafka_version}."}
    if _version_key(kafka_version) < _version_key(cluster.kafka_version):
        return {
            "kafka_version": f"Downgrades are refused ({cluster.kafka_version} → {kafka_version}): once "
            "the feature levels (metadata.version) are raised they cannot be lowered safely."
        }
    spec = replace(cluster_spec(cluster), kafka_version=kafka_version)
    return _backend_errors(cluster, spec, "kafka_version")


def rotation_errors(cluster: Cluster) -> dict[str, str]:
    if not cluster.client_authentication:
        return {
            "non_field_errors": f"Cluster {cluster.name} lets clients connect without authentication: it has no "
            "certificates to rotate."
        }
    return {}
