"""Shapes of the data-plane API's input and output. Rules that need Kafka or other objects live in the
domain modules (`controlplane.dataplane.topics`, `actions`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.api.common import StrictSerializer
from controlplane.dataplane.access import MAX_PASSWORD_LENGTH, QUOTA_KEYS, password_error, user_name_error
from controlplane.dataplane.choices import (
    AclOperation,
    AclPatternType,
    AclPermission,
    AclResourceType,
    TopicStatus,
    UserMechanism,
)
from controlplane.dataplane.models import AclRule, KafkaUser
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


# -- users -----------------------------------------------------------------------------------------------


class QuotaSerializer(StrictSerializer):
    producer_byte_rate = serializers.IntegerField(
        min_value=1, max_value=2**53, required=False, allow_null=True, help_text="Bytes per second produced."
    )
    consumer_byte_rate = serializers.IntegerField(
        min_value=1, max_value=2**53, required=False, allow_null=True, help_text="Bytes per second fetched."
    )
    request_percentage = serializers.FloatField(
        min_value=0.01,
        max_value=10_000,
        required=False,
        allow_null=True,
        help_text="Share of a broker's network and I/O threads' time, in percent of one thread.",
    )


class UserCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, help_text="The principal is User:<name>.")
    mechanism = serializers.ChoiceField(
        choices=UserMechanism.choices,
        required=False,
        help_text="SCRAM-SHA-512 (a password) or mTLS (a client certificate). Default: SCRAM-SHA-512 when "
        "the cluster has a SCRAM listener, else mTLS.",
    )
    password = serializers.CharField(
        required=False,
        max_length=MAX_PASSWORD_LENGTH,
        trim_whitespace=False,
        help_text="SCRAM only; generated when left out. Shown once, in this answer.",
    )
    quota = QuotaSerializer(required=False)

    def validate_name(self, name: str) -> str:
        if error := user_name_error(name):
            raise serializers.ValidationError(error)
        return name

    def validate_password(self, password: str) -> str:
        if error := password_error(password):
            raise serializers.ValidationError(error)
        return password


class UserUpdateSerializer(StrictSerializer):
    quota = QuotaSerializer(help_text="Quotas to set; null removes one, those left out stay.")


class RotateSerializer(StrictSerializer):
    password = serializers.CharField(
        required=False,
        max_length=MAX_PASSWORD_LENGTH,
        trim_whitespace=False,
        help_text="SCRAM only; generated when left out.",
    )

    def validate_password(self, password: str) -> str:
        if error := password_error(password):
            raise serializers.ValidationError(error)
        return password


class UserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    cluster = serializers.UUIDField(source="cluster_id")
    name = serializers.CharField()
    principal = serializers.CharField()
    mechanism = serializers.ChoiceField(choices=UserMechanism.choices)
    quota = serializers.SerializerMethodField()
    certificate_serial = serializers.CharField(allow_blank=True, help_text="mTLS users: hex serial.")
    certificate_expires_at = serializers.DateTimeField(allow_null=True)
    credentials_rotated_at = serializers.DateTimeField(allow_null=True)
    acl_rules = serializers.SerializerMethodField(help_text="Ids of the ACL rules naming this user.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(QuotaSerializer)
    def get_quota(self, user: KafkaUser) -> dict[str, Any]:
        return {key: getattr(user, key) for key in QUOTA_KEYS}

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_acl_rules(self, user: KafkaUser) -> list[str]:
        return [str(pk) for pk in user.acl_rules.values_list("pk", flat=True)]


class UserWithSecretSerializer(UserSerializer):
    """A user as created or rotated: with its secret, shown only in this answer."""

    password = serializers.CharField(required=False, help_text="SCRAM users.")
    certificate_pem = serializers.CharField(required=False, help_text="mTLS users: the client certificate.")
    private_key_pem = serializers.CharField(required=False, help_text="mTLS users: its private key (PKCS#8).")
    ca_pem = serializers.CharField(required=False, help_text="mTLS users: the cluster's CA.")


# -- ACLs -------------------------------------------------------------------------------------------------


class AclCreateSerializer(StrictSerializer):
    principal = serializers.CharField(max_length=255, help_text="User:<name>, or User:* for everyone.")
    resource_type = serializers.ChoiceField(choices=AclResourceType.choices)
    resource_name = serializers.CharField(max_length=255, help_text="kafka-cluster for the cluster resource.")
    pattern_type = serializers.ChoiceField(choices=AclPatternType.choices, default=AclPatternType.LITERAL)
    operations = serializers.ListField(
        child=serializers.ChoiceField(choices=AclOperation.choices),
        min_length=1,
        max_length=len(AclOperation),
    )
    permission = serializers.ChoiceField(choices=AclPermission.choices, default=AclPermission.ALLOW)
    host = serializers.CharField(max_length=255, default="*", help_text="'*' or one IP address.")


class AclSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    cluster = serializers.UUIDField(source="cluster_id")
    principal = serializers.CharField()
    resource_type = serializers.ChoiceField(choices=AclResourceType.choices)
    resource_name = serializers.CharField()
    pattern_type = serializers.ChoiceField(choices=AclPatternType.choices)
    operations = serializers.ListField(child=serializers.ChoiceField(choices=AclOperation.choices))
    permission = serializers.ChoiceField(choices=AclPermission.choices)
    host = serializers.CharField()
    user = serializers.UUIDField(source="user_id", allow_null=True, help_text="The managed user it names.")
    status = serializers.SerializerMethodField(
        help_text="ok: Kafka has every binding of the rule; missing: some were removed outside the control "
        "plane; unknown: the cluster did not answer."
    )
    created_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=["ok", "missing", "unknown"]))
    def get_status(self, rule: AclRule) -> str:
        return self.context.get("states", {}).get(rule.pk, "unknown")
