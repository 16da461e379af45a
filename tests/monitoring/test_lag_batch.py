"""A cluster's windows kept as matrices (`lag_windows.ClusterWindows`) and judged all at once
(`lag_batch.evaluate_groups`) must say exactly what windows kept one by one (`lag.PartitionWindow`)
and judged one by one (`lag.evaluate_group`) say of each group, poll after poll: the same
observations, status, numbers, time lag and sentence."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring import lag_batch
from monitoring.lag import LagStatus, PartitionWindow, TopicPartition, evaluate_group, millis
from monitoring.lag_batch import evaluate_groups
from monitoring.lag_windows import ClusterWindows

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
T0_MS = millis(T0)
HOUR = timedelta(hours=1)

Poll = tuple[int, list[tuple[str, dict[TopicPartition, int]]], dict[TopicPartition, int]]


def record_one_by_one(
    windows: Mapping[str, Mapping[TopicPartition, PartitionWindow]],
    poll: Poll,
    size: int,
    max_age: timedelta | None,
) -> dict[str, dict[TopicPartition, PartitionWindow]]:
    """The reference: each listed partition's own window gets the poll's observation."""
    at, groups, ends = poll
    kept: dict[str, dict[TopicPartition, PartitionWindow]] = {}
    for group_id, committed in groups:
        previous = windows.get(group_id, {})
        kept[group_id] = {}
        for tp in sorted(committed):
            window = previous.get(tp) or PartitionWindow(size=size, max_age=max_age)
            window.add(at, committed[tp] if committed[tp] >= 0 else None, ends.get(tp))
            kept[group_id][tp] = window
    return kept


@st.composite
def polls(draw: st.DrawFn) -> tuple[list[Poll], list[tuple[str, int | None]]]:
    """Polls as a collector makes them: time moving on (sometimes not, sometimes by hours), groups
    listing partitions that come and go, offsets mostly plausible, sometimes unknown, huge, beyond
    the end offset, rewound, or reset with the topic recreated."""
    groups = [(f"group-{g}", draw(st.sampled_from([None, 0, 2]))) for g in range(draw(st.integers(1, 3)))]
    partitions = [("t", p) for p in range(draw(st.integers(1, 6)))] + [("u", 0)]
    end = {tp: draw(st.integers(0, 1_000)) for tp in partitions}
    committed = {(g, tp): draw(st.integers(0, end[tp])) for g, _ in groups for tp in partitions}
    at = T0_MS
    made: list[Poll] = []
    for _ in range(draw(st.integers(1, 12))):
        at += draw(st.sampled_from([10_000, 10_000, 30_000, 0, 2 * 3_600_000]))
        ends: dict[TopicPartition, int] = {}
        for tp in partitions:
            roll = draw(st.integers(0, 29))
            if roll == 0:
                continue  # not read
            ends[tp] = 2**60 + end[tp] if roll == 1 else end[tp]
        listed = []
        for group_id, _ in groups:
            offsets = {}
            for tp in partitions:
                if draw(st.integers(0, 19)) == 0:
                    continue  # no commit listed this time
                roll = draw(st.integers(0, 39))
                offsets[tp] = -1 if roll == 0 else end[tp] + 5 if roll == 1 else committed[(group_id, tp)]
            listed.append((group_id, offsets))
        made.append((at, listed, ends))
        for tp in partitions:
            produced = draw(st.sampled_from([0, 0, 1, 7, 300]))
            end[tp] += produced
            if draw(st.integers(0, 39)) == 0:
                end[tp] = 3  # the topic recreated
        for key, offset in committed.items():
            tp = key[1]
            committed[key] = draw(
                st.sampled_from(
                    # Still, caught up, one behind, moving, halfway, or rewound.
                    [
                        offset,
                        offset,
                        end[tp],
                        max(end[tp] - 1, 0),
                        offset + 3,
                        (offset + end[tp]) // 2,
                        max(offset - 50, 0),
                    ]
                )
            )
    return made, groups


@settings(max_examples=300, deadline=None)
@given(
    polls(),
    st.sampled_from([1, 2, 3, 10]),
    st.sampled_from([None, HOUR]),
    st.sampled_from([0, 0, 0, 1, 10, 600, 7200]),  # seconds after the last poll
    st.sampled_from([1, lag_batch.MIN_BATCH]),
)
def test_matrices_say_what_windows_one_by_one_say(
    made: tuple[list[Poll], list[tuple[str, int | None]]],
    size: int,
    max_age: timedelta | None,
    delay: int,
    batch: int,
) -> None:
    sequence, groups = made
    one_by_one: dict[str, dict[TopicPartition, PartitionWindow]] = {}
    matrices = ClusterWindows()
    for poll in sequence:
        one_by_one = record_one_by_one(one_by_one, poll, size, max_age)
        matrices = matrices.record(poll[1], poll[2], poll[0], size=size, max_age=max_age)

    with_partitions = {group_id: windows for group_id, windows in one_by_one.items() if windows}
    assert matrices.windows_by_group() == with_partitions
    stored = ClusterWindows.decode(matrices.encode())
    assert stored.windows_by_group() == with_partitions

    now = datetime.fromtimestamp(sequence[-1][0] / 1000, UTC) + timedelta(seconds=delay)
    expected = [
        evaluate_group(group_id, one_by_one.get(group_id, {}), now, members=members)
        for group_id, members in groups
    ]
    with mock.patch.object(lag_batch, "MIN_BATCH", batch):
        assert evaluate_groups(matrices, groups, now) == expected
        assert evaluate_groups(stored, groups, now) == expected


def test_a_poll_older_than_the_newest_adds_nothing() -> None:
    """The windows' columns are one time axis: a poll from before the newest (the clock went back)
    leaves the known partitions' windows as they were; one it lists for the first time has no
    observation yet, and one it no longer lists is gone."""
    windows = ClusterWindows().record([("g", {("t", 0): 5, ("t", 1): 1})], {("t", 0): 9, ("t", 1): 4}, T0_MS)
    windows = windows.record([("g", {("t", 0): 7, ("t", 2): 0})], {("t", 0): 9, ("t", 2): 1}, T0_MS - 1_000)

    assert windows.windows_by_group() == {
        "g": {
            ("t", 0): PartitionWindow(times=[T0_MS], committed=[5], ends=[9]),
            ("t", 2): PartitionWindow(),
        }
    }
    judged = evaluate_groups(windows, [("g", 1)], T0)[0]
    assert [p.status for p in judged.partitions] == [LagStatus.OK, LagStatus.ERR]
    assert judged.partitions[1].summary == "No offsets have been collected for this partition yet."


def test_the_windows_settings_apply_from_the_poll_that_gives_them() -> None:
    windows = ClusterWindows()
    for i in range(6):
        windows = windows.record([("g", {("t", 0): i})], {("t", 0): 10}, T0_MS + 10_000 * i)
    windows = windows.record([("g", {("t", 0): 6})], {("t", 0): 10}, T0_MS + 60_000, size=3)

    assert windows.windows_by_group()["g"][("t", 0)].committed == [4, 5, 6]
    assert windows.size == 3


def test_a_fleet_sized_cluster_is_judged_in_batches() -> None:
    """Fifty groups of ten partitions, every status among them, judged in one batch."""
    windows = ClusterWindows()
    kinds = {(f"group-{g}", ("orders", p)): (g * 10 + p) % 6 for g in range(50) for p in range(10)}
    for i in range(10):
        end = 1_000 + 100 * i
        listed: dict[str, dict[TopicPartition, int]] = {}
        for (group_id, tp), kind in kinds.items():
            listed.setdefault(group_id, {})[tp] = {
                0: end - 10 * (i % 3),  # falls and rises: OK
                1: 500 + 10 * i,  # lag grows: WARN
                2: 400,  # never moves: STALL
                3: end - 50 if i < 9 else 100,  # went backwards: REWIND
                4: end,  # caught up: OK
                5: end - 200 if i else 0,  # keeping up after catching up
            }[kind]
        windows = windows.record(listed.items(), {("orders", p): end for p in range(10)}, T0_MS + 10_000 * i)
    groups = [(f"group-{g}", 1) for g in range(50)]
    now = T0 + timedelta(seconds=90)

    with mock.patch.object(lag_batch, "judge_window", side_effect=AssertionError("judged one by one")):
        batched = evaluate_groups(windows, groups, now)

    by_group = windows.windows_by_group()
    assert batched == [evaluate_group(g, by_group[g], now, members=m) for g, m in groups]
    statuses = {p.status for group in batched for p in group.partitions}
    assert statuses == {LagStatus.OK, LagStatus.WARN, LagStatus.STALL, LagStatus.REWIND}
