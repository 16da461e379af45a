"""What the API and the dashboard show of a cluster's data plane: the control plane's records joined
with one look at Kafka. A cluster that does not answer still shows its records, marked unknown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controlplane.clusters.models import Cluster
from controlplane.dataplane import access
from controlplane.dataplane import topics as rules
from controlplane.dataplane.errors import ClusterUnreachable, DataPlaneConflict
from controlplane.dataplane.kafka import cluster_admin
from controlplane.dataplane.models import AclRule, Topic


class TopicNotFound(LookupError):
    """Neither the control plane nor Kafka has a topic of that name."""


def _unseen(error: Exception) -> rules.Observation:
    return rules.Observation(reachable=False, error=str(error))


def topic_names(cluster: Cluster) -> tuple[list[str], dict[str, Topic], rules.Observation]:
    """Every topic name (managed ones and whatever else Kafka has), sorted, with the records and the look."""
    managed = {topic.name: topic for topic in Topic.objects.filter(cluster=cluster)}
    try:
        with cluster_admin(cluster) as admin:
            seen = rules.observe_all(admin, managed)
    except (ClusterUnreachable, DataPlaneConflict) as exc:
        seen = _unseen(exc)
    return sorted(set(managed) | set(seen.topics)), managed, seen


def list_topics(cluster: Cluster) -> list[dict[str, Any]]:
    names, managed, seen = topic_names(cluster)
    return [rules.describe(cluster, name, managed.get(name), seen) for name in names]


def read_topic(cluster: Cluster, name: str, topic: Topic | None, *, detail: bool = False) -> dict[str, Any]:
    """One topic as `topics.describe` (or, with `detail`, `describe_in_detail`) shows it; `TopicNotFound`
    when neither the control plane nor Kafka has it."""
    racks = dict(cluster.brokers.values_list("node_id", "rack"))
    try:
        with cluster_admin(cluster) as admin:
            seen = rules.observe_one(admin, name, racks)
    except (ClusterUnreachable, DataPlaneConflict) as exc:
        seen = _unseen(exc)
    if topic is None and name not in seen.topics:
        raise TopicNotFound(name)
    if detail:
        return rules.describe_in_detail(cluster, name, topic, seen, racks)
    return rules.describe(cluster, name, topic, seen)


def acl_states(cluster: Cluster, acl_rules: Sequence[AclRule]) -> dict[Any, str]:
    """Rule id -> ok or missing (bindings removed outside); empty when the cluster did not answer."""
    if not acl_rules:
        return {}
    try:
        with cluster_admin(cluster) as admin:
            bindings = admin.describe_acls()
    except (ClusterUnreachable, DataPlaneConflict):
        return {}
    return access.rule_states(acl_rules, bindings)
