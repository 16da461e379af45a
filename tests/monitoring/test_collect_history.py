"""History of collections: raw points, per-minute averages after an hour, deletion after a day, and
the metrics-history API that charts read. Collections run against `SimulatedKafkaCluster`, a
stand-in for a multi-broker cluster (none can run here), so lag values and times are exact."""

from __future__ import annotations

from datetime import timedelta

from monitoring.collector import collect_cluster
from monitoring.history import group_status_history, prune_history
from monitoring.models import ClusterSample, Resolution
from tests.monitoring.test_collect import T0, make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant, token_client

NOW = T0 + timedelta(days=1)


def collect_with_lag(cluster_id: object, simulated: SimulatedKafkaCluster, lag: int, at: object) -> None:
    """One collection at `at` that sees group `etl` exactly `lag` messages behind on clicks[0]."""
    simulated.produce("clicks", 0, lag)
    simulated.commit("etl", "clicks", 0, simulated.end_offset("clicks", 0) - lag)
    collect_cluster(cluster_id, admin=simulated, now=at)


def simulated_cluster() -> SimulatedKafkaCluster:
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=3)
    simulated.create_topic("clicks", 2, 3, {"min.insync.replicas": "2"})
    return simulated


def test_old_points_are_averaged_per_minute_then_deleted(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated = simulated_cluster()
    expired = NOW - timedelta(hours=25)
    old_minute = NOW - timedelta(hours=2)
    recent = NOW - timedelta(minutes=10)
    collect_with_lag(cluster.pk, simulated, 999, expired)
    for second, lag in zip((0, 10, 20, 30, 40, 50), (10, 20, 30, 40, 50, 60), strict=True):
        collect_with_lag(cluster.pk, simulated, lag, old_minute + timedelta(seconds=second))
    simulated.fail_broker(3)  # the next minute has 2 brokers up, 2 under-replicated partitions
    collect_with_lag(cluster.pk, simulated, 100, old_minute + timedelta(seconds=60))
    collect_with_lag(cluster.pk, simulated, 7, recent)
    collect_with_lag(cluster.pk, simulated, 9, recent + timedelta(seconds=10))

    prune_history(NOW)

    assert list(
        ClusterSample.objects.order_by("at").values_list(
            "at", "resolution", "brokers_up", "under_replicated_partitions"
        )
    ) == [
        (old_minute, Resolution.MINUTE, 3.0, 0.0),
        (old_minute + timedelta(minutes=1), Resolution.MINUTE, 2.0, 2.0),
        (recent, Resolution.RAW, 2.0, 2.0),
        (recent + timedelta(seconds=10), Resolution.RAW, 2.0, 2.0),
    ]
    # Each point carries the group's lag; a minute's is the average of its points.
    assert [
        (at, groups["etl"][0])
        for at, groups in ClusterSample.objects.order_by("at").values_list("at", "groups")
    ] == [
        (old_minute, 35.0),
        (old_minute + timedelta(minutes=1), 100.0),
        (recent, 7.0),
        (recent + timedelta(seconds=10), 9.0),
    ]

    # Running again (or twice at once) changes nothing.
    prune_history(NOW)
    assert ClusterSample.objects.count() == 4

    # A day later, everything has expired.
    prune_history(NOW + timedelta(days=1))
    assert ClusterSample.objects.count() == 0


def test_an_hours_backlog_is_downsampled_in_slices(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated = simulated_cluster()
    start = NOW - timedelta(hours=3)
    for minute in range(45):
        collect_with_lag(cluster.pk, simulated, minute, start + timedelta(minutes=minute, seconds=30))

    averaged, deleted = prune_history(NOW)

    assert (averaged, deleted) == (45, 0)
    minutes = ClusterSample.objects.filter(resolution=Resolution.MINUTE).order_by("at")
    assert [groups["etl"][0] for groups in minutes.values_list("groups", flat=True)] == list(range(45))
    assert not ClusterSample.objects.filter(resolution=Resolution.RAW).exists()


def test_metrics_history_api_returns_series_for_charts(tenant: Tenant, other_tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated = simulated_cluster()
    simulated.commit("audit", "clicks", 1, 0)
    start = NOW - timedelta(minutes=30)
    collect_with_lag(cluster.pk, simulated, 5, start)
    collect_with_lag(cluster.pk, simulated, 8, start + timedelta(seconds=10))
    url = f"/api/v1/clusters/{cluster.pk}/metrics-history/"
    client = token_client(tenant.viewer)

    body = client.get(
        url,
        {"series": "brokers_up,consumer_lag", "group": "etl", "since": "2026-03-03T07:00:00Z"},
    ).json()

    assert body["since"] == "2026-03-03T07:00:00Z"
    assert body["series"] == [
        {
            "name": "brokers_up",
            "group_id": None,
            "broker_id": None,
            "points": [["2026-03-03T07:30:00Z", 3.0], ["2026-03-03T07:30:10Z", 3.0]],
        },
        {
            "name": "consumer_lag",
            "group_id": "etl",
            "broker_id": None,
            "points": [["2026-03-03T07:30:00Z", 5.0], ["2026-03-03T07:30:10Z", 8.0]],
        },
    ]

    every_group = client.get(
        url, {"series": ["consumer_lag", "consumer_time_lag_seconds"], "since": "2026-03-03T07:00:00"}
    ).json()
    assert [(s["name"], s["group_id"]) for s in every_group["series"]] == [
        ("consumer_lag", "audit"),
        ("consumer_time_lag_seconds", "audit"),
        ("consumer_lag", "etl"),
        ("consumer_time_lag_seconds", "etl"),
    ]
    # Relative to now, which is long after these test times.
    assert client.get(url, {"since": "6h"}).json()["series"][0]["points"] == []

    bad = client.get(url, {"series": "lag,offline_partitions", "since": "yesterday"})
    assert bad.status_code == 400
    assert "Unknown series lag" in bad.json()["series"][0]
    assert "duration" in bad.json()["since"][0]
    assert (
        client.get(url, {"since": "2026-03-03T07:00:00Z", "until": "2026-03-03T06:00:00Z"}).status_code == 400
    )
    assert token_client(other_tenant.viewer).get(url).status_code == 404


def test_a_groups_status_history_survives_downsampling(tenant: Tenant) -> None:
    """Each point stores the group's status; a minute's average keeps its worst; points stored before
    statuses were are averaged as before and say no status."""
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    old_minute = NOW - timedelta(hours=2)
    ClusterSample.objects.bulk_create(
        ClusterSample(
            cluster_id=cluster.pk,
            at=old_minute + timedelta(seconds=second),
            brokers_up=3,
            offline_partitions=0,
            under_replicated_partitions=0,
            under_min_isr_partitions=0,
            at_min_isr_partitions=0,
            groups={"a__b": entry, "legacy": [5, None]},
        )
        for second, entry in ((0, [1, 2.0, "OK"]), (20, [3, 4.0, "STALL"]), (40, [5, None, "WARN"]))
    )
    ClusterSample.objects.create(
        cluster_id=cluster.pk,
        at=NOW - timedelta(minutes=5),
        brokers_up=3,
        offline_partitions=0,
        under_replicated_partitions=0,
        under_min_isr_partitions=0,
        at_min_isr_partitions=0,
        groups={"a__b": [0, 0.0, "OK"]},
    )

    prune_history(NOW)

    minute = ClusterSample.objects.get(resolution=Resolution.MINUTE)
    assert minute.groups == {"a__b": [3.0, 3.0, "STALL"], "legacy": [5.0, None]}
    assert [
        (s.status, s.since) for s in group_status_history(cluster.pk, "a__b", NOW - timedelta(days=1))
    ] == [
        ("OK", NOW - timedelta(minutes=5)),
        ("STALL", old_minute),
    ]
    assert group_status_history(cluster.pk, "legacy", NOW - timedelta(days=1)) == []
