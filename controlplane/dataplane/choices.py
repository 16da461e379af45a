from django.db import models


class TopicStatus(models.TextChoices):
    """How a topic in Kafka compares with the control plane's record of it (computed on each read)."""

    OK = "ok", "OK"  # Kafka matches what the control plane wants
    DRIFTED = "drifted", "Drifted"  # changed outside the control plane (see drift)
    MISSING = "missing", "Missing"  # deleted outside the control plane
    UNMANAGED = "unmanaged", "Unmanaged"  # created outside the control plane; read only here
    INTERNAL = "internal", "Internal"  # one of Kafka's own topics; read only
    UNKNOWN = "unknown", "Unknown"  # the cluster did not answer


class UserMechanism(models.TextChoices):
    SCRAM_SHA_512 = "SCRAM-SHA-512", "SCRAM-SHA-512"  # a password, on the cluster's SASL_SSL listener
    MTLS = "mTLS", "mTLS"  # a client certificate from the cluster's CA, on its mTLS listener


class AclResourceType(models.TextChoices):
    TOPIC = "topic", "Topic"
    GROUP = "group", "Consumer group"
    CLUSTER = "cluster", "Cluster"  # its one name is "kafka-cluster"
    TRANSACTIONAL_ID = "transactional_id", "Transactional id"


class AclPatternType(models.TextChoices):
    LITERAL = "literal", "Literal"  # the name exactly ("*" for every one)
    PREFIXED = "prefixed", "Prefixed"  # every name starting with it


class AclPermission(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"  # wins over any allow


class AclOperation(models.TextChoices):
    ALL = "all", "All"
    READ = "read", "Read"
    WRITE = "write", "Write"
    CREATE = "create", "Create"
    DELETE = "delete", "Delete"
    ALTER = "alter", "Alter"
    DESCRIBE = "describe", "Describe"
    CLUSTER_ACTION = "cluster_action", "Cluster action"
    DESCRIBE_CONFIGS = "describe_configs", "Describe configs"
    ALTER_CONFIGS = "alter_configs", "Alter configs"
    IDEMPOTENT_WRITE = "idempotent_write", "Idempotent write"


# Which operations Kafka applies to each resource type (Kafka's "Operations and Resources" table).
OPERATIONS_BY_RESOURCE: dict[str, frozenset[str]] = {
    AclResourceType.TOPIC: frozenset(
        {"all", "read", "write", "create", "delete", "alter", "describe", "describe_configs", "alter_configs"}
    ),
    AclResourceType.GROUP: frozenset({"all", "read", "delete", "describe"}),
    AclResourceType.CLUSTER: frozenset(
        {
            "all",
            "create",
            "alter",
            "describe",
            "cluster_action",
            "describe_configs",
            "alter_configs",
            "idempotent_write",
        }
    ),
    AclResourceType.TRANSACTIONAL_ID: frozenset({"all", "write", "describe"}),
}
