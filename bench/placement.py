"""The placement engine against Kafka's own rack-aware assignment, side by side on the same inputs.

    .venv/bin/python -m bench.placement              # the four scenarios, median of 3 runs each
    .venv/bin/python -m bench.placement --runs 1

Scenarios (3 racks, replication factor 3):
  (a) create:       100,000 partitions on 300 brokers
  (b) scale-out:    30 -> 45 brokers, 30,000 partitions placed
  (c) decommission: 3 of 48 brokers (one per rack), 30,000 partitions
  (d) replace:      1 dead broker of 48 by a new one in its rack, 30,000 partitions

The baseline re-implements, from its documented behaviour, the algorithm Kafka uses at topic
creation and in `kafka-reassign-partitions --generate` (AdminUtils.assignReplicasToBrokersRackAware):
brokers in a rack-alternating list, a random start index and replica shift (seeded here), the first
replica round-robin over the list, followers at an offset that grows every full round and skips
brokers whose rack already has a replica until every rack has one. For (b)-(d) it recomputes every
topic from scratch on the target brokers, as `--generate` does. Starting assignments are balanced
(30 topics of 1,000 partitions), the state the engine keeps a cluster in.

Reported: planning time (median), max-min replicas and preferred leaders per broker, partitions
not spread over distinct racks, replica moves and their ratio to the theoretical minimum (scale-out:
what the new brokers must receive to reach the floor of the new average; decommission and
replacement: the replicas on the removed or dead brokers), and preferred-leader changes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.report import write_report
from provisioning.placement import assign_replicas, assignment_stats, place_brokers, plan_reassignment

RACKS = ["rack-a", "rack-b", "rack-c"]
RF = 3
TOPICS = 30
PARTITIONS_PER_TOPIC = 1000
SEED = 20240601

Assignment = dict[tuple[str, int], list[int]]
Brokers = Mapping[int, str | None]


# Kafka's algorithm ---------------------------------------------------------------------------------


def kafka_rack_alternated(brokers: Brokers) -> list[int]:
    """Racks sorted by name, ids sorted within each; take one broker from each rack in turn."""
    by_rack: dict[str, list[int]] = {}
    for broker_id, rack in brokers.items():
        by_rack.setdefault(str(rack), []).append(broker_id)
    columns = [sorted(by_rack[rack]) for rack in sorted(by_rack)]
    result = []
    for depth in range(max(len(c) for c in columns)):
        result.extend(column[depth] for column in columns if depth < len(column))
    return result


def _replica_index(first: int, shift: int, follower: int, brokers: int) -> int:
    return (first + 1 + (shift + follower) % (brokers - 1)) % brokers


def kafka_assign(
    brokers: Brokers, partitions: int, rf: int, rng: random.Random, *, fixed_start: int | None = None
) -> list[list[int]]:
    """Kafka's rack-aware assignment for one topic, with its random choices drawn from `rng`.

    `fixed_start`, like Kafka's fixedStartIndex, sets both the start index and the initial shift.
    """
    order = kafka_rack_alternated(brokers)
    n = len(order)
    racks = len(set(brokers.values()))
    start = rng.randrange(n) if fixed_start is None else fixed_start
    shift = rng.randrange(n) if fixed_start is None else fixed_start
    result = []
    for partition in range(partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start) % n
        leader = order[first]
        replicas = [leader]
        used_racks = {brokers[leader]}
        used = {leader}
        step = 0
        for _ in range(rf - 1):
            while True:
                candidate = order[_replica_index(first, shift * racks, step, n)]
                step += 1
                rack = brokers[candidate]
                if (rack not in used_racks or len(used_racks) == racks) and (
                    candidate not in used or len(used) == n
                ):
                    replicas.append(candidate)
                    used_racks.add(rack)
                    used.add(candidate)
                    break
        result.append(replicas)
    return result


def kafka_generate(current: Assignment, brokers: Brokers, rng: random.Random) -> Assignment:
    """`kafka-reassign-partitions --generate`: every topic assigned afresh on the target brokers."""
    topics: dict[str, list[int]] = {}
    for topic, partition in current:
        topics.setdefault(topic, []).append(partition)
    target: Assignment = {}
    for topic in sorted(topics):
        partitions = sorted(topics[topic])
        rf = len(current[(topic, partitions[0])])
        for partition, replicas in zip(
            partitions, kafka_assign(brokers, len(partitions), rf, rng), strict=True
        ):
            target[(topic, partition)] = replicas
    return target


# Scenarios -----------------------------------------------------------------------------------------


def balanced_cluster(brokers: Brokers) -> Assignment:
    current: Assignment = {}
    for topic in range(TOPICS):
        replicas = assign_replicas(brokers, PARTITIONS_PER_TOPIC, RF, start=topic * PARTITIONS_PER_TOPIC)
        for partition, reps in enumerate(replicas):
            current[(f"topic-{topic:02d}", partition)] = reps
    return current


def timed(call: Callable[[], Any], runs: int) -> tuple[Any, float]:
    """The result of the last run and the median wall-clock time over `runs` runs."""
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def measure(
    scenario: str,
    engine: str,
    seconds: float,
    target: Assignment | list[list[int]],
    brokers: Brokers,
    current: Assignment | None,
    minimum: int | None,
) -> dict[str, object]:
    stats = assignment_stats(target, brokers)
    row: dict[str, object] = {
        "scenario": scenario,
        "engine": engine,
        "plan_s": round(seconds, 3),
        "replica_spread": stats.replica_spread,
        "leader_spread": stats.leader_spread,
        "rack_violations": stats.rack_violations,
        "moves": None,
        "min_moves": minimum,
        "moves_ratio": None,
        "leader_changes": None,
    }
    if current is not None and isinstance(target, dict):
        moves = sum(len(set(target[p]) - set(r)) for p, r in current.items())
        row["moves"] = moves
        row["moves_ratio"] = round(moves / minimum, 3) if minimum else None
        row["leader_changes"] = sum(1 for p, r in current.items() if r[0] != target[p][0])
    return row


def run(runs: int) -> list[dict[str, object]]:
    rows = []

    brokers = place_brokers(RACKS, 300)
    partitions = 100_000
    ours, seconds = timed(lambda: assign_replicas(brokers, partitions, RF), runs)
    rows.append(measure("a create", "engine", seconds, ours, brokers, None, None))
    theirs, seconds = timed(lambda: kafka_assign(brokers, partitions, RF, random.Random(SEED)), runs)
    rows.append(measure("a create", "kafka", seconds, theirs, brokers, None, None))

    old = place_brokers(RACKS, 30)
    grown = place_brokers(RACKS, 45, old)
    current = balanced_cluster(old)
    total = sum(len(r) for r in current.values())
    minimum = (len(grown) - len(old)) * (total // len(grown))
    rows += compare("b scale-out", current, grown, set(), minimum, runs)

    brokers = place_brokers(RACKS, 48)
    current = balanced_cluster(brokers)
    remove = {45, 46, 47}  # the newest broker of each rack
    minimum = sum(b in remove for r in current.values() for b in r)
    rows += compare("c decommission", current, brokers, remove, minimum, runs)

    dead = 7
    replaced = {b: r for b, r in brokers.items() if b != dead}
    replaced[max(brokers) + 1] = brokers[dead]
    minimum = sum(dead in r for r in current.values())
    rows += compare("d replace", current, replaced, set(), minimum, runs)
    return rows


def compare(
    scenario: str, current: Assignment, brokers: Brokers, remove: set[int], minimum: int, runs: int
) -> list[dict[str, object]]:
    targets = {b: r for b, r in brokers.items() if b not in remove}
    plan, seconds = timed(lambda: plan_reassignment(current, brokers, remove=remove), runs)
    ours = measure(scenario, "engine", seconds, dict(plan.target), targets, current, minimum)
    theirs, seconds = timed(lambda: kafka_generate(current, targets, random.Random(SEED)), runs)
    return [ours, measure(scenario, "kafka", seconds, theirs, targets, current, minimum)]


TARGETS = {
    "a create": {"plan_s": 2.0},
    "b scale-out": {"plan_s": 5.0, "moves_ratio": 1.05},
    "c decommission": {"plan_s": 5.0, "moves_ratio": 1.0},
    "d replace": {"plan_s": 5.0, "moves_ratio": 1.0},
}


def missed_targets(rows: list[dict[str, object]]) -> list[str]:
    """Targets the engine's rows miss: no rack violations, spreads at most 1, moves and time limits."""
    missed = []
    for row in rows:
        if row["engine"] != "engine":
            continue
        limits: dict[str, float] = {"rack_violations": 0, "replica_spread": 1, "leader_spread": 1}
        limits.update(TARGETS[str(row["scenario"])])
        for key, limit in limits.items():
            value = row[key]
            if isinstance(value, int | float) and value > limit:
                missed.append(f"{row['scenario']}: {key} {value} > {limit}")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median time is kept")
    args = parser.parse_args(argv)
    rows = run(args.runs)
    missed = missed_targets(rows)
    meta = {
        "racks": len(RACKS),
        "replication_factor": RF,
        "runs": args.runs,
        "seed": SEED,
        "targets": TARGETS,
        "missed_targets": missed,
    }
    path = write_report("placement", rows, meta=meta)
    print("targets: " + ("all met" if not missed else "; ".join(missed)))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
