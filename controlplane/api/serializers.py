"""Shapes of the REST API's input and output. Cross-object rules live in the domain modules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.manager import BaseManager
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.api.common import StrictSerializer
from controlplane.api.representation import CompiledRepresentation
from controlplane.clusters.choices import Backend, DriftPolicy
from controlplane.clusters.client_config import client_config
from controlplane.clusters.layout import (
    cluster_name_error,
    default_min_insync_replicas,
    default_racks,
    default_replication_factor,
)
from controlplane.clusters.models import Broker, BrokerAnomaly, Cluster
from controlplane.operations.choices import ACTIVE_OPERATION_STATES
from controlplane.operations.models import Operation, OperationLog, OperationStep
from controlplane.tenancy.models import ApiToken, Membership, Organization
from provisioning import security

LOG_LINES_SHOWN = 500


class NodeSizeSerializer(StrictSerializer):
    cpu = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.5"),
        max_value=Decimal("128"),
        coerce_to_string=False,
        help_text="CPU cores per broker (0.5 to 128).",
    )
    memory_mb = serializers.IntegerField(min_value=512, max_value=1024 * 1024, help_text="Memory per broker.")
    disk_gb = serializers.IntegerField(min_value=1, max_value=64 * 1024, help_text="Data disk per broker.")


DEFAULT_NODE_SIZE = {"cpu": 1, "memory_mb": 2048, "disk_gb": 10}


class BrokerRow(NamedTuple):
    """A broker as `BrokerSerializer` shows it, read as a row: a list page shows hundreds, and
    building model instances for them cost more than serializing them."""

    node_id: int
    rack: str
    endpoint: str
    state: str
    state_detail: str
    last_seen_at: datetime | None


class BrokerSerializer(CompiledRepresentation, serializers.ModelSerializer):
    class Meta:
        model = Broker
        fields = list(BrokerRow._fields)


# What `ClusterSerializer` shows of a cluster's relations is read in bulk: the active operation's id
# in the clusters' own statement (`with_serialized_relations`), and the brokers of every cluster of
# a list in one more statement, kept as a plain list on each cluster (`ClusterListSerializer`).
# Django's prefetch_related would fill a per-instance cache with a queryset per cluster and set each
# broker's cluster, which cost a page of clusters more than serializing it.
FETCHED_BROKERS = "fetched_brokers"
ACTIVE_OPERATION_ID = "active_operation_id"


def with_serialized_relations(clusters: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """`clusters` with the id of each one's active operation, which `ClusterSerializer` shows."""
    active = Operation.objects.filter(cluster=OuterRef("pk"), state__in=ACTIVE_OPERATION_STATES)
    return clusters.annotate(**{ACTIVE_OPERATION_ID: Subquery(active.values("id")[:1])})


def fetch_brokers(clusters: Sequence[Cluster]) -> None:
    """Read the brokers of every cluster in one statement and keep them on each cluster."""
    missing = {cluster.pk: cluster for cluster in clusters if FETCHED_BROKERS not in cluster.__dict__}
    if not missing:
        return
    by_cluster: dict[Any, list[BrokerRow]] = {pk: [] for pk in missing}
    rows = (
        Broker.objects.filter(cluster_id__in=list(missing))
        .order_by("cluster_id", "node_id")
        .values_list("cluster_id", *BrokerRow._fields)
    )
    for cluster_id, *values in rows:
        by_cluster[cluster_id].append(BrokerRow(*values))
    for pk, cluster in missing.items():
        cluster.__dict__[FETCHED_BROKERS] = by_cluster[pk]


class _ClusterBrokers(serializers.ListSerializer):
    """The cluster's brokers: those fetched along with it when they were, else read."""

    def get_attribute(self, instance: Cluster) -> list[BrokerRow] | list[Broker]:
        fetched = instance.__dict__.get(FETCHED_BROKERS)
        return fetched if fetched is not None else list(instance.brokers.all())


