"""Dashboard pages of a cluster's data plane: its topics (list, detail by partition and rack, create,
grow and edit, delete) and its users with their ACL rules and quotas.

Every change is checked by the REST API's serializers and carried out by the same actions, so the
refusals and their messages are the API's; what Kafka is asked comes from `controlplane.dataplane.reads`.
Viewers see every page and get no control; a forged POST from one is a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework import serializers

from controlplane.api.permissions import can_write
from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.dashboard.queries import require_write, visible_clusters
from controlplane.dataplane import access, actions, reads
from controlplane.dataplane.api import serializers as api
from controlplane.dataplane.choices import (
    OPERATIONS_BY_RESOURCE,
    AclOperation,
    AclPatternType,
    AclPermission,
    AclResourceType,
    UserMechanism,
)
from controlplane.dataplane.errors import ClusterUnreachable, DataPlaneConflict, DataPlaneInvalid
from controlplane.dataplane.models import AclRule, KafkaUser, Topic
from provisioning import security

# Session key holding a just-created or rotated user's secret until the users page shows it, once.
NEW_SECRET_SESSION_KEY = "dashboard.new_kafka_secret"
CONFIG_HELP = "One key=value per line, e.g. retention.ms=604800000. Lines starting with # are ignored."

Errors = dict[str, list[str]]


@dataclass
class Outcome:
    """What a change from a form came to: field -> messages, and refusals of the request as a whole."""

    errors: Errors = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refusals


def _cluster(request: HttpRequest, pk: uuid.UUID, *, write: bool = False) -> Cluster:
    cluster = get_object_or_404(
        visible_clusters(request.user).exclude(status=ClusterStatus.DELETED).select_related("organization"),
        pk=pk,
    )
    if write:
        require_write(request.user, cluster.organization_id)
    return cluster


def _flat(errors: Mapping[str, Any], prefix: str = "") -> Errors:
    """DRF's errors (nested for the quota) as field -> messages; a nested field keeps its own name."""
    found: Errors = {}
    for name, value in errors.items():
        key = "" if name == "non_field_errors" else name
        if isinstance(value, Mapping):
            found.update(_flat(value))
        else:
            found.setdefault(prefix + key, []).extend(str(message) for message in value)
    return found


def _validated(serializer: serializers.Serializer, outcome: Outcome) -> dict[str, Any] | None:
    if serializer.is_valid():
        return dict(serializer.validated_data)
    errors = _flat(serializer.errors)
    outcome.refusals.extend(errors.pop("", []))
    outcome.errors.update(errors)
    return None


def _attempt(outcome: Outcome, change: Callable[[], object]) -> object | None:
    """Run an action; its refusals go into `outcome` as the API would answer them (400/409/503)."""
    try:
        return change()
    except DataPlaneInvalid as exc:
        for name, message in exc.errors.items():
            outcome.errors.setdefault(name, []).append(message)
    except (DataPlaneConflict, ClusterUnreachable) as exc:
        outcome.refusals.append(str(exc))
    return None


def _refuse(request: HttpRequest, outcome: Outcome) -> None:
    for message in [
        *outcome.refusals,
        *(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in outcome.errors.items()),
    ]:
        messages.error(request, message)


def parse_config(text: str) -> tuple[dict[str, str], str | None]:
    """key=value lines into a dict; the error says which line is wrong."""
    config: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not key:
            return {}, f"Line {number}: write key=value, e.g. retention.ms=604800000."
        if key in config:
            return {}, f"Line {number}: {key} is given twice."
        config[key] = value.strip()
    return config, None


def config_text(config: Mapping[str, Any]) -> str:
    return "".join(f"{key}={value}\n" for key, value in sorted(config.items()))


def _optional(data: QueryDict, name: str) -> dict[str, str]:
    value = data.get(name, "").strip()
    return {name: value} if value else {}


# -- topics ------------------------------------------------------------------------------------------------


