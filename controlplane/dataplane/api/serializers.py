"""Shapes of the data-plane API's input and output. Rules that need Kafka or other objects live in the
domain modules (`controlplane.dataplane.topics`, `actions`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from controlplane.api.common import StrictSerializer
from controlplane.dataplane.choices import TopicStatus
from controlplane.dataplane.topics import MAX_NAME_LENGTH, MAX_PARTITIONS, topic_name_error

MAX_CONFIG_KEYS = 100
CONFIG_VALUE_LENGTH = 1000


def _config_field(*, allow_null: bool, help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.CharField(
            max_length=CONFIG_VALUE_LENGTH, allow_blank=True, allow_null=allow_null, trim_whitespace=True
        ),
        required=False,
        help_text=help_text,
    )


def _bounded_config(config: dict[str, Any]) -> dict[str, Any]:
    if len(config) > MAX_CONFIG_KEYS:
        raise serializers.ValidationError(f"At most {MAX_CONFIG_KEYS} config keys per request.")
    return config


class TopicCreateSerializer(StrictSerializer):
    name = serializers.CharField(
        # Longer than a name may be, so that the name's own rule says what is wrong.
        max_length=4 * MAX_NAME_LENGTH,
        trim_whitespace=False,
        help_text="Kafka's rules: letters, digits, '.', '_', '-'.",
    )
    partitions = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PARTITIONS,
        required=False,
        help_text="Default: the cluster's num.partitions.",
    )
    replication_factor = serializers.IntegerField(
        min_value=1, max_value=16, required=False, help_text="Default: the cluster's replication factor."
    )
    config = _config_field(
        allow_null=False,
        help_text="Topic config overrides (e.g. retention.ms), checked against the broker's configs.",
    )
    deletion_protected = serializers.BooleanField(
        default=False, help_text="While true, deleting the topic is refused (409)."
    )

    def validate_name(self, name: str) -> str:
        if error := topic_name_error(name):
            raise serializers.ValidationError(error)
        return name

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return _bounded_config(config)


class TopicUpdateSerializer(StrictSerializer):
    partitions = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PARTITIONS,
        required=False,
        help_text="More partitions; they can only grow.",
    )
    config = _config_field(
        allow_null=True,
        help_text="Config changes: the keys given are set, a null value goes back to the default, keys not "
        "given stay as they are.",
    )
    deletion_protected = serializers.BooleanField(required=False)

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return _bounded_config(config)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give partitions, config or deletion_protected.")
        return attrs


# -- output (documents what `controlplane.dataplane.topics.describe` builds) -----------------------------


class DifferenceSerializer(serializers.Serializer):
    field = serializers.CharField(
        help_text="partitions, replication_factor, config.<key>, or topic (missing)."
    )
    desired = serializers.JSONField(allow_null=True)
    actual = serializers.JSONField(allow_null=True)
    revertible = serializers.BooleanField(
        help_text="Whether the drift check can undo it (drift policy revert)."
    )
    revert_error = serializers.CharField(required=False, help_text="Why the last revert failed.")


class ObservedTopicSerializer(serializers.Serializer):
    partitions = serializers.IntegerField()
    replication_factor = serializers.IntegerField()
    size_bytes = serializers.IntegerField(allow_null=True, help_text="One copy of every partition.")
    under_replicated_partitions = serializers.IntegerField()
    under_min_isr_partitions = serializers.IntegerField()
    offline_partitions = serializers.IntegerField()


class TopicSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="Stable id; null for topics not managed here.")
    cluster = serializers.UUIDField()
    name = serializers.CharField()
    managed = serializers.BooleanField(help_text="Created and changed through the control plane.")
    internal = serializers.BooleanField(help_text="One of Kafka's own topics.")
    read_only = serializers.BooleanField()
    partitions = serializers.IntegerField(help_text="Desired (managed) or actual partition count.")
    replication_factor = serializers.IntegerField()
    config = serializers.DictField(
        child=serializers.CharField(allow_null=True), help_text="Config overrides."
    )
    deletion_protected = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=TopicStatus.choices,
        help_text="ok: Kafka matches; drifted: changed outside the control plane; missing: deleted outside it; "
        "unknown: the cluster did not answer.",
    )
    status_detail = serializers.CharField(allow_blank=True)
    drift = DifferenceSerializer(many=True)
    observed = ObservedTopicSerializer(allow_null=True, help_text="What Kafka reports now.")
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ReplicaSerializer(serializers.Serializer):
    broker = serializers.IntegerField()
    rack = serializers.CharField(allow_null=True)


class PartitionSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    leader = serializers.IntegerField(allow_null=True, help_text="null: offline.")
    replicas = ReplicaSerializer(many=True)
    isr = serializers.ListField(child=serializers.IntegerField())
    start_offset = serializers.IntegerField(allow_null=True)
    end_offset = serializers.IntegerField(allow_null=True)
    size_bytes = serializers.IntegerField(allow_null=True)


class ConfigEntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["topic", "broker", "default"])


class TopicDetailSerializer(TopicSerializer):
    partition_details = PartitionSerializer(many=True)
    configs = ConfigEntrySerializer(many=True, help_text="Every config in effect and where it comes from.")
