"""Host pools in the database: which host runs which broker (`HostAllocation`), given out under a lock.

Allocations are made when an operation is requested (a create, a scale-out, a replacement without the
disk), in the request's transaction, so a request the pool cannot satisfy is refused before anything
happens and two concurrent requests never get the same host: the pool's target row is locked while
hosts are picked, and the unique (target, host) constraint stops whatever got past that. A host is
freed when its broker record goes (scale-in, replacement: the allocation is deleted with it) or the
cluster's delete operation succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, prefetch_related_objects

from controlplane.clusters.models import Broker, Cluster
from controlplane.targets.choices import TargetKind
from controlplane.targets.models import HostAllocation, Placement, Target
from provisioning import kafka_config
from provisioning.ansible.pool import HostPool, PoolExhausted, allocate, pool_from_settings
from provisioning.backends.base import BrokerSpec


def host_pool(target: Target) -> HostPool:
    return pool_from_settings(target.name, target.config)


def taken_hosts(target: Target) -> set[str]:
    return set(HostAllocation.objects.filter(target=target).values_list("host", flat=True))


def cluster_hosts(cluster_id: object) -> dict[int, str]:
    """Node id -> host name of every broker of the cluster that has one."""
    return dict(
        HostAllocation.objects.filter(broker__cluster_id=cluster_id).values_list("broker__node_id", "host")
    )


# What `hosts_in_use` reads: a list of targets prefetches it in one query instead of one per pool.
ALLOCATIONS_WITH_BROKERS = Prefetch(
    "allocations", queryset=HostAllocation.objects.select_related("broker__cluster")
)


def hosts_in_use(target: Target) -> dict[str, str]:
    """Host name -> what runs on it, in words, for every allocated host of the pool."""
    prefetch_related_objects([target], ALLOCATIONS_WITH_BROKERS)  # no query when already prefetched
    return {
        a.host: f"broker {a.broker.node_id} of cluster {a.broker.cluster.name}"
        for a in target.allocations.all()
    }


def allocate_hosts(*, cluster: Cluster, node_ids: list[int]) -> dict[int, str]:
    """Give these brokers of `cluster` (recorded already, with their racks) free hosts of their racks,
    when the cluster runs on a host pool; nothing otherwise. Raises `PoolExhausted` (the caller's
    transaction then records nothing)."""
    placement = Placement.objects.filter(cluster=cluster).first()
    if placement is None or placement.target.kind != TargetKind.VM:
        return {}
    # Concurrent allocations in one pool are decided one after the other.
    target = Target.objects.select_for_update().get(pk=placement.target_id)
    brokers = {b.node_id: b for b in Broker.objects.filter(cluster=cluster, node_id__in=node_ids)}
    chosen = allocate(
        host_pool(target),
        {node_id: broker.rack for node_id, broker in brokers.items()},
        held=cluster_hosts(cluster.pk),
        taken=taken_hosts(target),
    )
    new = [
        HostAllocation(target=target, host=chosen[node_id], broker=broker)
        for node_id, broker in brokers.items()
        if not HostAllocation.objects.filter(broker=broker).exists()
    ]
    try:
        with transaction.atomic():
            HostAllocation.objects.bulk_create(new)
    except IntegrityError as exc:  # only possible without row locks (SQLite serializes writers)
        raise PoolExhausted(target.name, {}, "another request took one of its free hosts; try again") from exc
    if not placement.layout:
        spec_brokers = [BrokerSpec(node_id, broker.rack) for node_id, broker in brokers.items()]
        placement.layout = {
            "controllers": list(kafka_config.choose_controllers(spec_brokers)),
            "quorum": kafka_config.quorum_style_for_new_cluster(cluster.kafka_version).value,
        }
        placement.save(update_fields=["layout"])
    return chosen


def free_cluster_hosts(cluster_id: object) -> int:
    """Free every host of a deleted cluster; returns how many."""
    deleted, _ = HostAllocation.objects.filter(broker__cluster_id=cluster_id).delete()
    return deleted


def pool_change_conflicts(target: Target, settings: Mapping[str, object]) -> list[str]:
    """Why new settings cannot replace a pool's: hosts in use that would be removed or change rack."""
    if target.kind != TargetKind.VM or "hosts" not in settings:
        return []
    new = {h.name: h for h in pool_from_settings(target.name, settings).hosts}
    old = host_pool(target)
    problems = []
    for name, user in sorted(hosts_in_use(target).items()):
        if name not in new:
            problems.append(f"host {name} runs {user}; it cannot leave the pool until that is removed")
        elif new[name].rack != old.host(name).rack or new[name].address != old.host(name).address:
            problems.append(f"host {name} runs {user}; its address and rack cannot change meanwhile")
    return problems
