"""Targets as the plain data backends take, and which target a cluster request means."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from controlplane.targets.choices import TargetKind
from controlplane.targets.hosts import cluster_hosts, host_pool, taken_hosts
from controlplane.targets.models import Placement, Target
from controlplane.tenancy.models import Organization
from provisioning.ansible.backend import VmBackend, VmPlacement
from provisioning.ansible.connection import check_pool_connection
from provisioning.ansible.inventory import Release
from provisioning.backends.base import Check, ConnectionReport
from provisioning.kubernetes.backend import KubernetesBackend
from provisioning.kubernetes.connection import check_kubernetes_connection
from provisioning.kubernetes.target import KubernetesTarget, VolumeRetention

# The backend each kind of target serves.
BACKEND_OF_KIND = {TargetKind.KUBERNETES: "kubernetes", TargetKind.VM: "vm"}
DEFAULT_TARGET_NAME = "default"


class TargetNotFound(Exception):
    """The request names no usable target; the message says why, for the `target` field."""


def kubernetes_target(target: Target | None) -> KubernetesTarget:
    """A registered target, or (None) the default one from settings, which dry runs render for when
    an organization has registered none; it reaches the API server in-cluster."""
    if target is None:
        return KubernetesTarget(
            name=DEFAULT_TARGET_NAME,
            namespace=settings.KUBERNETES_NAMESPACE,
            topology_key=settings.KUBERNETES_TOPOLOGY_KEY,
            storage_class=settings.KUBERNETES_STORAGE_CLASS,
            image=settings.KUBERNETES_IMAGE,
        )
    config = target.config
    return KubernetesTarget(
        name=target.name,
        namespace=config.get("namespace") or settings.KUBERNETES_NAMESPACE,
        topology_key=config.get("topology_key") or settings.KUBERNETES_TOPOLOGY_KEY,
        storage_class=config.get("storage_class", settings.KUBERNETES_STORAGE_CLASS),
        image=config.get("image") or settings.KUBERNETES_IMAGE,
        volume_retention=VolumeRetention(config.get("volume_retention", VolumeRetention.DELETE)),
        allowed_cidrs=tuple(config.get("allowed_cidrs", ())),
        kubeconfig=target.credentials.get("kubeconfig", ""),
        context=config.get("context", ""),
    )


def kubernetes_backend(target: Target | None, *, offline: bool = False) -> KubernetesBackend:
    return KubernetesBackend(
        kubernetes_target(target),
        offline=offline,
        request_timeout=settings.KUBERNETES_REQUEST_TIMEOUT_SECONDS,
    )


def check_connection(target: Target) -> ConnectionReport:
    """What reaching a registered target with its stored credentials finds."""
    if target.kind == TargetKind.VM:
        return check_pool_connection(
            host_pool(target),
            ssh_private_key=target.credentials.get("ssh_private_key", ""),
            known_hosts=target.credentials.get("known_hosts", ""),
            timeout=settings.VM_CONNECT_TIMEOUT_SECONDS,
        )
    if target.kind != TargetKind.KUBERNETES:
        message = f"Testing the connection of a {target.get_kind_display()} target is not supported yet."
        return ConnectionReport(checks=(Check("connection", False, message),))
    return check_kubernetes_connection(
        kubernetes_target(target), timeout=settings.KUBERNETES_REQUEST_TIMEOUT_SECONDS
    )


def vm_backend(
    target: Target | None,
    *,
    cluster_id: object = None,
    release: Callable[[str], Release] | None = None,
    offline: bool = False,
) -> VmBackend:
    """The `vm` backend on a host pool, for one cluster (its hosts as allocated) or, without
    `cluster_id`, for a cluster not created yet."""
    if target is None:
        raise TargetNotFound(
            "Clusters on VMs go to a host pool: register one (POST /api/v1/targets/ with kind vm) first."
        )
    placement = VmPlacement(taken=frozenset(taken_hosts(target)))
    if cluster_id is not None:
        layout = (
            Placement.objects.filter(cluster_id=cluster_id, target=target)
            .values_list("layout", flat=True)
            .first()
            or {}
        )
        placement = VmPlacement(
            hosts=tuple(sorted(cluster_hosts(cluster_id).items())),
            taken=placement.taken,
            controllers=tuple(layout.get("controllers", ())),
            quorum=layout.get("quorum", ""),
        )
    return VmBackend(
        host_pool(target),
        placement,
        ssh_private_key=target.credentials.get("ssh_private_key", ""),
        known_hosts=target.credentials.get("known_hosts", ""),
        release=release,
        runs_dir=Path(settings.VM_RUNS_DIR),
        playbook_timeout=settings.VM_PLAYBOOK_TIMEOUT_SECONDS,
        offline=offline,
    )


def choose_target(
    organization: Organization, backend: str, name: str | None, *, dry_run: bool
) -> Target | None:
    """The target a new cluster of `backend` goes to: the one named, or the organization's only one of
    that backend. None: the backend's implicit target (`local`: this machine; for a dry run of
    another backend, the default one from settings)."""
    targets = Target.objects.filter(organization=organization)
    kinds = [kind for kind, served in BACKEND_OF_KIND.items() if served == backend]
    if name:
        target = targets.filter(name=name).first()
        if target is None:
            raise TargetNotFound(f"{organization.name} has no target named {name!r}.")
        if target.kind not in kinds:
            raise TargetNotFound(
                f"Target {name!r} is a {target.kind} target; it cannot run {backend} clusters."
            )
        return target
    if not kinds:
        return None
    candidates = list(targets.filter(kind__in=kinds)[:2])
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise TargetNotFound(f"{organization.name} has several {backend} targets; name one.")
    if dry_run:
        return None
    raise TargetNotFound(
        f"{organization.name} has no {backend} target: register one (POST /api/v1/targets/) before "
        "creating clusters on it; a dry run (?dry_run=true) renders for the default one."
    )
