"""Prometheus metrics of the monitored clusters, served on the control plane's `/metrics`.

Everything comes from what the last collection stored (`ClusterHealth`, `LagState`); a scrape
never talks to Kafka, so scraping often costs the clusters nothing and a slow cluster cannot slow a
scrape. Names follow kafka_exporter where it has the metric, with the labels
`monitoring.prometheus_rules` expects. Every series has `cluster` (the cluster's name) and
`organization` (its organisation's slug): names are unique only within an organisation, and without
it two organisations' clusters of the same name would collide.

    kafka_brokers{cluster}                                            registered brokers
    kafka_cluster_active_controllers{cluster}                         0 or 1
    kafka_cluster_offline_partitions{cluster}
    kafka_cluster_under_min_isr_partitions{cluster}
    kafka_cluster_at_min_isr_partitions{cluster}
    kafka_topic_partition_under_replicated_partition{cluster, topic, partition}
                                                                      1, only for partitions that are
    kafka_broker_disk_used_percent{cluster, broker}                   0-100, its fullest data volume
    kafka_broker_disk_total_bytes{cluster, broker}                    that volume's size
    kafka_broker_disk_usable_bytes{cluster, broker}                   what the broker may still write
    kafka_consumergroup_lag_sum{cluster, consumergroup, topic}        messages waiting
    kafka_consumergroup_time_lag_seconds{cluster, consumergroup, topic}
                                                                      oldest waiting message's age
    controlplane_cluster_health{cluster, status}                      1 for the current status, else 0
    controlplane_cluster_last_collection_timestamp_seconds{cluster}   when the cluster was last reached

With `MONITORING_EXPORT_PARTITION_LAG = True`, per partition as well:

    kafka_consumergroup_lag{cluster, consumergroup, topic, partition}
    kafka_consumergroup_current_offset{cluster, consumergroup, topic, partition}
    kafka_consumergroup_time_lag_seconds{cluster, consumergroup, topic, partition}
                                                                      instead of the per-topic series

Cardinality (series per scrape), for C clusters, T topics, G groups each reading P partitions in
t topics, U under-replicated partitions:

- cluster gauges: 6 x C, plus 4 x C for `controlplane_cluster_health` (one per status);
- disk gauges: 3 per broker that reports its disk (Apache Kafka 3.3 and later);
- `kafka_topic_partition_under_replicated_partition`: U. Unlike kafka_exporter, healthy partitions
  are not exported as 0, which would cost one series per partition of the fleet; `sum by (cluster)`
  (what the generated rules use) gives the same answer;
- per topic lag and time lag: 2 x G x t, per cluster;
- per partition lag (opt-in): 3 x G x P per cluster. 1,000 clusters x 50 groups x 10 partitions is
  1.5 million series, which is why it is off by default. The generated "consumer stalled" rule needs
  the per-partition lag and offset series; the control plane's own lag alert does not.

A cluster whose last collection could not reach it exports only `controlplane_cluster_health`
(status `unknown`) and its last-collection timestamp: repeating its last known counts would let rules
judge numbers that are no longer true.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.collector import COLLECTED_STATUSES
from monitoring.lag import PartitionWindow, TopicPartition, estimate_time_lag
from monitoring.lag_state import decode_groups, decode_windows
from monitoring.models import ClusterHealth, HealthStatus, LagState

CLUSTER_LABELS = ["organization", "cluster"]
BROKER_LABELS = [*CLUSTER_LABELS, "broker"]
GROUP_LABELS = [*CLUSTER_LABELS, "consumergroup", "topic"]
PARTITION_LABELS = [*GROUP_LABELS, "partition"]


def export_partition_lag() -> bool:
    return bool(getattr(settings, "MONITORING_EXPORT_PARTITION_LAG", False))


def _families(partition_lag: bool) -> dict[str, GaugeMetricFamily]:
    gauges = [
        GaugeMetricFamily("kafka_brokers", "Brokers registered with the cluster", labels=CLUSTER_LABELS),
        GaugeMetricFamily(
            "kafka_cluster_active_controllers", "Active controllers (0 or 1)", labels=CLUSTER_LABELS
        ),
        GaugeMetricFamily(
            "kafka_cluster_offline_partitions", "Partitions without a live leader", labels=CLUSTER_LABELS
        ),
        GaugeMetricFamily(
            "kafka_cluster_under_min_isr_partitions",
            "Partitions with fewer in-sync replicas than min.insync.replicas",
            labels=CLUSTER_LABELS,
        ),
        GaugeMetricFamily(
            "kafka_cluster_at_min_isr_partitions",
            "Partitions with exactly min.insync.replicas in sync",
            labels=CLUSTER_LABELS,
        ),
        GaugeMetricFamily(
            "kafka_topic_partition_under_replicated_partition",
            "1 for each under-replicated partition (healthy partitions are not exported)",
            labels=[*CLUSTER_LABELS, "topic", "partition"],
        ),
        GaugeMetricFamily(
            "kafka_broker_disk_used_percent",
            "How full the broker's fullest data volume is (what it can no longer write), in percent",
            labels=BROKER_LABELS,
        ),
        GaugeMetricFamily(
            "kafka_broker_disk_total_bytes", "Size of the broker's fullest data volume", labels=BROKER_LABELS
        ),
        GaugeMetricFamily(
            "kafka_broker_disk_usable_bytes",
            "Bytes the broker may still write on its fullest data volume",
            labels=BROKER_LABELS,
        ),
        GaugeMetricFamily(
            "kafka_consumergroup_lag_sum", "Messages waiting for the group, per topic", labels=GROUP_LABELS
        ),
        GaugeMetricFamily(
            "kafka_consumergroup_time_lag_seconds",
            "Estimated age of the oldest message waiting for the group",
            labels=PARTITION_LABELS if partition_lag else GROUP_LABELS,
        ),
        GaugeMetricFamily(
            "controlplane_cluster_health",
            "1 for the cluster's current health status (ok, warning, critical, unknown), 0 for the others",
            labels=[*CLUSTER_LABELS, "status"],
        ),
        GaugeMetricFamily(
            "controlplane_cluster_last_collection_timestamp_seconds",
            "When a collection last reached the cluster (Unix time)",
            labels=CLUSTER_LABELS,
        ),
    ]
    if partition_lag:
        gauges += [
            GaugeMetricFamily(
                "kafka_consumergroup_lag", "Messages waiting for the group", labels=PARTITION_LABELS
            ),
            GaugeMetricFamily(
                "kafka_consumergroup_current_offset",
                "The group's committed offset",
                labels=PARTITION_LABELS,
            ),
        ]
    return {gauge.name: gauge for gauge in gauges}


class MonitoringCollector(Collector):
    """The fleet's health and lag, read from the database at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: without this, registering would query the database at import time.
        yield from _families(export_partition_lag()).values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        partition_lag = export_partition_lag()
        families = _families(partition_lag)
        reachable: dict[object, list[str]] = {}
        # Clusters no longer collected (failed, deleted) would otherwise export their last numbers forever.
        collected = ClusterHealth.objects.filter(cluster__status__in=COLLECTED_STATUSES)
        for health in collected.select_related("cluster__organization").only(
            "status",
            "succeeded_at",
            "brokers_up",
            "active_controllers",
            "offline_partitions",
            "under_min_isr_partitions",
            "at_min_isr_partitions",
            "under_replicated",
            "disks",
            "cluster__name",
            "cluster__organization__slug",
        ):
            labels = [health.cluster.organization.slug, health.cluster.name]
            for status in HealthStatus.values:
                families["controlplane_cluster_health"].add_metric(
                    [*labels, status], 1.0 if health.status == status else 0.0
                )
            if health.succeeded_at is not None:
                families["controlplane_cluster_last_collection_timestamp_seconds"].add_metric(
                    labels, health.succeeded_at.timestamp()
                )
            if health.status == HealthStatus.UNKNOWN:
                continue
            reachable[health.pk] = labels
            families["kafka_brokers"].add_metric(labels, health.brokers_up)
            families["kafka_cluster_active_controllers"].add_metric(labels, health.active_controllers)
            families["kafka_cluster_offline_partitions"].add_metric(labels, health.offline_partitions)
            families["kafka_cluster_under_min_isr_partitions"].add_metric(
                labels, health.under_min_isr_partitions
            )
            families["kafka_cluster_at_min_isr_partitions"].add_metric(labels, health.at_min_isr_partitions)
            for topic, partition in health.under_replicated:
                families["kafka_topic_partition_under_replicated_partition"].add_metric(
                    [*labels, topic, str(partition)], 1.0
                )
            for broker, disk in sorted(health.disks.items(), key=lambda item: int(item[0])):
                families["kafka_broker_disk_used_percent"].add_metric([*labels, broker], disk["used_percent"])
                families["kafka_broker_disk_total_bytes"].add_metric([*labels, broker], disk["total_bytes"])
                families["kafka_broker_disk_usable_bytes"].add_metric([*labels, broker], disk["usable_bytes"])
        self._add_groups(families, reachable, partition_lag)
        yield from families.values()

    @staticmethod
    def _add_groups(
        families: dict[str, GaugeMetricFamily], clusters: dict[object, list[str]], partition_lag: bool
    ) -> None:
        fields = ["cluster_id", "groups", "collected_at"] + (["windows"] if partition_lag else [])
        states = LagState.objects.filter(cluster_id__in=list(clusters)).values_list(*fields)
        for cluster_id, groups, collected_at, *windows in states.iterator(chunk_size=200):
            by_group = decode_windows(windows[0]) if partition_lag else {}
            for group in decode_groups(groups, collected_at):
                labels = [*clusters[cluster_id], group.group_id]
                for topic, (lag, time_lag) in sorted(group.topics.items()):
                    families["kafka_consumergroup_lag_sum"].add_metric([*labels, topic], lag)
                    if not partition_lag and time_lag is not None:
                        families["kafka_consumergroup_time_lag_seconds"].add_metric(
                            [*labels, topic], time_lag
                        )
                if partition_lag:
                    _add_partitions(families, labels, by_group.get(group.group_id, {}))


def _add_partitions(
    families: dict[str, GaugeMetricFamily],
    labels: list[str],
    windows: Mapping[TopicPartition, PartitionWindow],
) -> None:
    for (topic, partition), window in sorted(windows.items()):
        if not window.observations:
            continue
        latest = window.observations[-1]
        series = [*labels, topic, str(partition)]
        if latest.lag is not None:
            families["kafka_consumergroup_lag"].add_metric(series, latest.lag)
        if latest.committed_offset is not None:
            families["kafka_consumergroup_current_offset"].add_metric(series, latest.committed_offset)
        time_lag = estimate_time_lag(window.observations)
        if time_lag is not None:
            families["kafka_consumergroup_time_lag_seconds"].add_metric(series, time_lag)


_collector = MonitoringCollector()
_registered: set[int] = set()


def register(registry: CollectorRegistry = REGISTRY) -> None:
    """Add the collector to a registry (by default the one `/metrics` serves), once per registry."""
    # AppConfig.ready() may run more than once (tests); registering twice raises.
    if id(registry) not in _registered:
        registry.register(_collector)
        _registered.add(id(registry))
