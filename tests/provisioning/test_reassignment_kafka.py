"""Moving replicas on real Apache Kafka: the scale and replacement workflows' steps against a real
cluster, checked through Kafka's own answers (topic and broker configurations, metadata)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

from monitoring.conditions import evaluate
from monitoring.health import assess_cluster
from provisioning.backends.base import BrokerSpec
from provisioning.kafka_admin.base import (
    FOLLOWER_THROTTLE_RATE,
    FOLLOWER_THROTTLED_REPLICAS,
    LEADER_THROTTLE_RATE,
    LEADER_THROTTLED_REPLICAS,
)
from provisioning.workflows.replacement import REPLACE_BROKER
from provisioning.workflows.safety import restart_blockers
from provisioning.workflows.scaling import SCALE
from tests.support.apache_kafka import AckedTraffic, KafkaTestCluster
from tests.support.workflow_runner import WorkflowRun, run_workflow

pytestmark = [
    pytest.mark.slow,
    # A scale-out and a replacement on real brokers: several minutes on a busy machine.
    pytest.mark.timeout(900),
]

THROTTLE_LISTS = (LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS)
THROTTLE_RATES = (LEADER_THROTTLE_RATE, FOLLOWER_THROTTLE_RATE)
# Slow enough that a move of the data below takes several polls, so it can be watched in flight.
SLOW_THROTTLE = 64 * 1024


def fill(cluster: KafkaTestCluster, topic: str, *, megabytes: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "linger.ms": 20})
    payload = b"x" * 4096
    for _ in range(megabytes * 256):
        producer.produce(topic, payload)
        producer.poll(0)
    assert producer.flush(120) == 0


def topic_configs(cluster: KafkaTestCluster, topic: str) -> dict[str, str]:
    """The topic's configuration set on the topic itself (not defaults)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return {
        name: entry.value
        for name, entry in future.result(timeout=30).items()
        if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }


