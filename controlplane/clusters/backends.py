"""Factories that build each backend from Django settings (named in `CONTROLPLANE_BACKENDS`)."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings

from controlplane.targets import resolve
from provisioning import distribution
from provisioning.ansible.backend import VmBackend
from provisioning.ansible.inventory import Release
from provisioning.ansible.pool import HostPool
from provisioning.ansible.release import release_archive
from provisioning.backends.base import ClusterSpec, KafkaConnection
from provisioning.backends.local import LocalBackend
from provisioning.distribution.java import JavaRuntime, find_java
from provisioning.kafka_admin.base import KafkaAdmin
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.kafka_admin.renumbered import RenumberedKafkaAdmin
from provisioning.kubernetes.backend import KubernetesBackend

LOCAL_ENGINES = ("auto", "kafka", "tansu")


def distribution_config() -> distribution.DistributionConfig:
    return distribution.DistributionConfig(
        cache_dir=Path(settings.KAFKA_DISTRIBUTION_CACHE_DIR),
        sources=tuple(settings.KAFKA_DISTRIBUTION_SOURCES),
        mirrors=tuple(settings.KAFKA_MIRROR_URLS),
        maven=settings.MAVEN_EXECUTABLE,
    )


def kafka_distribution(version: str) -> distribution.KafkaDistribution:
    """The distribution of `version`: `KAFKA_HOME` when it holds that version, else the cache (fetched
    on first use)."""
    if settings.KAFKA_HOME:
        own = distribution.from_home(Path(settings.KAFKA_HOME))
        if own.version == version:
            return own
    return distribution.ensure(version, distribution_config())


@functools.cache
def _java() -> JavaRuntime | None:
    # Asked once per process: the answer only changes when someone installs Java, and a restart
    # of the control plane picks that up.
    return find_java()


def local_engine() -> tuple[str, JavaRuntime | None]:
    """Which engine `local` clusters run here, and on which Java runtime."""
    wanted = settings.LOCAL_ENGINE
    if wanted == "tansu":
        return "tansu", None
    java = _java()
    if java is None and wanted == "auto":
        return "tansu", None
    return "kafka", java


def local_backend() -> LocalBackend:
    engine, java = local_engine()
    return LocalBackend(
        Path(settings.LOCAL_BACKEND_STATE_DIR),
        distributions=kafka_distribution if engine == "kafka" else None,
        java_home=java.home if java is not None else None,
        max_heap_mb=settings.LOCAL_BROKER_MAX_HEAP_MB,
    )


def confluent_admin(spec: ClusterSpec, connection: KafkaConnection) -> KafkaAdmin:
    """The admin client for a cluster, connected as its backend says (`Backend.connection`)."""
    admin = ConfluentKafkaAdmin(
        connection.bootstrap_servers,
        timeout=settings.KAFKA_ADMIN_TIMEOUT_SECONDS,
        config=dict(connection.config),
    )
    if connection.renumber:
        return RenumberedKafkaAdmin(admin, dict(connection.renumber))
    return admin


def kubernetes_backend() -> KubernetesBackend:
    """The `kubernetes` backend on the default target (settings, in-cluster credentials); clusters on
    a registered target get their own instance (`specs.make_backend`)."""
    return resolve.kubernetes_backend(None)


def vm_release(version: str) -> Release:
    """The release VM hosts install: this installation's distribution of `version`, packed once into
    an archive the playbooks push to every host (checked there against its SHA-512)."""
    archive = release_archive(kafka_distribution(version), Path(settings.VM_RELEASES_DIR))
    return Release(version, archive.sha512, str(archive.path))


def vm_backend() -> VmBackend:
    """The `vm` backend has no implicit target: clusters on VMs go to a registered host pool
    (`specs.make_backend` makes the backend per pool and cluster). This one holds no host."""
    return VmBackend(HostPool("none", ()), offline=True)
