"""REST API of alerting: incidents, silences, maintenance windows, rules and notification channels.

Querysets are scoped to the caller's organizations, so other organizations' objects answer 404;
viewers may read, owners and admins may change (403 otherwise).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import F, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api import common
from controlplane.api.permissions import OrganizationRolePermission, can_write, organizations_of
from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting import actions
from monitoring.alerting.api import serializers as api
from monitoring.alerting.api.filters import (
    DeliveryFilterSet,
    IncidentFilterSet,
    MaintenanceWindowFilterSet,
    SilenceFilterSet,
)
from monitoring.alerting.choices import DeliveryEvent, DeliveryStatus
from monitoring.alerting.models import (
    Delivery,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    RuleOverrideRecord,
    Silence,
)
from monitoring.alerting.prometheus import prometheus_rules
from monitoring.alerting.rules import OVERRIDE_FIELDS, effective_rules, override_errors, threshold_label
from monitoring.conditions import RULES, AlertRule

ERRORS = common.ERRORS
CONFLICT = OpenApiResponse(
    common.ErrorSerializer, description="The incident is not in a state that allows this."
)
ORGANIZATION_PARAMETER = OpenApiParameter(
    "organization", str, description="Organization slug; may be left out when you belong to exactly one."
)
CLUSTER_PARAMETER = OpenApiParameter(
    "cluster", OpenApiTypes.UUID, description="Apply this cluster's overrides too."
)


def scoped_cluster(request: Request, cluster_id: uuid.UUID | str, *, write: bool) -> Cluster:
    cluster = (
        Cluster.objects.filter(pk=cluster_id, organization__in=organizations_of(request.user))
        .exclude(status=ClusterStatus.DELETED)
        .select_related("organization")
        .first()
    )
    if cluster is None:
        raise ValidationError({"cluster": [f"No cluster {cluster_id} in your organizations."]})
    if write and not can_write(request.user, cluster.organization_id):
        raise PermissionDenied(OrganizationRolePermission.message)
    return cluster


# Incidents


@extend_schema_view(
    list=extend_schema(
        summary="List alerts (incidents)",
        description="Newest first. `state=open` lists pending, firing and acknowledged incidents.",
    ),
    retrieve=extend_schema(summary="Get an alert", responses={200: api.IncidentSerializer, 404: ERRORS[404]}),
)
class IncidentViewSet(common.ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    queryset = Incident.objects.none()  # for the schema; requests use get_queryset
    serializer_class = api.IncidentSerializer
    filterset_class = IncidentFilterSet
    permission_classes = [IsAuthenticated, OrganizationRolePermission]

    def get_queryset(self) -> QuerySet[Incident]:
        return Incident.objects.filter(
            cluster__organization__in=organizations_of(self.request.user)
        ).select_related("cluster")

    @extend_schema(
        summary="Acknowledge a firing alert",
        description="Stops repeat notifications; channels that got the trigger receive an acknowledge "
        "(PagerDuty: same dedup_key).",
        request=None,
        responses={200: api.IncidentSerializer, 409: CONFLICT, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        try:
            incident = actions.acknowledge_incident(
                incident=self.get_object(), actor=Actor.from_request(request)
            )
        except actions.IncidentStateConflict as exc:
            return common.conflict(exc)
        return Response(api.IncidentSerializer(incident).data)

    @extend_schema(
        summary="Resolve an alert by hand",
        description="Channels that got the trigger receive a resolve. If the condition still holds, the "
        "next evaluation opens a new incident with a new notification key.",
        request=None,
        responses={200: api.IncidentSerializer, 409: CONFLICT, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        try:
            incident = actions.resolve_incident(incident=self.get_object(), actor=Actor.from_request(request))
        except actions.IncidentStateConflict as exc:
            return common.conflict(exc)
        return Response(api.IncidentSerializer(incident).data)

    @extend_schema(
        summary="Notification attempts for this alert, newest first",
        responses={200: api.DeliverySerializer(many=True), 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        page = self.paginate_queryset(Delivery.objects.filter(incident=incident).order_by("-id"))
        return self.get_paginated_response(api.DeliverySerializer(page, many=True).data)


# Silences and maintenance windows


@extend_schema_view(
    list=extend_schema(summary="List silences", description="`active=true` lists those in force now."),
    retrieve=extend_schema(summary="Get a silence", responses={200: api.SilenceSerializer, 404: ERRORS[404]}),
)
class SilenceViewSet(
    common.ListFiltersOnly,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Silence.objects.none()  # for the schema; requests use get_queryset
    serializer_class = api.SilenceSerializer
    filterset_class = SilenceFilterSet
    permission_classes = [IsAuthenticated, OrganizationRolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Silence]:
        return Silence.objects.filter(organization__in=organizations_of(self.request.user)).select_related(
            "organization"
        )

    @extend_schema(
        summary="Create a silence",
        description="Matching incidents are still recorded but notify nobody until it ends.",
        request=api.SilenceWriteSerializer,
        responses={201: api.SilenceSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        data = api.SilenceWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        cluster = None
        if values.get("cluster"):
            cluster = scoped_cluster(request, values["cluster"], write=True)
            organization = cluster.organization
            if values.get("organization") and values["organization"] != organization.slug:
                raise ValidationError({"cluster": ["The cluster belongs to another organization."]})
        else:
            organization = common.target_organization(request, values.get("organization"), write=True)
        silence = actions.create_silence(
            organization=organization,
            cluster=cluster,
            rule_key=values.get("rule", ""),
            subject=values.get("subject", ""),
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            comment=values["comment"],
            actor=Actor.from_request(request),
        )
        return Response(api.SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a silence (its end, matchers or comment)",
        request=api.SilenceWriteSerializer,
        responses={200: api.SilenceSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        silence = self.get_object()
        data = api.SilenceWriteSerializer(silence, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "organization" in values:
            raise ValidationError({"organization": ["A silence cannot move to another organization."]})
        changes: dict[str, Any] = {}
        if "cluster" in values:
            cluster = scoped_cluster(request, values["cluster"], write=True) if values["cluster"] else None
            if cluster is not None and cluster.organization_id != silence.organization_id:
                raise ValidationError({"cluster": ["The cluster belongs to another organization."]})
            changes["cluster"] = cluster
        if "rule" in values:
            changes["rule_key"] = values["rule"]
        for name in ("subject", "starts_at", "ends_at", "comment"):
            if name in values:
                changes[name] = values[name]
        silence = actions.update_silence(silence=silence, changes=changes, actor=Actor.from_request(request))
        return Response(api.SilenceSerializer(silence).data)

    @extend_schema(
        summary="Expire a silence",
        description="It ends now and stays listed as history; muted incidents notify at the next evaluation.",
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        actions.expire_silence(silence=self.get_object(), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List maintenance windows", description="`active=true` lists those in force now."
    ),
    retrieve=extend_schema(
        summary="Get a maintenance window", responses={200: api.MaintenanceWindowSerializer, 404: ERRORS[404]}
    ),
)
class MaintenanceWindowViewSet(
    common.ListFiltersOnly,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = MaintenanceWindow.objects.none()  # for the schema; requests use get_queryset
    serializer_class = api.MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilterSet
    permission_classes = [IsAuthenticated, OrganizationRolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        return MaintenanceWindow.objects.filter(
            cluster__organization__in=organizations_of(self.request.user)
        ).select_related("cluster__organization")

    @extend_schema(
        summary="Plan a maintenance window",
        description="While it lasts, every incident of the cluster is recorded but nobody is notified.",
        request=api.MaintenanceWindowWriteSerializer,
        responses={201: api.MaintenanceWindowSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        data = api.MaintenanceWindowWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        window = actions.create_maintenance_window(
            cluster=scoped_cluster(request, values["cluster"], write=True),
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            comment=values.get("comment", ""),
            actor=Actor.from_request(request),
        )
        return Response(api.MaintenanceWindowSerializer(window).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a maintenance window",
        request=api.MaintenanceWindowWriteSerializer,
        responses={200: api.MaintenanceWindowSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        window = self.get_object()
        data = api.MaintenanceWindowWriteSerializer(window, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "cluster" in values:
            raise ValidationError({"cluster": ["A maintenance window cannot move to another cluster."]})
        window = actions.update_maintenance_window(
            window=window, changes=values, actor=Actor.from_request(request)
        )
        return Response(api.MaintenanceWindowSerializer(window).data)

    @extend_schema(summary="Delete a maintenance window", responses={204: None, **ERRORS})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        actions.delete_maintenance_window(window=self.get_object(), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# Alert rules


def _rule_values(rule: AlertRule) -> dict[str, Any]:
    return {
        "threshold": threshold_label(rule.key, rule.threshold),
        "for_seconds": rule.for_seconds,
        "severity": rule.severity.value,
        "enabled": rule.enabled,
    }


def _override_data(record: RuleOverrideRecord, organization: Organization) -> dict[str, Any]:
    return {
        "id": record.pk,
        "scope": "cluster" if record.cluster_id else "organization",
        "organization": organization.slug,
        "cluster": record.cluster_id,
        "threshold": None if record.threshold is None else threshold_label(record.rule_key, record.threshold),
        "for_seconds": record.for_seconds,
        "severity": record.severity or None,
        "enabled": record.enabled,
        "updated_by": record.updated_by_name,
        "updated_at": record.updated_at,
    }


class AlertRuleViewSet(viewsets.ViewSet):
    """The rule catalogue with each rule's effective values, and the overrides that change them."""

    permission_classes = [IsAuthenticated]
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9_]+"

    def _scope(
        self, request: Request, source: Mapping[str, Any], *, write: bool
    ) -> tuple[Organization, Cluster | None]:
        """The organization and cluster named by `source` (the query, or a validated body)."""
        cluster_id = source.get("cluster")
        if cluster_id is not None:
            try:
                uuid.UUID(str(cluster_id))
            except ValueError:
                raise ValidationError(
                    {"cluster": [f"{cluster_id!r} is not a cluster id (a UUID)."]}
                ) from None
            cluster = scoped_cluster(request, cluster_id, write=write)
            slug = source.get("organization")
            if slug and slug != cluster.organization.slug:
                raise ValidationError({"cluster": ["The cluster belongs to another organization."]})
            return cluster.organization, cluster
        return common.target_organization(request, source.get("organization"), write=write), None

    def _rules(
        self, organization: Organization, cluster: Cluster | None, keys: list[str]
    ) -> list[dict[str, Any]]:
        effective = effective_rules(organization.pk, cluster.pk if cluster else None)
        records = RuleOverrideRecord.objects.filter(organization=organization, rule_key__in=keys)
        if cluster is not None:
            records = records.filter(cluster__isnull=True) | records.filter(cluster=cluster)
        by_rule: dict[str, list[dict[str, Any]]] = {}
        # Organization layer first: the order in which they apply.
        for record in records.order_by(F("cluster_id").asc(nulls_first=True), "pk"):
            by_rule.setdefault(record.rule_key, []).append(_override_data(record, organization))
        answer = []
        for key in keys:
            rule = RULES[key]
            answer.append(
                {
                    "key": key,
                    "title": rule.title,
                    "description": rule.description,
                    "action": rule.action,
                    "unit": rule.unit,
                    "comparison": rule.comparison,
                    "suppressible": rule.suppressible,
                    "default": _rule_values(rule),
                    "effective": _rule_values(effective[key]),
                    "overrides": by_rule.get(key, []),
                }
            )
        return answer

    @extend_schema(
        summary="List alert rules with their effective values",
        description="Values after the organization's overrides, and the cluster's when `cluster` is given. "
        "Without `cluster`, every override in the organization is listed.",
        parameters=[ORGANIZATION_PARAMETER, CLUSTER_PARAMETER],
        responses={200: api.AlertRuleSerializer(many=True), 400: ERRORS[400]},
    )
    def list(self, request: Request) -> Response:
        organization, cluster = self._scope(request, request.query_params, write=False)
        return Response(
            api.AlertRuleSerializer(self._rules(organization, cluster, list(RULES)), many=True).data
        )

    @extend_schema(
        summary="Get one alert rule with its effective values",
        parameters=[ORGANIZATION_PARAMETER, CLUSTER_PARAMETER],
        responses={200: api.AlertRuleSerializer, 404: ERRORS[404]},
    )
    def retrieve(self, request: Request, key: str | None = None) -> Response:
        if key not in RULES:
            return Response({"detail": f"No alert rule {key!r}."}, status=status.HTTP_404_NOT_FOUND)
        organization, cluster = self._scope(request, request.query_params, write=False)
        return Response(api.AlertRuleSerializer(self._rules(organization, cluster, [key])[0]).data)

    @extend_schema(
        summary="The effective rules as a Prometheus rule file",
        description="For teams running their own Prometheus against `/metrics`: every cluster of the "
        "organization, or one cluster when `cluster` is given, with this organization's overrides.",
        parameters=[ORGANIZATION_PARAMETER, CLUSTER_PARAMETER],
        responses={
            (200, "application/yaml"): OpenApiResponse(
                {"type": "object", "properties": {"groups": {"type": "array", "items": {"type": "object"}}}},
                description="A Prometheus rule file.",
            ),
            400: ERRORS[400],
        },
    )
    @action(detail=False, methods=["get"])
    def prometheus(self, request: Request) -> HttpResponse:
        organization, cluster = self._scope(request, request.query_params, write=False)
        return HttpResponse(prometheus_rules(organization, cluster), content_type="application/yaml")

    @extend_schema(
        methods=["PUT"],
        summary="Override a rule for the organization or one cluster",
        description="Creates or replaces the override; fields left out inherit from the layer below "
        "(cluster over organization over the catalogue).",
        request=api.RuleOverrideWriteSerializer,
        responses={200: api.AlertRuleSerializer, **ERRORS},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Remove a rule's override",
        parameters=[ORGANIZATION_PARAMETER, OpenApiParameter("cluster", OpenApiTypes.UUID)],
        responses={204: None, **ERRORS},
    )
    @action(detail=True, methods=["put", "delete"])
    def override(self, request: Request, key: str | None = None) -> Response:
        if key not in RULES:
            return Response({"detail": f"No alert rule {key!r}."}, status=status.HTTP_404_NOT_FOUND)
        actor = Actor.from_request(request)
        if request.method == "DELETE":
            organization, cluster = self._scope(request, request.query_params, write=True)
            record = get_object_or_404(
                RuleOverrideRecord, organization=organization, cluster=cluster, rule_key=key
            )
            actions.delete_rule_override(record=record, actor=actor)
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The body's shape first: scoping reads it, and it may be any JSON value.
        data = api.RuleOverrideWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization, cluster = self._scope(request, data.validated_data, write=True)
        values = {name: data.validated_data.get(name) for name in OVERRIDE_FIELDS}
        if errors := override_errors(key, values):
            raise ValidationError({name: [message] for name, message in errors.items()})
        actions.set_rule_override(
            organization=organization, cluster=cluster, rule_key=key, values=values, actor=actor
        )
        return Response(api.AlertRuleSerializer(self._rules(organization, cluster, [key])[0]).data)


