"""Template tags of the data-plane pages: the cluster's client configuration for the cluster page."""

from __future__ import annotations

from typing import Any

from django import template

from controlplane.clusters import client_config as configs
from controlplane.clusters.models import Cluster

register = template.Library()


@register.simple_tag
def client_config(cluster: Cluster) -> dict[str, Any]:
    """What the API's `client_config` says, with the Java settings per listener as text."""
    return configs.client_config(cluster)


@register.filter
def properties(settings: dict[str, str]) -> str:
    """librdkafka settings as key=value lines."""
    return "".join(f"{key}={value}\n" for key, value in settings.items())
