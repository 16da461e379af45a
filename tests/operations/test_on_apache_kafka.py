"""Cluster workflows on real Apache Kafka, driven as a user drives them: through the REST API, run by a
real Celery worker, against real multi-broker KRaft clusters with a producer at acks=all running through
them, every acknowledged message read back afterwards. What is checked is asked of Kafka itself (Admin
API, the brokers' own configs), never of the control plane's records.

One three-rack cluster carries a sequence of operations, each a function below, in the order a cluster
lives through them: provisioned with 3 brokers on Kafka 4.3, scaled out to 6, a dead broker replaced
without its disk, scaled in to 3 again (its worker killed in the middle), upgraded to 4.4. A rolling
restart while a partition is under-replicated is in test_restart_on_apache_kafka.py (a module of its
own, so that `make test` runs the two side by side).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer

from provisioning.kafka_admin.base import ClusterState
from tests.support.apache_kafka import AckedTraffic, wait_for
from tests.support.operated_kafka import (
    ControlPlane,
    KafkaReader,
    OperatedCluster,
    Watch,
    describe_operation,
    log_messages,
    out_of_sync,
    release_feature_levels,
    running_versions,
    settled,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

TOPIC = "orders"
PARTITIONS = 6
RACKS = ("a", "b", "c")
UPGRADE_TARGET = "4.4.0"
BULK_TOPIC = "bulk"
BULK_BYTES_PER_PARTITION = 6 * 2**20
# Slow enough that a reassignment is still copying when the test looks (or kills its worker).
SLOW_THROTTLE_BYTES_PER_SECOND = 2**20


def fill(bootstrap_servers: str, topic: str, partitions: int, size: int) -> None:
    """Write `size` bytes into each partition."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "linger.ms": 20})
    value = b"x" * 100_000
    for partition in range(partitions):
        for _ in range(size // len(value)):
            producer.produce(topic, value=value, partition=partition)
            producer.poll(0)
    assert producer.flush(120) == 0


def racks_of(state: ClusterState) -> dict[int, str | None]:
    return {b.node_id: b.rack for b in state.brokers}


def planned_racks(cluster: OperatedCluster) -> dict[int, str]:
    """Where the API says the brokers are: what Kafka must report once an operation is done."""
    return {b["node_id"]: b["rack"] for b in cluster.info()["broker_nodes"]}


def replicas_per_broker(state: ClusterState) -> Counter[int]:
    return Counter(r for replicas in state.assignment().values() for r in replicas)


def assert_rack_aware(state: ClusterState) -> None:
    racks = racks_of(state)
    for (topic, partition), replicas in state.assignment().items():
        assert sorted(racks.get(r) or "?" for r in replicas) == list(RACKS), (topic, partition, replicas)


def moves_and_throttles(kafka: KafkaReader) -> tuple[dict, tuple[dict, dict]]:
    return kafka.reassignments(), kafka.throttles()


def test_a_three_rack_cluster_scaled_healed_and_upgraded(control_plane: ControlPlane, settings: Any) -> None:
    cluster = control_plane.create_cluster(
        name="orders",
        kafka_version="4.3.2",
        brokers=3,
        racks=list(RACKS),
        replication_factor=3,
        min_insync_replicas=2,
    )
    cluster.topic(TOPIC, partitions=PARTITIONS)
    # Data enough, and a throttle low enough, that each reassignment below is seen while it copies.
    cluster.topic(BULK_TOPIC, partitions=3)
    fill(cluster.bootstrap_servers, BULK_TOPIC, 3, BULK_BYTES_PER_PARTITION)
    settings.OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND = SLOW_THROTTLE_BYTES_PER_SECOND

    provisioned_across_three_racks(cluster)
    scale_out_to_six(cluster)
    replace_a_dead_broker_without_its_disk(cluster)
    scale_in_to_three_while_its_worker_is_killed(cluster, control_plane)
    upgrade_rolls_then_finalizes(cluster, UPGRADE_TARGET)


def provisioned_across_three_racks(cluster: OperatedCluster) -> None:
    """Each partition of a replication-factor-3 topic has one replica in each rack."""
    state = cluster.state()
    assert racks_of(state) == planned_racks(cluster)
    assert sorted(racks_of(state).values()) == list(RACKS)
    assert_rack_aware(state)
    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(200)
    assert traffic.missing() == set()


def scale_out_to_six(cluster: OperatedCluster) -> None:
    """Real reassignments in the plan's batches, under a replication throttle that is gone afterwards;
    the new brokers hold replicas, balanced as the operation reported; nothing acknowledged is lost."""
    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(100)
        with Watch(cluster, moves_and_throttles) as watch:
            operation = cluster.operate("scale", {"brokers": 6})
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set()

    assert any(moving for moving, _ in watch.samples), f"no reassignment seen in flight: {watch.errors[:3]}"
    assert any(rates and lists for _, (rates, lists) in watch.samples), "no throttle seen while moving"
    batches = [m for m in log_messages(operation, "execute_moves") if re.match(r"batch \d+/\d+", m)]
    assert batches, describe_operation(operation)
    assert settled(cluster.reader().throttles, ({}, {})) == ({}, {})

    state = cluster.state()
    assert racks_of(state) == planned_racks(cluster)
    assert Counter(racks_of(state).values()) == dict.fromkeys(RACKS, 2)
    counts = replicas_per_broker(state)
    assert all(counts[n] > 0 for n in operation["params"]["add_node_ids"]), counts
    verdict = next(
        m for m in log_messages(operation, "verify_balance") if m.startswith("replicas per broker")
    )
    low, high = map(int, re.findall(r"replicas per broker (\d+) to (\d+)", verdict)[0])
    assert (min(counts.values()), max(counts.values())) == (low, high), verdict
    assert high - low <= 1, counts
    assert_rack_aware(state)


def replace_a_dead_broker_without_its_disk(cluster: OperatedCluster) -> None:
    """A broker killed for good is replaced without its disk: a new broker joins its rack, takes over
    every replica the dead one held, and the dead one is gone."""
    before = cluster.state()
    racks = racks_of(before)
    # The KRaft controllers (the first broker of each rack) stay for the cluster's life: refused
    # before anything moves, rather than failing once every replica has.
    refused = cluster.refusal("replace-broker", {"node_id": min(racks), "keep_disk": False})
    assert "KRaft controller" in refused["keep_disk"][0], refused
    assert "keep_disk: true" in refused["keep_disk"][0], refused
    dead = max(racks)
    held = {tp for tp, replicas in before.assignment().items() if dead in replicas}
    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(100)
        cluster.kafka().kill(dead)
        operation = cluster.operate("replace-broker", {"node_id": dead, "keep_disk": False})
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set()

    new = operation["params"]["replacement_node_id"]
    after = cluster.state()
    assert racks_of(after)[new] == racks[dead]
    assert dead not in racks_of(after)
    moved = {tp for tp, replicas in after.assignment().items() if new in replicas}
    assert moved == held
    assert not any(dead in replicas for replicas in after.assignment().values())
    assert all(len(p.isr) == 3 for t in after.topics for p in t.partitions)
    assert_rack_aware(after)
    assert settled(cluster.reader().throttles, ({}, {})) == ({}, {})
    assert sorted(planned_racks(cluster)) == sorted(racks_of(after))


def scale_in_look(kafka: KafkaReader) -> tuple[ClusterState, dict]:
    return kafka.state(), kafka.reassignments()


def scale_in_to_three_while_its_worker_is_killed(cluster: OperatedCluster, plane: ControlPlane) -> None:
    """Scale-in drains the brokers it removes before stopping them and never leaves a partition with
    fewer in-sync replicas than its replication factor. Its worker is SIGKILLed while replicas are
    copying: another worker takes over, follows the same plan (no partition is sent to a second
    target) and lifts the throttle at the end."""
    first_worker = plane.workers[0]
    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic, Watch(cluster, scale_in_look) as watch:
        operation = cluster.request("scale", {"brokers": 3})
        wait_for(lambda: watch.samples and watch.samples[-1][1], 120, what="a reassignment in flight")
        first_worker.kill()
        plane.start_worker()
        wait_for(plane.reap, 30, what="the operation to be handed to another worker")
        operation = cluster.wait(operation["id"], timeout=300)
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set()

    removed = set(operation["params"]["remove_node_ids"])
    for state, _ in watch.samples:
        registered = {b.node_id for b in state.brokers}
        for (topic, partition), replicas in state.assignment().items():
            assert not (set(replicas) & removed - registered), f"{topic}[{partition}] on a stopped broker"
        for topic in state.topics:
            for p in topic.partitions:
                assert len(p.isr) >= 3, f"{p.topic}[{p.partition}] in sync on {p.isr} only"
    targets: dict[tuple[str, int], set[tuple[int, ...]]] = {}
    for _, moving in watch.samples:
        for tp, progress in moving.items():
            target = tuple(r for r in progress.replicas if r not in progress.removing)
            targets.setdefault(tp, set()).add(target)
    # The plan was made once; a batch the dead worker may have submitted without recording it is
    # submitted again with the same targets, which Kafka keeps as they are.
    assert targets and all(len(found) == 1 for found in targets.values()), targets
    assert next(s for s in operation["steps"] if s["name"] == "plan_moves")["attempts"] == 1

    state = cluster.state()
    assert not removed & set(racks_of(state))
    assert Counter(racks_of(state).values()) == dict.fromkeys(RACKS, 1)
    assert not any(set(replicas) & removed for replicas in state.assignment().values())
    assert_rack_aware(state)
    assert settled(cluster.reader().throttles, ({}, {})) == ({}, {})


def upgrade_rolls_then_finalizes(cluster: OperatedCluster, version: str) -> None:
    """Brokers move to the new release one at a time, each back in sync before the next; the feature
    levels stay where the old release put them until every broker runs the new one, then are raised
    as a step of their own: metadata.version to the level Kafka's own tool maps to the release,
    kraft.version (the quorum's own format) left where it was."""
    release = ".".join(version.split(".")[:2])
    wanted = release_feature_levels(cluster.plane.distributions(version).home, release)
    reader = cluster.reader()
    before = reader.finalized_features()
    assert before["metadata.version"] < wanted["metadata.version"]

    def look(kafka: KafkaReader) -> tuple[dict[int, str | None], dict[str, int], set[int]]:
        return running_versions(cluster.broker_pids()), kafka.finalized_features(), out_of_sync(kafka.state())

    with AckedTraffic(cluster.bootstrap_servers, TOPIC) as traffic:
        traffic.wait_for_acks(100)
        with Watch(cluster, look) as watch:
            operation = cluster.operate("upgrade", {"kafka_version": version}, timeout=600)
        traffic.wait_for_acks(len(traffic.acked) + 100)
    assert traffic.missing() == set()

    assert [s["name"] for s in operation["steps"]][-1] == "finalize_features"
    assert max(len(out) for *_, out in watch.samples) <= 1, [out for *_, out in watch.samples if len(out) > 1]
    rolling = [features for versions, features, _ in watch.samples if set(versions.values()) != {version}]
    assert rolling, "the watch never saw a broker on the old release"
    assert {features["metadata.version"] for features in rolling} == {before["metadata.version"]}
    assert set(running_versions(cluster.broker_pids()).values()) == {version}
    after = reader.finalized_features()
    assert after["metadata.version"] == wanted["metadata.version"]
    assert after.get("kraft.version") == before.get("kraft.version")
    assert cluster.info()["kafka_version"] == version