def broker_rates(cluster: KafkaTestCluster, node_id: int) -> dict[str, str]:
    """The replication throttle rates set on one broker (its dynamic configuration)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.BROKER, str(node_id))]).values()
    return {
        name: entry.value
        for name, entry in future.result(timeout=30).items()
        if name in THROTTLE_RATES and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    }


def set_topic_config(cluster: KafkaTestCluster, topic: str, values: dict[str, str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in values.items()
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def moved_topics(run: WorkflowRun) -> set[str]:
    return {topic for batch in run.state["plan"]["batches"] for topic, *_ in batch}


def test_moves_are_throttled_and_cleaned_up_as_kafkas_tool_does_and_a_replaced_broker_leaves_no_trace(
    new_kafka_cluster: Callable[..., KafkaTestCluster],
) -> None:
    """A scale-out 3 -> 4 under a slow throttle, with someone else's throttle settings around: moving
    partitions are not under-replicated while they copy, the throttle is set and removed as
    `kafka-reassign-partitions` does, and leaders follow the plan. Then the new broker dies and is
    replaced without its disk."""
    # Without automatic leader rebalancing, leaders move to the replicas the plan prefers only if the
    # workflow elects them.
    cluster = new_kafka_cluster(brokers=3, config=(("auto.leader.rebalance.enable", "false"),))
    # Most partitions hold data, so what the plan moves takes a while to copy; producers write to
    # "audit" throughout.
    for topic in ("orders", "ledger"):
        fill(cluster, cluster.topic(topic, partitions=6), megabytes=2)
    cluster.topic("audit", partitions=3)
    spec = cluster.spec
    scaled_out = replace(spec, brokers=(*spec.brokers, BrokerSpec(4, "a")))
    seen_in_flight: dict[str, object] = {}

    def before_step(step: str, run: WorkflowRun) -> None:
        if step != "set_throttle":
            return
        # Someone else's throttle settings: a `*` on a topic the plan moves, and entries on a topic
        # it does not (created after planning).
        moving = sorted(moved_topics(run))
        assert moving, "the scale-out moves replicas"
        seen_in_flight["wildcard_topic"] = moving[0]
        set_topic_config(cluster, moving[0], {LEADER_THROTTLED_REPLICAS: "*"})
        cluster.topic("bystander", partitions=1)
        set_topic_config(
            cluster, "bystander", {LEADER_THROTTLED_REPLICAS: "0:1", FOLLOWER_THROTTLED_REPLICAS: "0:2"}
        )

    def between_polls(step: str, run: WorkflowRun) -> None:
        if step != "execute_moves":
            return
        if "lists" not in seen_in_flight:
            topic = str(seen_in_flight["wildcard_topic"])
            seen_in_flight["lists"] = {
                name: topic_configs(cluster, topic).get(name) for name in THROTTLE_LISTS
            }
            seen_in_flight["rates"] = broker_rates(cluster, 4)
        # A partition whose new replica is still copying is not under-replicated, to health,
        # alerting and restart safety alike (Kafka's own count leaves adding replicas out). Its other
        # replicas may fall behind for real meanwhile (the throttle slows their catch-up too, as
        # Kafka's tool sets it): such partitions are left out of the observation.
        state = cluster.admin().describe_cluster()
        copying = {
            f"{p.topic}[{p.partition}]"
            for t in state.topics
            for p in t.partitions
            if set(p.adding) - set(p.isr) and not p.out_of_sync
        }
        # What each poll saw, for the failure message should no poll see a replica copying.
        polls = seen_in_flight.setdefault("polls", [])
        assert isinstance(polls, list)
        polls.append(
            {
                "adding": sum(bool(p.adding) for t in state.topics for p in t.partitions),
                "adding_not_in_isr": sum(
                    bool(set(p.adding) - set(p.isr)) for t in state.topics for p in t.partitions
                ),
                "out_of_sync": sum(bool(p.out_of_sync) for t in state.topics for p in t.partitions),
            }
        )
        if copying:
            report = assess_cluster(state, [1, 2, 3, 4])
            reported = {f"{t}[{n}]" for f in report.findings for t, n in f.partitions}
            said = " ".join(c.summary for c in evaluate("c", health_report=report))
            said += " ".join(restart_blockers(state, 1))
            seen_in_flight.setdefault("copying", []).append(
                {
                    "copying": sorted(copying),
                    "reported": sorted(copying & reported),
                    "mentioned": sorted(name for name in copying if name in said),
                }
            )

    with AckedTraffic(cluster.bootstrap_servers, "audit") as traffic:
        traffic.wait_for_acks(50)
        run = run_workflow(
            SCALE,
            spec=scaled_out,
            params={
                "brokers": 4,
                "from_brokers": 3,
                "add_node_ids": [4],
                "throttle_bytes_per_second": SLOW_THROTTLE,
                "poll_seconds": 1,
            },
            backend=cluster.backend,
            bootstrap_servers=cluster.bootstrap_servers,
            before_step=before_step,
            between_polls=between_polls,
        )
    assert traffic.missing() == set()

    observed = seen_in_flight.get("copying")
    assert isinstance(observed, list) and observed, (
        f"a new replica was seen copying; the polls of the moves saw {seen_in_flight.get('polls')}"
    )
    # Only the partitions the snapshot shows copying are judged: Metadata and the reassignment list
    # are two requests, and a move that ends between them looks, for that instant, like one that is
    # not moving.
    wrong = [o for o in observed if o["reported"] or o["mentioned"]]
    assert not wrong, f"{wrong}"
    # Leadership follows the plan's preferred replicas although the cluster does not rebalance it.
    assert run.state["leaders_restored"] > 0
    final = cluster.admin().describe_cluster()
    assert all(p.leader == p.replicas[0] for t in final.topics for p in t.partitions)
    # While the moves ran: the moved topic's lists named moving replicas (the `*` replaced, as the
    # tool replaces it, rather than appended to, which Kafka refuses), and the new broker had rates.
    lists = seen_in_flight["lists"]
    assert isinstance(lists, dict) and lists[LEADER_THROTTLED_REPLICAS] not in (None, "*")
    assert seen_in_flight["rates"] == {
        LEADER_THROTTLE_RATE: str(SLOW_THROTTLE),
        FOLLOWER_THROTTLE_RATE: str(SLOW_THROTTLE),
    }
    # Afterwards: both lists gone from every moved topic, both rates from every broker, and the
    # settings on the topic this operation did not move are as they were.
    assert set(run.state["throttled_topics"]) == moved_topics(run)
    for topic in moved_topics(run):
        assert not set(topic_configs(cluster, topic)) & set(THROTTLE_LISTS), topic
    for node_id in (1, 2, 3, 4):
        assert broker_rates(cluster, node_id) == {}, node_id
    assert topic_configs(cluster, "bystander") == {
        LEADER_THROTTLED_REPLICAS: "0:1",
        FOLLOWER_THROTTLED_REPLICAS: "0:2",
    }

    # The new broker dies for good: replaced, without its disk, by a new broker in its rack. The old
    # one is unregistered, and no throttle setting naming it is left behind.
    cluster.kill(4)
    replaced = replace(run.spec, brokers=(*run.spec.brokers, BrokerSpec(5, "a")))
    replacement = run_workflow(
        REPLACE_BROKER,
        spec=replaced,
        params={"node_id": 4, "keep_disk": False, "replacement_node_id": 5, "poll_seconds": 1},
        backend=cluster.backend,
        bootstrap_servers=run.bootstrap_servers,
    )
    assert cluster.registrations() == {1: False, 2: False, 3: False, 5: False}
    assert sorted(b.node_id for b in replacement.spec.brokers) == [1, 2, 3, 5]
    final = cluster.admin().describe_cluster()
    assert all(4 not in p.replicas for t in final.topics for p in t.partitions)
    for topic in {t.name for t in final.topics} - {"bystander"}:
        assert not set(topic_configs(cluster, topic)) & set(THROTTLE_LISTS), topic
    for node_id in (1, 2, 3, 5):
        assert broker_rates(cluster, node_id) == {}, node_id
