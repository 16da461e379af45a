"""Factories that build each backend from Django settings (named in `CONTROLPLANE_BACKENDS`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from provisioning.backends.base import ClusterSpec
from provisioning.backends.local import LocalBackend
from provisioning.kafka_admin.base import KafkaAdmin
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.kafka_admin.renumbered import RenumberedKafkaAdmin


def local_backend() -> LocalBackend:
    kafka_home = Path(settings.KAFKA_HOME) if settings.KAFKA_HOME else None
    return LocalBackend(Path(settings.LOCAL_BACKEND_STATE_DIR), kafka_home=kafka_home)


def confluent_admin(spec: ClusterSpec, bootstrap_servers: str) -> KafkaAdmin:
    admin = ConfluentKafkaAdmin(bootstrap_servers, timeout=settings.KAFKA_ADMIN_TIMEOUT_SECONDS)
    if len(spec.brokers) == 1 and "," not in bootstrap_servers:
        # A single-node cluster's only endpoint is its bootstrap address; the node there may number
        # itself differently (the development broker always says 111).
        return RenumberedKafkaAdmin(admin, {bootstrap_servers: spec.brokers[0].node_id})
    return admin
