"""Messages in and bytes in per broker (`monitoring.throughput`): properties of the rates over any two
collections, and the rates collections of `SimulatedKafkaCluster` store and the metrics-history API
returns (a multi-broker Kafka cluster cannot run for every test; the stand-in's offsets and sizes are
exact, so the rates are too)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.collector import collect_cluster
from monitoring.models import ClusterSample
from monitoring.throughput import PartitionTotals, broker_rates, decode, encode
from tests.monitoring.test_collect import T0, make_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant, token_client

PARTITIONS = [("orders", p) for p in range(4)] + [("audit", 0)]
BROKERS = [1, 2, 3]

offsets = st.dictionaries(st.sampled_from(PARTITIONS), st.integers(0, 10**12), max_size=len(PARTITIONS))
leaders = st.dictionaries(st.sampled_from(PARTITIONS), st.one_of(st.none(), st.sampled_from(BROKERS)))


@given(offsets, offsets, offsets, offsets, leaders, st.integers(1, 10**6))
def test_rates_credit_each_partitions_growth_to_its_leader(
    ends_before, ends_after, sizes_before, sizes_after, leader_of, millis
) -> None:
    before = PartitionTotals(0, ends_before, sizes_before)
    after = PartitionTotals(millis, ends_after, sizes_after)

    rates = broker_rates(before, after, leader_of, BROKERS)

    assert set(BROKERS) <= set(rates)
    seconds = millis / 1000

    def grown(b: dict, a: dict) -> int:
        return sum(
            max(0, a[tp] - b[tp])
            for tp, leader in leader_of.items()
            if leader is not None and tp in a and tp in b
        )

    assert sum(r.messages_per_second for r in rates.values()) * seconds == _approx(
        grown(ends_before, ends_after)
    )
    assert all(r.messages_per_second >= 0 for r in rates.values())
    if sizes_before and sizes_after:
        total = sum(r.bytes_per_second for r in rates.values())
        assert total * seconds == _approx(grown(sizes_before, sizes_after))
    else:
        assert all(r.bytes_per_second is None for r in rates.values())


@given(offsets, offsets, st.integers(0, 2**50))
def test_totals_read_back_as_stored(ends, sizes, at_ms) -> None:
    totals = PartitionTotals(at_ms, ends, sizes)
    assert decode(encode(totals)) == totals


def test_no_rates_without_two_collections_in_order() -> None:
    totals = PartitionTotals(5, {("orders", 0): 1})
    assert broker_rates(None, totals, {("orders", 0): 1}, BROKERS) == {}
    assert broker_rates(totals, totals, {("orders", 0): 1}, BROKERS) == {}
    assert decode("") is None and decode('{"v": 99}') is None


def _approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-6)


def test_collections_store_each_brokers_rates_for_charts(tenant: Tenant) -> None:
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3])
    simulated = SimulatedKafkaCluster.with_brokers(3, seed=3, record_bytes=100)
    simulated.create_topic("clicks", 2, 3)
    leader = {p.partition: p.leader for t in simulated.describe_cluster().topics for p in t.partitions}
    collect_cluster(cluster.pk, admin=simulated, now=T0)
    simulated.produce("clicks", 0, 500)
    simulated.produce("clicks", 1, 100)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))

    first, second = ClusterSample.objects.order_by("at")
    expected = {str(b): [0.0, 0.0] for b in (1, 2, 3)}
    expected[str(leader[0])][0] += 50.0
    expected[str(leader[0])][1] += 5000.0
    expected[str(leader[1])][0] += 10.0
    expected[str(leader[1])][1] += 1000.0
    assert {b: v[:2] for b, v in second.brokers.items()} == expected
    assert all(v[:2] == [None, None] for v in first.brokers.values())  # nothing to compare with yet
    assert all(v[2] is not None for v in second.brokers.values())  # disk used %

    body = (
        token_client(tenant.viewer)
        .get(
            f"/api/v1/clusters/{cluster.pk}/metrics-history/",
            {
                "series": "broker_messages_in_per_second",
                "since": (T0 - timedelta(minutes=1)).isoformat(),
                "until": (T0 + timedelta(minutes=1)).isoformat(),
            },
        )
        .json()
    )
    by_broker = {s["broker_id"]: s["points"] for s in body["series"]}
    assert by_broker[leader[0]][-1][1] >= 50.0 and set(by_broker) == {1, 2, 3}
