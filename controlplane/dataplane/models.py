"""What the control plane owns inside a cluster: its topics (the desired state; Kafka holds the rest)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Topic(models.Model):
    """A topic as the control plane wants it. Kafka is asked for everything else (leaders, ISR, sizes,
    offsets); what Kafka holds differently is drift, kept here as the drift check last saw it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="topics")
    name = models.CharField(max_length=249)
    partitions = models.PositiveIntegerField()
    replication_factor = models.PositiveSmallIntegerField()
    config = models.JSONField(default=dict, blank=True)  # topic config overrides, key -> value
    deletion_protected = models.BooleanField(default=False)
    # [{"field", "desired", "actual", "revertible"}] as the drift check last found it (empty: none).
    drift = models.JSONField(default=list, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="unique_topic_per_cluster")]

    def __str__(self) -> str:
        return self.name
