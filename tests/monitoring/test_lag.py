from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.lag import (
    LagStatus,
    Observation,
    PartitionWindow,
    estimate_time_lag,
    evaluate_group,
    evaluate_partition,
)

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=60)


def window(*points: tuple[int | None, int | None]) -> list[Observation]:
    """Observations one minute apart from (committed offset, log end offset) pairs."""
    return [Observation(T0 + i * STEP, committed, end) for i, (committed, end) in enumerate(points)]


def at_last(observations: list[Observation], extra: timedelta = timedelta()) -> datetime:
    return observations[-1].timestamp + extra


CASES = [
    pytest.param(window((100, 100), (150, 180), (200, 260)), LagStatus.OK, id="zero-lag-earlier"),
    pytest.param(window((100, 150), (200, 240), (300, 300)), LagStatus.OK, id="caught-up-now"),
    pytest.param(window((100, 200), (300, 350), (400, 420)), LagStatus.OK, id="lag-falling"),
    pytest.param(window((500, 600), (300, 650), (350, 700)), LagStatus.REWIND, id="rewind"),
    pytest.param(window((100, 200), (100, 300), (100, 400)), LagStatus.STALL, id="stall"),
    pytest.param(window((100, 200), (150, 300), (200, 400)), LagStatus.WARN, id="lag-growing"),
    pytest.param(window((100, 200), (150, 250), (200, 300)), LagStatus.WARN, id="lag-flat"),
    pytest.param(window((100, 200)), LagStatus.OK, id="single-observation"),
    pytest.param([], LagStatus.ERR, id="no-observations"),
    pytest.param(window((100, 200), (None, 300)), LagStatus.ERR, id="no-committed-offset"),
    pytest.param(window((100, 200), (150, None)), LagStatus.ERR, id="no-end-offset"),
    pytest.param(window((100, 500), (120, 130)), LagStatus.ERR, id="end-offset-backwards"),
    pytest.param(window((100, 200), (150, None), (200, 400)), LagStatus.WARN, id="gap-skipped"),
    pytest.param(window((210, 200), (300, 290), (400, 380)), LagStatus.ERR, id="committed-beyond-end"),
    pytest.param(window((100, 200), (210, 200), (300, 400)), LagStatus.WARN, id="contradiction-skipped"),
]


@pytest.mark.parametrize(("observations", "expected"), CASES)
def test_partition_status(observations: list[Observation], expected: LagStatus) -> None:
    now = at_last(observations) if observations else T0
    result = evaluate_partition("orders", 0, observations, now)
    assert result.status == expected
    assert result.summary.endswith(".")


def test_rule_order_stop_beats_rewind() -> None:
    # Burrow's order: a consumer that committed nothing for longer than its window spans has stopped,
    # whatever its offsets did before.
    observations = window((500, 600), (300, 650))
    result = evaluate_partition("orders", 0, observations, at_last(observations, timedelta(hours=2)))
    assert result.status == LagStatus.STOP
    assert result == evaluate_partition(
        "orders", 0, observations, at_last(observations, timedelta(hours=2)), group_has_members=True
    )
    fresh = evaluate_partition("orders", 0, observations, at_last(observations))
    assert fresh.status == LagStatus.REWIND
    assert "from 500 to 300" in fresh.summary


@pytest.mark.parametrize("members", [False, None])
def test_consumer_that_stopped_right_after_catching_up_is_stop(members: bool | None) -> None:
    """Burrow #290: the zero lag earlier in the window must not hide a consumer that then stopped.
    Without members nobody can commit, so it is STOP at once; with membership unknown, as soon as
    its last commit is older than the window spans."""
    observations = window((100, 100), (100, 100), (100, 140), (100, 200))
    now = at_last(observations) if members is False else at_last(observations, timedelta(minutes=4))
    result = evaluate_partition("orders", 0, observations, now, group_has_members=members)
    assert result.status == LagStatus.STOP
    assert result.summary.endswith("while 100 messages wait.")
    # A consumer that is there and caught up recently is keeping up.
    connected = evaluate_partition("orders", 0, observations, at_last(observations), group_has_members=True)
    assert connected.status == LagStatus.OK and connected.summary.startswith("Keeping up")


