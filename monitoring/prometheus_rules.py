"""Ready-made Prometheus alerting rules for teams that run their own Prometheus.

The rules come from the same catalogue (`monitoring.conditions.RULES`, with the organisation's and
cluster's overrides applied) as the control plane's own alerts, so thresholds, `for` durations and
severities agree. Generate them for one cluster (every selector gets `cluster="<name>"`) or for the
whole fleet (no cluster matcher; every alert is grouped by the `cluster` label).

Metrics assumed. Names follow kafka_exporter where it has the metric; the others are exported by the
control plane. Every series carries a `cluster` label holding the cluster's name.

    kafka_brokers{cluster}                                              gauge, registered brokers
    kafka_cluster_active_controllers{cluster}                           gauge, 0 or 1 per snapshot
    kafka_cluster_offline_partitions{cluster}                           gauge
    kafka_cluster_under_min_isr_partitions{cluster}                     gauge
    kafka_cluster_at_min_isr_partitions{cluster}                        gauge
    kafka_topic_partition_under_replicated_partition{cluster, topic, partition}
                                                                        gauge, 1 if under-replicated
    kafka_consumergroup_lag{cluster, consumergroup, topic, partition}   gauge, messages
    kafka_consumergroup_current_offset{cluster, consumergroup, topic, partition}
                                                                        gauge, committed offset
    kafka_consumergroup_lag_sum{cluster, consumergroup, topic}          gauge, messages
    kafka_consumergroup_time_lag_seconds{cluster, consumergroup, topic, partition}
                                                                        gauge, estimated seconds
    kafka_broker_disk_used_percent{cluster, broker}                     gauge, 0-100

Differences from the control plane's own evaluation, because PromQL sees only samples:

- consumer_lag_status becomes "lag never reached 0 and the committed offset never changed over the
  last 10 minutes" (Burrow's STALL or STOP for a partition), counted per group.
- broker_down compares `kafka_brokers` with the expected broker count when one is given (single
  cluster); fleet-wide it fires when a cluster has fewer brokers than at any time in the last hour,
  which also fires for an hour after a deliberate scale-in.
- under_replicated is counted per cluster, not per broker, and planned operations cannot suppress it:
  silence it in Alertmanager during a rolling restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from monitoring.conditions import (
    AT_MIN_ISR,
    BROKER_DOWN,
    CONSUMER_LAG_OFFSETS,
    CONSUMER_LAG_STATUS,
    CONSUMER_TIME_LAG,
    CONTROLLER_MISSING,
    DISK_USAGE,
    OFFLINE_PARTITIONS,
    RULES,
    UNDER_MIN_ISR,
    UNDER_REPLICATED,
    AlertRule,
)

GROUP_NAME = "kafka-control-plane"
# How far back the consumer stall approximation looks; Burrow's default window of 10 commits at the
# usual one-minute commit interval covers about the same time.
STALL_WINDOW = "10m"
BROKER_HISTORY_WINDOW = "1h"

ALERT_NAMES: Mapping[str, str] = {
    OFFLINE_PARTITIONS: "KafkaOfflinePartitions",
    UNDER_MIN_ISR: "KafkaUnderMinIsrPartitions",
    UNDER_REPLICATED: "KafkaUnderReplicatedPartitions",
    AT_MIN_ISR: "KafkaAtMinIsrPartitions",
    BROKER_DOWN: "KafkaBrokerDown",
    CONTROLLER_MISSING: "KafkaActiveControllerCount",
    CONSUMER_LAG_STATUS: "KafkaConsumerStalled",
    CONSUMER_LAG_OFFSETS: "KafkaConsumerLag",
    CONSUMER_TIME_LAG: "KafkaConsumerTimeLag",
    DISK_USAGE: "KafkaBrokerDiskAlmostFull",
}


def build_rule_groups(
    rules: Mapping[str, AlertRule] = RULES,
    *,
    cluster: str | None = None,
    organization: str | None = None,
    expected_brokers: int | None = None,
    runbook_url: str | None = None,
) -> dict[str, Any]:
    """The rule file as data: {"groups": [{"name": ..., "rules": [...]}]}.

    `cluster` limits every expression to one cluster; None generates fleet-wide rules. `organization`
    (a slug) limits them to one organization, whose clusters' names are unique only within it;
    aggregations keep both labels, so two organizations' clusters of one name never merge.
    `expected_brokers` (single cluster only) makes broker_down exact. `runbook_url`, when given, is
    added to every alert as `runbook_url` with `#<rule key>` appended.
    """
    if expected_brokers is not None and cluster is None:
        raise ValueError("expected_brokers applies to one cluster; pass cluster as well")
    matchers = []
    if organization is not None:
        matchers.append(f'organization="{_escape(organization)}"')
    if cluster is not None:
        matchers.append(f'cluster="{_escape(cluster)}"')
    matcher = ",".join(matchers)
    alerts = []
    for key, name in ALERT_NAMES.items():
        rule = rules.get(key)
        if rule is None or not rule.enabled:
            continue
        alert: dict[str, Any] = {
            "alert": name,
            "expr": _expression(rule, matcher, expected_brokers),
            "for": _duration(rule.for_seconds),
            "labels": {"severity": rule.severity.value, "kcp_rule": rule.key},
            "annotations": {
                "summary": _summary(rule),
                "description": rule.description,
                "runbook": rule.action,
            },
        }
        if runbook_url:
            alert["annotations"]["runbook_url"] = f"{runbook_url}#{rule.key}"
        alerts.append(alert)
    group_name = f"{GROUP_NAME}.{cluster}" if cluster is not None else f"{GROUP_NAME}.fleet"
    return {"groups": [{"name": group_name, "rules": alerts}]}


def render_rules(
    rules: Mapping[str, AlertRule] = RULES,
    *,
    cluster: str | None = None,
    organization: str | None = None,
    expected_brokers: int | None = None,
    runbook_url: str | None = None,
) -> str:
    """The rule file as YAML, ready for Prometheus' `rule_files`."""
    groups = build_rule_groups(
        rules,
        cluster=cluster,
        organization=organization,
        expected_brokers=expected_brokers,
        runbook_url=runbook_url,
    )
    header = (
        "# Generated by Kafka Control Plane from its alert rule catalogue.\n"
        f"# Scope: {'cluster ' + cluster if cluster is not None else 'all clusters'}.\n"
    )
    return header + yaml.safe_dump(groups, sort_keys=False, allow_unicode=True, width=1000)


