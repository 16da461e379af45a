"""Generated Prometheus rules, checked and unit-tested by the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.conditions import (
    CONSUMER_LAG_OFFSETS,
    DISK_USAGE,
    OFFLINE_PARTITIONS,
    RULES,
    UNDER_REPLICATED,
    RuleOverride,
    apply_overrides,
)
from monitoring.prometheus_rules import ALERT_NAMES, build_rule_groups, render_rules

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus'; `make` installs it)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def alerts(text: str) -> dict[str, dict[str, Any]]:
    (group,) = yaml.safe_load(text)["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_thresholds_durations_and_severities_come_from_the_catalogue() -> None:
    rules = apply_overrides(
        [
            {
                UNDER_REPLICATED: RuleOverride(for_seconds=900),
                CONSUMER_LAG_OFFSETS: RuleOverride(threshold=5000),
            }
        ]
    )
    generated = alerts(render_rules(rules, cluster="prod"))
    assert generated["KafkaUnderReplicatedPartitions"]["for"] == "15m"
    assert generated["KafkaConsumerLag"]["expr"] == (
        'sum by (organization, cluster, consumergroup) (kafka_consumergroup_lag_sum{cluster="prod"}) > 5000'
    )
    offline = generated["KafkaOfflinePartitions"]
    assert offline["for"] == "0s"
    assert offline["labels"] == {"severity": "critical", "kcp_rule": OFFLINE_PARTITIONS}
    assert offline["annotations"]["runbook"] == RULES[OFFLINE_PARTITIONS].action
    assert set(generated) == set(ALERT_NAMES.values())


def test_disabled_rules_are_left_out_and_fleet_rules_have_no_matcher() -> None:
    rules = apply_overrides([{DISK_USAGE: RuleOverride(enabled=False)}])
    generated = alerts(render_rules(rules))
    assert "KafkaBrokerDiskAlmostFull" not in generated
    assert all("cluster=" not in rule["expr"] for rule in generated.values())
    assert "max_over_time(kafka_brokers[1h])" in generated["KafkaBrokerDown"]["expr"]


def test_cluster_names_are_escaped_and_runbook_links_added() -> None:
    groups = build_rule_groups(cluster='we"ird\\name', runbook_url="https://kcp.example/runbooks")
    rule = groups["groups"][0]["rules"][0]
    assert 'cluster="we\\"ird\\\\name"' in rule["expr"]
    assert rule["annotations"]["runbook_url"] == f"https://kcp.example/runbooks#{OFFLINE_PARTITIONS}"


def test_expected_brokers_needs_a_cluster() -> None:
    with pytest.raises(ValueError, match="pass cluster"):
        build_rule_groups(expected_brokers=3)


@needs_promtool
@pytest.mark.parametrize("cluster", ["prod", None])
def test_promtool_accepts_the_rules(tmp_path: Path, cluster: str | None) -> None:
    path = tmp_path / "kafka.rules.yml"
    path.write_text(render_rules(cluster=cluster, expected_brokers=3 if cluster else None))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in result.stdout


def expected(key: str, summary: str, **labels: str) -> dict[str, Any]:
    rule = RULES[key]
    return {
        "exp_labels": {"severity": rule.severity.value, "kcp_rule": key, "cluster": "prod", **labels},
        "exp_annotations": {"summary": summary, "description": rule.description, "runbook": rule.action},
    }


@needs_promtool
def test_rules_fire_when_and_only_when_they_should(tmp_path: Path) -> None:
    (tmp_path / "kafka.rules.yml").write_text(render_rules(cluster="prod", expected_brokers=3))
    p = 'cluster="prod"'
    series = [
        # A second cluster with every problem: per-cluster rules must ignore it.
        ('kafka_cluster_offline_partitions{cluster="other"}', "5x20"),
        (f"kafka_cluster_offline_partitions{{{p}}}", "0 0 2x18"),
        (f"kafka_cluster_under_min_isr_partitions{{{p}}}", "0x20"),
        (f"kafka_cluster_at_min_isr_partitions{{{p}}}", "0x20"),
        (f'kafka_topic_partition_under_replicated_partition{{{p},topic="orders",partition="0"}}', "1x20"),
        (f'kafka_topic_partition_under_replicated_partition{{{p},topic="orders",partition="1"}}', "1x20"),
        (f"kafka_cluster_active_controllers{{{p}}}", "1 1 0x18"),
        (f"kafka_brokers{{{p}}}", "3 3 3 2x17"),
        # "billing" is stuck at offset 100 with lag; "reports" lags but moves.
        (f'kafka_consumergroup_lag{{{p},consumergroup="billing",topic="orders",partition="0"}}', "500+10x20"),
        (f'kafka_consumergroup_current_offset{{{p},consumergroup="billing",topic="orders",partition="0"}}', "100x20"),
        (f'kafka_consumergroup_lag{{{p},consumergroup="reports",topic="orders",partition="0"}}', "500x20"),
        (f'kafka_consumergroup_current_offset{{{p},consumergroup="reports",topic="orders",partition="0"}}', "100+10x20"),
        (f'kafka_consumergroup_lag_sum{{{p},consumergroup="billing",topic="orders"}}', "20000x20"),
        (f'kafka_consumergroup_time_lag_seconds{{{p},consumergroup="billing",topic="orders",partition="0"}}', "600x20"),
        (f'kafka_broker_disk_used_percent{{{p},broker="1"}}', "90x20"),
        (f'kafka_broker_disk_used_percent{{{p},broker="2"}}', "50x20"),
    ]  # fmt: skip
    cases = [
        ("KafkaOfflinePartitions", "1m", []),
        ("KafkaOfflinePartitions", "2m", [expected(OFFLINE_PARTITIONS, "Cluster prod: 2 partitions have no leader.")]),
        ("KafkaUnderReplicatedPartitions", "4m", []),
        ("KafkaUnderReplicatedPartitions", "6m", [
            expected(UNDER_REPLICATED, "Cluster prod: 2 partitions are under-replicated."),
        ]),
        ("KafkaUnderMinIsrPartitions", "10m", []),
        ("KafkaActiveControllerCount", "2m", []),
        ("KafkaActiveControllerCount", "3m", [
            expected("controller_missing", "Cluster prod: 0 active controllers instead of 1."),
        ]),
        ("KafkaBrokerDown", "2m", []),
        ("KafkaBrokerDown", "3m", [expected("broker_down", "Cluster prod: only 2 brokers are registered.")]),
        ("KafkaConsumerStalled", "12m", [
            expected(
                "consumer_lag_status",
                "Cluster prod, group billing: 1 partitions have not moved while messages wait.",
                consumergroup="billing",
            ),
        ]),
        ("KafkaConsumerLag", "9m", []),
        ("KafkaConsumerLag", "10m", [
            expected(CONSUMER_LAG_OFFSETS, "Cluster prod, group billing: 20000 messages wait.", consumergroup="billing"),
        ]),
        ("KafkaConsumerTimeLag", "6m", [
            expected(
                "consumer_time_lag",
                "Cluster prod, group billing: the oldest waiting message is 10m 0s old.",
                consumergroup="billing",
            ),
        ]),
        ("KafkaBrokerDiskAlmostFull", "6m", [
            expected(DISK_USAGE, "Cluster prod, broker 1: the data disk is 90% full.", broker="1"),
        ]),
    ]  # fmt: skip
    unit_test = {
        "rule_files": ["kafka.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series],
                "alert_rule_test": [
                    {"eval_time": at, "alertname": name, "exp_alerts": exp} for name, at, exp in cases
                ],
            }
        ],
    }
    test_file = tmp_path / "kafka.rules.test.yml"
    test_file.write_text(yaml.safe_dump(unit_test, sort_keys=False))
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_organization_scope_matches_and_keeps_its_label() -> None:
    generated = alerts(render_rules(RULES, cluster="orders", organization="acme"))

    expr = generated["KafkaOfflinePartitions"]["expr"]
    assert 'kafka_cluster_offline_partitions{organization="acme",cluster="orders"}' in expr
    # Aggregations keep the organization, so equally named clusters of two tenants stay apart.
    assert "by (organization, cluster)" in expr
