"""Every write to a cluster's data plane: topics (users, ACLs and quotas in `access`).

Each action checks what it can before Kafka is asked, changes Kafka, and records the desired state with
an audit event. The database row and Kafka change together: the row is written in a transaction that
commits only once Kafka has accepted the change, so a refusal or an unreachable cluster leaves both as
they were. A topic's row is locked while Kafka is asked, so concurrent changes to one topic are decided
one after the other.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.choices import DriftPolicy
from controlplane.clusters.models import Cluster
from controlplane.dataplane import topics as rules
from controlplane.dataplane.errors import DataPlaneConflict, DataPlaneInvalid
from controlplane.dataplane.kafka import cluster_admin
from controlplane.dataplane.models import Topic
from provisioning.kafka_admin.base import (
    KafkaAdmin,
    KafkaAdminError,
    KafkaRefusedError,
    TopicAlreadyExistsError,
    TopicNotFoundError,
)
from provisioning.kafka_config import DEFAULT_NUM_PARTITIONS
from provisioning.topic_configs import topic_config_errors

logger = logging.getLogger(__name__)

DRIFT_CHECK = Actor.system("drift-check")
# How long a deletion waits for the brokers' metadata to stop listing the topic, so that a read right
# after the answer does not find it again.
DELETE_SETTLE_SECONDS = 10.0


@dataclass(frozen=True)
class TopicRequest:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]
    deletion_protected: bool = False


def default_partitions(cluster: Cluster) -> int:
    """Partitions of a topic created without a count: the cluster's num.partitions, as Kafka does."""
    configured = str((cluster.config or {}).get("num.partitions", ""))
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_NUM_PARTITIONS


def topic_request(cluster: Cluster, values: Mapping[str, Any]) -> TopicRequest:
    """A create request from validated input (the API's TopicCreateSerializer), with the cluster's
    defaults for what was left out."""
    return TopicRequest(
        name=values["name"],
        partitions=values.get("partitions") or default_partitions(cluster),
        replication_factor=values.get("replication_factor") or cluster.replication_factor,
        config=values.get("config") or {},
        deletion_protected=values.get("deletion_protected", False),
    )


def _refused(exc: KafkaRefusedError, field: str) -> DataPlaneInvalid:
    """Kafka's reason for refusing, on the field it is about."""
    reason = str(exc)
    if "config" in reason.lower():
        field = "config"
    return DataPlaneInvalid({field: f"Kafka refused it: {reason}"})


def check_topic_config(cluster: Cluster, config: Mapping[str, str | None]) -> None:
    if errors := topic_config_errors(config, cluster.kafka_version):
        raise DataPlaneInvalid({"config": "; ".join(f"{key}: {message}" for key, message in errors.items())})


def create_topic(*, cluster: Cluster, request: TopicRequest, actor: Actor) -> Topic:
    """Create a managed topic, its replicas placed rack-aware by the placement engine."""
    check_topic_config(cluster, request.config)
    if request.replication_factor > cluster.brokers.count():
        raise DataPlaneInvalid(
            {
                "replication_factor": f"Replication factor {request.replication_factor} needs as many brokers; "
                f"cluster {cluster.name} has {cluster.brokers.count()}."
            }
        )
    try:
        with transaction.atomic():
            topic = Topic.objects.create(
                cluster=cluster,
                name=request.name,
                partitions=request.partitions,
                replication_factor=request.replication_factor,
                config=dict(request.config),
                deletion_protected=request.deletion_protected,
                created_by=actor.account,
            )
            _create_in_kafka(cluster, topic)
            record_event(
                actor=actor,
                action="topic.create",
                target=topic,
                organization=cluster.organization,
                details={
                    "cluster": str(cluster.id),
                    "partitions": topic.partitions,
                    "replication_factor": topic.replication_factor,
                    "config": topic.config,
                },
            )
    except IntegrityError as exc:
        raise DataPlaneConflict(
            f"Cluster {cluster.name} already has a topic named {request.name!r}."
        ) from exc
    return topic


