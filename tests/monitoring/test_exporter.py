"""The Prometheus exporter: what /metrics says about collected clusters, and a real Prometheus
scraping it and evaluating the generated alert rules against it.

Clusters are collected from `SimulatedKafkaCluster`, a stand-in for a multi-broker Kafka cluster
(none can run here), because only several brokers can show replication problems.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from monitoring.collector import collect_cluster
from monitoring.conditions import DISK_USAGE, RuleOverride, apply_overrides
from monitoring.exporter import MonitoringCollector
from monitoring.prometheus_rules import render_rules
from tests.monitoring.test_collect import T0, make_cluster
from tests.support.prometheus import PrometheusServer
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant

METRICS_TOKEN = "prometheus-scrape-token-for-tests"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape() -> Samples:
    registry = CollectorRegistry()
    registry.register(MonitoringCollector())
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def degraded_cluster(tenant: Tenant) -> tuple[Any, SimulatedKafkaCluster]:
    """`orders`: three brokers, broker 3 down, group `etl` 40 messages behind on clicks."""
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=11)
    simulated.create_topic("clicks", 4, 3, {"min.insync.replicas": "2"})
    cluster = make_cluster(tenant.organization, "orders", node_ids=[1, 2, 3], replication_factor=3)
    for step, committed in enumerate((0, 10)):
        simulated.produce("clicks", 0, 25)
        simulated.produce("clicks", 1, 25)
        simulated.commit("etl", "clicks", 0, committed)
        simulated.commit("etl", "clicks", 1, 25 * (step + 1) - 10)
        collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 * step))
    simulated.fail_broker(3)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=20))
    return cluster, simulated


def test_exporter_serves_what_the_last_collection_stored(tenant: Tenant) -> None:
    degraded_cluster(tenant)
    unreachable = SimulatedKafkaCluster.with_brokers(1)
    unreachable.set_reachable(False)
    gone = make_cluster(tenant.organization, "gone", node_ids=[1])
    collect_cluster(gone.pk, admin=unreachable, now=T0)

    samples = scrape()

    orders = {"organization": "acme", "cluster": "orders"}
    assert value(samples, "kafka_brokers", **orders) == 2
    assert value(samples, "kafka_cluster_active_controllers", **orders) == 1
    assert value(samples, "kafka_cluster_offline_partitions", **orders) == 0
    assert value(samples, "kafka_cluster_under_min_isr_partitions", **orders) == 0
    assert value(samples, "kafka_cluster_at_min_isr_partitions", **orders) == 4
    under_replicated = {
        dict(labels)["partition"]: v
        for (name, labels), v in samples.items()
        if name == "kafka_topic_partition_under_replicated_partition"
    }
    assert under_replicated == {"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0}
    group = {**orders, "consumergroup": "etl", "topic": "clicks"}
    assert value(samples, "kafka_consumergroup_lag_sum", **group) == (50 - 10) + 10
    assert value(samples, "kafka_consumergroup_time_lag_seconds", **group) is not None
    assert value(samples, "controlplane_cluster_health", **orders, status="critical") == 1
    assert value(samples, "controlplane_cluster_health", **orders, status="ok") == 0
    assert value(samples, "controlplane_cluster_last_collection_timestamp_seconds", **orders) == (
        (T0 + timedelta(seconds=20)).timestamp()
    )
    # Per-partition lag is off by default: it multiplies the series.
    assert "kafka_consumergroup_lag" not in names(samples)
    assert "kafka_consumergroup_current_offset" not in names(samples)

    # Never reached: only its health, no counts that would read as zeros.
    gone_labels = {"organization": "acme", "cluster": "gone"}
    assert value(samples, "controlplane_cluster_health", **gone_labels, status="unknown") == 1
    assert value(samples, "kafka_brokers", **gone_labels) is None
    assert value(samples, "controlplane_cluster_last_collection_timestamp_seconds", **gone_labels) is None


def test_partition_lag_is_exported_when_switched_on(tenant: Tenant, settings: Any) -> None:
    settings.MONITORING_EXPORT_PARTITION_LAG = True
    degraded_cluster(tenant)

    samples = scrape()

    partition = {"organization": "acme", "cluster": "orders", "consumergroup": "etl", "topic": "clicks"}
    assert value(samples, "kafka_consumergroup_lag", **partition, partition="0") == 40
    assert value(samples, "kafka_consumergroup_lag", **partition, partition="1") == 10
    assert value(samples, "kafka_consumergroup_current_offset", **partition, partition="0") == 10
    assert value(samples, "kafka_consumergroup_current_offset", **partition, partition="1") == 40
    assert value(samples, "kafka_consumergroup_time_lag_seconds", **partition, partition="0") is not None
    # The time lag is then per partition, as the generated rules document it.
    assert value(samples, "kafka_consumergroup_time_lag_seconds", **partition) is None


def test_metrics_endpoint_serves_the_exporter(tenant: Tenant, client: Any, settings: Any) -> None:
    settings.METRICS_BEARER_TOKEN = METRICS_TOKEN
    degraded_cluster(tenant)

    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content.decode()

    labels = 'cluster="orders",consumergroup="etl",organization="acme",topic="clicks"'
    assert f"kafka_consumergroup_lag_sum{{{labels}}} 50.0" in body


@pytest.mark.slow
def test_a_real_prometheus_scrapes_lag_and_fires_the_generated_rules(
    tenant: Tenant, live_server: Any, settings: Any
) -> None:
    settings.METRICS_BEARER_TOKEN = METRICS_TOKEN
    cluster, simulated = degraded_cluster(tenant)
    simulated.fail_broker(2)  # leaves clicks under min.insync.replicas: a rule that fires at once
    simulated.fill_disk(1, simulated.disk_bytes * 9 // 10)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=30))
    # The disk rule waits 5 minutes by default; at once here, so the test need not.
    rules = apply_overrides([{DISK_USAGE: RuleOverride(for_seconds=0)}])

    with PrometheusServer(
        [f"{live_server.url}/metrics"],
        rules=render_rules(rules, cluster="orders"),
        bearer_token=METRICS_TOKEN,
    ) as prometheus:
        result = prometheus.wait_for('kafka_consumergroup_lag_sum{cluster="orders"}', timeout=30)
        alerts = prometheus.wait_for(
            'ALERTS{alertname="KafkaUnderMinIsrPartitions", alertstate="firing"}', timeout=30
        )
        (disk_alert,) = prometheus.wait_for(
            'ALERTS{alertname="KafkaBrokerDiskAlmostFull", alertstate="firing"}', timeout=30
        )

    (series,) = result
    assert series["metric"]["consumergroup"] == "etl"
    assert series["metric"]["topic"] == "clicks"
    assert series["metric"]["organization"] == "acme"
    assert float(series["value"][1]) == 50
    assert alerts[0]["metric"]["cluster"] == "orders"
    assert (disk_alert["metric"]["cluster"], disk_alert["metric"]["broker"]) == ("orders", "1")


def test_clusters_no_longer_collected_are_not_exported(tenant: Tenant) -> None:
    cluster, _ = degraded_cluster(tenant)
    Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.FAILED)

    samples = scrape()

    assert not any(dict(labels).get("cluster") == "orders" for _, labels in samples)
