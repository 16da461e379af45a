"""What the control plane owns inside a cluster: topics, users with their quotas, and ACL rules (the
desired state; Kafka holds the rest)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from controlplane.dataplane.choices import AclPatternType, AclPermission, AclResourceType, UserMechanism
from controlplane.encryption import EncryptedJSONField


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


class KafkaUser(models.Model):
    """A client identity in a secured cluster: principal `User:<name>`, authenticating with SCRAM-SHA-512
    or a client certificate. Its secret is kept encrypted (to apply it again where Kafka lost it) and
    is shown once, when it is created or rotated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="kafka_users")
    name = models.CharField(max_length=64)
    mechanism = models.CharField(max_length=16, choices=UserMechanism.choices)
    # SCRAM: {"password", "iterations"}; mTLS: {"certificate_pem", "private_key_pem"}.
    credentials = EncryptedJSONField()
    certificate_serial = models.CharField(max_length=64, blank=True)  # hex, mTLS only
    certificate_expires_at = models.DateTimeField(null=True, blank=True)
    credentials_rotated_at = models.DateTimeField(null=True, blank=True)
    # Client quotas (KIP-13/KIP-124): None means none set.
    producer_byte_rate = models.PositiveBigIntegerField(null=True, blank=True)
    consumer_byte_rate = models.PositiveBigIntegerField(null=True, blank=True)
    request_percentage = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="unique_kafka_user_per_cluster")
        ]

    def __str__(self) -> str:
        return f"User:{self.name}"

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


class AclRule(models.Model):
    """An ACL rule as it was written: one principal, resource and permission for several operations
    (Kafka stores one binding per operation). Rules of a managed user go with the user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="acl_rules")
    user = models.ForeignKey(
        KafkaUser, null=True, blank=True, on_delete=models.CASCADE, related_name="acl_rules"
    )
    principal = models.CharField(max_length=255)
    resource_type = models.CharField(max_length=32, choices=AclResourceType.choices)
    resource_name = models.CharField(max_length=255)
    pattern_type = models.CharField(max_length=16, choices=AclPatternType.choices)
    operations = models.JSONField()  # as written, e.g. ["write", "describe"]
    permission = models.CharField(max_length=8, choices=AclPermission.choices)
    host = models.CharField(max_length=255, default="*")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cluster", "principal", "resource_type", "resource_name", "created_at"]

    def __str__(self) -> str:
        return (
            f"{self.permission} {self.principal} {','.join(self.operations)} on {self.resource_type} "
            f"{self.resource_name} ({self.pattern_type}) from {self.host}"
        )