def _create_in_kafka(cluster: Cluster, topic: Topic) -> None:
    with cluster_admin(cluster) as admin:
        state = admin.describe_cluster()
        existing = {t.name for t in state.topics}
        if topic.name in existing:
            raise DataPlaneConflict(
                f"Kafka already has a topic named {topic.name!r}, created outside the control plane."
            )
        if other := rules.colliding_topic(topic.name, existing):
            raise DataPlaneInvalid(
                {"name": f"{topic.name!r} collides with topic {other!r}: Kafka treats '.' and '_' alike."}
            )
        replicas = rules.new_topic_replicas(
            rules.placement_brokers(cluster, state), topic.name, topic.partitions, topic.replication_factor
        )
        try:
            admin.create_topic_assigned(topic.name, replicas, topic.config)
        except TopicAlreadyExistsError as exc:
            raise DataPlaneConflict(f"Kafka already has a topic named {topic.name!r}.") from exc
        except KafkaRefusedError as exc:
            raise _refused(exc, "partitions") from exc


def update_topic(
    *,
    topic: Topic,
    actor: Actor,
    partitions: int | None = None,
    config: Mapping[str, str | None] | None = None,
    deletion_protected: bool | None = None,
) -> Topic:
    """Change a managed topic: configs incrementally (a None value goes back to the default), partitions
    only upwards, deletion protection. Each part is applied and recorded on its own, configs first."""
    cluster = topic.cluster
    if config:
        check_topic_config(cluster, config)
        topic = _change_config(topic, config, actor)
    if partitions is not None:
        topic = _grow(topic, partitions, actor)
    if deletion_protected is not None and deletion_protected != topic.deletion_protected:
        with transaction.atomic():
            topic = Topic.objects.select_for_update().get(pk=topic.pk)
            topic.deletion_protected = deletion_protected
            topic.save(update_fields=["deletion_protected", "updated_at"])
            record_event(
                actor=actor,
                action="topic.protect" if deletion_protected else "topic.unprotect",
                target=topic,
                organization=cluster.organization,
                details={"cluster": str(cluster.id)},
            )
    return topic


def _change_config(topic: Topic, changes: Mapping[str, str | None], actor: Actor) -> Topic:
    with transaction.atomic():
        topic = Topic.objects.select_for_update().select_related("cluster__organization").get(pk=topic.pk)
        desired = dict(topic.config)
        for key, value in changes.items():
            if value is None:
                desired.pop(key, None)
            else:
                desired[key] = value
        if desired == topic.config:
            return topic
        with cluster_admin(topic.cluster) as admin:
            try:
                admin.alter_topic_config(topic.name, changes)
            except TopicNotFoundError as exc:
                raise DataPlaneConflict(_missing(topic)) from exc
            except KafkaRefusedError as exc:
                raise _refused(exc, "config") from exc
        topic.config = desired
        topic.save(update_fields=["config", "updated_at"])
        record_event(
            actor=actor,
            action="topic.config",
            target=topic,
            organization=topic.cluster.organization,
            details={"cluster": str(topic.cluster_id), "changes": dict(changes)},
        )
    return topic


def _grow(topic: Topic, partitions: int, actor: Actor) -> Topic:
    with transaction.atomic():
        topic = Topic.objects.select_for_update().select_related("cluster__organization").get(pk=topic.pk)
        cluster = topic.cluster
        if partitions < topic.partitions:
            raise DataPlaneInvalid({"partitions": _no_decrease(topic.partitions, partitions)})
        if partitions == topic.partitions:
            return topic
        with cluster_admin(cluster) as admin:
            state = admin.describe_cluster()
            current = next((t for t in state.topics if t.name == topic.name), None)
            if current is None:
                raise DataPlaneConflict(_missing(topic))
            if partitions < len(current.partitions):
                # Grown outside the control plane beyond what is asked now.
                raise DataPlaneInvalid({"partitions": _no_decrease(len(current.partitions), partitions)})
            if partitions > len(current.partitions):
                replicas = rules.added_partition_replicas(
                    rules.placement_brokers(cluster, state), current, partitions, topic.replication_factor
                )
                try:
                    admin.create_partitions(topic.name, partitions, replicas)
                except KafkaRefusedError as exc:
                    raise _refused(exc, "partitions") from exc
        before = topic.partitions
        topic.partitions = partitions
        topic.save(update_fields=["partitions", "updated_at"])
        record_event(
            actor=actor,
            action="topic.partitions",
            target=topic,
            organization=cluster.organization,
            details={"cluster": str(cluster.id), "from": before, "to": partitions},
        )
    return topic


def _no_decrease(current: int, asked: int) -> str:
    return (
        f"Partitions can only grow: the topic has {current} and {asked} were asked. Kafka cannot remove "
        "partitions (their data would be lost); create a new topic with fewer and move to it instead. "
        "The topic was left as it is."
    )


