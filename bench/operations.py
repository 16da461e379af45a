"""Operations on a large simulated cluster: scale-out 30 → 45 brokers, scale-in back, a broker replaced.

    .venv/bin/python -m bench.operations                    # 30 brokers, 3 racks, 3000 partitions
    .venv/bin/python -m bench.operations --partitions 6000 --megabytes 50

Runs the product's workflows (`provisioning.workflows`: plan, throttle, batches through
AlterPartitionReassignments / ListPartitionReassignments, verification) step by step against the
simulated cluster stand-in of the tests (no multi-broker Kafka can run here), polling as the engine
would and letting simulated time pass between polls. The operations engine's database writes (a few
per poll) are left out: this measures the workflows and the placement engine.

Reported per operation: wall-clock time to plan and to execute (every poll, including the simulator's
own bookkeeping), replica moves against the lower bound for a balanced result, batches, polls, the
simulated time the data took to copy under the replication throttle, and the balance at the end.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bench.report import write_report
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.placement import place_brokers
from provisioning.workflows.base import StepContext, Workflow
from provisioning.workflows.replacement import REPLACE_BROKER
from provisioning.workflows.scaling import SCALE
from tests.support.simulated_backend import SIMULATION, SimulatedBackend, StandInKafkaCluster, simulated_admin

RACKS = ["rack-0", "rack-1", "rack-2"]
THROTTLE = 50 * 2**20
POLL_SECONDS = 5.0


def spec_of(cluster_id: str, layout: dict[int, str]) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster_id,
        name="bench",
        kafka_version="4.3.2",
        brokers=tuple(BrokerSpec(n, r) for n, r in sorted(layout.items())),
        replication_factor=3,
        min_insync_replicas=2,
        node_size=NodeSize(cpu=4, memory_mb=16384, disk_gb=1000),
    )


def run(
    workflow: Workflow, spec: ClusterSpec, params: dict[str, Any], kafka: StandInKafkaCluster
) -> dict[str, Any]:
    """Every step of the workflow in order, polling like the engine; returns timings and counts."""
    backend = SimulatedBackend(SIMULATION)
    state: dict[str, Any] = {}
    timings: dict[str, float] = {}
    polls = 0
    started_sim = kafka.now
    for step in workflow.steps_for(params):
        began = time.perf_counter()
        while True:
            ctx = StepContext(
                spec=spec,
                params=params,
                state=state,
                backend=backend,
                admin_factory=simulated_admin,
                log=lambda message: None,
                started_at=datetime.now(UTC),
                attempt=1,
                bootstrap_servers=f"simulated://{spec.cluster_id}",
            )
            outcome = step.run(ctx)
            state = {**state, **outcome.output}
            if outcome.removed_brokers:
                gone = set(outcome.removed_brokers)
                spec = replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id not in gone))
            if outcome.done:
                break
            polls += 1
            SIMULATION.advance(outcome.poll_after_seconds)
        timings[step.name] = time.perf_counter() - began
    plan = state["plan"]
    counts = Counter({b.node_id: 0 for b in spec.brokers})
    counts.update(r for t in kafka.describe_cluster().topics for p in t.partitions for r in p.replicas)
    return {
        "plan_seconds": round(timings["plan_moves"], 3),
        "execute_seconds": round(timings["execute_moves"], 3),
        "total_seconds": round(sum(timings.values()), 3),
        "moves": plan["moves"],
        "batches": len(plan["batches"]),
        "polls": polls,
        "simulated_copy_seconds": round(kafka.now - started_sim, 1),
        "replicas_per_broker": [min(counts.values()), max(counts.values())],
        "throttle_left": kafka.throttles,
    }


def lower_bound(counts: Counter[int], brokers: list[int]) -> int:
    """Fewest replica moves to counts within one of each other: every broker below the floor of the
    mean must receive up to it, every one above the ceiling must shed down to it."""
    total = sum(counts.values())
    floor, ceil = total // len(brokers), -(-total // len(brokers))
    short = sum(max(0, floor - counts.get(b, 0)) for b in brokers)
    extra = sum(max(0, counts.get(b, 0) - ceil) for b in brokers)
    return max(short, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", type=int, default=30)
    parser.add_argument("--to", type=int, default=45)
    parser.add_argument("--partitions", type=int, default=3000)
    parser.add_argument("--megabytes", type=int, default=100, help="data per partition")
    args = parser.parse_args()

    SIMULATION.reset()
    SIMULATION.registration_delay = 10.0
    cluster_id = "00000000-0000-4000-8000-000000000045"
    layout = place_brokers(RACKS, args.brokers)
    kafka = StandInKafkaCluster(list(layout.items()), cluster_id=cluster_id, seed=7)
    SIMULATION.clusters[cluster_id] = kafka
    topics = max(1, args.partitions // 30)
    records = args.megabytes * 1024  # 1 KiB records
    for topic in range(topics):
        kafka.create_topic(f"topic-{topic}", args.partitions // topics, 3, {"min.insync.replicas": "2"})
        for partition in range(args.partitions // topics):
            kafka.produce(f"topic-{topic}", partition, records)
    common = {"throttle_bytes_per_second": THROTTLE, "poll_seconds": POLL_SECONDS}
    results: dict[str, Any] = {
        "cluster": {
            "brokers": args.brokers,
            "racks": len(RACKS),
            "partitions": args.partitions,
            "replication_factor": 3,
            "megabytes_per_partition": args.megabytes,
            "throttle_mib_per_second": THROTTLE / 2**20,
        }
    }

    grown = place_brokers(RACKS, args.to, layout)
    before = Counter(r for t in kafka.describe_cluster().topics for p in t.partitions for r in p.replicas)
    out = run(
        SCALE,
        spec_of(cluster_id, grown),
        {"brokers": args.to, "add_node_ids": sorted(set(grown) - set(layout)), **common},
        kafka,
    )
    out["lower_bound_moves"] = lower_bound(before, sorted(grown))
    results[f"scale_out_{args.brokers}_to_{args.to}"] = out

    before = Counter(r for t in kafka.describe_cluster().topics for p in t.partitions for r in p.replicas)
    removed = sorted(set(grown) - set(layout))
    out = run(
        SCALE,
        spec_of(cluster_id, grown),
        {"brokers": args.brokers, "remove_node_ids": removed, **common},
        kafka,
    )
    out["lower_bound_moves"] = sum(before[n] for n in removed)
    results[f"scale_in_{args.to}_to_{args.brokers}"] = out

    dead = 7
    held = kafka.replicas_on(dead)
    kafka.fail_broker(dead)
    replacement = max(layout) + 1
    out = run(
        REPLACE_BROKER,
        spec_of(cluster_id, {**layout, replacement: layout[dead]}),
        {"node_id": dead, "keep_disk": False, "replacement_node_id": replacement, **common},
        kafka,
    )
    out["lower_bound_moves"] = held
    results["replace_broker_without_disk"] = out

    rows = [
        {
            "operation": name,
            "plan_s": out["plan_seconds"],
            "execute_s": out["execute_seconds"],
            "moves": out["moves"],
            "min_moves": out["lower_bound_moves"],
            "moves_ratio": round(out["moves"] / out["lower_bound_moves"], 3)
            if out["lower_bound_moves"]
            else None,
            "batches": out["batches"],
            "simulated_copy_s": out["simulated_copy_seconds"],
            "replicas_per_broker": "-".join(str(n) for n in out["replicas_per_broker"]),
            "throttle_left": bool(out["throttle_left"]),
        }
        for name, out in results.items()
        if name != "cluster"
    ]
    write_report("operations", rows, meta=results["cluster"])


if __name__ == "__main__":
    main()
