"""Detection latency: from a broker dying to its page arriving at an HTTP receiver, default settings.

    .venv/bin/python -m bench.detection_latency              # 20 clusters, one broker death each
    .venv/bin/python -m bench.detection_latency --clusters 5

Real time, end to end, on this machine: a fleet of `SimulatedKafkaCluster`s (3 brokers each, a topic
with replication factor 3) is collected on the beat's schedule with the product's defaults (the
collection tick, each cluster's collection interval, the broker_down rule's `for`). At a random
moment per cluster, one broker dies; the clock stops when the signed webhook carrying that
cluster's broker_down trigger arrives at a local HTTP receiver. Deaths are spread evenly over two
collection intervals so every phase of the schedule is sampled.

Collection runs `collector.collect_cluster` (database writes included) and alerting's
`evaluate_cluster`; the delivery task runs in this process as soon as the evaluation commits (Celery
eager mode), where a worker on Redis adds the queue hop of a few milliseconds. Runs against a fresh
database created for the run and dropped afterwards.

The baseline row is computed, not measured: Prometheus scraping at its default interval, the
Strimzi example rule's `for`, and Alertmanager's default `group_wait`, with the death uniformly
distributed over the scrape interval. It leaves out Prometheus' rule evaluation interval (one more
minute by default), so the real baseline is slower still.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

BENCH_DATABASE = "kcp_bench_detection_latency"
BROKERS = 3
DYING_BROKER = 2

# The anchors' documented defaults, for the computed baseline.
PROMETHEUS_SCRAPE_INTERVAL = 60.0  # prometheus.io configuration docs: global scrape_interval 1m
STRIMZI_RULE_FOR = 10.0  # Strimzi's example Kafka alerting rules: `for: 10s`
ALERTMANAGER_GROUP_WAIT = 30.0  # Alertmanager configuration docs: group_wait 30s


class Receiver:
    """Records when each broker_down trigger arrives, by cluster id."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if body.get("event") == "trigger" and body.get("rule") == "broker_down":
                    with receiver._lock:
                        receiver.arrivals.setdefault(body["details"]["cluster_id"], arrived)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01})
        self._thread.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def arrived(self, cluster_id: str) -> float | None:
        with self._lock:
            return self.arrivals.get(cluster_id)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def defaults() -> dict[str, float]:
    from controlplane.clusters.models import Cluster
    from monitoring.alerting.rules import CATALOGUE
    from monitoring.conditions import BROKER_DOWN

    tick = settings.CELERY_BEAT_SCHEDULE["collect-cluster-health"]["schedule"]
    return {
        "collection_tick_seconds": tick.total_seconds() if isinstance(tick, timedelta) else float(tick),
        "collection_interval_seconds": float(Cluster._meta.get_field("collection_interval_seconds").default),
        "broker_down_for_seconds": float(CATALOGUE[BROKER_DOWN].for_seconds),
    }


def measure(clusters: int, seed: int, timeout: float, config: dict[str, float]) -> list[float]:
    """Latencies in seconds, one per cluster whose page arrived."""
    from controlplane.audit.actions import Actor
    from controlplane.celery import app
    from controlplane.tenancy.models import Organization
    from monitoring import collector
    from monitoring.alerting import actions
    from provisioning.kafka_admin.simulator import SimulatedKafkaCluster
    from tests.support.alerting import make_cluster

    # The delivery task runs in this process right after the evaluation's transaction commits.
    app.conf.task_always_eager = True
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    receiver = Receiver()
    receiver.start()
    actor = Actor.system("bench")
    organization = Organization.objects.create(name="Latency", slug="latency")
    actions.create_channel(
        organization=organization,
        name="on-call",
        kind="webhook",
        config={"url": receiver.url, "secret": uuid.uuid4().hex},
        min_severity="critical",
        enabled=True,
        repeat_interval_seconds=None,
        actor=actor,
    )
    simulated: dict[str, SimulatedKafkaCluster] = {}
    for index in range(clusters):
        cluster = make_cluster(organization, name=f"cluster-{index}", brokers=BROKERS)
        kafka = SimulatedKafkaCluster.with_brokers(BROKERS, seed=seed + index)
        kafka.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
        simulated[str(cluster.pk)] = kafka

    rng = random.Random(seed)
    tick = config["collection_tick_seconds"]
    interval = config["collection_interval_seconds"]
    # After one full interval every cluster has been collected healthy at least once; deaths are
    # then spread over two intervals.
    start = time.monotonic()
    deaths = sorted((start + interval + rng.uniform(0, 2 * interval), cluster_id) for cluster_id in simulated)
    died_at: dict[str, float] = {}
    next_tick = start
    deadline = deaths[-1][0] + timeout
    try:
        while time.monotonic() < deadline and not all(receiver.arrived(c) for c in simulated):
            upcoming = min(next_tick, deaths[0][0]) if deaths else next_tick
            time.sleep(max(0.0, upcoming - time.monotonic()))
            now = time.monotonic()
            while deaths and deaths[0][0] <= now:
                _, cluster_id = deaths.pop(0)
                simulated[cluster_id].fail_broker(DYING_BROKER)
                died_at[cluster_id] = time.monotonic()
            if now >= next_tick:
                # What a beat tick and the workers do: claim the clusters that are due, collect each.
                for cluster_id in collector.claim_due_clusters():
                    collector.collect_cluster(cluster_id, admin=simulated[str(cluster_id)])
                next_tick += tick
    finally:
        receiver.stop()
        app.conf.task_always_eager = False
    latencies = []
    for cluster_id, died in died_at.items():
        arrived = receiver.arrived(cluster_id)
        if arrived is not None:
            latencies.append(arrived - died)
    return latencies