def _expression(rule: AlertRule, matcher: str, expected_brokers: int | None) -> str:
    def selector(metric: str) -> str:
        return f"{metric}{{{matcher}}}" if matcher else metric

    threshold = _number(rule.threshold)
    op = rule.comparison
    if rule.key == OFFLINE_PARTITIONS:
        return f"sum by (organization, cluster) ({selector('kafka_cluster_offline_partitions')}) {op} {threshold}"
    if rule.key == UNDER_MIN_ISR:
        return f"sum by (organization, cluster) ({selector('kafka_cluster_under_min_isr_partitions')}) {op} {threshold}"
    if rule.key == AT_MIN_ISR:
        return f"sum by (organization, cluster) ({selector('kafka_cluster_at_min_isr_partitions')}) {op} {threshold}"
    if rule.key == UNDER_REPLICATED:
        metric = selector("kafka_topic_partition_under_replicated_partition")
        return f"sum by (organization, cluster) ({metric}) {op} {threshold}"
    if rule.key == CONTROLLER_MISSING:
        # Strimzi's rule: exactly one active controller per cluster; two mean a split brain.
        return f"sum by (organization, cluster) ({selector('kafka_cluster_active_controllers')}) != 1"
    if rule.key == BROKER_DOWN:
        brokers = f"sum by (organization, cluster) ({selector('kafka_brokers')})"
        if expected_brokers is not None:
            return f"{brokers} < {expected_brokers}"
        history = f"max_over_time({selector('kafka_brokers')}[{BROKER_HISTORY_WINDOW}])"
        return f"{brokers} < sum by (organization, cluster) ({history})"
    if rule.key == CONSUMER_LAG_STATUS:
        lag = f"min_over_time({selector('kafka_consumergroup_lag')}[{STALL_WINDOW}]) > 0"
        unmoved = f"changes({selector('kafka_consumergroup_current_offset')}[{STALL_WINDOW}]) == 0"
        return f"count by (organization, cluster, consumergroup) ({lag} and {unmoved}) > 0"
    if rule.key == CONSUMER_LAG_OFFSETS:
        return f"sum by (organization, cluster, consumergroup) ({selector('kafka_consumergroup_lag_sum')}) {op} {threshold}"
    if rule.key == CONSUMER_TIME_LAG:
        metric = selector("kafka_consumergroup_time_lag_seconds")
        return f"max by (organization, cluster, consumergroup) ({metric}) {op} {threshold}"
    if rule.key == DISK_USAGE:
        return f"max by (organization, cluster, broker) ({selector('kafka_broker_disk_used_percent')}) {op} {threshold}"
    raise ValueError(f"no Prometheus expression for rule {rule.key!r}")


def _summary(rule: AlertRule) -> str:
    where = "Cluster {{ $labels.cluster }}"
    if rule.key in (CONSUMER_LAG_STATUS, CONSUMER_LAG_OFFSETS, CONSUMER_TIME_LAG):
        where += ", group {{ $labels.consumergroup }}"
    if rule.key == DISK_USAGE:
        where += ", broker {{ $labels.broker }}"
    value = {
        OFFLINE_PARTITIONS: "{{ $value }} partitions have no leader",
        UNDER_MIN_ISR: "{{ $value }} partitions are under min.insync.replicas",
        AT_MIN_ISR: "{{ $value }} partitions are at min.insync.replicas",
        UNDER_REPLICATED: "{{ $value }} partitions are under-replicated",
        CONTROLLER_MISSING: "{{ $value }} active controllers instead of 1",
        BROKER_DOWN: "only {{ $value }} brokers are registered",
        CONSUMER_LAG_STATUS: "{{ $value }} partitions have not moved while messages wait",
        CONSUMER_LAG_OFFSETS: "{{ $value }} messages wait",
        CONSUMER_TIME_LAG: "the oldest waiting message is {{ $value | humanizeDuration }} old",
        DISK_USAGE: "the data disk is {{ $value | humanize }}% full",
    }[rule.key]
    return f"{where}: {value}."


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _duration(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
