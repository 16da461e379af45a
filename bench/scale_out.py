"""Scale-out 3 → 6 brokers of a real Apache Kafka cluster holding a few GB: ours against Kafka's own plan.

    .venv/bin/python -m bench.scale_out                       # 2 GiB of records, RF 3, 3 racks
    .venv/bin/python -m bench.scale_out --gib 4 --partitions 48

What it simulates: a user adding three brokers (one per rack) to a loaded three-rack cluster. Two
identical clusters are built one after the other on this machine (real KRaft brokers from
`provisioning.distribution`, run by the `local` backend), each filled with the same amount of
incompressible records by `kafka-producer-perf-test.sh`, then grown to six brokers:

- **control plane**: the product's `scale` workflow, every step in order as the operations engine
  runs them (plan the fewest moves to a balanced rack-aware layout, throttle, submit batch after batch
  through AlterPartitionReassignments, poll, lift the throttle, verify), driven in-process without
  Celery or the database, which add milliseconds per poll;
- **kafka --generate**: the reassignment `kafka-reassign-partitions.sh --generate` proposes for every
  topic onto all six brokers, executed with `--execute --throttle` at the same rate and followed with
  `--verify` until done (which also lifts its throttle), as an operator following Kafka's docs would.

Reported per plan: wall time of the move (from asking for it to the cluster reporting it done; for
Kafka's tool that includes its JVM starting for --execute and each --verify), the replicas moved, the
bytes they carried (partition sizes from `kafka-log-dirs.sh`), and the balance at the end (replicas and
leaders per broker, min-max). Both run under the same replication throttle, so the figure to compare is
the bytes each plan copies; wall time follows it once the data is large enough to dominate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import format_table, write_report
from provisioning import distribution
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize
from provisioning.backends.local import LocalBackend
from provisioning.distribution.java import find_java, no_java_message
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.workflows.base import StepContext
from provisioning.workflows.scaling import SCALE

RACKS = ("a", "b", "c")
RECORD_BYTES = 10_000
HEAP_MB = 512


def spec_of(cluster_id: str, brokers: int, version: str) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster_id,
        name="bench-scale-out",
        kafka_version=version,
        brokers=tuple(BrokerSpec(n, RACKS[n % len(RACKS)]) for n in range(brokers)),
        replication_factor=3,
        min_insync_replicas=2,
        node_size=NodeSize(cpu=1, memory_mb=2048, disk_gb=100),
    )


def tool(home: Path, name: str, *args: str, timeout: float = 3600) -> str:
    result = subprocess.run(
        [str(home / "bin" / name), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def fill(home: Path, servers: str, topics: list[str], total_bytes: int) -> float:
    """Write `total_bytes` of random records spread over the topics; returns MiB/s achieved."""
    records = max(1, total_bytes // RECORD_BYTES // len(topics))
    started = time.monotonic()
    for topic in topics:
        tool(
            home,
            "kafka-producer-perf-test.sh",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(RECORD_BYTES),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={servers}",
            "acks=1",
            "linger.ms=20",
            "batch.size=1048576",
        )
    return total_bytes / 2**20 / (time.monotonic() - started)


def partition_sizes(home: Path, servers: str) -> dict[tuple[str, int], int]:
    """Bytes of each partition (its largest replica) from DescribeLogDirs."""
    output = tool(home, "kafka-log-dirs.sh", "--bootstrap-server", servers, "--describe")
    document = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    sizes: dict[tuple[str, int], int] = {}
    for broker in document["brokers"]:
        for log_dir in broker["logDirs"]:
            for entry in log_dir["partitions"]:
                topic, _, number = entry["partition"].rpartition("-")
                key = (topic, int(number))
                sizes[key] = max(sizes.get(key, 0), int(entry["size"]))
    return sizes


def assignment(admin: ConfluentKafkaAdmin) -> dict[tuple[str, int], list[int]]:
    return {
        (p.topic, p.partition): list(p.replicas)
        for t in admin.describe_cluster().topics
        if not t.internal
        for p in t.partitions
    }


def moved(
    before: dict[tuple[str, int], list[int]],
    after: dict[tuple[str, int], list[int]],
    sizes: dict[tuple[str, int], int],
) -> tuple[int, int]:
    """Replicas that had to be copied (on a broker that did not hold them) and the bytes they carried."""
    replicas = bytes_ = 0
    for key, target in after.items():
        new = set(target) - set(before.get(key, []))
        replicas += len(new)
        bytes_ += len(new) * sizes.get(key, 0)
    return replicas, bytes_


def balance(admin: ConfluentKafkaAdmin, brokers: range) -> tuple[int, int, int, int]:
    replicas = Counter({b: 0 for b in brokers})
    leaders = Counter({b: 0 for b in brokers})
    for t in admin.describe_cluster().topics:
        for p in t.partitions:
            replicas.update(p.replicas)
            if p.leader is not None:
                leaders[p.leader] += 1
    return min(replicas.values()), max(replicas.values()), min(leaders.values()), max(leaders.values())


def run_control_plane(backend: LocalBackend, spec: ClusterSpec, throttle: int) -> None:
    """The product's scale workflow, polled as the engine would poll it."""
    params: dict[str, Any] = {
        "brokers": len(spec.brokers),
        "add_node_ids": [b.node_id for b in spec.brokers if b.node_id >= 3],
        "throttle_bytes_per_second": throttle,
        "poll_seconds": 2.0,
    }
    state: dict[str, Any] = {}
    servers = ""
    for step in SCALE.steps_for(params):
        started = datetime.now(UTC)
        attempt = 0
        while True:
            attempt += 1
            description = backend.describe(spec)
            servers = description.bootstrap_servers or servers
            ctx = StepContext(
                spec=spec,
                params=params,
                state=state,
                backend=backend,
                admin_factory=lambda _spec, bootstrap: ConfluentKafkaAdmin(bootstrap, timeout=30),
                log=lambda message: print(f"    {message}", flush=True),
                started_at=started,
                attempt=attempt,
                bootstrap_servers=servers,
            )
            outcome = step.run(ctx)
            state = {**state, **outcome.output}
            if outcome.done:
                break
            time.sleep(outcome.poll_after_seconds)