def test_committed_offset_beyond_the_end_is_inconsistent_not_caught_up() -> None:
    # Seen with the development broker: committed 10 while the log end offset reads 1.
    observations = window((10, 1))
    result = evaluate_partition("orders", 0, observations, at_last(observations))
    assert result.status == LagStatus.ERR
    assert result.lag is None and result.time_lag_seconds is None
    assert (result.committed_offset, result.end_offset) == (10, 1)
    assert result.summary.startswith(
        "Inconsistent offsets: the committed offset 10 is beyond the log end offset 1"
    )
    assert estimate_time_lag(observations) is None


def test_stale_window_is_stop_with_numbers() -> None:
    observations = window((100, 1000), (120, 3000), (140, 4350))
    now = at_last(observations, timedelta(minutes=12))
    result = evaluate_partition("orders", 0, observations, now)
    assert result.status == LagStatus.STOP
    assert result.summary == "The consumer committed nothing for 12 min while 4,210 messages wait."


def test_unmoving_offset_without_members_is_stop() -> None:
    observations = window((100, 200), (100, 300), (100, 400))
    result = evaluate_partition("orders", 0, observations, at_last(observations), group_has_members=False)
    assert result.status == LagStatus.STOP
    assert "No consumer is connected" in result.summary
    with_members = evaluate_partition(
        "orders", 0, observations, at_last(observations), group_has_members=True
    )
    assert with_members.status == LagStatus.STALL
    assert "stuck at offset 100" in with_members.summary


def test_known_commit_times_drive_stop() -> None:
    # Commits seen every minute, but the newest real commit is 20 minutes old: the consumer stopped
    # and the collector kept re-reading the same offset.
    old_commit = T0 - timedelta(minutes=20)
    observations = [Observation(T0 + i * STEP, 100, 200 + i * 10, committed_at=old_commit) for i in range(5)]
    result = evaluate_partition("orders", 0, observations, at_last(observations))
    assert result.status == LagStatus.STOP
    assert "24 min" in result.summary


def test_warn_sentence_explains_growth() -> None:
    observations = window((100, 1100), (150, 1300), (200, 1500))
    result = evaluate_partition("orders", 0, observations, at_last(observations))
    assert result.summary == (
        "The consumer is not keeping up: it processed 100 messages in 2 min, "
        "but the lag grew from 1,000 to 1,300."
    )


def test_time_lag_interpolates_arrival_of_oldest_waiting_message() -> None:
    # End offset grows 100 per minute; the consumer sits at 250, which arrived halfway between the
    # polls at minute 1 (end 200) and minute 2 (end 300), i.e. at 1.5 min. Newest poll: minute 4.
    observations = window((50, 100), (150, 200), (200, 300), (220, 400), (250, 500))
    assert estimate_time_lag(observations) == pytest.approx(150.0)


def test_time_lag_extrapolates_before_the_window() -> None:
    # 100 messages per minute; offset 0 is 100 messages before the window's first end offset.
    observations = window((0, 100), (0, 200), (0, 300))
    assert estimate_time_lag(observations) == pytest.approx(180.0)


def test_time_lag_without_produce_traffic_is_the_window_span() -> None:
    observations = window((0, 100), (0, 100), (0, 100))
    assert estimate_time_lag(observations) == pytest.approx(120.0)


def test_time_lag_edges() -> None:
    assert estimate_time_lag([]) is None
    assert estimate_time_lag(window((10, 10))) == 0.0
    assert estimate_time_lag(window((10, 20))) is None


def test_group_takes_worst_status_and_totals() -> None:
    windows = {
        ("orders", 0): window((100, 100), (200, 200)),
        ("orders", 1): window((100, 300), (100, 600)),
        ("payments", 0): window((100, 200), (150, 300)),
    }
    group = evaluate_group("billing", windows, T0 + STEP, members=3)
    assert group.status == LagStatus.STALL
    assert group.total_lag == 0 + 500 + 150
    assert group.max_lag == 500
    assert group.max_lag_partition == ("orders", 1)
    assert group.time_lag_seconds is not None and group.time_lag_seconds > 0
    assert group.summary.startswith("Group billing is stalled (STALL) on orders[1]: the consumer is stuck")
    assert [p.status for p in group.partitions_with(LagStatus.WARN)] == [LagStatus.WARN]


