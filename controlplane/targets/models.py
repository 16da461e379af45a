"""Where an organization's clusters are placed: registered targets (`local` is implicit, not a row)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from controlplane.encryption import EncryptedJSONField
from controlplane.targets.choices import TargetKind


class Target(models.Model):
    """One place clusters go. `config` holds what may be shown (for Kubernetes: namespace, topology
    key, storage class, image, volume retention, allowed networks, context); `credentials` holds what
    may not (a kubeconfig): stored encrypted, accepted by the API but never returned."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="targets")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=TargetKind.choices)
    config = models.JSONField(default=dict)
    credentials = EncryptedJSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_target_name_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Placement(models.Model):
    """Which target a cluster runs on. Clusters without one run where their backend runs by default
    (`local`: this machine). A target in use cannot be deleted."""

    cluster = models.OneToOneField("clusters.Cluster", on_delete=models.CASCADE, related_name="placement")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="placements")
    # What was decided for the cluster on this target when it was created and must stay as it was
    # (on a host pool: its KRaft controllers and quorum style).
    layout = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.cluster_id} on {self.target}"


class HostAllocation(models.Model):
    """The one record of which host of a pool runs which broker. A host holds at most one broker (the
    unique constraint is what two concurrent allocations cannot get past); a broker record that goes
    (removed by scale-in or replacement) frees its host with it."""

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="allocations")
    host = models.CharField(max_length=63)  # the host's name in the pool's settings
    broker = models.OneToOneField("clusters.Broker", on_delete=models.CASCADE, related_name="host_allocation")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "host"]
        constraints = [models.UniqueConstraint(fields=["target", "host"], name="one_broker_per_host")]

    def __str__(self) -> str:
        return f"{self.host} of {self.target.name}"
