"""REST API of a cluster's data plane: /api/v1/clusters/{cluster_id}/topics/, users/ and acls/. Views
validate the shape, call one action and answer; reads combine the control plane's records with what
Kafka says."""

from __future__ import annotations

import uuid

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api import common, idempotency
from controlplane.api.permissions import OrganizationRolePermission, can_write, organizations_of
from controlplane.audit.actions import Actor
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.dataplane import access, actions, reads
from controlplane.dataplane import topics as rules
from controlplane.dataplane.api import serializers as api
from controlplane.dataplane.choices import UserMechanism
from controlplane.dataplane.errors import DataPlaneConflict
from controlplane.dataplane.models import AclRule, KafkaUser, Topic
from provisioning import security

CLUSTER_ID = OpenApiParameter("cluster_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
TOPIC_NAME = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^[a-zA-Z0-9._-]{1,249}$",
    description="Topic name.",
)
ERRORS = {code: common.ERRORS[code] for code in (400, 401, 403, 404, 409, 429, 503)}


def cluster_for(request: Request, cluster_id: str, *, write: bool) -> Cluster:
    """The cluster named in the path: 404 outside the caller's organizations (and once deleted), 403 for
    a viewer who asks to change something."""
    try:
        pk = uuid.UUID(str(cluster_id))
    except ValueError:
        pk = None
    cluster = get_object_or_404(
        Cluster.objects.filter(organization__in=organizations_of(request.user))
        .exclude(status=ClusterStatus.DELETED)
        .select_related("organization"),
        pk=pk,
    )
    if write and not can_write(request.user, cluster.organization_id):
        raise PermissionDenied(OrganizationRolePermission.message)
    return cluster


@extend_schema_view(
    list=extend_schema(
        summary="A cluster's topics",
        description="Managed topics with their status and drift, and every other topic Kafka has (Kafka's "
        "internal topics and those created outside the control plane), read only. Sorted by name.",
        parameters=[CLUSTER_ID],
        responses={200: api.TopicSerializer(many=True), **ERRORS},
    ),
)
class TopicViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    lookup_field = "name"
    lookup_value_regex = r"[a-zA-Z0-9._-]{1,249}"
    pagination_class = common.Pagination

    def list(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=False)
        names, managed, seen = reads.topic_names(cluster)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(names, request, view=self)
        bodies = [rules.describe(cluster, name, managed.get(name), seen) for name in page]
        return paginator.get_paginated_response(api.TopicSerializer(bodies, many=True).data)

    @extend_schema(
        summary="Create a topic",
        description="Replicas are placed rack-aware by the placement engine (spread over as many racks as "
        "there are, when fewer than the replication factor). Answers once Kafka has the topic.",
        parameters=[CLUSTER_ID, idempotency.PARAMETER],
        request=api.TopicCreateSerializer,
        responses={201: api.TopicSerializer, **ERRORS, **idempotency.RESPONSES},
    )
    def create(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=True)

        def handle() -> Response:
            data = api.TopicCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            topic = actions.create_topic(
                cluster=cluster,
                request=actions.topic_request(cluster, values),
                actor=Actor.from_request(request),
            )
            body = self._describe(cluster, topic.name, topic)
            location = request.build_absolute_uri(f"/api/v1/clusters/{cluster.id}/topics/{topic.name}/")
            return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

        return idempotency.idempotent(request, handle)

    @extend_schema(
        summary="A topic in detail",
        description="Per partition its leader, replicas with their racks, ISR, offsets and size; every config "
        "with where it comes from. Topics not managed here are shown read only.",
        parameters=[CLUSTER_ID, TOPIC_NAME],
        responses={200: api.TopicDetailSerializer, **ERRORS},
    )
    def retrieve(self, request: Request, cluster_id: str, name: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=False)
        topic = Topic.objects.filter(cluster=cluster, name=name).first()
        return Response(self._describe(cluster, name, topic, detail=True))

    @extend_schema(
        summary="Change a topic",
        description="`partitions` may only grow (a decrease is a 400 and changes nothing); `config` changes "
        "the keys given (null: back to the default) and leaves the others.",
        parameters=[CLUSTER_ID, TOPIC_NAME],
        request=api.TopicUpdateSerializer,
        responses={200: api.TopicSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, cluster_id: str, name: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=True)
        topic = self._managed(cluster, name)
        data = api.TopicUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        topic = actions.update_topic(
            topic=topic,
            actor=Actor.from_request(request),
            partitions=values.get("partitions"),
            config=values.get("config"),
            deletion_protected=values.get("deletion_protected"),
        )
        return Response(self._describe(cluster, topic.name, topic))

    @extend_schema(
        summary="Delete a topic",
        description="Refused (409) while the topic is deletion-protected. Once answered, reading the topic "
        "answers 404.",
        parameters=[CLUSTER_ID, TOPIC_NAME],
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, cluster_id: str, name: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=True)
        actions.delete_topic(topic=self._managed(cluster, name), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _managed(self, cluster: Cluster, name: str) -> Topic:
        topic = Topic.objects.filter(cluster=cluster, name=name).select_related("cluster").first()
        if topic is not None:
            return topic
        kind = "Kafka's internal topic" if rules.is_internal(name) else None
        if kind is None:
            self._describe(cluster, name, None)  # 404 unless Kafka has it
            kind = "a topic created outside the control plane"
        raise DataPlaneConflict(f"Topic {name} is {kind}; it is shown here read only.")

    def _describe(self, cluster: Cluster, name: str, topic: Topic | None, *, detail: bool = False) -> dict:
        """The topic as the API shows it; 404 when neither the control plane nor Kafka has it."""
        try:
            body = reads.read_topic(cluster, name, topic, detail=detail)
        except reads.TopicNotFound:
            raise Http404(f"No topic named {name}.") from None
        return (api.TopicDetailSerializer if detail else api.TopicSerializer)(body).data


USER_NAME = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^[a-zA-Z0-9._-]{1,64}$",
    description="User name.",
)
ACL_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="ACL rule id.")