def test_group_accepts_partition_windows_and_handles_no_partitions() -> None:
    keeper = PartitionWindow()
    for observation in window((0, 0), (5, 5)):
        keeper.append(observation)
    group = evaluate_group("g", {("t", 0): keeper}, T0 + STEP)
    assert group.status == LagStatus.OK
    assert group.max_lag_partition is None
    empty = evaluate_group("idle", {}, T0)
    assert empty.status == LagStatus.OK
    assert empty.total_lag == 0
    assert "no committed offsets" in empty.summary


def test_window_keeps_last_n_and_drops_old_ones() -> None:
    keeper = PartitionWindow(size=3, max_age=timedelta(minutes=10))
    for i in range(5):
        keeper.append(Observation(T0 + i * STEP, i, i + 1))
    assert [o.committed_offset for o in keeper.observations] == [2, 3, 4]
    keeper.append(Observation(T0 + timedelta(minutes=13), 9, 9))
    assert [o.committed_offset for o in keeper.observations] == [3, 4, 9]
    # A late poll is ignored; one with the newest timestamp replaces it.
    keeper.append(Observation(T0, 1, 1))
    keeper.append(Observation(T0 + timedelta(minutes=13), 10, 10))
    assert [o.committed_offset for o in keeper.observations] == [3, 4, 10]


def test_window_keeps_commit_times_once_known() -> None:
    keeper = PartitionWindow(size=4)
    keeper.append(Observation(T0, 1, 5))
    keeper.append(Observation(T0 + STEP, 2, 6, committed_at=T0 + STEP / 2))
    assert [o.committed_at for o in keeper.observations] == [None, T0 + STEP / 2]


def test_window_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PartitionWindow(size=0)


# Properties over consistent windows: end offsets never fall, commits never pass the end offset.
@st.composite
def consistent_windows(draw: st.DrawFn, min_size: int = 2) -> list[Observation]:
    size = draw(st.integers(min_value=min_size, max_value=10))
    end = draw(st.integers(min_value=0, max_value=10_000))
    committed = draw(st.integers(min_value=0, max_value=end))
    observations = []
    for i in range(size):
        observations.append(Observation(T0 + i * STEP, committed, end))
        end += draw(st.integers(min_value=0, max_value=1_000))
        committed = draw(st.integers(min_value=committed, max_value=end))
    return observations


@given(consistent_windows(), st.integers(min_value=0, max_value=9), st.integers(0, 3600))
def test_zero_lag_in_the_window_is_ok_unless_the_consumer_stopped(
    observations: list[Observation], index: int, delay: int
) -> None:
    index %= len(observations)
    caught_up = observations[index]
    assert caught_up.end_offset is not None
    observations[index] = Observation(caught_up.timestamp, caught_up.end_offset, caught_up.end_offset)
    # Keep commits monotonic after forcing a catch-up.
    for i in range(index + 1, len(observations)):
        o = observations[i]
        assert o.end_offset is not None and o.committed_offset is not None
        floor = observations[i - 1].committed_offset or 0
        observations[i] = Observation(o.timestamp, max(o.committed_offset, floor), max(o.end_offset, floor))
    now = at_last(observations, timedelta(seconds=delay))
    result = evaluate_partition("t", 0, observations, now)
    # Burrow's order: STOP is checked first, so zero lag earlier in the window says OK only while
    # the consumer's last commit (the first poll that saw its offset) is within the window's span.
    latest = observations[-1].committed_offset
    first_seen = next(o.timestamp for o in observations if o.committed_offset == latest)
    stopped = (
        observations[-1].lag != 0
        and now - first_seen > observations[-1].timestamp - observations[0].timestamp
    )
    assert result.status == (LagStatus.STOP if stopped else LagStatus.OK)
    if not delay:  # evaluated right after the poll, as a collection does, a present consumer is OK
        assert evaluate_partition("t", 0, observations, now, group_has_members=True).status == LagStatus.OK