def baseline() -> dict[str, float]:
    """Scrape phase uniform over the scrape interval, plus `for`, plus `group_wait`."""
    fixed = STRIMZI_RULE_FOR + ALERTMANAGER_GROUP_WAIT
    return {
        "median_s": 0.5 * PROMETHEUS_SCRAPE_INTERVAL + fixed,
        "p95_s": 0.95 * PROMETHEUS_SCRAPE_INTERVAL + fixed,
        "max_s": PROMETHEUS_SCRAPE_INTERVAL + fixed,
    }


def write(rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path | None:
    try:
        from bench.report import write_report
    except ImportError:
        path = Path(__file__).resolve().parent / "results" / "detection_latency.json"
        path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        return path
    return write_report("detection_latency", rows, meta=meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=20, help="one broker death per cluster")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on a page after this many s")
    args = parser.parse_args(argv)

    from django.test.utils import setup_databases, teardown_databases

    config = defaults()
    # A database of its own, created and migrated for the run and dropped afterwards.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["TEST"]["NAME"] = str(
            Path(settings.VAR_DIR) / f"{BENCH_DATABASE}.sqlite3"
        )
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        latencies = measure(args.clusters, args.seed, args.timeout, config)
    finally:
        connections.close_all()
        teardown_databases(databases, verbosity=0)

    missing = args.clusters - len(latencies)
    ours = {
        "pipeline": "Kafka Control Plane, measured: broker dies -> signed webhook received",
        "runs": len(latencies),
        "median_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(percentile(latencies, 95), 2) if latencies else None,
        "max_s": round(max(latencies), 2) if latencies else None,
        "settings": f"collection every {config['collection_interval_seconds']:g} s on a "
        f"{config['collection_tick_seconds']:g} s beat tick; broker_down for "
        f"{config['broker_down_for_seconds']:g} s; delivered at once (no grouping)",
    }
    anchors = {
        "pipeline": "Prometheus + Alertmanager defaults, computed: scrape + rule for + group_wait",
        "runs": None,
        **baseline(),
        "settings": f"scrape_interval {PROMETHEUS_SCRAPE_INTERVAL:g} s, Strimzi rule for "
        f"{STRIMZI_RULE_FOR:g} s, group_wait {ALERTMANAGER_GROUP_WAIT:g} s (evaluation_interval not counted)",
    }
    rows = [ours, anchors]
    meta = {
        "clusters": args.clusters,
        "pages_missing": missing,
        "seed": args.seed,
        "target_median_s": 30,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "delivery": "Celery eager (in-process, right after commit)",
        "python": sys.version.split()[0],
        **config,
    }
    print("| pipeline | runs | median s | p95 s | max s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['pipeline']} | {row['runs'] or '-'} | {row['median_s']} | {row['p95_s']} | {row['max_s']} |"
        )
    if missing:
        print(f"{missing} of {args.clusters} pages did not arrive within {args.timeout:g} s")
    print(f"results: {write(rows, meta)}")
    return 0 if not missing else 1


if __name__ == "__main__":
    raise SystemExit(main())
