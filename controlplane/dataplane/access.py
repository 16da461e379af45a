"""Every write to who may use a secured cluster: users (SCRAM-SHA-512 or mTLS), their quotas, and ACL rules.

As with topics (`actions`), the record is written in a transaction that commits only once Kafka has
taken the change. Secrets are generated here and returned once to the caller; what is stored is
encrypted (`controlplane.encryption`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit.actions import Actor, record_event
from controlplane.clusters.models import Cluster, ClusterSecurity
from controlplane.dataplane.choices import (
    OPERATIONS_BY_RESOURCE,
    AclPatternType,
    AclResourceType,
    UserMechanism,
)
from controlplane.dataplane.errors import DataPlaneConflict, DataPlaneInvalid
from controlplane.dataplane.kafka import cluster_admin
from controlplane.dataplane.models import AclRule, KafkaUser
from provisioning import security
from provisioning.kafka_admin.base import AclEntry, KafkaAdmin, KafkaRefusedError

USER_NAME = re.compile(r"[a-zA-Z0-9._-]{1,64}")
PRINCIPAL = re.compile(r"User:(\*|[a-zA-Z0-9._-]{1,64})")
CLUSTER_RESOURCE_NAME = "kafka-cluster"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
USER_CERTIFICATE_DAYS = 365
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage")

MECHANISM_NEEDS = {UserMechanism.SCRAM_SHA_512: security.SCRAM, UserMechanism.MTLS: security.MTLS}


def user_name_error(name: str) -> str | None:
    if not USER_NAME.fullmatch(name):
        return "Use 1 to 64 letters, digits, '.', '_' or '-' (a certificate's common name maps to the same name)."
    if name.startswith(security.RESERVED_PREFIX):
        return f"Names starting with {security.RESERVED_PREFIX!r} are the control plane's own."
    return None


def password_error(password: str) -> str | None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"A password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in password):
        return "A password has no control characters."
    return None


def _require_secured(cluster: Cluster, what: str) -> None:
    if not cluster.client_authentication:
        raise DataPlaneConflict(
            f"Cluster {cluster.name} lets clients connect without authentication (client_authentication is "
            f"empty), so {what} would have no effect; create a cluster with client_authentication."
        )


# -- users -----------------------------------------------------------------------------------------------


def create_user(
    *,
    cluster: Cluster,
    name: str,
    mechanism: str,
    actor: Actor,
    password: str | None = None,
    quota: Mapping[str, float | None] | None = None,
) -> tuple[KafkaUser, dict[str, str]]:
    """Create a user and its credential; returns the user and the secret to show once (the password,
    or the certificate with its private key)."""
    _require_secured(cluster, "users")
    needed = MECHANISM_NEEDS[UserMechanism(mechanism)]
    if needed not in cluster.client_authentication:
        raise DataPlaneInvalid(
            {
                "mechanism": f"Cluster {cluster.name} has no {needed} listener (client_authentication: "
                f"{', '.join(cluster.client_authentication)})."
            }
        )
    if password is not None and mechanism != UserMechanism.SCRAM_SHA_512:
        raise DataPlaneInvalid({"password": "Only SCRAM-SHA-512 users have a password."})
    credentials, secret = _new_credentials(cluster, name, mechanism, password)
    try:
        with transaction.atomic():
            user = KafkaUser.objects.create(
                cluster=cluster,
                name=name,
                mechanism=mechanism,
                credentials=credentials,
                credentials_rotated_at=timezone.now(),
                created_by=actor.account,
                **_certificate_fields(credentials),
                **{key: value for key, value in (quota or {}).items() if value is not None},
            )
            with cluster_admin(cluster) as admin:
                _apply_credentials(admin, user)
                if quota:
                    _apply_quota(admin, user.name, quota)
            record_event(
                actor=actor,
                action="kafka_user.create",
                target=user,
                organization=cluster.organization,
                details={"cluster": str(cluster.id), "mechanism": mechanism, "quota": dict(quota or {})},
            )
    except IntegrityError as exc:
        raise DataPlaneConflict(f"Cluster {cluster.name} already has a user named {name!r}.") from exc
    return user, secret


def rotate_credentials(
    *, user: KafkaUser, actor: Actor, password: str | None = None
) -> tuple[KafkaUser, dict]:
    """A new credential for the user. For SCRAM the old password stops working at once; a client
    certificate cannot be revoked in Kafka (it checks no revocation lists), so the old one stays valid
    until it expires (`USER_CERTIFICATE_DAYS` at most)."""
    if password is not None and user.mechanism != UserMechanism.SCRAM_SHA_512:
        raise DataPlaneInvalid({"password": "Only SCRAM-SHA-512 users have a password."})
    with transaction.atomic():
        user = KafkaUser.objects.select_for_update().select_related("cluster__organization").get(pk=user.pk)
        credentials, secret = _new_credentials(user.cluster, user.name, user.mechanism, password)
        user.credentials = credentials
        user.credentials_rotated_at = timezone.now()
        for field, value in _certificate_fields(credentials).items():
            setattr(user, field, value)
        with cluster_admin(user.cluster) as admin:
            _apply_credentials(admin, user)
        user.save(
            update_fields=[
                "credentials",
                "credentials_rotated_at",
                "certificate_serial",
                "certificate_expires_at",
                "updated_at",
            ]
        )
        record_event(
            actor=actor,
            action="kafka_user.rotate",
            target=user,
            organization=user.cluster.organization,
            details={"cluster": str(user.cluster_id), "mechanism": user.mechanism},
        )
    return user, secret


def update_quota(*, user: KafkaUser, quota: Mapping[str, float | None], actor: Actor) -> KafkaUser:
    """Set (or, for None, remove) the user's quotas; those not named stay as they are."""
    with transaction.atomic():
        user = KafkaUser.objects.select_for_update().select_related("cluster__organization").get(pk=user.pk)
        changes = {key: value for key, value in quota.items() if getattr(user, key) != value}
        if not changes:
            return user
        with cluster_admin(user.cluster) as admin:
            _apply_quota(admin, user.name, changes)
        for key, value in changes.items():
            setattr(user, key, value)
        user.save(update_fields=[*sorted(changes), "updated_at"])
        record_event(
            actor=actor,
            action="kafka_user.quota",
            target=user,
            organization=user.cluster.organization,
            details={"cluster": str(user.cluster_id), "quota": changes},
        )
    return user