class ClusterListSerializer(serializers.ListSerializer):
    """Clusters with their brokers read for all of them at once."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        clusters = list(data.all() if isinstance(data, BaseManager) else data)
        fetch_brokers(clusters)
        return super().to_representation(clusters)


class StepSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = OperationStep
        fields = [
            "position",
            "name",
            "title",
            "state",
            "attempts",
            "started_at",
            "finished_at",
            "progress",
            "error",
        ]

    @extend_schema_field(
        {"type": "object", "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}}}
    )
    def get_progress(self, step: OperationStep) -> dict[str, int]:
        return {"done": step.progress_done, "total": step.progress_total}


class LogLineSerializer(serializers.ModelSerializer):
    step = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="Empty for lines about the whole operation.",
    )

    class Meta:
        model = OperationLog
        fields = ["at", "level", "step", "message"]


class OperationSerializer(serializers.ModelSerializer):
    cluster = serializers.UUIDField(source="cluster_id", read_only=True)
    progress = serializers.FloatField(read_only=True, help_text="Percent complete (0-100).")
    steps = StepSerializer(many=True, read_only=True)
    log = serializers.SerializerMethodField(help_text=f"The last {LOG_LINES_SHOWN} log lines, oldest first.")
    requested_by = serializers.CharField(source="requested_by_name", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "cluster",
            "kind",
            "state",
            "progress",
            "params",
            "steps",
            "log",
            "error",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "cancel_requested_at",
        ]

    @extend_schema_field(LogLineSerializer(many=True))
    def get_log(self, operation: Operation) -> list[dict[str, Any]]:
        lines = list(operation.log_lines.select_related("step").order_by("-id")[:LOG_LINES_SHOWN])
        return LogLineSerializer(reversed(lines), many=True).data


class OperationSummarySerializer(OperationSerializer):
    class Meta(OperationSerializer.Meta):
        fields = [f for f in OperationSerializer.Meta.fields if f not in ("log", "steps")]


class ListenerConfigSerializer(serializers.Serializer):
    authentication = serializers.ChoiceField(choices=["none", *security.AUTHENTICATIONS])
    bootstrap_servers = serializers.CharField(allow_blank=True)
    security_protocol = serializers.ChoiceField(choices=["PLAINTEXT", "SASL_SSL", "SSL"])
    sasl_mechanism = serializers.CharField(allow_null=True)
    librdkafka = serializers.DictField(child=serializers.CharField(), help_text="confluent-kafka settings.")
    java = serializers.CharField(help_text="Java client properties.")


class ClientConfigSerializer(serializers.Serializer):
    bootstrap_servers = serializers.CharField(allow_blank=True)
    security_protocol = serializers.ChoiceField(choices=["PLAINTEXT", "SASL_SSL", "SSL"])
    sasl_mechanism = serializers.CharField(allow_null=True)
    ca_pem = serializers.CharField(allow_null=True, help_text="The cluster's CA certificate (PEM) to trust.")
    listeners = ListenerConfigSerializer(many=True)


class ClusterSerializer(CompiledRepresentation, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    brokers = serializers.IntegerField(source="broker_count", read_only=True, help_text="Number of brokers.")
    node_size = serializers.SerializerMethodField()
    broker_nodes = _ClusterBrokers(child=BrokerSerializer(), source="brokers", read_only=True)
    active_operation = serializers.SerializerMethodField()
    client_authentication = serializers.ListField(
        child=serializers.ChoiceField(choices=security.AUTHENTICATIONS),
        read_only=True,
        help_text="How clients authenticate: empty (none), scram (SASL_SSL, SCRAM-SHA-512), mtls.",
    )
    client_config = serializers.SerializerMethodField(
        help_text="Where and how clients connect: bootstrap servers, security protocol, SASL mechanism and "
        "the CA to trust, per listener with ready settings for librdkafka and Java clients."
    )

    class Meta:
        model = Cluster
        list_serializer_class = ClusterListSerializer
        fields = [
            "id",
            "organization",
            "name",
            "backend",
            "kafka_version",
            "brokers",
            "racks",
            "replication_factor",
            "min_insync_replicas",
            "node_size",
            "config",
            "self_healing",
            "drift_policy",
            "collection_interval_seconds",
            "status",
            "status_reason",
            "bootstrap_servers",
            "durable",
            "durability_note",
            "client_authentication",
            "client_config",
            "broker_nodes",
            "active_operation",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(NodeSizeSerializer)
    def get_node_size(self, cluster: Cluster) -> dict[str, Any]:
        return {
            "cpu": float(cluster.node_cpu),
            "memory_mb": cluster.node_memory_mb,
            "disk_gb": cluster.node_disk_gb,
        }

    @extend_schema_field(ClientConfigSerializer)
    def get_client_config(self, cluster: Cluster) -> dict[str, Any]:
        return client_config(cluster)

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_active_operation(self, cluster: Cluster) -> str | None:
        if ACTIVE_OPERATION_ID in cluster.__dict__:
            active = cluster.__dict__[ACTIVE_OPERATION_ID]
        else:
            active = (
                cluster.operations.filter(state__in=ACTIVE_OPERATION_STATES)
                .values_list("id", flat=True)
                .first()
            )
        return str(active) if active is not None else None


class ClusterWithOperationSerializer(ClusterSerializer):
    """A cluster and the operation a request just started (202 answers)."""

    operation = serializers.SerializerMethodField()

    class Meta(ClusterSerializer.Meta):
        fields = [*ClusterSerializer.Meta.fields, "operation"]
        read_only_fields = fields

    @extend_schema_field(OperationSerializer)
    def get_operation(self, cluster: Cluster) -> dict[str, Any]:
        return OperationSerializer(self.context["operation"]).data


class ClusterCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=40, help_text="Unique in the organization; a DNS-1123 label.")
    organization = serializers.SlugField(
        required=False, help_text="Organization slug; may be left out when you belong to exactly one."
    )
    backend = serializers.ChoiceField(choices=Backend.choices, default=Backend.LOCAL)
    kafka_version = serializers.CharField(required=False, help_text="One of the supported Kafka versions.")
    brokers = serializers.IntegerField(min_value=1, max_value=500, help_text="Number of brokers.")
    racks = serializers.ListField(
        child=serializers.CharField(max_length=63),
        required=False,
        min_length=1,
        max_length=64,
        help_text="Rack (availability zone) names. Default: as many as the replication factor.",
    )
    replication_factor = serializers.IntegerField(
        required=False, min_value=1, max_value=16, help_text="Default: min(3, brokers)."
    )
    min_insync_replicas = serializers.IntegerField(
        required=False, min_value=1, max_value=16, help_text="Default: max(1, replication_factor - 1)."
    )
    node_size = NodeSizeSerializer(required=False)
    config = serializers.DictField(
        child=serializers.CharField(max_length=1000), required=False, help_text="Extra broker configuration."
    )
    self_healing = serializers.BooleanField(default=True)
    drift_policy = serializers.ChoiceField(
        choices=DriftPolicy.choices,
        default=DriftPolicy.REPORT,
        help_text="What the drift check does with topics changed outside the control plane.",
    )
    target = serializers.SlugField(
        required=False,
        max_length=63,
        help_text="A registered target (/api/v1/targets/) of the backend; default: the organization's only "
        "one. `local` clusters need none.",
    )
    client_authentication = serializers.ListField(
        child=serializers.ChoiceField(choices=security.AUTHENTICATIONS),
        default=list,
        max_length=len(security.AUTHENTICATIONS),
        help_text="Client authentication: scram (a SASL_SSL listener, SCRAM-SHA-512) and/or mtls (an SSL "
        "listener requiring client certificates). Empty: clients connect without (PLAINTEXT).",
    )

    def validate_name(self, name: str) -> str:
        if error := cluster_name_error(name):
            raise serializers.ValidationError(error)
        return name

    def validate_client_authentication(self, methods: list[str]) -> list[str]:
        if len(set(methods)) != len(methods):
            raise serializers.ValidationError("Name each method once.")
        return [method for method in security.AUTHENTICATIONS if method in methods]

    def validate_kafka_version(self, version: str) -> str:
        if version not in settings.KAFKA_VERSIONS:
            raise serializers.ValidationError(
                f"Unknown Kafka version {version!r}; supported: {', '.join(settings.KAFKA_VERSIONS)}."
            )
        return version

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("kafka_version", settings.DEFAULT_KAFKA_VERSION)
        attrs.setdefault("replication_factor", default_replication_factor(attrs["brokers"]))
        attrs.setdefault("min_insync_replicas", default_min_insync_replicas(attrs["replication_factor"]))
        attrs.setdefault("racks", default_racks(attrs["replication_factor"]))
        attrs.setdefault("node_size", dict(DEFAULT_NODE_SIZE))
        attrs.setdefault("config", {})
        return attrs


class ClusterUpdateSerializer(StrictSerializer):
    """Settings that change without an operation. Size and version change through /scale/ and /upgrade/."""

    self_healing = serializers.BooleanField(required=False)
    collection_interval_seconds = serializers.IntegerField(required=False, min_value=5, max_value=3600)
    drift_policy = serializers.ChoiceField(choices=DriftPolicy.choices, required=False)


class ScaleSerializer(StrictSerializer):
    brokers = serializers.IntegerField(
        min_value=1,
        max_value=500,
        help_text="The new number of brokers: a multiple of the rack count, enough for every partition's "
        "replicas. Scaling out rebalances onto the new brokers; scaling in drains brokers first.",
    )


class RestartSerializer(StrictSerializer):
    """A rolling restart takes no parameters."""


class ReplaceBrokerSerializer(StrictSerializer):
    node_id = serializers.IntegerField(min_value=0, help_text="The broker to replace.")
    keep_disk = serializers.BooleanField(
        help_text="true when the broker's disk survived: it starts again in its rack with the same node id "
        "and its data. false: a new broker joins the same rack and takes over its replicas."
    )


class UpgradeSerializer(StrictSerializer):
    kafka_version = serializers.CharField(max_length=16, help_text="A newer supported Kafka version.")


class BrokerAnomalySerializer(serializers.ModelSerializer):
    operation = serializers.UUIDField(
        source="operation_id",
        read_only=True,
        allow_null=True,
        help_text="The latest replacement started for it.",
    )

    class Meta:
        model = BrokerAnomaly
        fields = [
            "id",
            "node_id",
            "state",
            "source",
            "detail",
            "detected_at",
            "last_seen_at",
            "resolved_at",
            "attempts",
            "retry_after",
            "held_because",
            "operation",
        ]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    name = serializers.CharField(source="organization.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["organization", "name", "role"]


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["slug", "name", "created_at"]


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: never.")

    def validate_expires_at(self, expires_at: datetime | None) -> datetime | None:
        if expires_at is not None and expires_at <= timezone.now():
            raise serializers.ValidationError("expires_at must be in the future.")
        return expires_at


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only in this answer.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ClusterPlanSerializer(serializers.Serializer):
    """What a cluster request creates (or an existing cluster has), before anything is applied."""

    target = serializers.CharField(
        source="target_name", help_text="The target it goes to; `default` for the backend's own one."
    )
    placement = serializers.DictField(
        child=serializers.CharField(), help_text="Node id -> rack (zone) of every broker."
    )
    summary = serializers.CharField(source="plan.summary", help_text="The plan in plain words.")
    manifests = serializers.CharField(
        source="plan.manifests",
        help_text="Every Kubernetes object as one YAML stream (`kubectl apply -f` reads it); empty for "
        "backends that apply no manifests.",
    )
    artifacts = serializers.DictField(
        source="plan.artifacts",
        child=serializers.CharField(),
        help_text="File name -> content of what the backend renders (configuration, commands, manifests).",
    )


class ClusterDryRunSerializer(ClusterPlanSerializer):
    """A dry run's answer: the cluster as it would be, and its plan. Nothing is saved."""

    name = serializers.CharField(source="spec.name")
    organization = serializers.CharField(source="organization.slug")
    backend = serializers.CharField()
    kafka_version = serializers.CharField(source="spec.kafka_version")
    brokers = serializers.IntegerField(source="broker_count")
    racks = serializers.ListField(child=serializers.CharField(), source="spec.racks")
    replication_factor = serializers.IntegerField(source="spec.replication_factor")
    min_insync_replicas = serializers.IntegerField(source="spec.min_insync_replicas")
    node_size = NodeSizeSerializer(source="node_size_values")
    config = serializers.DictField(child=serializers.CharField(), source="config_values")
