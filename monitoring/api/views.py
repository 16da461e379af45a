"""Monitoring API: what the last collection of a cluster found, and history for charts.

Read-only, and scoped like the clusters API: a cluster outside the caller's organizations is 404.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.common import ErrorSerializer
from controlplane.api.permissions import organizations_of
from controlplane.clusters.models import Cluster
from monitoring import history, lag_state
from monitoring.api import serializers as api
from monitoring.lag import LagStatus
from monitoring.models import ClusterHealth

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such cluster in your organizations.")
CLUSTER_ID = OpenApiParameter(
    "cluster_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The cluster's id."
)


def clusters_of(request: Request) -> QuerySet[Cluster]:
    return Cluster.objects.filter(organization__in=organizations_of(request.user))


class ClusterMonitoringViewSet(viewsets.GenericViewSet):
    """Routes under /clusters/{id}/ that read monitoring data of one cluster."""

    queryset = Cluster.objects.none()
    serializer_class = api.ClusterHealthSerializer
    pagination_class = None
    filter_backends: list[type] = []

    def get_queryset(self) -> QuerySet[Cluster]:
        return clusters_of(self.request)

    @extend_schema(
        summary="Get a cluster's health",
        description="What the last collection found: status (ok, warning, critical, unknown) with the "
        "reason in one sentence, broker and partition counts in total, per topic and per broker, and "
        "each finding. A cluster that could not be reached is `unknown`; its counts are then those of "
        "`succeeded_at`, the last collection that reached it.",
        responses={200: api.ClusterHealthSerializer, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        health = ClusterHealth.objects.filter(cluster=cluster).defer("assignment").first() or ClusterHealth(
            cluster=cluster, reason="Not collected yet."
        )
        return Response(api.ClusterHealthSerializer(health).data)

    @extend_schema(
        summary="Get a cluster's metric history",
        description="Time series for charts: the cluster's totals (brokers up, offline, "
        "under-replicated, under-min-ISR and at-min-ISR partitions), each consumer group's lag and "
        "time lag, and each broker's messages in and bytes in per second (the growth of the "
        "partitions it leads since the previous collection) and disk used. One point per collection for the last hour, one-minute averages before that, up to "
        "24 hours back. Collections that could not reach the cluster leave a gap.",
        parameters=[api.MetricsHistoryQuerySerializer],
        responses={
            200: api.MetricsHistorySerializer,
            400: OpenApiResponse(description="Invalid query."),
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["get"], url_path="metrics-history")
    def metrics_history(self, request: Request, pk: str | None = None) -> Response:
        cluster = self.get_object()
        query = api.MetricsHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        names = query.validated_data["series"]
        since = query.validated_data["since"]
        until = query.validated_data.get("until")
        series = (
            history.cluster_series(cluster.pk, names, since, until)
            + history.group_series(cluster.pk, names, since, until, groups=query.validated_data.get("group"))
            + history.broker_series(cluster.pk, names, since, until)
        )
        body = {"cluster": cluster.pk, "since": since, "until": until, "series": series}
        return Response(api.MetricsHistorySerializer(body).data)


class ConsumerGroupQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s.value for s in LagStatus], required=False, help_text="Only groups with this status."
    )


@extend_schema_view(
    list=extend_schema(
        summary="List a cluster's consumer groups",
        description="Each group's Burrow status with its plain-English explanation, lag, time lag and "
        "every partition's status, worst groups first. Filter with `status`.",
        parameters=[CLUSTER_ID, ConsumerGroupQuerySerializer],
        responses={200: api.ConsumerGroupSerializer(many=True), 404: NOT_FOUND},
    ),
    retrieve=extend_schema(
        summary="Get one consumer group",
        parameters=[
            CLUSTER_ID,
            OpenApiParameter(
                "group_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The group's id."
            ),
        ],
        responses={200: api.ConsumerGroupSerializer, 404: NOT_FOUND},
    ),
)
class ConsumerGroupViewSet(viewsets.GenericViewSet):
    """A cluster's consumer groups as its last collection stored them (`lag_state`)."""

    serializer_class = api.ConsumerGroupSerializer
    lookup_field = "group_id"
    # Group ids often contain dots; only a slash cannot appear in a path segment.
    lookup_value_regex = "[^/]+"

    def list(self, request: Request, cluster_pk: str) -> Response:
        query = ConsumerGroupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        groups, windows = lag_state.load(self._cluster().pk)  # worst first
        if status := query.validated_data.get("status"):
            groups = [group for group in groups if group.status == status]
        page = self.paginate_queryset(groups)
        serializer = self._serializer(page if page is not None else groups, windows, many=True)
        return self.get_paginated_response(serializer.data) if page is not None else Response(serializer.data)

    def retrieve(self, request: Request, cluster_pk: str, group_id: str) -> Response:
        cluster = self._cluster()
        groups, windows = lag_state.load(cluster.pk)
        group = next((g for g in groups if g.group_id == group_id), None)
        if group is None:
            raise NotFound(f"Cluster {cluster.name} has no consumer group {group_id!r}.")
        return Response(self._serializer(group, windows).data)

    def get_queryset(self) -> QuerySet[Cluster]:
        """The clusters whose groups the caller may read."""
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Cluster.objects.none()
        return clusters_of(self.request)

    def _cluster(self) -> Cluster:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["cluster_pk"])

    def _serializer(
        self, groups: object, windows: lag_state.WindowsByGroup, *, many: bool = False
    ) -> api.ConsumerGroupSerializer:
        context = {**self.get_serializer_context(), "windows": windows}
        return api.ConsumerGroupSerializer(groups, many=many, context=context)
