"""REST API v1. Views validate input, call one action and answer; the domain lives elsewhere."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api import common, idempotency
from controlplane.api import serializers as api
from controlplane.api.filters import FilterSet
from controlplane.api.permissions import OrganizationRolePermission, can_write, organizations_of
from controlplane.audit.actions import Actor
from controlplane.clusters import actions as cluster_actions
from controlplane.clusters.choices import Backend, ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.clusters.validation import (
    new_cluster_errors,
    plan_cluster,
    plan_new_cluster,
    replace_broker_errors,
    rotation_errors,
    scale_errors,
    upgrade_errors,
)
from controlplane.operations import actions as operation_actions
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from controlplane.tenancy import actions as tenancy_actions
from controlplane.tenancy.models import ApiToken, Membership
from provisioning.backends.base import BackendError

ERRORS = {
    **common.ERRORS,
    409: OpenApiResponse(common.ErrorSerializer, description="Another operation is running on this cluster."),
}


def accepted(cluster: Cluster, operation: Operation, request: Request) -> Response:
    cluster = api.with_serialized_relations(Cluster.objects.all()).get(pk=cluster.pk)
    body = api.ClusterWithOperationSerializer(
        cluster, context={"operation": operation, "request": request}
    ).data
    location = request.build_absolute_uri(f"/api/v1/operations/{operation.id}/")
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class ClusterFilterSet(FilterSet):
    status = filters.ChoiceFilter(choices=ClusterStatus.choices)
    backend = filters.ChoiceFilter(choices=Backend.choices)
    organization = filters.CharFilter(field_name="organization__slug")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Cluster
        fields = ["status", "backend", "organization", "name"]


# What a deleted cluster answers 404 to: reading, changing or deleting it again.
GONE_WHEN_DELETED = ("retrieve", "partial_update", "destroy")


@extend_schema_view(
    list=extend_schema(
        summary="List clusters", description="Deleted clusters are listed only with status=deleted."
    ),
    retrieve=extend_schema(
        summary="Get a cluster",
        description="404 once the cluster's delete operation has finished (it is still listed with "
        "status=deleted).",
        responses={200: api.ClusterSerializer, 404: ERRORS[404]},
    ),
)
class ClusterViewSet(
    common.ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = api.ClusterSerializer
    filterset_class = ClusterFilterSet
    permission_classes = [IsAuthenticated, OrganizationRolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Cluster]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Cluster.objects.none()
        clusters = api.with_serialized_relations(
            Cluster.objects.filter(organization__in=organizations_of(self.request.user)).select_related(
                "organization"
            )
        )
        if self.action == "list" and "status" not in self.request.query_params:
            clusters = clusters.exclude(status=ClusterStatus.DELETED)
        if self.action in GONE_WHEN_DELETED:
            # The record stays for the history (listed with status=deleted, its operations kept);
            # for a client that polls the cluster, as Terraform does after a delete, it is gone.
            clusters = clusters.exclude(status=ClusterStatus.DELETED)
        return clusters

    @extend_schema(
        summary="Create a cluster",
        description="With `dry_run=true` nothing is saved: the answer (200) is the cluster as it would be, "
        "its broker placement and its plan (for Kubernetes, every object as one YAML stream). A dry run "
        "needs no reachable target, nor a registered one (it renders for the default target).",
        parameters=[
            idempotency.PARAMETER,
            OpenApiParameter("dry_run", bool, description="Plan only; save and apply nothing."),
        ],
        request=api.ClusterCreateSerializer,
        responses={
            200: api.ClusterDryRunSerializer,
            202: api.ClusterWithOperationSerializer,
            **ERRORS,
            **idempotency.RESPONSES,
        },
    )
    def create(self, request: Request) -> Response:
        dry_run = common.boolean_parameter(request, "dry_run")

        def handle() -> Response:
            data = api.ClusterCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            organization = common.target_organization(request, values.pop("organization", None), write=True)
            common.refuse(new_cluster_errors(organization, values, dry_run=dry_run))
            if dry_run:
                return Response(api.ClusterDryRunSerializer(plan_new_cluster(organization, values)).data)
            cluster, operation = cluster_actions.request_cluster_create(
                organization=organization, spec=values, actor=Actor.from_request(request)
            )
            return accepted(cluster, operation, request)

        # A dry run saves nothing, so there is nothing a retry could duplicate.
        return handle() if dry_run else idempotency.idempotent(request, handle)

    @extend_schema(
        summary="The cluster's plan: placement and every Kubernetes object",
        description="What its backend applies for the cluster as it is now: broker placement (node id -> "
        "rack), a summary, and for Kubernetes every object as one YAML stream.",
        responses={200: api.ClusterPlanSerializer, 404: ERRORS[404], 409: ERRORS[409]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def manifests(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        try:
            plan = plan_cluster(cluster)
        except BackendError as exc:  # e.g. a layout this installation's backend cannot run any more
            return Response(
                {"detail": f"Cluster {cluster.name} cannot be planned: {exc}", "code": "not_plannable"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(api.ClusterPlanSerializer(plan).data)

    @extend_schema(
        summary="Change cluster settings",
        request=api.ClusterUpdateSerializer,
        responses={200: api.ClusterSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        changes = api.ClusterUpdateSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        cluster_actions.update_cluster_settings(
            cluster=cluster, changes=changes.validated_data, actor=Actor.from_request(request)
        )
        return Response(api.ClusterSerializer(self.get_queryset().get(pk=cluster.pk)).data)

    @extend_schema(
        summary="Delete a cluster",
        description="202 with the delete operation to poll; once it has succeeded, the cluster's URL "
        "answers 404.",
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        operation = cluster_actions.request_cluster_delete(cluster=cluster, actor=Actor.from_request(request))
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="The cluster's operations, newest first",
        responses={200: api.OperationSummarySerializer(many=True), 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def operations(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        # Not `cluster.operations`: the queryset prefetches only active operations into it.
        operations = Operation.objects.filter(cluster=cluster).order_by("-created_at", "-id")
        page = self.paginate_queryset(operations.prefetch_related("steps"))
        return self.get_paginated_response(api.OperationSummarySerializer(page, many=True).data)

    def _changeable(self, request: Request, body: type[serializers.Serializer]) -> tuple[Cluster, dict]:
        """The cluster (404 outside the caller's organizations, 403 for viewers), refused with 409
        while an operation runs, and the request body's validated shape."""
        cluster = self.get_object()
        data = body(data=request.data)
        data.is_valid(raise_exception=True)
        cluster_actions.require_changeable(cluster)
        return cluster, dict(data.validated_data)

    @extend_schema(
        summary="Scale out or in, rebalancing replicas",
        request=api.ScaleSerializer,
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def scale(self, request: Request, pk: str | None = None) -> Response:
        cluster, values = self._changeable(request, api.ScaleSerializer)
        common.refuse(scale_errors(cluster, values["brokers"]))
        operation = cluster_actions.request_scale(
            cluster=cluster, brokers=values["brokers"], actor=Actor.from_request(request)
        )
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="Rolling restart, one broker at a time",
        description="Each broker waits until restarting it cannot stop acks=all producers, and the next "
        "one waits until it is back in sync; the active controller goes last.",
        request=api.RestartSerializer,
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str | None = None) -> Response:
        cluster, _ = self._changeable(request, api.RestartSerializer)
        operation = cluster_actions.request_restart(cluster=cluster, actor=Actor.from_request(request))
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="Replace a broker in its rack",
        request=api.ReplaceBrokerSerializer,
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="replace-broker")
    def replace_broker(self, request: Request, pk: str | None = None) -> Response:
        cluster, values = self._changeable(request, api.ReplaceBrokerSerializer)
        common.refuse(replace_broker_errors(cluster, values["node_id"], values["keep_disk"]))
        operation = cluster_actions.request_replace_broker(
            cluster=cluster,
            node_id=values["node_id"],
            keep_disk=values["keep_disk"],
            actor=Actor.from_request(request),
        )
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="Rolling upgrade to a newer Kafka version",
        description="Brokers are upgraded one at a time under the rolling-restart rules, then the feature "
        "levels (metadata.version) are raised. Downgrades are refused.",
        request=api.UpgradeSerializer,
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request: Request, pk: str | None = None) -> Response:
        cluster, values = self._changeable(request, api.UpgradeSerializer)
        common.refuse(upgrade_errors(cluster, values["kafka_version"]))
        operation = cluster_actions.request_upgrade(
            cluster=cluster, kafka_version=values["kafka_version"], actor=Actor.from_request(request)
        )
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="Give every broker a new certificate",
        description="A rolling restart under the rolling-restart rules; each broker starts with a new "
        "certificate from the cluster's CA. Clients trust the CA, so they only reconnect.",
        request=api.RestartSerializer,
        responses={202: api.ClusterWithOperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="rotate-certificates")
    def rotate_certificates(self, request: Request, pk: str | None = None) -> Response:
        cluster, _ = self._changeable(request, api.RestartSerializer)
        common.refuse(rotation_errors(cluster))
        operation = cluster_actions.request_certificate_rotation(
            cluster=cluster, actor=Actor.from_request(request)
        )
        return accepted(cluster, operation, request)

    @extend_schema(
        summary="Brokers seen unreachable, newest first",
        description="Kept until resolved, whether or not self-healing is on; an open one is acted on once "
        "self-healing is on and it has lasted long enough.",
        responses={200: api.BrokerAnomalySerializer(many=True), 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def anomalies(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        page = self.paginate_queryset(cluster.anomalies.order_by("-detected_at", "-id"))
        return self.get_paginated_response(api.BrokerAnomalySerializer(page, many=True).data)

    @extend_schema(
        summary="Ignore an open anomaly",
        description="Self-healing then leaves that broker alone; a later outage opens a new anomaly.",
        request=None,
        responses={200: api.BrokerAnomalySerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path=r"anomalies/(?P<anomaly_id>\d+)/ignore")
    def ignore_anomaly(
        self, request: Request, pk: str | None = None, anomaly_id: str | None = None
    ) -> Response:
        cluster = self.get_object()
        anomaly = get_object_or_404(cluster.anomalies, pk=anomaly_id)
        anomaly = cluster_actions.ignore_broker_anomaly(anomaly=anomaly, actor=Actor.from_request(request))
        return Response(api.BrokerAnomalySerializer(anomaly).data)


class OperationFilterSet(FilterSet):
    state = filters.ChoiceFilter(choices=OperationState.choices)
    kind = filters.ChoiceFilter(choices=OperationKind.choices)
    cluster = filters.UUIDFilter(field_name="cluster_id")

    class Meta:
        model = Operation
        fields = ["state", "kind", "cluster"]


@extend_schema_view(
    list=extend_schema(summary="List operations", responses={200: api.OperationSummarySerializer(many=True)}),
    retrieve=extend_schema(summary="Get an operation with its steps, progress and log"),
)
class OperationViewSet(common.ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    serializer_class = api.OperationSerializer
    filterset_class = OperationFilterSet
    permission_classes = [IsAuthenticated, OrganizationRolePermission]

    def get_queryset(self) -> QuerySet[Operation]:
        if getattr(self, "swagger_fake_view", False):
            return Operation.objects.none()
        return (
            Operation.objects.filter(cluster__organization__in=organizations_of(self.request.user))
            .select_related("cluster")
            .prefetch_related("steps")
        )

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return api.OperationSummarySerializer if self.action == "list" else api.OperationSerializer

    @extend_schema(
        summary="Cancel an operation between steps",
        request=None,
        responses={202: api.OperationSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        operation = self.get_object()
        if not can_write(request.user, operation.cluster.organization_id):
            raise PermissionDenied(OrganizationRolePermission.message)
        operation = operation_actions.request_cancel(operation=operation, actor=Actor.from_request(request))
        return Response(api.OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(list=extend_schema(summary="Your organizations and your role in each"))
class MembershipViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = api.MembershipSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(user=self.request.user).select_related("organization")


@extend_schema_view(list=extend_schema(summary="Your API tokens"))
class ApiTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = api.ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(
        summary="Create an API token (its secret is shown once)",
        request=api.ApiTokenCreateSerializer,
        responses={201: api.ApiTokenCreatedSerializer},
    )
    def create(self, request: Request) -> Response:
        data = api.ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = tenancy_actions.create_api_token(
            user=request.user,
            name=data.validated_data["name"],
            expires_at=data.validated_data.get("expires_at"),
            actor=Actor.from_request(request),
        )
        body = api.ApiTokenSerializer(token).data | {"token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API token", responses={204: None, 404: ERRORS[404]})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        tenancy_actions.revoke_api_token(token=self.get_object(), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
