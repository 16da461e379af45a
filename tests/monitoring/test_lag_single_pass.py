"""The lag evaluator against a plain reading of Burrow's rules, on arbitrary windows.

`reference_partition` states each rule the straightforward way (a list per rule, checked in order).
`monitoring.lag.evaluate_partition` answers every rule from one pass over the window; both must give
the same status, numbers and sentence for any window, including unsorted, incomplete and
contradictory ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.lag import (
    LagStatus,
    Observation,
    PartitionLag,
    _count,
    _waiting,
    estimate_time_lag,
    evaluate_partition,
    format_seconds,
    millis,
)

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def reference_partition(
    topic: str,
    partition: int,
    observations: Sequence[Observation],
    now: datetime,
    *,
    group_has_members: bool | None = None,
) -> PartitionLag:
    """Judge one partition's window. `group_has_members` is None when membership is unknown."""
    ordered = sorted(observations, key=lambda o: o.timestamp)
    latest = ordered[-1] if ordered else None

    def result(status: LagStatus, summary: str, time_lag: float | None = None) -> PartitionLag:
        return PartitionLag(
            topic=topic,
            partition=partition,
            status=status,
            lag=latest.lag if latest else None,
            time_lag_seconds=time_lag,
            committed_offset=latest.committed_offset if latest else None,
            end_offset=latest.end_offset if latest else None,
            explanation=summary,
        )

    if latest is None:
        return result(LagStatus.ERR, "No offsets have been collected for this partition yet.")
    if latest.end_offset is None or latest.end_offset < 0:
        return result(
            LagStatus.ERR,
            "The partition's log end offset could not be read, so its lag is unknown.",
        )
    if latest.committed_offset is None or latest.committed_offset < 0:
        return result(
            LagStatus.ERR,
            f"The group has no committed offset for this partition (log end offset "
            f"{_count(latest.end_offset)}); its consumer never committed here or the commit expired.",
        )

    if latest.committed_offset > latest.end_offset:
        return result(
            LagStatus.ERR,
            f"Inconsistent offsets: the committed offset {_count(latest.committed_offset)} is beyond "
            f"the log end offset {_count(latest.end_offset)}, which consistent data cannot show (the "
            f"topic was recreated or truncated, offsets were set by hand, or the broker reports a "
            f"stale high watermark), so the lag is unknown.",
        )

    # Incomplete or contradictory polls earlier in the window are skipped rather than failing the
    # partition: one failed end-offset fetch should not hide an otherwise clear trend.
    window = [o for o in ordered if o.complete and o.lag is not None]
    for earlier, later in pairwise(window):
        assert earlier.end_offset is not None and later.end_offset is not None
        if later.end_offset < earlier.end_offset:
            return result(
                LagStatus.ERR,
                f"The log end offset went backwards from {_count(earlier.end_offset)} to "
                f"{_count(later.end_offset)}; the topic was probably deleted and recreated or "
                f"truncated, so these offsets cannot be compared.",
            )

    lags = [o.lag or 0 for o in window]
    current_lag = lags[-1]
    committed = [o.committed_offset or 0 for o in window]
    time_lag = reference_time_lag(window)
    span = window[-1].timestamp - window[0].timestamp

    if current_lag == 0:
        return result(LagStatus.OK, "Caught up: no messages are waiting.", 0.0)
    if len(window) < 2:
        return result(
            LagStatus.OK,
            f"Too early to judge: {_waiting(current_lag)} and one observation shows no trend yet.",
            time_lag,
        )

    last_commit = _last_commit_time(window)
    # Burrow's order since its #290: STOP before "lag was zero somewhere in the window".
    unchanged = len(set(committed)) == 1
    since_commit = now - last_commit
    if since_commit > span or (unchanged and group_has_members is False):
        who = "No consumer is connected and the group" if group_has_members is False else "The consumer"
        return result(
            LagStatus.STOP,
            f"{who} committed nothing for {format_seconds(since_commit.total_seconds())} while {_waiting(current_lag)}.",
            time_lag,
        )
    if 0 in lags:
        last_zero = max(i for i, lag in enumerate(lags) if lag == 0)
        return result(
            LagStatus.OK,
            f"Keeping up: the consumer was caught up "
            f"{format_seconds((window[-1].timestamp - window[last_zero].timestamp).total_seconds())} ago and "
            f"{_waiting(current_lag)} now.",
            time_lag,
        )
    for i in range(1, len(window)):
        if committed[i] < committed[i - 1]:
            return result(
                LagStatus.REWIND,
                f"The committed offset went backwards from {_count(committed[i - 1])} to "
                f"{_count(committed[i])}, so {_count(committed[i - 1] - committed[i])} messages will "
                f"be processed again (an offset reset or a restored checkpoint).",
                time_lag,
            )

    if unchanged:
        return result(
            LagStatus.STALL,
            f"The consumer is stuck at offset {_count(committed[-1])}: it has not moved for "
            f"{format_seconds(since_commit.total_seconds())} while {_waiting(current_lag)}.",
            time_lag,
        )
    if all(lags[i] >= lags[i - 1] for i in range(1, len(lags))):
        trend = (
            f"stayed at {_count(current_lag)}"
            if lags[0] == current_lag
            else f"grew from {_count(lags[0])} to {_count(current_lag)}"
        )
        return result(
            LagStatus.WARN,
            f"The consumer is not keeping up: it processed {_count(committed[-1] - committed[0])} "
            f"messages in {format_seconds(span.total_seconds())}, but the lag {trend}.",
            time_lag,
        )
    return result(
        LagStatus.OK,
        f"Consuming normally: {_waiting(current_lag)} and the lag fell within the last "
        f"{format_seconds(span.total_seconds())}.",
        time_lag,
    )