@given(consistent_windows(), st.integers(min_value=0, max_value=9), st.integers(1, 40))
def test_a_consumer_without_members_that_caught_up_and_then_waits_is_stop(
    observations: list[Observation], index: int, produced: int
) -> None:
    """Caught up at some poll, the group empty ever since and messages arriving: STOP from the first
    poll that shows lag, never OK for the rest of the window (Burrow #290)."""
    index %= len(observations)
    offset = observations[index].end_offset
    assert offset is not None
    stopped = [
        Observation(o.timestamp, offset, offset + produced * max(i - index, 0))
        for i, o in enumerate(observations)
    ]
    result = evaluate_partition("t", 0, stopped, stopped[-1].timestamp, group_has_members=False)
    if index == len(stopped) - 1:
        assert result.status == LagStatus.OK  # caught up now
    else:
        assert result.status == LagStatus.STOP
        assert result.summary.startswith("No consumer is connected")


def _first_poll_of_latest_commit(observations: list[Observation]) -> datetime:
    """When a poll first saw the newest committed offset: the evaluator's "last commit"."""
    index = len(observations) - 1
    while index and observations[index - 1].committed_offset == observations[-1].committed_offset:
        index -= 1
    return observations[index].timestamp


@given(consistent_windows(), st.integers(min_value=1, max_value=9), st.integers(0, 3600))
def test_backwards_commit_with_constant_lag_is_rewind(
    observations: list[Observation], index: int, delay: int
) -> None:
    index = 1 + (index - 1) % (len(observations) - 1)
    # Give every observation lag, then move one commit below its predecessor.
    lagging = [
        Observation(o.timestamp, o.committed_offset, (o.end_offset or 0) + 5_000) for o in observations
    ]
    lagging = [Observation(o.timestamp, (o.committed_offset or 0) + 1_000, o.end_offset) for o in lagging]
    previous = lagging[index - 1].committed_offset or 0
    o = lagging[index]
    lagging[index] = Observation(o.timestamp, previous - 1, o.end_offset)
    # Right after the poll it is a rewind; later, once the last commit is older than the window
    # spans, STOP (checked first, as Burrow does).
    assert evaluate_partition("t", 0, lagging, at_last(lagging)).status == LagStatus.REWIND
    now = at_last(lagging, timedelta(seconds=delay))
    stale = now - _first_poll_of_latest_commit(lagging) > lagging[-1].timestamp - lagging[0].timestamp
    assert evaluate_partition("t", 0, lagging, now).status == (LagStatus.STOP if stale else LagStatus.REWIND)


@given(st.lists(consistent_windows(min_size=1), min_size=1, max_size=6), st.integers(0, 3600))
def test_group_status_is_worst_partition(windows: list[list[Observation]], delay: int) -> None:
    by_partition = {("t", i): w for i, w in enumerate(windows)}
    now = max(w[-1].timestamp for w in windows) + timedelta(seconds=delay)
    group = evaluate_group("g", by_partition, now)
    assert group.status == LagStatus.worst(p.status for p in group.partitions)
    assert all(p.status.rank <= group.status.rank for p in group.partitions)
    assert group.total_lag == sum(p.lag or 0 for p in group.partitions)
    assert group.max_lag == max(p.lag or 0 for p in group.partitions)


@given(consistent_windows(min_size=1), st.integers(0, 3600))
def test_every_status_has_a_sentence_and_time_lag_is_not_negative(
    observations: list[Observation], delay: int
) -> None:
    result = evaluate_partition("t", 0, observations, at_last(observations, timedelta(seconds=delay)))
    assert result.summary and result.summary[0].isupper() and result.summary.endswith(".")
    assert result.time_lag_seconds is None or result.time_lag_seconds >= 0
    assert result.status != LagStatus.ERR


def test_flat_lag_sentence() -> None:
    observations = window((100, 200), (150, 250), (200, 300))
    result = evaluate_partition("orders", 0, observations, at_last(observations))
    assert result.summary.endswith("but the lag stayed at 100.")