@extend_schema_view(
    list=extend_schema(
        summary="A cluster's users",
        parameters=[CLUSTER_ID],
        responses={200: api.UserSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        summary="A user", parameters=[CLUSTER_ID, USER_NAME], responses={200: api.UserSerializer, **ERRORS}
    ),
)
class UserViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    lookup_field = "name"
    lookup_value_regex = r"[a-zA-Z0-9._-]{1,64}"
    pagination_class = common.Pagination

    def list(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=False)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            KafkaUser.objects.filter(cluster=cluster).order_by("name"), request, view=self
        )
        return paginator.get_paginated_response(api.UserSerializer(page, many=True).data)

    def retrieve(self, request: Request, cluster_id: str, name: str) -> Response:
        return Response(api.UserSerializer(self._user(request, cluster_id, name, write=False)).data)

    @extend_schema(
        summary="Create a user",
        description="Answers its secret once: the SCRAM password (generated unless given), or the client "
        "certificate with its private key and the CA. It is never shown again; `rotate` makes a new one.",
        parameters=[CLUSTER_ID, idempotency.PARAMETER],
        request=api.UserCreateSerializer,
        responses={201: api.UserWithSecretSerializer, **ERRORS, **idempotency.RESPONSES},
    )
    def create(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=True)

        def handle() -> Response:
            data = api.UserCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            mechanism = values.get("mechanism") or (
                UserMechanism.SCRAM_SHA_512
                if security.SCRAM in cluster.client_authentication or not cluster.client_authentication
                else UserMechanism.MTLS
            )
            user, secret = access.create_user(
                cluster=cluster,
                name=values["name"],
                mechanism=mechanism,
                password=values.get("password"),
                quota=values.get("quota"),
                actor=Actor.from_request(request),
            )
            location = request.build_absolute_uri(f"/api/v1/clusters/{cluster.id}/users/{user.name}/")
            return Response(
                api.UserSerializer(user).data | secret,
                status=status.HTTP_201_CREATED,
                headers={"Location": location},
            )

        return idempotency.idempotent(request, handle)

    @extend_schema(
        summary="Change a user's quotas",
        parameters=[CLUSTER_ID, USER_NAME],
        request=api.UserUpdateSerializer,
        responses={200: api.UserSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, cluster_id: str, name: str) -> Response:
        user = self._user(request, cluster_id, name, write=True)
        data = api.UserUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = access.update_quota(
            user=user, quota=data.validated_data["quota"], actor=Actor.from_request(request)
        )
        return Response(api.UserSerializer(user).data)

    @extend_schema(
        summary="Delete a user",
        description="Its credential, quotas and every ACL binding of its principal go too.",
        parameters=[CLUSTER_ID, USER_NAME],
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, cluster_id: str, name: str) -> Response:
        access.delete_user(
            user=self._user(request, cluster_id, name, write=True), actor=Actor.from_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate a user's credential",
        description="A new password (the old one stops working at once) or a new client certificate (the old "
        "one stays valid until it expires: Kafka checks no revocation lists). Answers the secret once.",
        parameters=[CLUSTER_ID, USER_NAME],
        request=api.RotateSerializer,
        responses={200: api.UserWithSecretSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, cluster_id: str, name: str) -> Response:
        user = self._user(request, cluster_id, name, write=True)
        data = api.RotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, secret = access.rotate_credentials(
            user=user, password=data.validated_data.get("password"), actor=Actor.from_request(request)
        )
        return Response(api.UserSerializer(user).data | secret)

    def _user(self, request: Request, cluster_id: str, name: str, *, write: bool) -> KafkaUser:
        cluster = cluster_for(request, cluster_id, write=write)
        return get_object_or_404(
            KafkaUser.objects.select_related("cluster__organization"), cluster=cluster, name=name
        )


@extend_schema_view(
    list=extend_schema(
        summary="A cluster's ACL rules",
        description="In the shape they were written, each with whether Kafka still has all its bindings.",
        parameters=[CLUSTER_ID],
        responses={200: api.AclSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        summary="An ACL rule", parameters=[CLUSTER_ID, ACL_ID], responses={200: api.AclSerializer, **ERRORS}
    ),
)
class AclViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    lookup_value_regex = r"[0-9a-fA-F-]{36}"
    pagination_class = common.Pagination

    def list(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=False)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(AclRule.objects.filter(cluster=cluster), request, view=self)
        context = {"states": reads.acl_states(cluster, page)}
        return paginator.get_paginated_response(api.AclSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, cluster_id: str, pk: str) -> Response:
        rule = self._rule(request, cluster_id, pk, write=False)
        return Response(
            api.AclSerializer(rule, context={"states": reads.acl_states(rule.cluster, [rule])}).data
        )

    @extend_schema(
        summary="Create an ACL rule",
        description="Kafka's own shape: principal, resource type and name, pattern literal or prefixed, "
        "operations, allow or deny, host. Read back exactly as written.",
        parameters=[CLUSTER_ID, idempotency.PARAMETER],
        request=api.AclCreateSerializer,
        responses={201: api.AclSerializer, **ERRORS, **idempotency.RESPONSES},
    )
    def create(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_for(request, cluster_id, write=True)

        def handle() -> Response:
            data = api.AclCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            rule = access.create_acl(
                cluster=cluster,
                request=access.AclRequest(**{**values, "operations": tuple(values["operations"])}),
                actor=Actor.from_request(request),
            )
            location = request.build_absolute_uri(f"/api/v1/clusters/{cluster.id}/acls/{rule.pk}/")
            body = api.AclSerializer(rule, context={"states": {rule.pk: "ok"}}).data
            return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

        return idempotency.idempotent(request, handle)

    @extend_schema(
        summary="Delete an ACL rule",
        description="Its bindings leave Kafka, except those another rule still grants.",
        parameters=[CLUSTER_ID, ACL_ID],
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, cluster_id: str, pk: str) -> Response:
        access.delete_acl(
            rule=self._rule(request, cluster_id, pk, write=True), actor=Actor.from_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _rule(self, request: Request, cluster_id: str, pk: str, *, write: bool) -> AclRule:
        cluster = cluster_for(request, cluster_id, write=write)
        try:
            rule_id = uuid.UUID(str(pk))
        except ValueError:
            rule_id = None
        return get_object_or_404(AclRule.objects.select_related("cluster"), cluster=cluster, pk=rule_id)