def _missing(topic: Topic) -> str:
    return (
        f"Topic {topic.name} is not in Kafka (deleted outside the control plane); delete it here too, or "
        "let the drift check create it again (drift policy revert)."
    )


def delete_topic(*, topic: Topic, actor: Actor) -> None:
    """Delete a managed topic from Kafka and forget it; refused while it is deletion-protected."""
    with transaction.atomic():
        topic = Topic.objects.select_for_update().select_related("cluster__organization").get(pk=topic.pk)
        if topic.deletion_protected:
            raise DataPlaneConflict(
                f"Topic {topic.name} is protected from deletion; turn deletion_protected off first."
            )
        cluster = topic.cluster
        with cluster_admin(cluster) as admin:
            # Already gone from Kafka: forgetting it is all that is left.
            with contextlib.suppress(TopicNotFoundError):
                admin.delete_topic(topic.name)
            _wait_until_gone(admin, topic.name)
        record_event(
            actor=actor,
            action="topic.delete",
            target=topic,
            organization=cluster.organization,
            details={"cluster": str(cluster.id)},
        )
        topic.delete()


def _wait_until_gone(admin: KafkaAdmin, name: str) -> None:
    deadline = time.monotonic() + DELETE_SETTLE_SECONDS
    while name in admin.describe_topics([name]) and time.monotonic() < deadline:
        time.sleep(0.2)


# -- drift -----------------------------------------------------------------------------------------------


def check_drift(*, cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    """Compare every managed topic with Kafka, record what differs, and under the revert policy undo
    what can be undone. Returns topic name -> the differences found (before any revert)."""
    managed = {topic.name: topic for topic in Topic.objects.filter(cluster=cluster)}
    if not managed:
        return {}
    with cluster_admin(cluster) as admin:
        seen = rules.observe_all(admin, managed)
        found = {
            name: rules.differences(topic, seen.topics.get(name), seen.configs.get(name))
            for name, topic in managed.items()
        }
        now = timezone.now()
        for name, topic in managed.items():
            drift = found[name]
            if drift and not topic.drift:
                logger.warning("cluster=%s topic=%s drift=%s", cluster.id, name, drift)
                record_event(
                    actor=DRIFT_CHECK,
                    action="topic.drift",
                    target=topic,
                    organization=cluster.organization,
                    details={"cluster": str(cluster.id), "drift": drift},
                )
            if drift and cluster.drift_policy == DriftPolicy.REVERT:
                drift = _revert(admin, cluster, topic, drift)
            Topic.objects.filter(pk=topic.pk).update(drift=drift, drift_checked_at=now)
    return found


def _revert(admin: KafkaAdmin, cluster: Cluster, topic: Topic, drift: list[dict[str, Any]]) -> list[dict]:
    """Undo the revertible differences; returns what is left (those Kafka cannot undo, or a failure)."""
    fields = {d["field"] for d in drift if d["revertible"]}
    try:
        if "topic" in fields:
            state = admin.describe_cluster()
            replicas = rules.new_topic_replicas(
                rules.placement_brokers(cluster, state),
                topic.name,
                topic.partitions,
                topic.replication_factor,
            )
            admin.create_topic_assigned(topic.name, replicas, topic.config)
        else:
            changes = {
                d["field"].removeprefix("config."): d["desired"]
                for d in drift
                if d["field"].startswith("config.")
            }
            admin.alter_topic_config(topic.name, changes)
            if "partitions" in fields:
                state = admin.describe_cluster()
                current = next(t for t in state.topics if t.name == topic.name)
                replicas = rules.added_partition_replicas(
                    rules.placement_brokers(cluster, state),
                    current,
                    topic.partitions,
                    topic.replication_factor,
                )
                admin.create_partitions(topic.name, topic.partitions, replicas)
    except (KafkaAdminError, DataPlaneInvalid, StopIteration) as exc:
        logger.warning("cluster=%s topic=%s drift not reverted: %s", cluster.id, topic.name, exc)
        return [{**d, "revert_error": str(exc)} if d["revertible"] else d for d in drift]
    record_event(
        actor=DRIFT_CHECK,
        action="topic.drift_reverted",
        target=topic,
        organization=cluster.organization,
        details={"cluster": str(cluster.id), "reverted": [d for d in drift if d["revertible"]]},
    )
    return [d for d in drift if not d["revertible"]]
