"""/api/v1/targets/: where an organization's clusters are placed. Credentials are write-only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api import common, host_pools
from controlplane.api.permissions import OrganizationRolePermission, organizations_of
from controlplane.audit.actions import Actor
from controlplane.targets import actions, hosts
from controlplane.targets.choices import TargetKind
from controlplane.targets.models import Target
from controlplane.targets.resolve import check_connection
from controlplane.tenancy.models import Organization
from provisioning.kubernetes.target import (
    DEFAULT_IMAGE,
    DEFAULT_NAMESPACE,
    DEFAULT_TOPOLOGY_KEY,
    KubernetesTarget,
    VolumeRetention,
    target_errors,
)

ERRORS = common.ERRORS
MAX_KUBECONFIG_CHARS = 128 * 1024


class KubernetesSettingsSerializer(common.StrictSerializer):
    namespace = serializers.CharField(max_length=63, default=DEFAULT_NAMESPACE)
    topology_key = serializers.CharField(
        max_length=316, default=DEFAULT_TOPOLOGY_KEY, help_text="Node label whose values are the racks."
    )
    storage_class = serializers.CharField(
        max_length=253, default="", allow_blank=True, help_text="Empty: the cluster's default class."
    )
    image = serializers.CharField(
        max_length=255, default=DEFAULT_IMAGE, help_text="Broker image; {version} becomes the Kafka version."
    )
    volume_retention = serializers.ChoiceField(
        choices=[(v.value, v.value) for v in VolumeRetention],
        default=VolumeRetention.DELETE.value,
        help_text="What happens to a broker's volume when its cluster is deleted or it is removed.",
    )
    allowed_cidrs = serializers.ListField(
        child=serializers.CharField(max_length=43),
        default=list,
        max_length=64,
        help_text="Networks outside the Kubernetes cluster allowed to reach the brokers (the control plane).",
    )
    context = serializers.CharField(
        max_length=253, default="", allow_blank=True, help_text="Kubeconfig context; empty: its current one."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        values = {**attrs, "allowed_cidrs": tuple(attrs.get("allowed_cidrs", ()))}
        values["volume_retention"] = VolumeRetention(values.get("volume_retention", VolumeRetention.DELETE))
        values.pop("context", None)
        if errors := target_errors(KubernetesTarget(name="check", **values)):
            raise ValidationError({field: [message] for field, message in errors.items()})
        return attrs


class TargetSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    settings = serializers.JSONField(source="config", read_only=True)
    authentication = serializers.SerializerMethodField(
        help_text="How the control plane signs in: `kubeconfig` (stored encrypted, never shown), "
        "`in_cluster` (its own service account) or, on host pools, `ssh_key` (stored encrypted, never shown)."
    )
    hosts_in_use = serializers.SerializerMethodField(
        help_text="Host pools: host name -> the broker and cluster it runs (hosts not listed are free); "
        "empty for other kinds."
    )

    class Meta:
        model = Target
        fields = [
            "id",
            "organization",
            "name",
            "kind",
            "settings",
            "authentication",
            "hosts_in_use",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_hosts_in_use(self, target: Target) -> dict[str, str]:
        return hosts.hosts_in_use(target) if target.kind == TargetKind.VM else {}

    def get_authentication(self, target: Target) -> str:
        if target.kind == TargetKind.VM:
            return "ssh_key"
        return "kubeconfig" if target.credentials.get("kubeconfig") else "in_cluster"


class ConnectionCheckSerializer(serializers.Serializer):
    name = serializers.CharField(
        help_text="`api_server`, `namespace`, `permissions`; `host <name>` per host of a host pool; "
        "`connection` for a kind that cannot be tested yet."
    )
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="What was found, in plain words.")


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether clusters can be placed on the target as it is.")
    summary = serializers.CharField(help_text="What to fix, or that nothing needs fixing.")
    server_version = serializers.CharField(help_text="Empty when the API server did not answer.")
    checks = ConnectionCheckSerializer(many=True)
    missing_permissions = serializers.DictField(
        source="missing",
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Kind -> the verbs its credentials may not use in the target's namespace.",
    )


class TargetWriteSerializer(common.StrictSerializer):
    organization = serializers.SlugField(required=False)
    name = serializers.SlugField(max_length=63)
    kind = serializers.ChoiceField(choices=TargetKind.choices, default=TargetKind.KUBERNETES)
    settings = serializers.JSONField(
        required=False,
        help_text="Kubernetes: namespace, topology_key, storage_class, image, volume_retention, "
        "allowed_cidrs, context. VM host pool: hosts (name, address, rack, ssh_user, ssh_port, java_home, "
        "kafka_root), racks, service_manager, kafka_user, java_home, python_interpreter.",
    )
    kubeconfig = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=MAX_KUBECONFIG_CHARS,
        help_text="A kubeconfig (YAML) with embedded credentials; stored encrypted, never returned.",
    )
    in_cluster = serializers.BooleanField(
        required=False, help_text="Use the control plane's own service account instead of a kubeconfig."
    )
    ssh_private_key = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=host_pools.MAX_KEY_CHARS,
        help_text="Host pools: the unencrypted private key SSH signs in with; stored encrypted, never returned.",
    )
    known_hosts = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=host_pools.MAX_KNOWN_HOSTS_CHARS,
        help_text="Host pools: the hosts' public keys (known_hosts lines); no other key is accepted.",
    )

    def validate_kubeconfig(self, text: str) -> str:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"Not YAML: {exc}") from exc
        if not isinstance(parsed, dict) or not parsed.get("clusters") or not parsed.get("contexts"):
            raise ValidationError("Not a kubeconfig: it needs clusters and contexts.")
        return text


def _kubernetes_settings(raw: Any, *, partial: bool = False) -> dict[str, Any]:
    """Settings of a Kubernetes target; `partial`: only those given (a change), without defaults."""
    data = KubernetesSettingsSerializer(data=raw, partial=partial)
    if not data.is_valid():
        raise ValidationError({"settings": data.errors})
    return dict(data.validated_data)


def _refuse_ssh_fields(values: dict[str, Any]) -> None:
    for field in ("ssh_private_key", "known_hosts"):
        if values.get(field):
            raise ValidationError({field: ["Only host pools (kind vm) sign in over SSH."]})


def _check_context(kubeconfig: str, context: str) -> None:
    parsed = yaml.safe_load(kubeconfig)
    names = [c.get("name") for c in parsed.get("contexts") or [] if isinstance(c, dict)]
    wanted = context or parsed.get("current-context")
    if wanted not in names:
        raise ValidationError(
            {
                "settings": {
                    "context": [
                        f"The kubeconfig has no context {wanted!r}; it has {', '.join(map(str, names))}."
                    ]
                }
            }
        )


def registration(
    organization: Organization, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings and credentials of a new target from `TargetWriteSerializer`'s validated values,
    checked against what the serializer cannot see (the name taken, the kubeconfig's contexts); a
    ValidationError names the field. The API and the dashboard's form register through it."""
    if Target.objects.filter(organization=organization, name=values["name"]).exists():
        raise ValidationError({"name": [f"A target named {values['name']!r} already exists."]})
    if values.get("kind") == TargetKind.VM:
        return host_pools.create_values(values)
    _refuse_ssh_fields(values)
    kubeconfig = values.get("kubeconfig", "")
    if bool(kubeconfig) == bool(values.get("in_cluster")):
        raise ValidationError({"kubeconfig": ["Give a kubeconfig, or in_cluster: true (one of them)."]})
    config = _kubernetes_settings(values.get("settings", {}))
    if kubeconfig:
        _check_context(kubeconfig, config.get("context", ""))
    return config, ({"kubeconfig": kubeconfig} if kubeconfig else {})


