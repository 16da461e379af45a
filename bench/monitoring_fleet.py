"""Fleet benchmark of monitoring: collect and evaluate many simulated clusters, sweep after sweep.

    .venv/bin/python -m bench.monitoring_fleet                     # 1,000 clusters, both paths
    .venv/bin/python -m bench.monitoring_fleet --clusters 50 --sweeps 3 --path memory

Every cluster is a `SimulatedKafkaCluster` (brokers over 3 racks, topics with replication factor 3
and min.insync.replicas 2, consumer groups each reading one topic); every tenth cluster has a broker
down, so health findings and alert conditions are not all empty. Between sweeps, untimed, each
cluster gets new traffic (records produced, offsets committed at a random lag).

Two paths, each timed per sweep over the whole fleet, with the fleet split over `--workers`
processes (as Celery's prefork workers split it):

- memory: `collector.take_snapshot` (Describe Cluster, groups, end offsets -> health report ->
  Burrow windows -> `evaluate_group`) and `conditions.evaluate`, with the windows kept in memory.
  This is the evaluation cost alone.
- persisted: `collector.collect_cluster`, the function a Celery task runs: load windows from the
  database, the same evaluation, write health, groups, windows and history in one transaction, then
  alerting's `evaluate_cluster`, which opens incidents and enqueues their deliveries (Celery messages
  on the Redis of `make bench`) to the organization's `--channels` signed webhooks. Database
  connections are handled as the Celery workers handle them, with the production settings: each
  worker process makes its own connection pool after the fork, every collection takes its
  connection from it and hands it back at the end (`controlplane.celery`); with DATABASE_POOL=0 every
  collection opens a connection and closes it. DEBUG is off, as in production. Runs against a fresh
  database created for the run and dropped afterwards. The Celery message that starts each
  collection (a few hundred microseconds) is not included. After each sweep, untimed, the
  deliveries it enqueued are sent to a real HTTP receiver on loopback (as the notification workers
  would), so the pages are real.

Each sweep reports its wall time and its CPU time (the workers' and the database's), the CPU time of
alerting alone and the SQL statements per cluster; on a shared machine the wall time says as much
about the neighbours as about the sweep, so `cpu_seconds_per_core` (all that CPU time spread over the
machine's cores) is the sweep time an otherwise idle machine would need, and the number held to the
10 s target.

A window holds one observation per sweep up to its size (10), and evaluation gets dearer as windows
fill, so the last sweeps are the steady state. `--profile [LINES]` prints where worker 0 spent its
last sweep.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import resource
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
# As in production: with DEBUG every statement is also formatted and kept in connection.queries.
os.environ.setdefault("DEBUG", "0")

import django

django.setup()

from django.db import connections  # noqa: E402

from bench.report import write_report  # noqa: E402
from controlplane.celery import app as celery_app  # noqa: E402
from controlplane.celery import freeze_startup_objects, release_database_connections  # noqa: E402
from monitoring import collector  # noqa: E402
from monitoring.conditions import evaluate  # noqa: E402
from monitoring.lag_windows import ClusterWindows  # noqa: E402
from tests.support.http_receiver import HttpReceiver  # noqa: E402
from tests.support.simulator import SimulatedKafkaCluster  # noqa: E402

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CORES = os.cpu_count() or 1
# One database per run, so that runs side by side do not drop each other's.
BENCH_DATABASE = f"kcp_bench_monitoring_{os.getpid()}"


@dataclass(frozen=True)
class Fleet:
    clusters: int
    brokers: int
    groups: int
    topics: int
    partitions: int  # per cluster, spread evenly over the topics
    seed: int = 0

    def build(self, index: int) -> SimulatedKafkaCluster:
        simulated = SimulatedKafkaCluster.with_brokers(self.brokers, racks=3, seed=self.seed + index)
        per_topic = max(1, self.partitions // self.topics)
        for topic in range(self.topics):
            simulated.create_topic(f"topic-{topic}", per_topic, 3, {"min.insync.replicas": "2"})
        if index % 10 == 9:
            simulated.fail_broker(1 + index % self.brokers)
        self.traffic(simulated)
        return simulated

    def traffic(self, simulated: SimulatedKafkaCluster) -> None:
        simulated.generate_load(groups=self.groups, max_records_per_partition=1_000, max_lag=1_000)

    def expected_brokers(self) -> frozenset[int]:
        return frozenset(range(1, self.brokers + 1))


# -- worker processes --------------------------------------------------------------------------------


def _worker(
    connection: Connection, fleet: Fleet, shard: list[int], cluster_ids: list[uuid.UUID], persisted: bool
) -> None:
    """Holds its shard of simulated clusters; runs one sweep per command and answers its timings."""
    simulated = {index: fleet.build(index) for index in shard}
    windows = {index: ClusterWindows() for index in shard}
    targets = {
        index: collector.CollectionTarget(cluster_ids[index], f"cluster-{index}", fleet.expected_brokers(), 2)
        for index in shard
    }
    alerting = _timed_alerting() if persisted else None
    if persisted:
        # A Celery worker is long-lived: its connection to the broker (and the transport's modules)
        # are there before the first collection, so they are not part of a sweep.
        with celery_app.producer_or_acquire():
            pass
    statements = _StatementCounter()
    connections["default"].execute_wrappers.append(statements)
    # What a Celery pool process does once ready. Here it also takes the simulated clusters, which
    # live as long as the process, out of the collector's generations, which leaves the garbage
    # collector with what a worker collecting one cluster would have.
    freeze_startup_objects()
    connection.send(("ready", _peak_rss_mb()))
    while True:
        command, sweep, profile = connection.recv()
        if command == "stop":
            connection.close()
            return
        for index in shard:
            fleet.traffic(simulated[index])
        now = START + timedelta(seconds=10 * sweep)
        # CPU time, not wall time: on a shared machine waiting for the CPU is not the sweep's cost.
        profiler = cProfile.Profile(time.process_time) if profile else None
        if alerting is not None:
            alerting.seconds = alerting.cpu_seconds = 0.0
        statements.count = 0
        cpu = time.process_time()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        partitions = 0
        for index in shard:
            if persisted:
                snapshot = collector.collect_cluster(cluster_ids[index], admin=simulated[index], now=now)
                assert snapshot is not None and snapshot.reachable
                # The end of a Celery task, as the workers end it: the connection goes back to this
                # process's pool (without a pool it is closed, and the next collection opens its own).
                release_database_connections()
            else:
                snapshot, windows[index] = collector.take_snapshot(
                    simulated[index], targets[index], windows[index], now
                )
                evaluate(str(cluster_ids[index]), health_report=snapshot.health, lag=snapshot.groups)
            partitions += sum(len(g.partitions) for g in snapshot.groups)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        # What survived the sweep (the windows) lives until the next one: a worker collecting one
        # cluster per task never holds a fleet's windows, so they are kept out of the collector too.
        gc.freeze()
        report = ""
        if profiler is not None:
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(profile)
            stats.sort_stats("tottime").print_stats(profile)
            report = out.getvalue()
        connection.send(
            (
                elapsed,
                partitions,
                alerting.seconds if alerting is not None else 0.0,
                _peak_rss_mb(),
                report,
                cpu,
                statements.count,
                alerting.cpu_seconds if alerting is not None else 0.0,
            )
        )


class _StatementCounter:
    """Counts the SQL statements a worker sends (Django's execute wrapper, kept across connections)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


class _AlertingTimer:
    def __init__(self, evaluate_cluster: Callable[..., None]) -> None:
        self.evaluate_cluster = evaluate_cluster
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def __call__(self, cluster_id: uuid.UUID, snapshot: collector.ClusterSnapshot) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            self.evaluate_cluster(cluster_id, snapshot)
        finally:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.process_time() - cpu


def _timed_alerting() -> _AlertingTimer:
    timer = _AlertingTimer(collector._alerting_entry_point())
    collector._alerting_entry_point = lambda: timer
    return timer


def _postmaster_pid() -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine."""
    if connections["default"].vendor != "postgresql":
        return None
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        return int(_stat_fields(backend)[1])
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state is [0], ppid [1], utime [11] ... cstime [14]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _database_cpu_seconds(postmaster: int | None) -> float:
    """CPU time the database has spent: the server, its live processes, and (counted into the server
    when they exit) the backends of connections already closed."""
    if postmaster is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster:
            ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- one path ------------------------------------------------------------------------------------------


def run_path(
    fleet: Fleet,
    *,
    persisted: bool,
    sweeps: int,
    workers: int,
    profile: int,
    cluster_ids: list[uuid.UUID],
    receiver: HttpReceiver | None = None,
) -> list[dict[str, Any]]:
    name = "persisted" if persisted else "memory"
    postmaster = _postmaster_pid() if persisted else None
    # Each forked worker opens its own connections, and with a pool its own pool, as Celery's pool
    # processes do: a pool (its connections, its threads) must not cross a fork.
    connections.close_all()
    if persisted and getattr(connections["default"], "pool", None) is not None:
        connections["default"].close_pool()
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    setup_started = time.perf_counter()
    for number in range(workers):
        parent, child = context.Pipe()
        shard = list(range(number, fleet.clusters, workers))
        process = context.Process(target=_worker, args=(child, fleet, shard, cluster_ids, persisted))
        process.start()
        pipes.append(parent)
        processes.append(process)
    build_rss = [pipe.recv()[1] for pipe in pipes]
    print(
        f"[{name}] {fleet.clusters} simulated clusters built in {time.perf_counter() - setup_started:.1f} s"
        + (f"; database connections: {_connections_label()}" if persisted else "")
    )
    rows = []
    try:
        for sweep in range(sweeps):
            last = sweep == sweeps - 1
            database_cpu = _database_cpu_seconds(postmaster)
            for pipe in pipes:
                pipe.send(("sweep", sweep, profile if last else 0))
            answers = [pipe.recv() for pipe in pipes]
            database_cpu = _database_cpu_seconds(postmaster) - database_cpu
            # Workers sweep in parallel: the fleet is done when the slowest is.
            seconds = max(a[0] for a in answers)
            partitions = sum(a[1] for a in answers)
            alerting = max(a[2] for a in answers)
            cpu = sum(a[5] for a in answers)
            queries = sum(a[6] for a in answers)
            alerting_cpu = sum(a[7] for a in answers)
            delivered = deliver_enqueued(receiver) if receiver is not None else 0
            rows.append(
                {
                    "path": name,
                    "sweep": sweep + 1,
                    "window_observations": min(sweep + 1, collector.window_size()),
                    "clusters": fleet.clusters,
                    "workers": workers,
                    "sweep_seconds": round(seconds, 2),
                    "cluster_evaluations_per_second": round(fleet.clusters / seconds, 1),
                    "partition_evaluations_per_second": round(partitions / seconds),
                    "alerting_seconds": round(alerting, 2),
                    "worker_cpu_seconds": round(cpu, 2),
                    "alerting_cpu_seconds": round(alerting_cpu, 2),
                    "database_cpu_seconds": round(database_cpu, 2),
                    "cpu_ms_per_cluster": round((cpu + database_cpu) / fleet.clusters * 1000, 1),
                    "cpu_seconds_per_core": round((cpu + database_cpu) / CORES, 2),
                    "queries_per_cluster": round(queries / fleet.clusters, 1),
                    "deliveries_sent": delivered,
                    "peak_rss_mb_per_worker": round(max(a[3] for a in answers), 1),
                    "rss_mb_after_build_per_worker": round(max(build_rss), 1),
                }
            )
            print(
                f"[{name}] sweep {sweep + 1}: {seconds:.2f} s, {fleet.clusters / seconds:.0f} clusters/s, "
                f"{partitions / seconds:,.0f} partitions/s; CPU {cpu:.1f} s workers"
                + (
                    f" + {database_cpu:.1f} s database ({(cpu + database_cpu) / CORES:.1f} s per core), "
                    f"alerting {alerting:.2f} s ({alerting_cpu:.1f} s CPU), "
                    f"{queries / fleet.clusters:.1f} statements per cluster; "
                    f"{delivered} deliveries sent afterwards"
                    if persisted
                    else ""
                ),
                flush=True,
            )
            if profile and last:
                print(f"[{name}] profile of worker 0, last sweep:\n{answers[0][4]}")
    finally:
        for pipe in pipes:
            pipe.send(("stop", 0, 0))
        for process in processes:
            process.join(timeout=60)
    return rows


def _connections_label() -> str:
    pool = database_pool()
    return "a connection per collection" if pool is None else f"a pool per worker process {pool}"


def database_pool() -> dict[str, Any] | None:
    """The connection pool settings give every process (production's), None without one."""
    from django.conf import settings

    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    return dict(pool) if isinstance(pool, dict) else ({} if pool else None)


def deliver_enqueued(receiver: HttpReceiver) -> int:
    """Send what the sweep enqueued, as the notification workers would; returns how many arrived."""
    from monitoring.alerting.delivery import attempt_delivery
    from monitoring.alerting.models import Delivery

    def send(pk: int) -> None:
        try:
            attempt_delivery(pk)
        finally:
            connections.close_all()  # this thread's connection, as a task's

    before = len(receiver.requests)
    pending = list(Delivery.objects.filter(status="pending").values_list("pk", flat=True))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, pending))
    return len(receiver.requests) - before


