from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.conditions import (
    AT_MIN_ISR,
    BROKER_DOWN,
    CONSUMER_LAG_OFFSETS,
    CONSUMER_LAG_STATUS,
    CONSUMER_TIME_LAG,
    DISK_USAGE,
    MAX_DEDUP_KEY_LENGTH,
    OFFLINE_PARTITIONS,
    RULES,
    UNDER_MIN_ISR,
    UNDER_REPLICATED,
    RuleOverride,
    Severity,
    active,
    apply_overrides,
    dedup_key,
    evaluate,
)
from monitoring.health import assess_cluster
from monitoring.lag import GroupLag, LagStatus, Observation, evaluate_group
from provisioning.kafka_admin.base import BrokerInfo, ClusterState, PartitionState, TopicState

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def test_catalogue_defaults_follow_kip_427() -> None:
    assert RULES[OFFLINE_PARTITIONS].for_seconds == 0
    assert RULES[UNDER_MIN_ISR].for_seconds == 0
    assert RULES[OFFLINE_PARTITIONS].severity == Severity.CRITICAL
    assert RULES[UNDER_MIN_ISR].severity == Severity.CRITICAL
    assert RULES[UNDER_REPLICATED].for_seconds > 0
    assert RULES[UNDER_REPLICATED].severity == Severity.WARNING
    assert not RULES[OFFLINE_PARTITIONS].suppressible and not RULES[UNDER_MIN_ISR].suppressible
    assert RULES[UNDER_REPLICATED].suppressible
    for rule in RULES.values():
        assert rule.description.endswith(".") and rule.action.endswith(".")


def parsed(layer: dict[str, dict]) -> dict[str, RuleOverride]:
    """Overrides as stored (JSON), parsed as the records parse them."""
    return {key: RuleOverride.from_mapping(key, values) for key, values in layer.items()}


def test_overrides_apply_org_then_cluster() -> None:
    org = parsed(
        {UNDER_REPLICATED: {"for_seconds": 600, "severity": "critical"}, DISK_USAGE: {"threshold": 80}}
    )
    cluster = {UNDER_REPLICATED: RuleOverride(for_seconds=120), DISK_USAGE: RuleOverride(enabled=False)}
    rules = apply_overrides([org, {}, cluster])
    assert rules[UNDER_REPLICATED].for_seconds == 120
    assert rules[UNDER_REPLICATED].severity == Severity.CRITICAL
    assert rules[DISK_USAGE].threshold == 80 and not rules[DISK_USAGE].enabled
    assert rules[OFFLINE_PARTITIONS] == RULES[OFFLINE_PARTITIONS]
    assert RULES[UNDER_REPLICATED].for_seconds == 300  # the catalogue itself is untouched


