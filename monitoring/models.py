"""Models of monitoring: the latest collected state of each cluster and consumer group, and history.

Written only by `monitoring.collector` (one transaction per collection) and `monitoring.history`
(downsampling and pruning). The latest rows are what the API, the dashboard and the Prometheus
exporter read; nothing reads Kafka at request or scrape time.
"""

from __future__ import annotations

from django.db import models

from controlplane.clusters.models import Cluster


class HealthStatus(models.TextChoices):
    OK = "ok", "OK"  # every expected broker up, a controller, no partition problem
    WARNING = "warning", "Warning"  # something needs attention, producers and consumers still work
    CRITICAL = "critical", "Critical"  # writes or reads fail somewhere, or a broker/controller is missing
    UNKNOWN = "unknown", "Unknown"  # not collected yet, or the last collection could not reach the cluster


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
    # {broker id: {path, total_bytes, usable_bytes, used_percent}}: each broker's fullest data volume
    # (`monitoring.disk`), for the brokers that reported one in the last collection that reached the
    # cluster. A column of its own so the exporter reads it without the counts.
    disks = models.JSONField(default=dict, blank=True)
    # The replica assignment and active controller the same collection saw (`monitoring.assignment`),
    # JSON text: written and read whole, only when an operation is previewed.
    assignment = models.TextField(blank=True, default="")
    # Every partition's end offset and size as the last collection that could read them saw them
    # (`monitoring.throughput`), JSON text: the next collection's brokers' rates are measured from it.
    partition_totals = models.TextField(blank=True, default="")
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


class LagState(models.Model):
    """The latest consumer-lag state of one cluster: every group's evaluation, and the offset windows
    it was made from (see `monitoring.lag_state`), so that the next collection, by any worker,
    continues the same windows.

    One row per cluster rather than one per group: every collection rewrites every group, and one
    document per cluster is a fraction of the statements, index updates and bytes (the cluster's
    timestamps are stored once). The groups are JSON text rather than jsonb: only ever read and
    written whole, jsonb would convert every number on each write and back on each read. The windows
    are the bytes of the cluster's offset matrices (`lag_windows.ClusterWindows`).
    """

    cluster = models.OneToOneField(
        Cluster, primary_key=True, on_delete=models.CASCADE, related_name="lag_state"
    )
    groups = models.TextField()  # [{group_id, state, members, status, summary, ...}, ...] worst first
    windows = models.BinaryField()
    collected_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.cluster_id} at {self.collected_at:%Y-%m-%d %H:%M:%S}"


class Resolution(models.TextChoices):
    RAW = "raw", "Raw"  # one point per collection
    MINUTE = "1m", "One minute"  # the average of a minute's raw points, once they are old enough


class ClusterSample(models.Model):
    """One point of a cluster's totals and of its consumer groups' lag over time, for charts."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    resolution = models.CharField(max_length=4, choices=Resolution.choices, default=Resolution.RAW)
    # Floats: a downsampled point is an average.
    brokers_up = models.FloatField()
    offline_partitions = models.FloatField()
    under_replicated_partitions = models.FloatField()
    under_min_isr_partitions = models.FloatField()
    at_min_isr_partitions = models.FloatField()
    # {group_id: [total lag, time lag seconds or null]}: one point for every group in the same row,
    # so a collection adds one row whatever the number of groups.
    groups = models.JSONField(default=dict, blank=True)
    # {broker id: [messages in/s, bytes in/s or null, disk used % or null]} (`monitoring.throughput`,
    # `monitoring.disk`); empty when nothing was measured.
    brokers = models.JSONField(default=dict, blank=True)

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
