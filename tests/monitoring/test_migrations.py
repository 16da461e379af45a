"""Upgrading through monitoring 0004 keeps group lag history: each old per-group point
(GroupLagSample) is folded into the cluster's point of the same cluster, time and resolution
(ClusterSample.groups), and a group point without such a cluster point is dropped without error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from tests.support.migrations import fully_migrated_afterwards, migrate  # noqa: F401

BEFORE = ("monitoring", "0003_collection_queue")
T = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = T - timedelta(hours=2)


def make_cluster(apps: Any, organization: Any, name: str) -> Any:
    return apps.get_model("clusters", "Cluster").objects.create(
        organization=organization,
        name=name,
        kafka_version="3.7.0",
        backend="local",
        broker_count=3,
        node_cpu=Decimal("1.00"),
        node_memory_mb=2048,
        node_disk_gb=10,
        replication_factor=3,
        min_insync_replicas=2,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fully_migrated_afterwards")
def test_group_history_is_folded_into_cluster_samples() -> None:
    old = migrate([BEFORE])
    organization = old.get_model("tenancy", "Organization").objects.create(name="Acme", slug="acme")
    main = make_cluster(old, organization, "main")
    other = make_cluster(old, organization, "other")
    ClusterSample = old.get_model("monitoring", "ClusterSample")
    GroupLagSample = old.get_model("monitoring", "GroupLagSample")
    health = {
        "brokers_up": 3.0,
        "offline_partitions": 0.0,
        "under_replicated_partitions": 0.0,
        "under_min_isr_partitions": 0.0,
        "at_min_isr_partitions": 0.0,
    }
    points = [
        (main, "raw", T),
        (main, "raw", T + timedelta(seconds=10)),
        (main, "raw", T + timedelta(seconds=20)),  # no group points: stays empty
        (main, "1m", MINUTE),
        (other, "raw", T),
    ]
    for cluster, resolution, at in points:
        ClusterSample.objects.create(cluster=cluster, resolution=resolution, at=at, **health)
    for cluster, group, resolution, at, lag, time_lag in [
        (main, "etl", "raw", T, 10.0, 1.5),
        (main, "billing", "raw", T, 200.0, None),
        (main, "etl", "raw", T + timedelta(seconds=10), 12.0, 2.0),
        (main, "billing", "raw", T + timedelta(seconds=10), 0.0, None),
        (main, "etl", "1m", MINUTE, 11.0, 1.75),
        (main, "billing", "1m", MINUTE, 150.5, None),
        (other, "etl", "raw", T, 7.0, 0.5),
        # No cluster point at this time, or at this time with this resolution: copied nowhere.
        (main, "etl", "raw", T + timedelta(seconds=5), 99.0, 9.0),
        (main, "etl", "raw", MINUTE, 98.0, 8.0),
    ]:
        GroupLagSample.objects.create(
            cluster=cluster,
            group_id=group,
            resolution=resolution,
            at=at,
            total_lag=lag,
            time_lag_seconds=time_lag,
        )

    new = migrate()

    samples = new.get_model("monitoring", "ClusterSample").objects.order_by("cluster__name", "at")
    assert [(s.cluster.name, s.resolution, s.at, s.groups) for s in samples] == [
        ("main", "1m", MINUTE, {"etl": [11.0, 1.75], "billing": [150.5, None]}),
        ("main", "raw", T, {"etl": [10.0, 1.5], "billing": [200.0, None]}),
        ("main", "raw", T + timedelta(seconds=10), {"etl": [12.0, 2.0], "billing": [0.0, None]}),
        ("main", "raw", T + timedelta(seconds=20), {}),
        ("other", "raw", T, {"etl": [7.0, 0.5]}),
    ]
    tables = connection.introspection.table_names()
    assert "monitoring_grouplagsample" not in tables
    assert "monitoring_consumergroup" not in tables
    assert "monitoring_lagstate" in tables


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fully_migrated_afterwards")
def test_windows_stored_as_json_are_read_after_the_move_to_matrices() -> None:
    """0008 turns the windows column from text into bytes. The JSON stored before stays readable,
    backslash escapes included (a cast to bytea would read them as its own escapes), and the next
    collection continues those windows."""
    old = migrate([("monitoring", "0007_broker_throughput")])
    organization = old.get_model("tenancy", "Organization").objects.create(name="Acme", slug="acme")
    cluster = make_cluster(old, organization, "main")
    t = [1_767_268_800_000, 1_767_268_810_000]
    group = 'etl "nightly" \\ batch'
    stored = json.dumps(
        {"v": 2, "size": 10, "max_age": 3600.0, "t": t, "g": {group: [["orders", 0, 0, [5, 6], [9, 9]]]}}
    )
    old.get_model("monitoring", "LagState").objects.create(
        cluster_id=cluster.pk, groups="", windows=stored, collected_at=T
    )

    migrate()

    from monitoring.lag_state import load  # the current code, on the migrated row

    windows = load(cluster.pk)[1]
    assert list(windows) == [group]
    assert windows[group][("orders", 0)].committed == [5, 6]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'monitoring_lagstate' AND column_name = 'windows'"
            )
            assert cursor.fetchone()[0] == "bytea"
