"""The settings and credentials of VM host pools (targets of kind `vm`), as /api/v1/targets/ takes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from controlplane.api import common
from controlplane.targets.models import Target
from provisioning.ansible.pool import (
    SERVICE_MANAGERS,
    host_errors,
    known_hosts_errors,
    pool_from_settings,
    ssh_key_error,
)

MAX_HOSTS = 1000
MAX_KEY_CHARS = 16 * 1024
# Below the request body limit (MAX_REQUEST_BODY_BYTES) with everything else a request holds.
MAX_KNOWN_HOSTS_CHARS = 128 * 1024


class HostSerializer(common.StrictSerializer):
    name = serializers.CharField(max_length=63, help_text="Unique within the pool.")
    address = serializers.CharField(
        max_length=253, help_text="IP address or DNS name: SSH and Kafka clients."
    )
    rack = serializers.CharField(max_length=63, help_text="The failure domain (zone) the host is in.")
    ssh_user = serializers.CharField(max_length=32, default="root")
    ssh_port = serializers.IntegerField(default=22)
    java_home = serializers.CharField(
        max_length=4096, default="", allow_blank=True, help_text="Java runtime; empty: the pool's."
    )
    kafka_root = serializers.CharField(
        max_length=4096,
        default="",
        allow_blank=True,
        help_text="Prefix of every Kafka path on the host; only for hosts sharing one file system.",
    )


class HostPoolSettingsSerializer(common.StrictSerializer):
    hosts = serializers.ListField(child=HostSerializer(), max_length=MAX_HOSTS)
    racks = serializers.ListField(
        child=serializers.CharField(max_length=63),
        default=list,
        help_text="The pool's racks; when given, every host's rack must be one of them.",
    )
    service_manager = serializers.ChoiceField(
        choices=[(m, m) for m in SERVICE_MANAGERS],
        default="systemd",
        help_text="systemd, or `supervised`: the playbooks' own supervisor where systemd is not PID 1.",
    )
    kafka_user = serializers.CharField(
        max_length=32,
        default="kafka",
        allow_blank=True,
        help_text="Account Kafka runs as (created when missing); empty: the SSH user.",
    )
    java_home = serializers.CharField(
        max_length=4096, default="", allow_blank=True, help_text="Java runtime; empty: the one on PATH."
    )
    python_interpreter = serializers.CharField(
        max_length=4096,
        default="",
        allow_blank=True,
        help_text="Python Ansible uses on the hosts; empty: found.",
    )


def _settings(raw: Any) -> dict[str, Any]:
    data = HostPoolSettingsSerializer(data=raw)
    if not data.is_valid():
        raise ValidationError({"settings": data.errors})
    values = dict(data.validated_data)
    values["hosts"] = [dict(host) for host in values["hosts"]]
    if errors := host_errors(pool_from_settings("check", values)):
        raise ValidationError({"settings": {field: [message] for field, message in errors.items()}})
    return values


def _credentials(
    values: Mapping[str, Any], config: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, str]:
    credentials = {**current}
    for field in ("ssh_private_key", "known_hosts"):
        if values.get(field):
            credentials[field] = values[field]
    errors: dict[str, list[str]] = {}
    key = credentials.get("ssh_private_key", "")
    if problem := ssh_key_error(key):
        errors["ssh_private_key"] = [problem]
    if problem := known_hosts_errors(credentials.get("known_hosts", ""), pool_from_settings("check", config)):
        errors["known_hosts"] = [problem]
    if errors:
        raise ValidationError(errors)
    return credentials


def create_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(settings, credentials) of a new host pool, or a 400 naming every field that is wrong."""
    if values.get("kubeconfig") or values.get("in_cluster"):
        raise ValidationError({"kubeconfig": ["A host pool signs in with an SSH key, not a kubeconfig."]})
    if "settings" not in values:
        raise ValidationError({"settings": ["A host pool needs its hosts: settings.hosts."]})
    config = _settings(values["settings"])
    return config, _credentials(values, config, {})


def update_values(
    target: Target, values: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """(settings, credentials) replacing a pool's, None for what stays; settings given replace the
    stored ones as a whole, a key or known_hosts given replaces only itself."""
    if values.get("kubeconfig") or values.get("in_cluster"):
        raise ValidationError({"kubeconfig": ["A host pool signs in with an SSH key, not a kubeconfig."]})
    config = _settings(values["settings"]) if "settings" in values else None
    changing = config is not None or values.get("ssh_private_key") or values.get("known_hosts")
    if not changing:
        return None, None
    credentials = _credentials(values, config or target.config, target.credentials)
    return config, credentials