def run_kafka_generate(home: Path, servers: str, topics: list[str], throttle: int, workdir: Path) -> None:
    topics_file = workdir / "topics.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": t} for t in topics]}))
    proposal = tool(
        home,
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        servers,
        "--generate",
        "--topics-to-move-json-file",
        str(topics_file),
        "--broker-list",
        "0,1,2,3,4,5",
    )
    lines = proposal.splitlines()
    marker = lines.index("Proposed partition reassignment configuration")
    plan_file = workdir / "plan.json"
    plan_file.write_text(lines[marker + 1])
    tool(
        home,
        "kafka-reassign-partitions.sh",
        "--bootstrap-server",
        servers,
        "--execute",
        "--reassignment-json-file",
        str(plan_file),
        "--throttle",
        str(throttle),
    )
    while True:
        verify = tool(
            home,
            "kafka-reassign-partitions.sh",
            "--bootstrap-server",
            servers,
            "--verify",
            "--reassignment-json-file",
            str(plan_file),
        )
        if "is still in progress" not in verify:
            return
        time.sleep(2.0)


def measure(
    name: str,
    args: argparse.Namespace,
    backend: LocalBackend,
    home: Path,
    grow: Callable[[ClusterSpec, str, list[str]], None],
) -> dict[str, object]:
    spec = spec_of(str(uuid.uuid4()), 3, args.version)
    print(f"  {name}: starting 3 brokers and writing {args.gib} GiB ...", flush=True)
    servers = backend.provision(spec).bootstrap_servers
    admin = ConfluentKafkaAdmin(servers, timeout=30)
    try:
        topics = [f"load-{i}" for i in range(args.topics)]
        for topic in topics:
            admin.create_topic(topic, args.partitions // args.topics, 3)
        time.sleep(2)
        produce_rate = fill(home, servers, topics, int(args.gib * 2**30))
        before = assignment(admin)
        sizes = partition_sizes(home, servers)
        grown = spec_of(spec.cluster_id, 6, args.version)
        servers = backend.provision(grown).bootstrap_servers
        admin.close()
        admin = ConfluentKafkaAdmin(servers, timeout=30)
        print(f"  {name}: moving onto brokers 3, 4, 5 ...", flush=True)
        started = time.monotonic()
        grow(grown, servers, topics)
        seconds = time.monotonic() - started
        replicas, bytes_ = moved(before, assignment(admin), sizes)
        low, high, leaders_low, leaders_high = balance(admin, range(6))
        return {
            "plan": name,
            "data_gib": args.gib,
            "produce_mib_s": round(produce_rate, 1),
            "move_seconds": round(seconds, 1),
            "replicas_moved": replicas,
            "gib_moved": round(bytes_ / 2**30, 2),
            "replicas_per_broker": f"{low}-{high}",
            "leaders_per_broker": f"{leaders_low}-{leaders_high}",
        }
    finally:
        admin.close()
        backend.delete(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="data written before scaling (GiB)")
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=24, help="partitions over all topics")
    parser.add_argument("--throttle-mib", type=int, default=50, help="replication throttle, MiB/s")
    parser.add_argument("--version", default=distribution.DEFAULT_VERSION)
    parser.add_argument(
        "--plans",
        default="control plane,kafka --generate",
        type=lambda text: text.split(","),
        help="which to run",
    )
    args = parser.parse_args()

    java = find_java()
    if java is None:
        raise SystemExit(no_java_message())
    config = distribution.DistributionConfig()
    home = distribution.ensure(args.version, config).home
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    backend = LocalBackend(
        workdir / "clusters",
        distributions=lambda version: distribution.ensure(version, config),
        java_home=java.home,
        max_heap_mb=HEAP_MB,
    )
    throttle = args.throttle_mib * 2**20
    plans: dict[str, Callable[[ClusterSpec, str, list[str]], None]] = {
        "control plane": lambda spec, servers, topics: run_control_plane(backend, spec, throttle),
        "kafka --generate": lambda spec, servers, topics: run_kafka_generate(
            home, servers, topics, throttle, workdir
        ),
    }
    try:
        rows = [
            measure(name, args, backend, home, grow) for name, grow in plans.items() if name in args.plans
        ]
    except BaseException:
        print(f"brokers' directories and logs are kept in {workdir}", flush=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    if len(rows) < 2:
        print(format_table(rows))  # a partial run is not a result to keep
        return
    ours, theirs = rows
    ratio = (theirs["gib_moved"] or 0) / (ours["gib_moved"] or 1)  # type: ignore[operator]
    print(f"\nKafka's --generate plan copied {ratio:.1f}x the bytes the control plane's plan copied")
    write_report(
        "scale_out",
        rows,
        meta={
            "simulates": "scale-out 3 -> 6 brokers (racks a, b, c) of a loaded real Apache Kafka cluster",
            "kafka_version": args.version,
            "topics": args.topics,
            "partitions": args.partitions,
            "replication_factor": 3,
            "throttle_bytes_per_second": throttle,
            "bytes_ratio_generate_over_ours": round(ratio, 2),
        },
    )


if __name__ == "__main__":
    main()