def test_lag_status_threshold_accepts_a_status_name() -> None:
    rules = apply_overrides([parsed({CONSUMER_LAG_STATUS: {"threshold": "warn"}})])
    assert rules[CONSUMER_LAG_STATUS].threshold == LagStatus.WARN.rank


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({DISK_USAGE: {"treshold": 1}}, "unknown override keys"),
        ({DISK_USAGE: {"threshold": "high"}}, "threshold must be a number"),
        ({DISK_USAGE: {"for_seconds": -1}}, "for_seconds must be a whole number"),
        ({DISK_USAGE: {"severity": "page"}}, "severity must be one of critical, warning, info"),
        ({DISK_USAGE: {"enabled": "yes"}}, "enabled must be true or false"),
        ({CONSUMER_LAG_STATUS: {"threshold": "BAD"}}, "threshold must be one of OK, WARN"),
    ],
)
def test_invalid_overrides_say_what_is_wrong(layer: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parsed(layer)


def rolling_restart_of_broker_3() -> ClusterState:
    """Broker 3 is restarting: it left every ISR. "payments" needs 3 in sync, so it is under min ISR."""
    return ClusterState(
        "c-1",
        1,
        tuple(BrokerInfo(i, "h", 9092) for i in (1, 2)),
        (
            TopicState("orders", (PartitionState("orders", 0, 1, (1, 2, 3), (1, 2)),), min_insync_replicas=2),
            TopicState(
                "payments", (PartitionState("payments", 0, 1, (1, 2, 3), (1, 2)),), min_insync_replicas=3
            ),
            TopicState("audit", (PartitionState("audit", 0, 2, (2, 4), (2,)),), min_insync_replicas=1),
        ),
    )


def test_planned_operation_suppresses_only_what_it_causes() -> None:
    report = assess_cluster(rolling_restart_of_broker_3(), [1, 2, 3, 4])
    conditions = evaluate("c-1", health_report=report, operation_brokers={3})
    by_key = {(c.rule_key, c.subject): c for c in conditions}

    assert by_key[(UNDER_REPLICATED, "broker:3")].suppressed_by_operation
    assert by_key[(BROKER_DOWN, "broker:3")].suppressed_by_operation
    assert by_key[(AT_MIN_ISR, "topic:orders")].suppressed_by_operation
    # Broker 4 is not part of the operation: its URP and absence still alert.
    assert not by_key[(UNDER_REPLICATED, "broker:4")].suppressed_by_operation
    assert not by_key[(BROKER_DOWN, "broker:4")].suppressed_by_operation
    # Under-min-ISR stops producers whatever the cause.
    under_min = by_key[(UNDER_MIN_ISR, "topic:payments")]
    assert not under_min.suppressed_by_operation
    assert under_min.severity == Severity.CRITICAL and under_min.for_seconds == 0

    notify = {(c.rule_key, c.subject) for c in active(conditions)}
    assert (UNDER_MIN_ISR, "topic:payments") in notify
    assert (UNDER_REPLICATED, "broker:3") not in notify


def test_offline_is_never_suppressed() -> None:
    state = ClusterState(
        "c-1", 1, (BrokerInfo(1, "h", 9092),), (TopicState("t", (PartitionState("t", 0, None, (3,), (3,)),)),)
    )
    conditions = evaluate("c-1", health_report=assess_cluster(state, [1, 3]), operation_brokers={1, 3})
    offline = [c for c in conditions if c.rule_key == OFFLINE_PARTITIONS]
    assert len(offline) == 1 and not offline[0].suppressed_by_operation
    assert offline[0].details == {"brokers": [3], "partitions": ["t[0]"]}


def test_disabled_rule_raises_nothing() -> None:
    rules = apply_overrides([parsed({UNDER_REPLICATED: {"enabled": False}})])
    report = assess_cluster(rolling_restart_of_broker_3(), [1, 2, 3])
    assert UNDER_REPLICATED not in {c.rule_key for c in evaluate("c-1", rules, health_report=report)}


def stalled_group() -> GroupLag:
    observations = [Observation(T0 + timedelta(minutes=i), 100, 20_000 + 1_000 * i) for i in range(10)]
    return evaluate_group("billing", {("orders", 0): observations}, T0 + timedelta(minutes=9), members=2)


def slow_group() -> GroupLag:
    observations = [Observation(T0 + timedelta(minutes=i), 100 * i, 200 * i + 50) for i in range(10)]
    return evaluate_group("reports", {("orders", 1): observations}, T0 + timedelta(minutes=9), members=1)


def test_lag_conditions() -> None:
    stalled, slow = stalled_group(), slow_group()
    assert stalled.status == LagStatus.STALL and slow.status == LagStatus.WARN
    conditions = evaluate("c-1", lag=[stalled, slow])
    keys = {(c.rule_key, c.subject) for c in conditions}
    assert keys == {
        (CONSUMER_LAG_STATUS, "group:billing"),
        (CONSUMER_LAG_OFFSETS, "group:billing"),
        (CONSUMER_TIME_LAG, "group:billing"),
    }
    status = next(c for c in conditions if c.rule_key == CONSUMER_LAG_STATUS)
    assert status.severity == Severity.CRITICAL
    assert status.summary == stalled.summary
    assert status.details["status"] == "STALL"
    assert status.details["partitions"][0]["topic"] == "orders"
    offsets = next(c for c in conditions if c.rule_key == CONSUMER_LAG_OFFSETS)
    assert offsets.value == 28_900
    assert offsets.summary == (
        "Group billing has 28,900 messages waiting, above the threshold of 10,000; "
        "the furthest behind is orders[0] with 28,900."
    )
    time_lag = next(c for c in conditions if c.rule_key == CONSUMER_TIME_LAG)
    assert "behind" in time_lag.summary and time_lag.value > 300


def test_lowered_status_threshold_alerts_without_paging() -> None:
    rules = apply_overrides([parsed({CONSUMER_LAG_STATUS: {"threshold": "WARN"}})])
    conditions = evaluate("c-1", rules, lag=[slow_group(), stalled_group()])
    status = {c.subject: c.severity for c in conditions if c.rule_key == CONSUMER_LAG_STATUS}
    assert status == {"group:reports": Severity.WARNING, "group:billing": Severity.CRITICAL}


def test_disk_usage() -> None:
    conditions = evaluate("c-1", disk_usage_percent={1: 60.0, 2: 91.4})
    assert [(c.subject, c.summary) for c in conditions] == [
        ("broker:2", "Broker 2's data disk is 91% full (threshold 85%).")
    ]


def test_dedup_key_is_stable_and_bounded() -> None:
    assert dedup_key("c-1", UNDER_MIN_ISR, "topic:orders") == "kcp:c-1:under_min_isr:topic:orders"
    long_a = dedup_key("c-1", CONSUMER_LAG_STATUS, "group:" + "a" * 300)
    long_b = dedup_key("c-1", CONSUMER_LAG_STATUS, "group:" + "a" * 299 + "b")
    assert len(long_a) <= MAX_DEDUP_KEY_LENGTH and len(long_b) <= MAX_DEDUP_KEY_LENGTH
    assert long_a != long_b
    assert long_a == dedup_key("c-1", CONSUMER_LAG_STATUS, "group:" + "a" * 300)


@given(st.text(min_size=1, max_size=300), st.sampled_from(sorted(RULES)), st.text(max_size=400))
def test_dedup_keys_never_exceed_the_limit(cluster: str, rule: str, subject: str) -> None:
    key = dedup_key(cluster, rule, subject)
    assert len(key) <= MAX_DEDUP_KEY_LENGTH
    assert key == dedup_key(cluster, rule, subject)