@login_required
@require_GET
def topic_list(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    cluster = _cluster(request, pk)
    found = reads.list_topics(cluster)
    context = {
        "cluster": cluster,
        "topics": found,
        "unknown": next((t["status_detail"] for t in found if t["status"] == "unknown"), ""),
        "can_write": can_write(request.user, cluster.organization_id),
    }
    return render(request, "dashboard/topic_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def topic_create(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    cluster = _cluster(request, pk, write=True)
    outcome = Outcome()
    data = request.POST
    if request.method == "POST":
        config, config_error = parse_config(data.get("config", ""))
        body = {
            "name": data.get("name", ""),
            **_optional(data, "partitions"),
            **_optional(data, "replication_factor"),
            "config": config,
            "deletion_protected": "deletion_protected" in data,
        }
        values = _validated(api.TopicCreateSerializer(data=body, context={"form_values": True}), outcome)
        if config_error:
            outcome.errors.setdefault("config", []).insert(0, config_error)
        if values is not None and outcome.ok:
            wanted = actions.topic_request(cluster, values)
            actor = Actor.from_request(request)
            topic = _attempt(
                outcome, lambda: actions.create_topic(cluster=cluster, request=wanted, actor=actor)
            )
            if isinstance(topic, Topic):
                messages.success(request, f"Topic {topic.name} created.")
                return redirect("dashboard:cluster-topic", pk=cluster.pk, name=topic.name)
    context = {
        "cluster": cluster,
        "values": {
            "name": data.get("name", ""),
            "partitions": data.get("partitions", ""),
            "replication_factor": data.get("replication_factor", ""),
            "config": data.get("config", ""),
            "deletion_protected": "deletion_protected" in data,
        },
        "defaults": {
            "partitions": actions.default_partitions(cluster),
            "replication_factor": cluster.replication_factor,
        },
        "errors": outcome.errors,
        "refusals": outcome.refusals,
        "config_help": CONFIG_HELP,
    }
    return render(request, "dashboard/topic_form.html", context, status=200 if outcome.ok else 400)


@dataclass(frozen=True)
class PartitionRow:
    """One partition as the topic page draws it: its replicas in each rack, the leader and ISR marked."""

    partition: int
    leader: int | None
    by_rack: list[list[dict[str, Any]]]
    isr: list[int]
    out_of_sync: list[int]
    start_offset: int | None
    end_offset: int | None
    size_bytes: int | None


def partition_rows(body: Mapping[str, Any], racks: list[str]) -> list[PartitionRow]:
    rows = []
    for partition in body.get("partition_details", []):
        in_sync = set(partition["isr"])
        by_rack: list[list[dict[str, Any]]] = [[] for _ in racks]
        for replica in partition["replicas"]:
            broker = replica["broker"]
            cell = {"broker": broker, "leader": broker == partition["leader"], "in_sync": broker in in_sync}
            by_rack[racks.index(replica["rack"]) if replica["rack"] in racks else len(racks) - 1].append(cell)
        rows.append(
            PartitionRow(
                partition=partition["partition"],
                leader=partition["leader"],
                by_rack=by_rack,
                isr=partition["isr"],
                out_of_sync=[r["broker"] for r in partition["replicas"] if r["broker"] not in in_sync],
                start_offset=partition["start_offset"],
                end_offset=partition["end_offset"],
                size_bytes=partition["size_bytes"],
            )
        )
    return rows


def _topic_racks(cluster: Cluster, body: Mapping[str, Any]) -> list[str]:
    """The cluster's racks, then any other rack a replica is in ("no rack" last when one has none)."""
    racks = list(cluster.racks)
    for partition in body.get("partition_details", []):
        for replica in partition["replicas"]:
            rack = replica["rack"] or "no rack"
            if rack not in racks:
                racks.append(rack)
            replica["rack"] = rack
    return racks


def _topic_page(
    request: HttpRequest,
    cluster: Cluster,
    name: str,
    outcome: Outcome | None = None,
    values: dict | None = None,
) -> HttpResponse:
    topic = Topic.objects.filter(cluster=cluster, name=name).first()
    try:
        body = reads.read_topic(cluster, name, topic, detail=True)
    except reads.TopicNotFound:
        raise Http404(f"No topic named {name}.") from None
    racks = _topic_racks(cluster, body)
    outcome = outcome or Outcome()
    context = {
        "cluster": cluster,
        "topic": body,
        "racks": racks,
        "rows": partition_rows(body, racks),
        "can_write": can_write(request.user, cluster.organization_id),
        "values": values
        or {
            "partitions": body["partitions"],
            "config": config_text(body["config"]),
            "deletion_protected": body["deletion_protected"],
        },
        "errors": outcome.errors,
        "refusals": outcome.refusals,
        "config_help": CONFIG_HELP,
    }
    return render(request, "dashboard/topic_detail.html", context, status=200 if outcome.ok else 400)


@login_required
@require_GET
def topic_detail(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    return _topic_page(request, _cluster(request, pk), name)


def _managed_topic(cluster: Cluster, name: str) -> Topic:
    topic = Topic.objects.filter(cluster=cluster, name=name).select_related("cluster__organization").first()
    if topic is None:
        raise Http404(f"{name} is not a topic managed here.")
    return topic


@login_required
@require_POST
def topic_edit(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    """Grow the partitions, change config overrides (a removed line goes back to the default) and
    deletion protection, as one PATCH of the API would."""
    cluster = _cluster(request, pk, write=True)
    topic = _managed_topic(cluster, name)
    data = request.POST
    outcome = Outcome()
    config, config_error = parse_config(data.get("config", ""))
    changes: dict[str, Any] = {}
    if data.get("partitions", "").strip() not in ("", str(topic.partitions)):
        changes["partitions"] = data["partitions"].strip()
    config_changes = {k: v for k, v in config.items() if topic.config.get(k) != v} | {
        k: None for k in topic.config if k not in config
    }
    if config_changes and not config_error:
        changes["config"] = config_changes
    protected = "deletion_protected" in data
    if protected != topic.deletion_protected:
        changes["deletion_protected"] = protected
    if config_error:
        outcome.errors["config"] = [config_error]
    elif not changes:
        messages.info(request, "Nothing to change.")
        return redirect("dashboard:cluster-topic", pk=cluster.pk, name=name)
    values = _validated(api.TopicUpdateSerializer(data=changes, context={"form_values": True}), outcome)
    if values is not None and outcome.ok:
        actor = Actor.from_request(request)
        _attempt(
            outcome,
            lambda: actions.update_topic(
                topic=topic,
                actor=actor,
                partitions=values.get("partitions"),
                config=values.get("config"),
                deletion_protected=values.get("deletion_protected"),
            ),
        )
        if outcome.ok:
            messages.success(request, f"Topic {name} changed.")
            return redirect("dashboard:cluster-topic", pk=cluster.pk, name=name)
    posted = {
        "partitions": data.get("partitions", ""),
        "config": data.get("config", ""),
        "deletion_protected": protected,
    }
    return _topic_page(request, cluster, name, outcome, posted)


@login_required
@require_http_methods(["GET", "POST"])
def topic_delete(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    cluster = _cluster(request, pk, write=True)
    topic = _managed_topic(cluster, name)
    outcome = Outcome()
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() != topic.name:
            outcome.errors["confirm_name"] = [f"Type {topic.name} to confirm."]
        else:
            actor = Actor.from_request(request)
            _attempt(outcome, lambda: actions.delete_topic(topic=topic, actor=actor))
            if outcome.ok:
                messages.success(request, f"Topic {name} deleted.")
                return redirect("dashboard:cluster-topics", pk=cluster.pk)
    context = {"cluster": cluster, "topic": topic, "errors": outcome.errors, "refusals": outcome.refusals}
    return render(request, "dashboard/topic_delete.html", context, status=200 if outcome.ok else 400)


# -- users, ACL rules and quotas ------------------------------------------------------------------------


def _users_page(
    request: HttpRequest,
    cluster: Cluster,
    outcome: Outcome | None = None,
    form: str = "",
    values: dict | None = None,
) -> HttpResponse:
    users = list(KafkaUser.objects.filter(cluster=cluster).order_by("name"))
    rules = list(AclRule.objects.filter(cluster=cluster))
    states = reads.acl_states(cluster, rules)
    outcome = outcome or Outcome()
    mechanisms = [
        (value, label)
        for value, label in UserMechanism.choices
        if access.MECHANISM_NEEDS[UserMechanism(value)] in cluster.client_authentication
    ]
    context = {
        "cluster": cluster,
        "secured": bool(cluster.client_authentication),
        "users": [
            {"user": user, "rules": [r for r in rules if r.principal == user.principal]} for user in users
        ],
        "rules": [{"rule": rule, "state": states.get(rule.pk, "unknown")} for rule in rules],
        "can_write": can_write(request.user, cluster.organization_id),
        "new_secret": request.session.pop(NEW_SECRET_SESSION_KEY, None),
        "mechanisms": mechanisms,
        "resource_types": AclResourceType.choices,
        "pattern_types": AclPatternType.choices,
        "permissions": AclPermission.choices,
        "operations": AclOperation.choices,
        "operations_by_resource": {k: sorted(v) for k, v in OPERATIONS_BY_RESOURCE.items()},
        "form": form,
        "values": values or {},
        "errors": outcome.errors,
        "refusals": outcome.refusals,
    }
    return render(request, "dashboard/user_list.html", context, status=200 if outcome.ok else 400)


@login_required
@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """The cluster's users with their quotas and ACL rules; a POST creates a user."""
    if request.method == "GET":
        return _users_page(request, _cluster(request, pk))
    cluster = _cluster(request, pk, write=True)
    data = request.POST
    outcome = Outcome()
    body = {
        "name": data.get("name", ""),
        **_optional(data, "mechanism"),
        **({"password": data["password"]} if data.get("password") else {}),
        **_quota_body(data),
    }
    values = _validated(api.UserCreateSerializer(data=body, context={"form_values": True}), outcome)
    if values is not None:
        mechanism = values.get("mechanism") or (
            UserMechanism.SCRAM_SHA_512
            if security.SCRAM in cluster.client_authentication
            else UserMechanism.MTLS
        )
        actor = Actor.from_request(request)
        created = _attempt(
            outcome,
            lambda: access.create_user(
                cluster=cluster,
                name=values["name"],
                mechanism=mechanism,
                password=values.get("password"),
                quota=values.get("quota"),
                actor=actor,
            ),
        )
        if isinstance(created, tuple):
            user, secret = created
            _keep_secret(request, user, secret, given="password" in values)
            messages.success(request, f"User {user.name} created.")
            return redirect("dashboard:cluster-users", pk=cluster.pk)
    kept = {k: v for k, v in data.items() if k not in ("password", "csrfmiddlewaretoken")}
    return _users_page(request, cluster, outcome, "user", kept)


def _quota_body(data: QueryDict) -> dict[str, Any]:
    quota = {key: data[key].strip() for key in access.QUOTA_KEYS if data.get(key, "").strip()}
    return {"quota": quota} if quota else {}


def _keep_secret(request: HttpRequest, user: KafkaUser, secret: Mapping[str, str], *, given: bool) -> None:
    """The secret rides in the session to the next page, which shows it once (a reload cannot repeat
    the action). A password the person typed is not shown back."""
    shown = {k: v for k, v in secret.items() if not (given and k == "password")}
    request.session[NEW_SECRET_SESSION_KEY] = {"user": user.name, "mechanism": user.mechanism, **shown}


def _user(request: HttpRequest, pk: uuid.UUID, name: str) -> KafkaUser:
    cluster = _cluster(request, pk, write=True)
    return get_object_or_404(
        KafkaUser.objects.select_related("cluster__organization"), cluster=cluster, name=name
    )


@login_required
@require_POST
def user_rotate(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    user = _user(request, pk, name)
    outcome = Outcome()
    actor = Actor.from_request(request)
    rotated = _attempt(outcome, lambda: access.rotate_credentials(user=user, actor=actor))
    if isinstance(rotated, tuple):
        _keep_secret(request, rotated[0], rotated[1], given=False)
        messages.success(request, f"New credential for {name}; the old password no longer works.")
    _refuse(request, outcome)
    return redirect("dashboard:cluster-users", pk=pk)


@login_required
@require_POST
def user_quota(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    """Set the user's three quotas as the form shows them; an empty one is removed."""
    user = _user(request, pk, name)
    outcome = Outcome()
    quota = {key: request.POST.get(key, "").strip() or None for key in access.QUOTA_KEYS}
    values = _validated(
        api.UserUpdateSerializer(data={"quota": quota}, context={"form_values": True}), outcome
    )
    if values is not None:
        actor = Actor.from_request(request)
        _attempt(outcome, lambda: access.update_quota(user=user, quota=values["quota"], actor=actor))
    if outcome.ok:
        messages.success(request, f"Quotas of {name} saved.")
        return redirect("dashboard:cluster-users", pk=pk)
    kept = {key: request.POST.get(key, "") for key in access.QUOTA_KEYS}
    return _users_page(request, user.cluster, outcome, f"quota-{name}", kept)


@login_required
@require_POST
def user_delete(request: HttpRequest, pk: uuid.UUID, name: str) -> HttpResponse:
    user = _user(request, pk, name)
    outcome = Outcome()
    actor = Actor.from_request(request)
    _attempt(outcome, lambda: access.delete_user(user=user, actor=actor))
    if outcome.ok:
        messages.success(request, f"User {name} deleted, with its credential, quotas and ACL rules.")
    _refuse(request, outcome)
    return redirect("dashboard:cluster-users", pk=pk)


@login_required
@require_POST
def acl_create(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    cluster = _cluster(request, pk, write=True)
    data = request.POST
    outcome = Outcome()
    body = {
        "principal": data.get("principal", "").strip(),
        "resource_type": data.get("resource_type", ""),
        "resource_name": data.get("resource_name", "").strip(),
        "pattern_type": data.get("pattern_type", AclPatternType.LITERAL),
        "operations": data.getlist("operations"),
        "permission": data.get("permission", AclPermission.ALLOW),
        "host": data.get("host", "").strip() or "*",
    }
    values = _validated(api.AclCreateSerializer(data=body, context={"form_values": True}), outcome)
    if values is not None:
        acl = access.AclRequest(**{**values, "operations": tuple(values["operations"])})
        actor = Actor.from_request(request)
        rule = _attempt(outcome, lambda: access.create_acl(cluster=cluster, request=acl, actor=actor))
        if isinstance(rule, AclRule):
            messages.success(request, f"ACL rule added: {rule}.")
            return redirect("dashboard:cluster-users", pk=cluster.pk)
    kept = {**body, "operations": body["operations"]}
    return _users_page(request, cluster, outcome, "acl", kept)


@login_required
@require_POST
def acl_delete(request: HttpRequest, pk: uuid.UUID, rule_id: uuid.UUID) -> HttpResponse:
    cluster = _cluster(request, pk, write=True)
    rule = get_object_or_404(
        AclRule.objects.select_related("cluster__organization"), cluster=cluster, pk=rule_id
    )
    outcome = Outcome()
    actor = Actor.from_request(request)
    _attempt(outcome, lambda: access.delete_acl(rule=rule, actor=actor))
    if outcome.ok:
        messages.success(request, "ACL rule removed.")
    _refuse(request, outcome)
    return redirect("dashboard:cluster-users", pk=pk)
