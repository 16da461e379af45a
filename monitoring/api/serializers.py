"""Shapes of the monitoring API: latest health, consumer groups, metric history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring import history
from monitoring.lag import LagStatus, PartitionLag
from monitoring.lag_state import StoredGroup, stored_group_lag
from monitoring.models import ClusterHealth

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class PartitionCountsSerializer(serializers.Serializer):
    partitions = serializers.IntegerField()
    offline = serializers.IntegerField(help_text="Without a live leader: nothing can be read or written.")
    under_replicated = serializers.IntegerField(help_text="Fewer in-sync replicas than replicas.")
    under_min_isr = serializers.IntegerField(
        help_text="Fewer in-sync replicas than min.insync.replicas: acks=all producers are refused."
    )
    at_min_isr = serializers.IntegerField(help_text="Exactly min.insync.replicas in sync.")


class BrokerCountsSerializer(PartitionCountsSerializer):
    leaders = serializers.IntegerField()
    out_of_sync_replicas = serializers.IntegerField(help_text="Replicas here that are not in the ISR.")


class TopicPartitionSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()


class FindingSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="offline_partitions, under_min_isr, under_replicated, ...")
    subject = serializers.CharField(help_text='"cluster", "topic:<name>" or "broker:<id>".')
    value = serializers.IntegerField(help_text="How many partitions (1 for a broker or controller).")
    summary = serializers.CharField()
    brokers = serializers.ListField(child=serializers.IntegerField(), help_text="The brokers causing it.")
    partitions = serializers.SerializerMethodField(help_text="Examples; `value` is the exact count.")

    @extend_schema_field(TopicPartitionSerializer(many=True))
    def get_partitions(self, finding: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"topic": topic, "partition": partition} for topic, partition in finding["partitions"]]


class BrokersSerializer(serializers.Serializer):
    up = serializers.IntegerField(help_text="Registered with the cluster.")
    expected = serializers.ListField(child=serializers.IntegerField())
    registered = serializers.ListField(child=serializers.IntegerField())
    down = serializers.ListField(child=serializers.IntegerField(), help_text="Expected, not registered.")
    unexpected = serializers.ListField(
        child=serializers.IntegerField(), help_text="Registered, not expected (e.g. during a scale-out)."
    )


class BrokerDiskSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="The broker's fullest log directory.")
    total_bytes = serializers.IntegerField(help_text="Size of the volume it is on.")
    usable_bytes = serializers.IntegerField(help_text="What the broker may still write there.")
    used_percent = serializers.FloatField()


class ClusterHealthSerializer(serializers.ModelSerializer):
    cluster = serializers.UUIDField(source="cluster_id")
    brokers = serializers.SerializerMethodField()
    totals = serializers.SerializerMethodField()
    topics = serializers.SerializerMethodField()
    broker_counts = serializers.SerializerMethodField()
    disks = serializers.DictField(
        child=BrokerDiskSerializer(),
        help_text="By broker id: its fullest data volume, for the brokers that reported one (Apache "
        "Kafka 3.3 and later). Used means what the broker can no longer write.",
    )
    findings = FindingSerializer(many=True)

    class Meta:
        model = ClusterHealth
        fields = [
            "cluster",
            "status",
            "reason",
            "collected_at",
            "succeeded_at",
            "active_controllers",
            "brokers",
            "totals",
            "topics",
            "broker_counts",
            "disks",
            "findings",
        ]
        extra_kwargs = {
            "reason": {"help_text": "Why the status is what it is, in one sentence."},
            "collected_at": {"help_text": "The last collection, whether it reached the cluster or not."},
            "succeeded_at": {"help_text": "The last collection that reached the cluster: the counts' age."},
        }

    @extend_schema_field(BrokersSerializer)
    def get_brokers(self, health: ClusterHealth) -> dict[str, Any]:
        counts = health.counts or {}
        return {
            "up": health.brokers_up,
            "expected": counts.get("expected_brokers", []),
            "registered": counts.get("registered_brokers", []),
            "down": counts.get("down_brokers", []),
            "unexpected": counts.get("unexpected_brokers", []),
        }

    @extend_schema_field(PartitionCountsSerializer)
    def get_totals(self, health: ClusterHealth) -> dict[str, int]:
        return {
            "partitions": health.partitions,
            "offline": health.offline_partitions,
            "under_replicated": health.under_replicated_partitions,
            "under_min_isr": health.under_min_isr_partitions,
            "at_min_isr": health.at_min_isr_partitions,
        }

    @extend_schema_field(serializers.DictField(child=PartitionCountsSerializer()))
    def get_topics(self, health: ClusterHealth) -> dict[str, Any]:
        return (health.counts or {}).get("topics", {})

    @extend_schema_field(serializers.DictField(child=BrokerCountsSerializer()))
    def get_broker_counts(self, health: ClusterHealth) -> dict[str, Any]:
        return (health.counts or {}).get("brokers", {})


class PartitionLagSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    status = serializers.CharField(source="status.value", help_text="OK, WARN, ERR, REWIND, STALL or STOP.")
    lag = serializers.IntegerField(allow_null=True, help_text="Messages waiting.")
    time_lag_seconds = serializers.FloatField(
        allow_null=True, help_text="Estimated age of the oldest waiting message."
    )
    committed_offset = serializers.IntegerField(allow_null=True)
    end_offset = serializers.IntegerField(allow_null=True)
    summary = serializers.CharField(help_text="The status explained in one sentence, with numbers.")


class TopicLagSerializer(serializers.Serializer):
    lag = serializers.IntegerField()
    time_lag_seconds = serializers.FloatField(allow_null=True)


class GroupMemberSerializer(serializers.Serializer):
    member_id = serializers.CharField()
    client_id = serializers.CharField()
    host = serializers.CharField(help_text="As the broker saw the member's connection, e.g. /10.0.3.7.")
    assignment = serializers.SerializerMethodField(help_text="The partitions assigned to it.")

    @extend_schema_field(TopicPartitionSerializer(many=True))
    def get_assignment(self, member: Any) -> list[dict[str, Any]]:
        return [{"topic": topic, "partition": partition} for topic, partition in member.assignment]


class ConsumerGroupSerializer(serializers.Serializer):
    """A `lag_state.StoredGroup`, with its partitions evaluated from the windows in the context."""

    group_id = serializers.CharField()
    state = serializers.CharField(help_text="Kafka's group state: Stable, Empty, PreparingRebalance, ...")
    members = serializers.IntegerField(
        allow_null=True, help_text="Members, or null when the broker does not report them."
    )
    status = serializers.ChoiceField(
        choices=[s.value for s in LagStatus], help_text="Burrow's status: the worst of its partitions."
    )
    summary = serializers.CharField(help_text="The status explained in one sentence.")
    total_lag = serializers.IntegerField()
    max_lag = serializers.IntegerField()
    time_lag_seconds = serializers.FloatField(allow_null=True, help_text="The largest partition time lag.")
    collected_at = serializers.DateTimeField()
    topics = serializers.SerializerMethodField()
    partitions = serializers.SerializerMethodField()
    member_details = GroupMemberSerializer(
        many=True, help_text="Each member as DescribeConsumerGroups names it; empty when not reported."
    )

    @extend_schema_field(serializers.DictField(child=TopicLagSerializer()))
    def get_topics(self, group: StoredGroup) -> dict[str, Any]:
        return {
            topic: {"lag": lag, "time_lag_seconds": time_lag}
            for topic, (lag, time_lag) in group.topics.items()
        }

    @extend_schema_field(PartitionLagSerializer(many=True))
    def get_partitions(self, group: StoredGroup) -> list[dict[str, Any]]:
        # The view loads the cluster's windows once for all the groups it shows.
        windows = self.context.get("windows") or {}
        partitions: tuple[PartitionLag, ...] = stored_group_lag(group, windows).partitions
        return PartitionLagSerializer(partitions, many=True).data


class MetricsHistoryQuerySerializer(serializers.Serializer):
    series = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Series to return, repeated or comma-separated: {', '.join(history.SERIES_NAMES)}. "
        "Default: the cluster totals.",
    )
    group = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Consumer groups for the consumer_* series (repeatable). Default: every group.",
    )
    since = serializers.CharField(
        required=False,
        default="1h",
        help_text="Start: an ISO 8601 time, or a duration back from now such as 30m, 6h, 1d. Default 1h.",
    )
    until = serializers.DateTimeField(required=False, help_text="End (ISO 8601). Default: now.")

    def validate_series(self, value: list[str]) -> list[str]:
        names = [name.strip() for item in value for name in item.split(",") if name.strip()]
        unknown = sorted(set(names) - set(history.SERIES_NAMES))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown series {', '.join(unknown)}; choose from {', '.join(history.SERIES_NAMES)}."
            )
        return list(dict.fromkeys(names))

    def validate_since(self, value: str) -> datetime:
        moment = parse_datetime(value)
        if moment is not None:
            return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
        unit = DURATION_UNITS.get(value[-1:])
        if unit is None or not value[:-1].isdigit():
            raise serializers.ValidationError(
                "Give an ISO 8601 time or a duration: a number followed by s, m, h or d (e.g. 30m)."
            )
        return timezone.now() - timedelta(seconds=int(value[:-1]) * unit)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("series", list(history.CLUSTER_SERIES))
        until = data.get("until")
        if until is not None and until <= data["since"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return data


class SeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    group_id = serializers.CharField(allow_null=True, help_text="For consumer_* series.")
    broker_id = serializers.IntegerField(allow_null=True, help_text="For broker_* series.")
    points = serializers.SerializerMethodField(help_text="[time, value] pairs, oldest first.")

    @extend_schema_field(
        serializers.ListField(child=serializers.ListField(child=serializers.JSONField(), min_length=2))
    )
    def get_points(self, series: history.Series) -> list[list[Any]]:
        return [[at.isoformat().replace("+00:00", "Z"), value] for at, value in series.points]


class MetricsHistorySerializer(serializers.Serializer):
    cluster = serializers.UUIDField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(allow_null=True)
    series = SeriesSerializer(many=True)
