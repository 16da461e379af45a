from django.db import models


class TopicStatus(models.TextChoices):
    """How a topic in Kafka compares with the control plane's record of it (computed on each read)."""

    OK = "ok", "OK"  # Kafka matches what the control plane wants
    DRIFTED = "drifted", "Drifted"  # changed outside the control plane (see drift)
    MISSING = "missing", "Missing"  # deleted outside the control plane
    UNMANAGED = "unmanaged", "Unmanaged"  # created outside the control plane; read only here
    INTERNAL = "internal", "Internal"  # one of Kafka's own topics; read only
    UNKNOWN = "unknown", "Unknown"  # the cluster did not answer