def time_scrape(fleet: Fleet) -> dict[str, Any]:
    """One /metrics scrape of the whole fleet from what the sweeps stored."""
    from prometheus_client import CollectorRegistry, generate_latest

    from monitoring.exporter import MonitoringCollector

    registry = CollectorRegistry()
    registry.register(MonitoringCollector())
    started = time.perf_counter()
    text = generate_latest(registry)
    seconds = time.perf_counter() - started
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    print(f"[scrape] {series:,} series, {len(text) / 2**20:.1f} MiB in {seconds:.2f} s")
    return {
        "path": "scrape",
        "clusters": fleet.clusters,
        "series": series,
        "bytes": len(text),
        "scrape_seconds": round(seconds, 2),
    }


def create_fleet_rows(fleet: Fleet, receiver_url: str, channels: int) -> list[uuid.UUID]:
    """Organisation, its notification channels, clusters and brokers for the persisted path; returns
    the cluster ids by index."""
    from controlplane.clusters.models import Broker, Cluster
    from controlplane.tenancy.models import Organization
    from monitoring.alerting.actions import create_channel
    from tests.support.tenants import SYSTEM

    organization = Organization.objects.create(name="Benchmark", slug="benchmark")
    for number in range(channels):
        create_channel(
            organization=organization,
            name=f"on-call-{number}",
            kind="webhook",
            config={"url": f"{receiver_url}/hook-{number}", "secret": "bench-signing-secret"},
            min_severity="warning",
            enabled=True,
            repeat_interval_seconds=None,
            actor=SYSTEM,
        )
    clusters = Cluster.objects.bulk_create(
        [
            Cluster(
                organization=organization,
                name=f"cluster-{index}",
                kafka_version="4.3.2",
                backend="local",
                broker_count=fleet.brokers,
                racks=["rack-0", "rack-1", "rack-2"],
                node_cpu=2,
                node_memory_mb=4096,
                node_disk_gb=100,
                replication_factor=3,
                min_insync_replicas=2,
                status="running",
                bootstrap_servers=f"cluster-{index}.simulated.invalid:9092",
            )
            for index in range(fleet.clusters)
        ],
        batch_size=1000,
    )
    Broker.objects.bulk_create(
        [
            Broker(cluster=cluster, node_id=node_id, rack=f"rack-{(node_id - 1) % 3}", state="running")
            for cluster in clusters
            for node_id in range(1, fleet.brokers + 1)
        ],
        batch_size=5000,
    )
    return [cluster.pk for cluster in clusters]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--brokers", type=int, default=20, help="per cluster")
    parser.add_argument("--groups", type=int, default=50, help="consumer groups per cluster")
    parser.add_argument("--partitions", type=int, default=100, help="per cluster")
    parser.add_argument(
        "--topics", type=int, default=10, help="per cluster; each group reads all partitions of one topic"
    )
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument(
        "--channels", type=int, default=2, help="signed webhooks of the organization (persisted path)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--path", choices=["memory", "persisted", "both"], default="both")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="LINES",
        help="profile worker 0's last sweep; print the top LINES functions by cumulative and own time",
    )
    args = parser.parse_args(argv)

    fleet = Fleet(args.clusters, args.brokers, args.groups, args.topics, args.partitions)
    rows: list[dict[str, Any]] = []
    if args.path in ("memory", "both"):
        ids = [uuid.uuid5(uuid.NAMESPACE_DNS, f"cluster-{i}.bench") for i in range(fleet.clusters)]
        rows += run_path(
            fleet,
            persisted=False,
            sweeps=args.sweeps,
            workers=args.workers,
            profile=args.profile,
            cluster_ids=ids,
        )
    if args.path in ("persisted", "both"):
        rows += run_persisted(fleet, args)
    meta = {
        "clusters": fleet.clusters,
        "brokers_per_cluster": fleet.brokers,
        "groups_per_cluster": fleet.groups,
        "partitions_per_cluster": fleet.partitions,
        "topics_per_cluster": fleet.topics,
        "group_partitions_per_cluster": fleet.groups * max(1, fleet.partitions // fleet.topics),
        "workers": args.workers,
        "database": connections["default"].vendor,
        "database_pool": database_pool(),
    }
    path = write_report("monitoring_fleet", rows, meta=meta)
    print(f"results: {path}")
    return 0


def run_persisted(fleet: Fleet, args: argparse.Namespace) -> list[dict[str, Any]]:
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    # A database of its own, created and migrated for the run and dropped afterwards.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["TEST"]["NAME"] = str(
            Path(settings.VAR_DIR) / f"{BENCH_DATABASE}.sqlite3"
        )
    # The receiver is on loopback, which notifications refuse unless the operator allows it.
    settings.NOTIFICATION_ALLOWED_HOSTS = [*settings.NOTIFICATION_ALLOWED_HOSTS, "127.0.0.1"]
    config = setup_databases(verbosity=0, interactive=False)
    try:
        with HttpReceiver() as receiver:
            ids = create_fleet_rows(fleet, receiver.url, args.channels)
            rows = run_path(
                fleet,
                persisted=True,
                sweeps=args.sweeps,
                workers=args.workers,
                profile=args.profile,
                cluster_ids=ids,
                receiver=receiver,
            )
        rows.append(time_scrape(fleet))
        return rows
    finally:
        connections.close_all()
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    raise SystemExit(main())
