"""The last known replica assignment of a cluster: which brokers hold each partition, and which broker
was the active controller, as the last collection that reached the cluster saw them.

Stored with the cluster's health (`ClusterHealth.assignment`) so that a person can be shown what an
operation would do (the replica moves a scale needs, the order of a rolling restart) without the
request asking the cluster itself. Compact JSON text, written whole by every collection:
`{"v": 1, "c": controller or null, "p": [[topic, partition, [replica, ...], leader or null], ...]}`
(the leader is missing from what was stored before leaders were).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from monitoring.models import ClusterHealth
from provisioning.kafka_admin.base import ClusterState, TopicPartition

FORMAT = 1


@dataclass(frozen=True)
class KnownAssignment:
    replicas: dict[TopicPartition, list[int]] = field(default_factory=dict)
    controller_id: int | None = None
    leaders: dict[TopicPartition, int | None] = field(default_factory=dict)  # None: offline
    seen_at: datetime | None = None  # the collection it comes from; None when there is none

    @property
    def known(self) -> bool:
        return self.seen_at is not None


def encode(state: ClusterState) -> str:
    partitions = [
        [topic.name, p.partition, list(p.replicas), p.leader]
        for topic in state.topics
        for p in topic.partitions
    ]
    return orjson.dumps({"v": FORMAT, "c": state.controller_id, "p": partitions}).decode()


def load(cluster_id: uuid.UUID) -> KnownAssignment:
    row = ClusterHealth.objects.filter(pk=cluster_id).values_list("assignment", "succeeded_at").first()
    if row is None or not row[0] or row[1] is None:
        return KnownAssignment()
    data = orjson.loads(row[0])
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        return KnownAssignment()  # an older format: the next collection stores it again
    return KnownAssignment(
        replicas={(topic, partition): list(replicas) for topic, partition, replicas, *_ in data["p"]},
        controller_id=data.get("c"),
        leaders={(topic, partition): leader[0] for topic, partition, _, *leader in data["p"] if leader},
        seen_at=row[1],
    )
