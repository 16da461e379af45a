"""Models of monitoring: the latest collected state of each cluster and consumer group, and history.

Written only by `monitoring.collector` (one transaction per collection) and `monitoring.history`
(downsampling and pruning). The latest rows are what the API, the dashboard and the Prometheus
exporter read; nothing reads Kafka at request or scrape time.
"""

from __future__ import annotations

from django.db import models

from controlplane.clusters.models import Cluster
from monitoring.lag import LagStatus


class HealthStatus(models.TextChoices):
    OK = "ok", "OK"  # every expected broker up, a controller, no partition problem
    WARNING = "warning", "Warning"  # something needs attention, producers and consumers still work
    CRITICAL = "critical", "Critical"  # writes or reads fail somewhere, or a broker/controller is missing
    UNKNOWN = "unknown", "Unknown"  # not collected yet, or the last collection could not reach the cluster


LAG_STATUS_CHOICES = [(status.value, status.value) for status in LagStatus]


class ClusterHealth(models.Model):
    """The latest health of one cluster, and when it is collected next.

    When a collection cannot reach the cluster, only `status`, `reason` and `collected_at` change:
    the counts stay those of `succeeded_at`, the last collection that reached it.
    """

    cluster = models.OneToOneField(Cluster, primary_key=True, on_delete=models.CASCADE, related_name="health")
    status = models.CharField(max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    reason = models.TextField(blank=True)  # the worst finding, or why the cluster could not be reached
    collected_at = models.DateTimeField(null=True, blank=True)  # last collection, reachable or not
    succeeded_at = models.DateTimeField(null=True, blank=True)  # last collection that reached the cluster
    duration_ms = models.PositiveIntegerField(default=0)  # how long the last collection took
    # Totals as columns: the exporter and history read them for every cluster without parsing JSON.
    brokers_up = models.PositiveIntegerField(default=0)
    brokers_expected = models.PositiveIntegerField(default=0)
    active_controllers = models.PositiveSmallIntegerField(default=0)
    partitions = models.PositiveIntegerField(default=0)
    offline_partitions = models.PositiveIntegerField(default=0)
    under_replicated_partitions = models.PositiveIntegerField(default=0)
    under_min_isr_partitions = models.PositiveIntegerField(default=0)
    at_min_isr_partitions = models.PositiveIntegerField(default=0)
    # {"topics": {name: counts}, "brokers": {id: counts}, "expected_brokers": [...], ...}
    counts = models.JSONField(default=dict, blank=True)
    findings = models.JSONField(default=list, blank=True)  # health.Finding as dicts
    # [[topic, partition], ...]: every under-replicated partition, for the per-partition metric.
    under_replicated = models.JSONField(default=list, blank=True)
    next_collection_at = models.DateTimeField(null=True, blank=True)  # due for collection from then on
    # Set when a collection is enqueued, cleared when it finishes: while set, the cluster is not
    # enqueued again, so workers that fall behind the schedule do not make the queue grow. A task lost
    # with its worker leaves it to expire.
    queued_until = models.DateTimeField(null=True, blank=True)
    # Set while a collection runs, so that a slow cluster is not collected twice at once; a worker that
    # dies mid-collection leaves it to expire.
    collecting_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "cluster health"
        indexes = [models.Index(fields=["next_collection_at"], name="monitoring_health_due")]

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.status}"


class ConsumerGroup(models.Model):
    """A consumer group's latest Burrow evaluation (totals; the partitions' results are evaluated
    again from the cluster's `LagWindows` when asked for)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="consumer_groups")
    group_id = models.CharField(max_length=255)
    state = models.CharField(max_length=32, blank=True)  # Kafka's: Stable, Empty, PreparingRebalance...
    members = models.PositiveIntegerField(null=True, blank=True)  # None when the cluster cannot tell
    status = models.CharField(max_length=8, choices=LAG_STATUS_CHOICES)
    status_rank = models.PositiveSmallIntegerField(default=0)  # LagStatus.rank, to list the worst first
    summary = models.TextField()
    total_lag = models.BigIntegerField(default=0)
    max_lag = models.BigIntegerField(default=0)
    time_lag_seconds = models.FloatField(null=True, blank=True)
    # {topic: [lag, max time lag]}: what the exporter needs per topic, without evaluating partitions.
    topics = models.JSONField(default=dict, blank=True)
    collected_at = models.DateTimeField()

    class Meta:
        ordering = ["cluster", "-status_rank", "group_id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "group_id"], name="unique_consumer_group_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.status}"


class LagWindows(models.Model):
    """The offset windows of every consumer group of one cluster (see `collector.encode_windows`),
    so that the next collection, by any worker, continues the same windows.

    One row per cluster rather than one per group: every collection rewrites all of them, and one
    document with the cluster's timestamps stored once is a fraction of the bytes and statements.
    JSON text rather than jsonb: it is only ever read whole, and jsonb would convert each of its
    thousands of offsets to a numeric on every write and back on every read.
    """

    cluster = models.OneToOneField(
        Cluster, primary_key=True, on_delete=models.CASCADE, related_name="lag_windows"
    )
    windows = models.TextField()
    collected_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "lag windows"

    def __str__(self) -> str:
        return f"{self.cluster_id} at {self.collected_at:%Y-%m-%d %H:%M:%S}"


class Resolution(models.TextChoices):
    RAW = "raw", "Raw"  # one point per collection
    MINUTE = "1m", "One minute"  # the average of a minute's raw points, once they are old enough


class ClusterSample(models.Model):
    """One point of a cluster's totals over time, for charts."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    resolution = models.CharField(max_length=4, choices=Resolution.choices, default=Resolution.RAW)
    # Floats: a downsampled point is an average.
    brokers_up = models.FloatField()
    offline_partitions = models.FloatField()
    under_replicated_partitions = models.FloatField()
    under_min_isr_partitions = models.FloatField()
    at_min_isr_partitions = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["cluster", "at"], name="monitoring_cluster_sample_at"),
            models.Index(fields=["resolution", "at"], name="monitoring_cluster_sample_age"),
        ]
        constraints = [
            # Makes downsampling idempotent: a second run's average of the same minute is ignored.
            models.UniqueConstraint(
                fields=["cluster", "at"],
                condition=models.Q(resolution="1m"),
                name="unique_cluster_sample_minute",
            )
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} at {self.at:%Y-%m-%d %H:%M:%S} ({self.resolution})"


class GroupLagSample(models.Model):
    """One point of a consumer group's lag over time, for charts."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    group_id = models.CharField(max_length=255)
    at = models.DateTimeField()
    resolution = models.CharField(max_length=4, choices=Resolution.choices, default=Resolution.RAW)
    total_lag = models.FloatField()
    time_lag_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["cluster", "group_id", "at"], name="monitoring_group_sample_at"),
            models.Index(fields=["resolution", "at"], name="monitoring_group_sample_age"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "group_id", "at"],
                condition=models.Q(resolution="1m"),
                name="unique_group_sample_minute",
            )
        ]

    def __str__(self) -> str:
        return f"{self.group_id} at {self.at:%Y-%m-%d %H:%M:%S} ({self.resolution})"