@extend_schema_view(
    list=extend_schema(summary="List targets", description="Credentials are never shown."),
    retrieve=extend_schema(summary="Get a target", responses={200: TargetSerializer, 404: ERRORS[404]}),
)
class TargetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = TargetSerializer
    permission_classes = [IsAuthenticated, OrganizationRolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Target]:
        if getattr(self, "swagger_fake_view", False):
            return Target.objects.none()
        return (
            Target.objects.filter(organization__in=organizations_of(self.request.user))
            .select_related("organization")
            .prefetch_related(hosts.ALLOCATIONS_WITH_BROKERS)
        )

    @extend_schema(
        summary="Register a target",
        description="A Kubernetes cluster clusters can be placed on: a kubeconfig, or `in_cluster: true` "
        "when the control plane runs in it. The kubeconfig is stored encrypted and never shown again. Or "
        "(`kind: vm`) a host pool: its hosts in `settings`, the SSH private key and the hosts' public keys "
        "(`known_hosts`), stored encrypted and never shown again (see docs/vm.md).",
        request=TargetWriteSerializer,
        responses={201: TargetSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        data = TargetWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organization = common.target_organization(request, values.pop("organization", None), write=True)
        config, credentials = registration(organization, values)
        target = actions.register_target(
            organization=organization,
            name=values["name"],
            kind=values["kind"],
            config=config,
            credentials=credentials,
            actor=Actor.from_request(request),
        )
        return Response(TargetSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a target",
        description="Settings given replace the stored ones; a kubeconfig given replaces the stored one "
        "(leave it out to keep it). Clusters on the target use the new settings from their next operation.",
        request=TargetWriteSerializer,
        responses={200: TargetSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        target = self.get_object()
        data = TargetWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        current = {"organization": target.organization.slug, "name": target.name, "kind": target.kind}
        for field, value in current.items():
            if field in values and values[field] != value:
                raise ValidationError({field: [f"A target's {field} cannot change; register a new one."]})
        if target.kind == TargetKind.VM:
            config, credentials = host_pools.update_values(target, values)
            if config is not None and (conflicts := hosts.pool_change_conflicts(target, config)):
                return Response(
                    {"detail": "; ".join(conflicts) + ".", "code": "host_in_use"},
                    status=status.HTTP_409_CONFLICT,
                )
            target = actions.update_target(
                target=target, config=config, credentials=credentials, actor=Actor.from_request(request)
            )
            return Response(TargetSerializer(target).data)
        _refuse_ssh_fields(values)
        if values.get("kubeconfig") and values.get("in_cluster"):
            raise ValidationError({"kubeconfig": ["Give a kubeconfig, or in_cluster: true (one of them)."]})
        credentials = None
        if values.get("kubeconfig"):
            credentials = {"kubeconfig": values["kubeconfig"]}
        elif values.get("in_cluster"):
            credentials = {}
        config = _kubernetes_settings(values["settings"], partial=True) if "settings" in values else None
        kubeconfig = (
            target.credentials.get("kubeconfig") if credentials is None else credentials.get("kubeconfig")
        )
        if kubeconfig:
            _check_context(kubeconfig, (config or target.config).get("context", ""))
        target = actions.update_target(
            target=target, config=config, credentials=credentials, actor=Actor.from_request(request)
        )
        return Response(TargetSerializer(target).data)

    @extend_schema(
        summary="Test a target's connection",
        description="Reaches the target's API server with its stored credentials and answers what it "
        "found: the server's version, whether the namespace exists, and whether the credentials may "
        "create, change and delete every kind of object a cluster needs there (SelfSubjectRulesReview, "
        "confirmed by SelfSubjectAccessReview). Refusals and an unreachable server are findings (200, "
        "`ok: false`, in plain words), not errors. Nothing is changed on the target.",
        request=None,
        responses={200: ConnectionReportSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str | None = None) -> Response:
        report = check_connection(self.get_object())
        return Response(ConnectionReportSerializer(report).data)

    @extend_schema(
        summary="Remove a target",
        description="Refused (409) while clusters run on it.",
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        try:
            actions.remove_target(target=self.get_object(), actor=Actor.from_request(request))
        except actions.TargetInUse as exc:
            return Response({"detail": str(exc), "code": "target_in_use"}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
