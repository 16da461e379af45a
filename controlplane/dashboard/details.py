"""A broker's page and a consumer group's page, from what the last collection stored.

Like the cluster page, nothing here asks Kafka: a broker's rack, endpoint and state are the
cluster's records; its partitions, leaders and disk are the last collection's; a group's partitions
are evaluated again from its stored windows (`monitoring.lag_state.stored_group_lag`), its members
are those DescribeConsumerGroups named, and its status history is read from the chart history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Broker, Cluster
from controlplane.dashboard.panels import groups_worst_first
from controlplane.dashboard.queries import visible_clusters
from monitoring import assignment
from monitoring.history import StatusSpan, group_status_history, history_retention
from monitoring.lag import LagStatus, PartitionLag
from monitoring.lag_state import StoredGroup, load, stored_group_lag
from monitoring.models import ClusterHealth
from provisioning.kafka_admin.base import GroupMember, TopicPartition

# A broker page lists this many of its partitions; the rest are counted.
PARTITIONS_SHOWN = 500
GROUPS_PER_PAGE = 100


@dataclass(frozen=True)
class HeldPartition:
    topic: str
    partition: int
    replicas: list[int]
    leader: int | None  # None: offline, or not known (stored before leaders were)

    def led_by(self, node_id: int) -> bool:
        return self.leader == node_id


@dataclass(frozen=True)
class BrokerPage:
    node_id: int
    record: Broker | None  # None for a broker the cluster has no record of (seen mid scale-out)
    collected: bool  # a collection has reached the cluster
    replicas: int
    leaders: int
    out_of_sync: int
    down: bool
    controller: bool
    disk: dict[str, Any] | None
    partitions: list[HeldPartition]
    more_partitions: int


def broker_page(cluster: Cluster, node_id: int) -> BrokerPage:
    """404 for a broker neither recorded for the cluster nor seen by its last collection."""
    record = cluster.brokers.filter(node_id=node_id).first()
    health = ClusterHealth.objects.filter(cluster=cluster).defer("assignment").first()
    counts = (health.counts or {}) if health else {}
    seen = counts.get("brokers", {}).get(str(node_id))
    if record is None and seen is None:
        raise Http404(f"no broker {node_id}")
    known = assignment.load(cluster.pk)
    held = sorted(
        (
            HeldPartition(topic, partition, replicas, known.leaders.get((topic, partition)))
            for (topic, partition), replicas in known.replicas.items()
            if node_id in replicas
        ),
        key=lambda p: (p.leader != node_id, p.topic, p.partition),
    )
    seen = seen or {}
    return BrokerPage(
        node_id=node_id,
        record=record,
        collected=bool(health and health.succeeded_at),
        replicas=seen.get("partitions", 0),
        leaders=seen.get("leaders", 0),
        out_of_sync=seen.get("out_of_sync_replicas", 0),
        down=node_id in counts.get("down_brokers", []),
        controller=known.controller_id == node_id,
        disk=(health.disks or {}).get(str(node_id)) if health else None,
        partitions=held[:PARTITIONS_SHOWN],
        more_partitions=max(0, len(held) - PARTITIONS_SHOWN),
    )


@dataclass(frozen=True)
class GroupPartitionRow:
    lag: PartitionLag
    consumer: GroupMember | None  # the member assigned the partition, when the broker said


@dataclass(frozen=True)
class GroupPage:
    group: StoredGroup
    partitions: list[GroupPartitionRow]
    members: list[GroupMember]
    history: list[StatusSpan]
    history_hours: int


def group_page(cluster: Cluster, group_id: str) -> GroupPage:
    """404 for a group the last collection did not list."""
    groups, windows = load(cluster.pk)
    group = next((g for g in groups if g.group_id == group_id), None)
    if group is None:
        raise Http404(f"no consumer group {group_id}")
    consumer_of: dict[TopicPartition, GroupMember] = {
        tp: member for member in group.member_details for tp in member.assignment
    }
    lag = stored_group_lag(group, windows)
    # Worst first, as on the cluster page; then by topic and partition.
    partitions = sorted(lag.partitions, key=lambda p: (-p.status.rank, -(p.lag or 0), p.topic, p.partition))
    retention = history_retention()
    return GroupPage(
        group=group,
        partitions=[GroupPartitionRow(p, consumer_of.get((p.topic, p.partition))) for p in partitions],
        members=sorted(group.member_details, key=lambda m: (m.client_id, m.host, m.member_id)),
        history=group_status_history(cluster.pk, group_id, timezone.now() - retention),
        history_hours=max(1, round(retention / timedelta(hours=1))),
    )


def _live_cluster(request: HttpRequest, pk: uuid.UUID) -> Cluster:
    """The cluster, when it is the user's and not deleted: a deleted cluster's brokers and groups are
    gone, and its page says so."""
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    if cluster.status == ClusterStatus.DELETED:
        raise Http404("the cluster is deleted")
    return cluster


@login_required
@require_GET
def broker_detail(request: HttpRequest, pk: uuid.UUID, node_id: int) -> HttpResponse:
    cluster = _live_cluster(request, pk)
    return render(
        request, "dashboard/broker_detail.html", {"cluster": cluster, "broker": broker_page(cluster, node_id)}
    )


@login_required
@require_GET
def group_detail(request: HttpRequest, pk: uuid.UUID, group_id: str) -> HttpResponse:
    cluster = _live_cluster(request, pk)
    return render(
        request, "dashboard/group_detail.html", {"cluster": cluster, "page": group_page(cluster, group_id)}
    )


@login_required
@require_GET
def group_list(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Every consumer group of the cluster, worst first, searched by id and filtered by status."""
    cluster = _live_cluster(request, pk)
    groups = groups_worst_first(cluster)
    status = request.GET.get("status", "")
    search = request.GET.get("q", "").strip()
    if status in LagStatus.__members__:
        groups = [g for g in groups if g.status == status]
    if search:
        groups = [g for g in groups if search.lower() in g.group_id.lower()]
    chosen = {name: value for name, value in (("status", status), ("q", search)) if value}
    context = {
        "cluster": cluster,
        "page": Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page")),
        "chosen": chosen,
        "query": urlencode(chosen),
        "statuses": [s.value for s in LagStatus],
    }
    return render(request, "dashboard/group_list.html", context)