def reference_time_lag(observations: Sequence[Observation]) -> float | None:
    """Seconds between the newest observation and the moment the oldest waiting message arrived.

    The oldest waiting message has the committed offset C. It was appended when the log end offset
    first passed C, so the window's end-offset history says when that happened: between the last
    poll whose end offset was still <= C and the next one, interpolated linearly. When C is older
    than the whole window, the arrival time is extrapolated backwards at the window's average
    produce rate (end-offset growth per second); with no produce traffic in the window the span of
    the window is returned as a lower bound. This reads "how far behind in time", which stays
    meaningful when producers pause, unlike dividing lag by the current produce rate.
    """
    complete = sorted((o for o in observations if o.complete), key=lambda o: o.timestamp)
    if not complete or complete[-1].committed_offset > complete[-1].end_offset:  # type: ignore[operator]
        return None
    window = [o for o in complete if o.committed_offset <= o.end_offset]  # type: ignore[operator]
    newest = window[-1]
    assert newest.committed_offset is not None and newest.end_offset is not None
    if newest.lag == 0:
        return 0.0
    target = newest.committed_offset
    for earlier, later in pairwise(window):
        assert earlier.end_offset is not None and later.end_offset is not None
        if earlier.end_offset <= target < later.end_offset:
            # Interpolated in epoch milliseconds, the resolution windows keep.
            fraction = (target - earlier.end_offset) / (later.end_offset - earlier.end_offset)
            arrived = (
                millis(earlier.timestamp) + (millis(later.timestamp) - millis(earlier.timestamp)) * fraction
            )
            return max((millis(newest.timestamp) - arrived) / 1000, 0.0)
    oldest = window[0]
    assert oldest.end_offset is not None
    span_seconds = (millis(newest.timestamp) - millis(oldest.timestamp)) / 1000
    if span_seconds <= 0:
        return None
    rate = (newest.end_offset - oldest.end_offset) / span_seconds
    if rate <= 0:
        return span_seconds
    before_window = max(oldest.end_offset - target, 0) / rate
    return span_seconds + before_window


def _last_commit_time(window: Sequence[Observation]) -> datetime:
    known = [o.committed_at for o in window if o.committed_at is not None]
    if known:
        return max(known)
    # Without commit times, the best evidence of the last commit is the first poll that saw the
    # current committed offset.
    index = len(window) - 1
    while index > 0 and window[index - 1].committed_offset == window[-1].committed_offset:
        index -= 1
    return window[index].timestamp


offsets = st.one_of(st.none(), st.integers(min_value=-1, max_value=2_000))


@st.composite
def windows(draw: st.DrawFn) -> list[Observation]:
    """Windows of up to 10 polls, mostly plausible, sometimes missing, shuffled or contradictory."""
    size = draw(st.integers(min_value=0, max_value=10))
    observations = []
    end = draw(st.integers(min_value=0, max_value=1_000))
    committed = draw(st.integers(min_value=0, max_value=end))
    for i in range(size):
        moment = T0 + timedelta(seconds=draw(st.sampled_from([10, 30, 60, 600])) * i)
        committed_at = draw(st.one_of(st.none(), st.just(moment - timedelta(seconds=5))))
        roll = draw(st.integers(0, 19))
        if roll < 2:
            observations.append(Observation(moment, draw(offsets), draw(offsets), committed_at))
        elif roll == 2:  # a committed offset beyond the log end offset, as a development broker shows
            observations.append(Observation(moment, end + draw(st.integers(1, 20)), end, committed_at))
        else:
            observations.append(Observation(moment, committed, end, committed_at))
        produced = draw(st.integers(min_value=0, max_value=300))
        end += produced
        # Still, caught up, same lag (flat), halfway, or rewound.
        committed = draw(
            st.sampled_from(
                [committed, end, committed + produced, (committed + end) // 2, max(committed - 50, 0)]
            )
        )
    if draw(st.booleans()):
        observations = draw(st.permutations(observations))
    return observations


@settings(max_examples=500)
@given(windows(), st.integers(0, 7200), st.sampled_from([None, True, False]))
def test_single_pass_matches_the_rules(
    observations: list[Observation], delay: int, members: bool | None
) -> None:
    latest = max((o.timestamp for o in observations), default=T0)
    now = latest + timedelta(seconds=delay)
    expected = reference_partition("t", 3, observations, now, group_has_members=members)
    assert evaluate_partition("t", 3, observations, now, group_has_members=members) == expected
    assert estimate_time_lag(observations) == reference_time_lag(observations)


def test_reference_covers_every_status() -> None:
    def poll(minute: int, committed: int | None, end: int | None) -> Observation:
        return Observation(T0 + timedelta(minutes=minute), committed, end)

    cases = {
        LagStatus.OK: [poll(0, 100, 100), poll(1, 150, 200)],
        LagStatus.WARN: [poll(0, 100, 200), poll(1, 150, 300)],
        LagStatus.ERR: [poll(0, 100, 500), poll(1, 120, 130)],
        LagStatus.REWIND: [poll(0, 500, 600), poll(1, 300, 650)],
        LagStatus.STALL: [poll(0, 100, 200), poll(1, 100, 300)],
        LagStatus.STOP: [poll(0, 100, 200), poll(1, 150, 300)],
    }
    for status, observations in cases.items():
        now = observations[-1].timestamp + (timedelta(hours=1) if status == LagStatus.STOP else timedelta())
        result = evaluate_partition("t", 0, observations, now)
        assert result == reference_partition("t", 0, observations, now)
        assert isinstance(result, PartitionLag) and result.status == status
