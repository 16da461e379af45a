"""Kafka clusters and their brokers, as the control plane wants them and last saw them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from controlplane.clusters.choices import (
    LIVE_ANOMALY_STATES,
    AnomalyState,
    Backend,
    BrokerState,
    ClusterStatus,
    DriftPolicy,
)
from controlplane.encryption import EncryptedJSONField

ACTIVE_STATUSES = [s for s in ClusterStatus if s != ClusterStatus.DELETED]


class Cluster(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="clusters"
    )
    name = models.CharField(max_length=40)
    kafka_version = models.CharField(max_length=16)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    broker_count = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    racks = models.JSONField(default=list)  # rack names, e.g. availability zones
    node_cpu = models.DecimalField(max_digits=5, decimal_places=2)
    node_memory_mb = models.PositiveIntegerField()
    node_disk_gb = models.PositiveIntegerField()
    replication_factor = models.PositiveSmallIntegerField()
    min_insync_replicas = models.PositiveSmallIntegerField()
    config = models.JSONField(default=dict, blank=True)  # extra broker configuration
    self_healing = models.BooleanField(default=True)
    # What the drift check does with topics changed outside the control plane. A database default too,
    # so that code not knowing the column yet (a rolling deploy, an older migration's state) can insert.
    drift_policy = models.CharField(
        max_length=16, choices=DriftPolicy.choices, default=DriftPolicy.REPORT, db_default=DriftPolicy.REPORT
    )
    collection_interval_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(5), MaxValueValidator(3600)]
    )
    status = models.CharField(max_length=16, choices=ClusterStatus.choices, default=ClusterStatus.REQUESTED)
    status_reason = models.TextField(blank=True)  # why it is degraded or failed, in plain words
    bootstrap_servers = models.CharField(max_length=1000, blank=True)
    # Whether the brokers keep their data across a restart, as the backend reported it (None until
    # it has); when not, `durability_note` says what is lost and when.
    durable = models.BooleanField(
        null=True,
        help_text="Whether the brokers keep their data when restarted, upgraded or replaced keeping their "
        "disk; null until the backend has described the cluster.",
    )
    # A database default so that inserts made at older migration states (as the migration tests do) work.
    durability_note = models.TextField(
        blank=True,
        db_default="",
        help_text="When the cluster is not durable, what is lost and when, in plain words.",
    )
    # How clients authenticate: [] (no authentication), or "scram" and/or "mtls" (see
    # provisioning.security); the CA and the control plane's credential are in `security`.
    client_authentication = models.JSONField(default=list, blank=True, db_default=[])
    # Bootstrap servers per client authentication, as the backend reports them.
    client_endpoints = models.JSONField(default=dict, blank=True, db_default={})
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "name", "-created_at"]
        constraints = [
            # A deleted cluster's name may be taken again.
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=~Q(status=ClusterStatus.DELETED),
                name="unique_live_cluster_name_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}" if self.organization_id else self.name


class ClusterSecurity(models.Model):
    """A secured cluster's certificate authority and the control plane's own credential, encrypted at
    rest. The CA's certificate is public (clients trust it); its key and the password are not."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="security")
    ca_certificate_pem = models.TextField()
    # {"ca_private_key_pem": ..., "admin_password": ...}
    secrets = EncryptedJSONField()
    # Raised by a certificate rotation; brokers get new certificates as they restart.
    certificate_generation = models.PositiveIntegerField(default=1)
    certificates_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"client security of {self.cluster}"


class Broker(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="brokers")
    node_id = models.PositiveIntegerField()
    rack = models.CharField(max_length=63)
    endpoint = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=BrokerState.choices, default=BrokerState.PENDING)
    state_detail = models.TextField(blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "node_id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "node_id"], name="unique_node_id_per_cluster")
        ]

    def __str__(self) -> str:
        return f"broker {self.node_id} ({self.rack})"


class BrokerAnomaly(models.Model):
    """A broker seen unreachable, kept until it is resolved so that nothing is forgotten: anomalies
    found while self-healing is off, or while a worker is down, are acted on when that changes."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="anomalies")
    node_id = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=AnomalyState.choices, default=AnomalyState.OPEN)
    source = models.CharField(max_length=32)  # what noticed it: reconcile (the backend), monitoring
    detail = models.TextField(blank=True)  # the latest observation, in plain words
    detected_at = models.DateTimeField()  # first observation of the broker being unreachable
    last_seen_at = models.DateTimeField()  # latest observation of it still being unreachable
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The latest replace-broker operation started for it, and how many were.
    operation = models.ForeignKey(
        "operations.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    retry_after = models.DateTimeField(null=True, blank=True)  # after a failed replacement
    # Why self-healing leaves it alone although it is due, in plain words (empty when nothing holds it).
    held_because = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "node_id"],
                condition=Q(state__in=LIVE_ANOMALY_STATES),
                name="one_live_anomaly_per_broker",
            )
        ]

    def __str__(self) -> str:
        return f"broker {self.node_id} unreachable since {self.detected_at:%Y-%m-%d %H:%M:%S} ({self.state})"
