"""`lag_batch.evaluate_groups` judges a cluster's windows all at once; it must say exactly what
`lag.evaluate_group` says of each group, window by window: status, numbers, time lag and sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring import lag_batch
from monitoring.lag import LagStatus, PartitionWindow, evaluate_group, millis
from monitoring.lag_batch import evaluate_groups

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
T0_MS = millis(T0)

offsets = st.one_of(st.none(), st.integers(min_value=-1, max_value=2_000))


@st.composite
def partition_windows(draw: st.DrawFn) -> PartitionWindow:
    """Windows as a collection keeps them: time-ordered, mostly plausible, sometimes with unknown,
    negative or huge offsets, commit times, rewinds, resets of the end offset or equal offsets."""
    length = draw(st.sampled_from([0, 1, 2, 3, 3, 10]))
    window = PartitionWindow(size=10, max_age=None)
    step = draw(st.sampled_from([10_000, 30_000, 60_000, 600_000]))
    end = draw(st.integers(min_value=0, max_value=1_000))
    committed = draw(st.integers(min_value=0, max_value=end))
    commit_times = draw(st.integers(0, 9)) == 0
    for i in range(length):
        at = T0_MS + step * i
        roll = draw(st.integers(0, 19))
        if roll == 0:
            window.add(at, draw(offsets), draw(offsets))
        elif roll == 1:
            window.add(at, committed, 2**60 + end)
        elif roll == 2:  # a committed offset beyond the log end offset, as a development broker shows
            window.add(at, end + 5, end)
        else:
            window.add(at, committed, end, at - 5_000 if commit_times else None)
        produced = draw(st.sampled_from([0, 0, 1, 7, 300]))
        end += produced
        # Still, caught up, same lag (flat), halfway, rewound, or the topic recreated.
        committed = draw(
            st.sampled_from(
                [committed, end, committed + produced, (committed + end) // 2, max(committed - 50, 0)]
            )
        )
        if draw(st.integers(0, 29)) == 0:
            end, committed = 3, 0
    return window


@st.composite
def clusters(draw: st.DrawFn) -> list[tuple[str, dict[tuple[str, int], PartitionWindow], int | None]]:
    groups = []
    for group in range(draw(st.integers(1, 4))):
        windows = draw(st.lists(partition_windows(), max_size=12))
        members = draw(st.sampled_from([None, 0, 2]))
        groups.append((f"group-{group}", {("t", i): w for i, w in enumerate(windows)}, members))
    return groups


@settings(max_examples=300, deadline=None)
@given(clusters(), st.integers(0, 7200), st.sampled_from([1, lag_batch.MIN_BATCH]))
def test_batch_says_what_one_by_one_says(
    groups: list[tuple[str, dict[tuple[str, int], PartitionWindow], int | None]], delay: int, batch: int
) -> None:
    latest = max((w.times[-1] for _, ws, _ in groups for w in ws.values() if w.times), default=T0_MS)
    now = datetime.fromtimestamp(latest / 1000, UTC) + timedelta(seconds=delay)
    with mock.patch.object(lag_batch, "MIN_BATCH", batch):
        batched = evaluate_groups(groups, now)
    assert batched == [
        evaluate_group(group_id, windows, now, members=members) for group_id, windows, members in groups
    ]


def test_a_fleet_sized_cluster_is_judged_in_batches() -> None:
    """Fifty groups of ten partitions, every status among them, judged in one batch."""
    groups = []
    for group in range(50):
        windows = {}
        for partition in range(10):
            window = PartitionWindow()
            kind = (group * 10 + partition) % 6
            for i in range(10):
                end = 1_000 + 100 * i
                committed = {
                    0: end - 10 * (i % 3),  # falls and rises: OK
                    1: 500 + 10 * i,  # lag grows: WARN
                    2: 400,  # never moves: STALL
                    3: end - 50 if i < 9 else 100,  # went backwards: REWIND
                    4: end,  # caught up: OK
                    5: end - 200 if i else 0,  # keeping up after catching up
                }[kind]
                window.add(T0_MS + 10_000 * i, committed, end)
            windows[("orders", partition)] = window
        groups.append((f"group-{group}", windows, 1))
    now = T0 + timedelta(seconds=90)

    batched = evaluate_groups(groups, now)

    assert batched == [evaluate_group(g, w, now, members=m) for g, w, m in groups]
    statuses = {p.status for group in batched for p in group.partitions}
    assert statuses == {LagStatus.OK, LagStatus.WARN, LagStatus.STALL, LagStatus.REWIND}