# Notification channels


@extend_schema_view(
    list=extend_schema(summary="List notification channels", description="Secrets are shown masked."),
    retrieve=extend_schema(
        summary="Get a notification channel",
        responses={200: api.NotificationChannelSerializer, 404: ERRORS[404]},
    ),
)
class NotificationChannelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    queryset = NotificationChannel.objects.none()  # for the schema; requests use get_queryset
    serializer_class = api.NotificationChannelSerializer
    permission_classes = [IsAuthenticated, OrganizationRolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[NotificationChannel]:
        return NotificationChannel.objects.filter(
            organization__in=organizations_of(self.request.user)
        ).select_related("organization")

    @extend_schema(
        summary="Create a notification channel",
        description="Incidents at or above `min_severity` are sent to it. Secrets in `config` are never "
        "shown again.",
        request=api.NotificationChannelWriteSerializer,
        responses={201: api.NotificationChannelSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        data = api.NotificationChannelWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        organization = common.target_organization(request, values.get("organization"), write=True)
        if NotificationChannel.objects.filter(organization=organization, name=values["name"]).exists():
            raise ValidationError({"name": [f"A channel named {values['name']!r} already exists."]})
        try:
            channel = actions.create_channel(
                organization=organization,
                name=values["name"],
                kind=values["kind"],
                config=values["config"],
                min_severity=values["min_severity"],
                enabled=values["enabled"],
                repeat_interval_seconds=values.get("repeat_interval_seconds"),
                actor=Actor.from_request(request),
            )
        except actions.ChannelConfigInvalid as exc:
            raise ValidationError({"config": exc.errors}) from exc
        return Response(api.NotificationChannelSerializer(channel).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a notification channel",
        description="`config` keys given replace the stored ones (others, such as secrets, are kept); a key "
        "set to null is removed.",
        request=api.NotificationChannelWriteSerializer,
        responses={200: api.NotificationChannelSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        data = api.NotificationChannelWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "kind" in values and values.pop("kind") != channel.kind:
            raise ValidationError({"kind": ["A channel's kind cannot change; create a new channel."]})
        if "organization" in values and values.pop("organization") != channel.organization.slug:
            raise ValidationError({"organization": ["A channel cannot move to another organization."]})
        if (
            "name" in values
            and NotificationChannel.objects.filter(organization=channel.organization, name=values["name"])
            .exclude(pk=channel.pk)
            .exists()
        ):
            raise ValidationError({"name": [f"A channel named {values['name']!r} already exists."]})
        try:
            channel = actions.update_channel(
                channel=channel, changes=values, actor=Actor.from_request(request)
            )
        except actions.ChannelConfigInvalid as exc:
            raise ValidationError({"config": exc.errors}) from exc
        return Response(api.NotificationChannelSerializer(channel).data)

    @extend_schema(summary="Delete a notification channel", responses={204: None, **ERRORS})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        actions.delete_channel(channel=self.get_object(), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Send a test notification",
        description="Answers 202 with the first delivery attempt; follow it under /deliveries/.",
        request=None,
        responses={202: api.DeliverySerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        row = actions.send_test_notification(channel=self.get_object(), actor=Actor.from_request(request))
        return Response(api.DeliverySerializer(row).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Delivery attempts to this channel, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            OpenApiParameter("event", str, enum=DeliveryEvent.values),
            OpenApiParameter("incident", int),
        ],
        responses={200: api.DeliverySerializer(many=True), 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        found = DeliveryFilterSet(request.query_params, queryset=Delivery.objects.filter(channel=channel))
        if not found.is_valid():
            raise ValidationError(found.errors)
        page = self.paginate_queryset(found.qs.order_by("-id"))
        return self.get_paginated_response(api.DeliverySerializer(page, many=True).data)