def delete_user(*, user: KafkaUser, actor: Actor) -> None:
    """Remove the user's credential, quotas and every ACL binding of its principal from Kafka (its ACL
    rules go with it, and a user created later under the same name starts with none), then forget it."""
    with transaction.atomic():
        user = KafkaUser.objects.select_for_update().select_related("cluster__organization").get(pk=user.pk)
        cluster = user.cluster
        with cluster_admin(cluster) as admin:
            if user.mechanism == UserMechanism.SCRAM_SHA_512:
                admin.delete_scram_credential(user.name)
            _apply_quota(admin, user.name, dict.fromkeys(QUOTA_KEYS))
            admin.delete_acls([entry for entry in admin.describe_acls() if entry.principal == user.principal])
        record_event(
            actor=actor,
            action="kafka_user.delete",
            target=user,
            organization=cluster.organization,
            details={"cluster": str(cluster.id), "acl_rules": user.acl_rules.count()},
        )
        user.delete()


def _new_credentials(
    cluster: Cluster, name: str, mechanism: str, password: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    if mechanism == UserMechanism.SCRAM_SHA_512:
        password = password or security.new_password()
        return {"password": password, "iterations": security.SCRAM_ITERATIONS}, {"password": password}
    authority = ClusterSecurity.objects.get(cluster=cluster)
    issued = security.issue_certificate(
        authority.ca_certificate_pem,
        authority.secrets["ca_private_key_pem"],
        name,
        valid_for=timedelta(days=USER_CERTIFICATE_DAYS),
    )
    credentials = {"certificate_pem": issued.certificate_pem, "private_key_pem": issued.private_key_pem}
    secret = credentials | {"ca_pem": authority.ca_certificate_pem}
    return credentials, secret


def _certificate_fields(credentials: Mapping[str, Any]) -> dict[str, Any]:
    if "certificate_pem" not in credentials:
        return {"certificate_serial": "", "certificate_expires_at": None}
    serial, not_after, _ = security.certificate_facts(credentials["certificate_pem"])
    return {"certificate_serial": f"{serial:x}", "certificate_expires_at": not_after}


def _apply_credentials(admin: KafkaAdmin, user: KafkaUser) -> None:
    """Make Kafka accept the user's credential: a SCRAM credential is stored in the cluster; a client
    certificate needs nothing there (the cluster trusts its CA)."""
    if user.mechanism == UserMechanism.SCRAM_SHA_512:
        try:
            admin.upsert_scram_credential(
                user.name,
                user.credentials["password"],
                user.credentials.get("iterations", security.SCRAM_ITERATIONS),
            )
        except KafkaRefusedError as exc:
            raise DataPlaneInvalid({"password": f"Kafka refused it: {exc}"}) from exc


def _apply_quota(admin: KafkaAdmin, user_name: str, quota: Mapping[str, float | None]) -> None:
    try:
        admin.alter_user_quotas(
            user_name, {key: None if value is None else float(value) for key, value in quota.items()}
        )
    except KafkaRefusedError as exc:
        raise DataPlaneInvalid({"quota": f"Kafka refused it: {exc}"}) from exc


# -- ACLs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AclRequest:
    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operations: tuple[str, ...]
    permission: str
    host: str = "*"


def acl_errors(request: AclRequest) -> dict[str, str]:
    """Field -> what is wrong, by Kafka's own rules for ACL bindings."""
    errors: dict[str, str] = {}
    if not PRINCIPAL.fullmatch(request.principal):
        errors["principal"] = (
            "A principal is User:<name> (letters, digits, '.', '_', '-') or User:* for everyone."
        )
    allowed = OPERATIONS_BY_RESOURCE[request.resource_type]
    if not request.operations:
        errors["operations"] = "Name at least one operation."
    elif wrong := [op for op in request.operations if op not in allowed]:
        errors["operations"] = (
            f"{', '.join(wrong)} cannot be granted on a {request.resource_type}; possible: {', '.join(sorted(allowed))}."
        )
    elif len(set(request.operations)) != len(request.operations):
        errors["operations"] = "Name each operation once."
    if request.resource_type == AclResourceType.CLUSTER:
        if request.resource_name != CLUSTER_RESOURCE_NAME:
            errors["resource_name"] = f"The cluster resource is named {CLUSTER_RESOURCE_NAME!r}."
        if request.pattern_type != AclPatternType.LITERAL:
            errors["pattern_type"] = "The cluster resource is matched literally."
    elif not request.resource_name:
        errors["resource_name"] = "Name the resource ('*' for every one, with the literal pattern)."
    elif request.resource_name == "*" and request.pattern_type != AclPatternType.LITERAL:
        errors["resource_name"] = "'*' means every resource with the literal pattern only."
    if request.host != "*":
        try:
            ipaddress.ip_address(request.host)
        except ValueError:
            errors["host"] = "A host is '*' or one IP address (Kafka matches no names or networks)."
    return errors


def _entries(rule: AclRule | AclRequest) -> list[AclEntry]:
    return [
        AclEntry(
            principal=rule.principal,
            host=rule.host,
            resource_type=rule.resource_type,
            resource_name=rule.resource_name,
            pattern_type=rule.pattern_type,
            operation=operation,
            permission=rule.permission,
        )
        for operation in rule.operations
    ]


def create_acl(*, cluster: Cluster, request: AclRequest, actor: Actor) -> AclRule:
    _require_secured(cluster, "ACLs")
    if errors := acl_errors(request):
        raise DataPlaneInvalid(errors)
    with transaction.atomic():
        # One rule at a time per cluster: deciding whether a rule repeats another, and which bindings
        # a deletion may remove, must see every rule.
        Cluster.objects.select_for_update(of=("self",)).filter(pk=cluster.pk).first()
        same = AclRule.objects.filter(
            cluster=cluster,
            principal=request.principal,
            resource_type=request.resource_type,
            resource_name=request.resource_name,
            pattern_type=request.pattern_type,
            permission=request.permission,
            host=request.host,
        )
        if any(sorted(rule.operations) == sorted(request.operations) for rule in same):
            raise DataPlaneConflict("The same rule exists already.")
        rule = AclRule.objects.create(
            cluster=cluster,
            user=KafkaUser.objects.filter(
                cluster=cluster, name=request.principal.removeprefix("User:")
            ).first(),
            principal=request.principal,
            resource_type=request.resource_type,
            resource_name=request.resource_name,
            pattern_type=request.pattern_type,
            operations=list(request.operations),
            permission=request.permission,
            host=request.host,
            created_by=actor.account,
        )
        with cluster_admin(cluster) as admin:
            try:
                admin.create_acls(_entries(rule))
            except KafkaRefusedError as exc:
                raise DataPlaneInvalid({"non_field_errors": f"Kafka refused it: {exc}"}) from exc
        record_event(
            actor=actor,
            action="acl.create",
            target=rule,
            organization=cluster.organization,
            details={"cluster": str(cluster.id), "rule": str(rule)},
        )
    return rule


def delete_acl(*, rule: AclRule, actor: Actor) -> None:
    """Remove the rule's bindings from Kafka, except those another rule still grants, and forget it."""
    with transaction.atomic():
        cluster = (
            Cluster.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=rule.cluster_id)
        )
        rule = AclRule.objects.get(pk=rule.pk)
        kept = {
            entry
            for other in AclRule.objects.filter(cluster=cluster).exclude(pk=rule.pk)
            for entry in _entries(other)
        }
        with cluster_admin(cluster) as admin:
            admin.delete_acls([entry for entry in _entries(rule) if entry not in kept])
        record_event(
            actor=actor,
            action="acl.delete",
            target=rule,
            organization=cluster.organization,
            details={"cluster": str(cluster.id), "rule": str(rule)},
        )
        rule.delete()


def rule_states(rules: Sequence[AclRule], bindings: Iterable[AclEntry]) -> dict[Any, str]:
    """Rule id -> "ok" when Kafka has every binding of the rule, else "missing"."""
    present = set(bindings)
    return {
        rule.pk: "ok" if all(entry in present for entry in _entries(rule)) else "missing" for rule in rules
    }
