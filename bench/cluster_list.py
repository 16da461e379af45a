"""The cluster list of the API against a plain DRF ModelSerializer over the same rows, side by side.

    .venv/bin/python -m bench.cluster_list                  # 1,000 clusters, pages of 50
    .venv/bin/python -m bench.cluster_list --clusters 200 --rounds 3

A fresh database (PostgreSQL under `make bench`) gets one organization with `--clusters` clusters of
three brokers each, every tenth with an operation running. Each round serves every page of the list
twice through the same view, tenancy filter, pagination (with its count) and JSON rendering: once as
`GET /api/v1/clusters/` serves it (its queryset with the prefetches `ClusterSerializer` reads, and
`ClusterSerializer`), once with the baseline in its place: a plain `ModelSerializer` with
`fields = "__all__"` over the same rows (organization joined, nothing prefetched). So the
difference is what the cluster serializer costs, including the brokers and the operation it
shows. The two alternate page by page, so the shared machine's noise falls on both alike. Reported:
the median time per page of each, their throughput in clusters per second, and the ratio (the
list's throughput over the baseline's; 1.0 means as fast).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django

django.setup()

from django.db import connections  # noqa: E402
from django.db.models import QuerySet  # noqa: E402
from rest_framework import serializers  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402
from rest_framework.test import APIRequestFactory, force_authenticate  # noqa: E402

from bench.report import write_report  # noqa: E402
from controlplane.api.permissions import organizations_of  # noqa: E402
from controlplane.api.views import ClusterViewSet  # noqa: E402
from controlplane.clusters.choices import ClusterStatus  # noqa: E402
from controlplane.clusters.models import Broker, Cluster  # noqa: E402

BENCH_DATABASE = f"kcp_bench_cluster_list_{os.getpid()}"
BROKERS = 3


class PlainClusterSerializer(serializers.ModelSerializer):
    """The baseline: what DRF gives for the model with no work of ours."""

    class Meta:
        model = Cluster
        fields = "__all__"


def create_rows(clusters: int) -> Any:
    from django.contrib.auth import get_user_model

    from controlplane.operations.models import Operation
    from controlplane.tenancy.actions import create_organization
    from tests.support.tenants import SYSTEM

    owner = get_user_model().objects.create_user("bench-owner", password="unused-password-1")
    organization = create_organization(name="Benchmark", owner=owner, actor=SYSTEM)
    rows = Cluster.objects.bulk_create(
        [
            Cluster(
                organization=organization,
                name=f"cluster-{index:04d}",
                kafka_version="4.3.2",
                backend="local",
                broker_count=BROKERS,
                racks=["a", "b", "c"],
                node_cpu=2,
                node_memory_mb=4096,
                node_disk_gb=100,
                replication_factor=3,
                min_insync_replicas=2,
                config={"log.retention.hours": "72"},
                status="running",
                status_reason="",
                bootstrap_servers=f"127.0.0.1:{20000 + 3 * index},127.0.0.1:{20001 + 3 * index}",
                durable=True,
            )
            for index in range(clusters)
        ],
        batch_size=1000,
    )
    Broker.objects.bulk_create(
        [
            Broker(
                cluster=cluster,
                node_id=node_id,
                rack="abc"[node_id],
                endpoint=f"127.0.0.1:{20000 + node_id}",
                state="running",
            )
            for cluster in rows
            for node_id in range(BROKERS)
        ],
        batch_size=5000,
    )
    Operation.objects.bulk_create(
        [
            Operation(cluster=cluster, kind="restart", state="running", requested_by_name="bench")
            for cluster in rows[::10]
        ]
    )
    return owner


class PlainClusterViewSet(ClusterViewSet):
    """The cluster list's view with the baseline serializer, over the same rows."""

    serializer_class = PlainClusterSerializer

    def get_queryset(self) -> QuerySet[Cluster]:
        return (
            Cluster.objects.filter(organization__in=organizations_of(self.request.user))
            .select_related("organization")
            .exclude(status=ClusterStatus.DELETED)
        )


def list_page(
    user: Any, offset: int, limit: int, viewset: type[ClusterViewSet] = ClusterViewSet
) -> Callable[[], bytes]:
    """A page of the list as the view serves it (queryset, pagination, serializer), rendered."""
    factory = APIRequestFactory()
    view = viewset.as_view({"get": "list"})

    def serve() -> bytes:
        request = factory.get("/api/v1/clusters/", {"limit": limit, "offset": offset}, HTTP_HOST="127.0.0.1")
        force_authenticate(request, user=user)
        response = view(request)
        assert response.status_code == 200, response.data
        return JSONRenderer().render(response.data["results"])

    return serve


def measure(clusters: int, limit: int, rounds: int) -> list[dict[str, Any]]:
    user = create_rows(clusters)
    offsets = range(0, clusters, limit)
    ours = [list_page(user, offset, limit) for offset in offsets]
    plain = [list_page(user, offset, limit, PlainClusterViewSet) for offset in offsets]
    assert len(ours[0]()) and len(plain[0]())  # warm both (imports, caches)
    ours_times: list[float] = []
    plain_times: list[float] = []
    for _ in range(rounds):
        for serve_ours, serve_plain in zip(ours, plain, strict=True):
            for serve, times in ((serve_ours, ours_times), (serve_plain, plain_times)):
                started = time.perf_counter()
                serve()
                times.append(time.perf_counter() - started)
    rows = []
    for name, times in (
        ("ClusterSerializer (GET /api/v1/clusters/)", ours_times),
        ("plain ModelSerializer", plain_times),
    ):
        median = statistics.median(times)
        rows.append(
            {
                "path": name,
                "clusters": clusters,
                "page": limit,
                "pages_timed": len(times),
                "median_ms_per_page": round(median * 1000, 2),
                "clusters_per_second": round(limit / median),
            }
        )
    ratio = rows[0]["clusters_per_second"] / rows[1]["clusters_per_second"]
    rows[0]["throughput_vs_plain"] = round(ratio, 2)
    rows[1]["throughput_vs_plain"] = 1.0
    print(f"cluster list throughput: {ratio:.2f}x the plain ModelSerializer's (target: at least 0.7x)")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["TEST"]["NAME"] = str(
            Path(settings.VAR_DIR) / f"{BENCH_DATABASE}.sqlite3"
        )
    config = setup_databases(verbosity=0, interactive=False)
    try:
        rows = measure(args.clusters, args.page, args.rounds)
        meta = {"database": connections["default"].vendor, "brokers_per_cluster": BROKERS}
    finally:
        connections.close_all()
        teardown_databases(config, verbosity=0)
    print(f"results: {write_report('cluster_list', rows, meta=meta)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
