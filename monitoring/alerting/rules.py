"""The rules in force for an organization or a cluster, and validation of the overrides people store.

The catalogue is `monitoring.conditions.RULES` (including `cluster_unreachable`, which alerting
raises from the collection itself); `effective_rules` applies the stored overrides to it. Alerting,
the stored health status, the dashboard and the generated Prometheus rules all take their rules from
here, so a severity changed by an override is the same wherever it shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from django.db.models import Q

from monitoring.alerting.models import RuleOverrideRecord
from monitoring.conditions import (
    CLUSTER_UNREACHABLE,
    CONSUMER_LAG_STATUS,
    RULES,
    AlertRule,
    RuleOverride,
    apply_overrides,
)
from monitoring.lag import LagStatus

__all__ = ["CLUSTER_SUBJECT", "CLUSTER_UNREACHABLE", "DEFAULT_RULES", "effective_rules"]

CLUSTER_SUBJECT = "cluster"

# The catalogue as it is, for clusters with no overrides at all. Read-only by convention: rules are
# frozen dataclasses and nothing writes to the mapping.
DEFAULT_RULES: Mapping[str, AlertRule] = MappingProxyType(dict(RULES))


def effective_rules(
    organization_id: int, cluster_id: uuid.UUID | None = None, *, overrides: bool = True
) -> Mapping[str, AlertRule]:
    """The catalogue with the organization's overrides, then the cluster's, applied. `overrides=False`
    says there are none (a collection knows from the row it read) and skips the query."""
    if not overrides:
        return DEFAULT_RULES
    organization_layer: dict[str, RuleOverride] = {}
    cluster_layer: dict[str, RuleOverride] = {}
    records = RuleOverrideRecord.objects.filter(organization_id=organization_id).filter(
        Q(cluster__isnull=True) | Q(cluster_id=cluster_id)
    )
    for record in records:
        layer = cluster_layer if record.cluster_id is not None else organization_layer
        layer[record.rule_key] = record.as_override()
    return apply_overrides([organization_layer, cluster_layer])


OVERRIDE_FIELDS = ("threshold", "for_seconds", "severity", "enabled")
# A `for` longer than a day means the rule can never page in time to matter.
MAX_FOR_SECONDS = 86_400


def override_errors(rule_key: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Field -> message for override values that cannot apply to this rule; empty when all is well.

    Type checks come from `RuleOverride.from_mapping`; the bounds here depend on the rule's unit.
    """
    rule = RULES[rule_key]
    errors: dict[str, str] = {}
    given = {name: value for name, value in values.items() if value is not None}
    if not given:
        return {"non_field_errors": f"Give at least one of {', '.join(OVERRIDE_FIELDS)} to override."}
    for name, value in given.items():
        try:
            RuleOverride.from_mapping(rule_key, {name: value})
        except ValueError as exc:
            errors[name] = str(exc).removeprefix(f"rule {rule_key}: ")
    if "threshold" in given and "threshold" not in errors:
        threshold = _threshold_value(rule_key, given["threshold"])
        if rule_key == CONSUMER_LAG_STATUS and threshold not in {s.rank for s in LagStatus}:
            names = ", ".join(s.value for s in LagStatus)
            errors["threshold"] = f"threshold must be one of {names}"
        elif threshold < 0:
            errors["threshold"] = f"threshold must be 0 or more ({rule.unit})"
        elif rule.unit == "percent" and threshold > 100:
            errors["threshold"] = "threshold is a percentage: at most 100"
    if "for_seconds" in given and "for_seconds" not in errors and given["for_seconds"] > MAX_FOR_SECONDS:
        errors["for_seconds"] = f"for_seconds must be at most {MAX_FOR_SECONDS} (one day)"
    return errors


def normalized_threshold(rule_key: str, value: Any) -> float | None:
    """The number to store: lag status names ("STALL") become their rank."""
    return None if value is None else _threshold_value(rule_key, value)


def _threshold_value(rule_key: str, value: Any) -> float:
    if isinstance(value, str) and rule_key == CONSUMER_LAG_STATUS:
        return float(LagStatus(value.upper()).rank)
    return float(value)


def threshold_label(rule_key: str, value: float) -> str | float:
    """How a threshold reads to a person: the lag status name for the status rule."""
    if rule_key == CONSUMER_LAG_STATUS:
        for status in LagStatus:
            if status.rank == value:
                return status.value
    return value
