"""Factories that build each backend from Django settings (named in `CONTROLPLANE_BACKENDS`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from provisioning.backends.base import ClusterSpec
from provisioning.backends.local import LocalBackend
from provisioning.kafka_admin.base import KafkaAdmin
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin


def local_backend() -> LocalBackend:
    kafka_home = Path(settings.KAFKA_HOME) if settings.KAFKA_HOME else None
    return LocalBackend(Path(settings.LOCAL_BACKEND_STATE_DIR), kafka_home=kafka_home)


def confluent_admin(spec: ClusterSpec, bootstrap_servers: str) -> KafkaAdmin:
    return ConfluentKafkaAdmin(bootstrap_servers)
