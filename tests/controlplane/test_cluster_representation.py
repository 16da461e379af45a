"""The cluster list and detail answer exactly what DRF's own field machinery would, in a fixed
number of statements however many clusters a page holds. `ClusterSerializer` skips that machinery
(`controlplane.api.representation`) and reads relations in bulk, for speed (`bench/cluster_list.py`);
these tests hold it to the same output."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from controlplane.api.representation import CompiledRepresentation
from controlplane.clusters.models import Broker, Cluster
from controlplane.operations.models import Operation
from tests.support.tenants import Tenant, token_client

CLUSTERS = "/api/v1/clusters/"


def make_clusters(tenant: Tenant, count: int, start: int = 0) -> list[Cluster]:
    clusters = []
    for index in range(start, start + count):
        cluster = Cluster.objects.create(
            organization=tenant.organization,
            name=f"c-{index:03d}",
            kafka_version="4.3.2",
            backend="local",
            broker_count=3,
            node_cpu="1.50",
            node_memory_mb=2048,
            node_disk_gb=10,
            racks=["a", "b", "c"],
            replication_factor=3,
            min_insync_replicas=2,
            config={"log.retention.hours": "72"} if index % 2 else {},
            status="running" if index % 3 else "degraded",
            status_reason="" if index % 3 else "broker 2 crashed",
            bootstrap_servers=f"127.0.0.1:{9000 + index}",
            durable=(None, True, False)[index % 3],
            durability_note="in memory only" if index % 3 == 2 else "",
        )
        for node_id in range(3):
            Broker.objects.create(
                cluster=cluster,
                node_id=node_id,
                rack="abc"[node_id],
                endpoint=f"127.0.0.1:{9100 + node_id}",
                state="running" if node_id else "crashed",
                state_detail="" if node_id else "exit code 137",
                last_seen_at=datetime(2026, 11, 3, 12, 0, 0, 123456, tzinfo=UTC) if node_id == 1 else None,
            )
        if index % 4 == 0:
            Operation.objects.create(cluster=cluster, kind="restart", state="running", requested_by_name="x")
        Operation.objects.create(cluster=cluster, kind="provision", state="succeeded", requested_by_name="x")
        clusters.append(cluster)
    return clusters


def test_the_list_and_the_detail_say_what_drf_would(tenant: Tenant) -> None:
    clusters = make_clusters(tenant, 8)
    client = token_client(tenant.viewer)
    paths = [f"{CLUSTERS}?limit=5", f"{CLUSTERS}?limit=5&offset=5", f"{CLUSTERS}{clusters[0].pk}/"]
    compiled = [client.get(path).json() for path in paths]
    with mock.patch.object(
        CompiledRepresentation, "to_representation", serializers.Serializer.to_representation
    ):
        generic = [client.get(path).json() for path in paths]
    assert compiled == generic
    listed = compiled[0]["results"] + compiled[1]["results"]
    assert len(listed) == 8
    assert {c["name"]: c["active_operation"] is not None for c in listed} == {
        c.name: index % 4 == 0 for index, c in enumerate(clusters)
    }
    assert [b["last_seen_at"] for b in listed[0]["broker_nodes"]] == [
        None,
        "2026-11-03T12:00:00.123456Z",
        None,
    ]


def test_a_page_costs_the_same_statements_however_many_clusters_it_holds(tenant: Tenant) -> None:
    client = token_client(tenant.viewer)
    make_clusters(tenant, 2)
    client.get(CLUSTERS)  # the token's first use of the day is recorded once
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(f"{CLUSTERS}?limit=50").json()["results"]) == 2
    make_clusters(tenant, 20, start=2)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(f"{CLUSTERS}?limit=50").json()["results"]) == 22
    assert len(many.captured_queries) == len(few.captured_queries)
