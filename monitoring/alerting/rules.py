"""The rule catalogue alerting evaluates, and validation of the overrides people store.

The catalogue is `monitoring.conditions.RULES` plus the rules only the control plane itself can
evaluate, because they describe the collection rather than the cluster's metrics: a cluster that
does not answer at all is not something `conditions.evaluate` can see in a health report.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from monitoring.conditions import CONSUMER_LAG_STATUS, RULES, AlertRule, RuleOverride, Severity
from monitoring.lag import LagStatus

CLUSTER_UNREACHABLE = "cluster_unreachable"
CLUSTER_SUBJECT = "cluster"

CLUSTER_UNREACHABLE_RULE = AlertRule(
    key=CLUSTER_UNREACHABLE,
    title="Cluster unreachable",
    severity=Severity.CRITICAL,
    # A whole cluster gone is the most urgent page there is. The collection interval already delays
    # detection, and the collector's own request timeout absorbs a single slow answer.
    for_seconds=0,
    threshold=0,
    comparison=">",
    unit="failed collections",
    enabled=True,
    description="The control plane cannot reach any broker of the cluster: every producer and consumer "
    "is most likely failing too.",
    action="Check the brokers' hosts, processes and network (and the bootstrap address); start with "
    "the controller quorum if brokers run but do not answer.",
    suppressible=False,
)

CATALOGUE: Mapping[str, AlertRule] = MappingProxyType(
    {**RULES, CLUSTER_UNREACHABLE: CLUSTER_UNREACHABLE_RULE}
)

OVERRIDE_FIELDS = ("threshold", "for_seconds", "severity", "enabled")
# A `for` longer than a day means the rule can never page in time to matter.
MAX_FOR_SECONDS = 86_400


def override_errors(rule_key: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Field -> message for override values that cannot apply to this rule; empty when all is well.

    Type checks come from `RuleOverride.from_mapping`; the bounds here depend on the rule's unit.
    """
    rule = CATALOGUE[rule_key]
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


def resolve(layers: list[Mapping[str, RuleOverride]]) -> dict[str, AlertRule]:
    """The catalogue with override layers applied in order (organisation, then cluster)."""
    rules = dict(CATALOGUE)
    for layer in layers:
        for key, override in layer.items():
            if key in rules:
                rules[key] = override.apply(rules[key])
    return rules
