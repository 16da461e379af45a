"""Registering, changing and removing targets (one transaction each, audited; secrets never in the
audit record)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError

from controlplane.audit.actions import Actor, record_event
from controlplane.targets.models import Target
from controlplane.tenancy.models import Organization


class TargetInUse(Exception):
    """Clusters still run on the target."""


@transaction.atomic
def register_target(
    *,
    organization: Organization,
    name: str,
    kind: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, Any],
    actor: Actor,
) -> Target:
    target = Target.objects.create(
        organization=organization,
        name=name,
        kind=kind,
        config=dict(config),
        credentials=dict(credentials),
        created_by=actor.account,
    )
    record_event(
        actor=actor,
        action="target.register",
        target=target,
        organization=organization,
        details={"name": name, "kind": kind, "config": dict(config), "credentials": sorted(credentials)},
    )
    return target


@transaction.atomic
def update_target(
    *, target: Target, config: Mapping[str, Any] | None, credentials: Mapping[str, Any] | None, actor: Actor
) -> Target:
    """Settings given replace the stored ones; credentials given replace the stored ones, so a
    kubeconfig need not be sent again to change the namespace. Clusters already on the target keep
    running where they are; the new settings apply from their next operation."""
    changed = []
    if config is not None:
        target.config = {**target.config, **config}
        changed.append("config")
    if credentials is not None:
        target.credentials = dict(credentials)
        changed.append("credentials")
    target.save(update_fields=[*changed, "updated_at"])
    record_event(
        actor=actor,
        action="target.update",
        target=target,
        organization=target.organization,
        details={"changed": changed, "config": dict(config or {})},
    )
    return target


@transaction.atomic
def remove_target(*, target: Target, actor: Actor) -> None:
    in_use = target.placements.exclude(cluster__status="deleted").count()
    if in_use:
        raise TargetInUse(f"{in_use} cluster(s) run on target {target.name}; delete them first.")
    record_event(actor=actor, action="target.remove", target=target, organization=target.organization)
    target.placements.all().delete()  # of deleted clusters: their history does not need the target
    try:
        target.delete()
    except ProtectedError as exc:  # a cluster placed meanwhile
        raise TargetInUse(f"clusters run on target {target.name}; delete them first.") from exc
