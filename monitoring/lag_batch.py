"""Burrow's rules for a whole cluster's windows at once: `evaluate_groups`.

A collection judges every partition of every consumer group of a cluster, thousands of windows of
ten observations each, kept as the rows of a cluster's matrices (`lag_windows.ClusterWindows`). Judged
one by one (`lag.judge_window`) that is the largest part of a collection's cost. Here the rows that
need no special handling, those with at least two observations and every offset known and
consistent, are taken per first column as sub-matrices, and every rule is answered for all of their
rows at once with numpy. The other rows go through `judge_window`. The results are the same, sentence
for sentence and float for float: the arithmetic is the same IEEE double arithmetic in the same order,
and a property test holds both to it on arbitrary sequences of polls.

The rules, per row of committed offsets C and end offsets E at times T: end offset went backwards
-> ERR; then `lag.RULE_ORDER`, the one statement of their order (no lag now -> OK; no commit for
longer than the window spans, or no members and no progress -> STOP; no lag at some point -> OK; a
commit below its predecessor -> REWIND; no progress -> STALL; lag never fell -> WARN; otherwise OK).
Rows with an unknown offset, or a committed offset beyond its end offset, anywhere are judged one by
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from monitoring.lag import (
    CAUGHT_UP,
    RULE_ORDER,
    GroupLag,
    LagStatus,
    PartitionLag,
    Sentence,
    Verdict,
    consuming_sentence,
    end_backwards_sentence,
    falling_behind_sentence,
    group_lag,
    judge_window,
    keeping_up_sentence,
    millis,
    rewind_sentence,
    stall_sentence,
    stop_sentence,
)
from monitoring.lag_windows import ClusterWindows

# Below this many windows of one length, numpy's fixed cost per operation outweighs what it saves.
MIN_BATCH = 16
# Offsets are converted to doubles for the time lag; beyond 2**53 that would round differently
# from Python's exact integer division, so such windows are judged one by one.
EXACT_DOUBLE_LIMIT = 2**53

# A verdict code outside `Verdict`: the end offset went backwards, checked before every rule.
_END_BACKWARDS = -1
# Verdicts by code: indexing a tuple is many times cheaper than `Verdict(code)`, once per partition.
_VERDICTS: tuple[Verdict, ...] = tuple(sorted(Verdict))
assert [int(v) for v in _VERDICTS] == list(range(len(_VERDICTS))), "verdict codes must be 0, 1, 2..."

GroupToJudge = tuple[str, int | None]  # group id, member count (None when unknown)


def evaluate_groups(windows: ClusterWindows, groups: Sequence[GroupToJudge], now: datetime) -> list[GroupLag]:
    """`lag.evaluate_group` of every (group id, member count) of a cluster, in order, judged on the
    cluster's windows (a group without rows has nothing to judge)."""
    now_ms = millis(now)
    members = dict(groups)
    keys = windows.keys
    # Whether each row's group has members: None when unknown, as `judge_window` takes it.
    has_members = [None if (m := members.get(key[0])) is None else m > 0 for key in keys]
    results: list[PartitionLag | None] = [None] * len(keys)
    if keys:
        _judge_batches(windows, has_members, now_ms, results)
    for row, lag in enumerate(results):
        if lag is None:
            _, topic, partition = keys[row]
            window = windows.window(row)
            results[row] = judge_window(
                topic, partition, window.times, window.committed, window.ends, None, now_ms, has_members[row]
            )
    # Rows are sorted by group, then topic and partition: each group is one run of them.
    runs: dict[str, tuple[int, int]] = {}
    for row, key in enumerate(keys):
        first, _ = runs.get(key[0], (row, row))
        runs[key[0]] = (first, row + 1)
    return [
        group_lag(group_id, tuple(results[slice(*runs.get(group_id, (0, 0)))]))  # type: ignore[arg-type]
        for group_id, _ in groups
    ]


def _judge_batches(
    windows: ClusterWindows, has_members: list[bool | None], now: int, results: list[PartitionLag | None]
) -> None:
    """Fill in the results of the regular rows, per first column, where there are enough of them."""
    committed, ends, starts = windows.committed, windows.ends, windows.starts
    columns = len(windows.stamps)
    observed = np.arange(columns)[None, :] >= starts[:, None]
    # Rows the vectorised rules do not cover: fewer than two observations, unknown, contradictory or
    # huge offsets.
    irregular = ((committed < 0) | (ends < 0) | (committed > ends) | (ends >= EXACT_DOUBLE_LIMIT)) & observed
    regular = ~irregular.any(axis=1) & (starts <= columns - 2)
    for start in np.unique(starts[regular]).tolist():
        rows = np.flatnonzero(regular & (starts == start))
        if len(rows) < MIN_BATCH:
            continue
        judged = _judge_rows(
            [windows.keys[row] for row in rows.tolist()],
            [has_members[row] for row in rows.tolist()],
            committed[rows, start:],
            ends[rows, start:],
            windows.stamps[start:],
            now,
        )
        for row, lag in zip(rows.tolist(), judged, strict=True):
            results[row] = lag


def _judge_rows(
    keys: Sequence[tuple[str, str, int]],
    has_members: Sequence[bool | None],
    committed: Any,
    ends: Any,
    stamps: Any,
    now: int,
) -> list[PartitionLag]:
    """Judge regular rows observed at the same times `stamps` (every offset known and consistent)."""
    count, length = committed.shape
    every = np.arange(count)
    times = np.broadcast_to(stamps, (count, length))

    end_falls = ends[:, 1:] < ends[:, :-1]
    end_backwards = end_falls.any(axis=1)
    first_end_fall = end_falls.argmax(axis=1) + 1
    lag = ends - committed
    current_lag = lag[:, -1]
    no_lag = lag == 0
    last_no_lag = length - 1 - no_lag[:, ::-1].argmax(axis=1)
    commit_falls = committed[:, 1:] < committed[:, :-1]
    rewound = commit_falls.any(axis=1)
    first_commit_fall = commit_falls.argmax(axis=1) + 1
    latest_committed = committed[:, -1]
    # The first poll that saw the current committed offset: the start of the trailing run of it.
    differs_from_latest = (committed != latest_committed[:, None])[:, ::-1]
    trailing_run = np.where(differs_from_latest.any(axis=1), differs_from_latest.argmax(axis=1), length)
    last_commit = stamps[length - trailing_run]
    unchanged = (committed[:, 0] == latest_committed) & ~rewound
    span = np.full(count, stamps[-1] - stamps[0])
    since_commit = now - last_commit
    members_gone = np.array([members is False for members in has_members], dtype=bool)
    holds = {
        Verdict.CAUGHT_UP: current_lag == 0,
        Verdict.TOO_EARLY: np.zeros(count, dtype=bool),  # every row here has two observations or more
        Verdict.STOPPED: (since_commit > span) | (unchanged & members_gone),
        Verdict.KEEPING_UP: no_lag.any(axis=1),
        Verdict.REWOUND: rewound,
        Verdict.STALLED: unchanged,
        Verdict.FALLING_BEHIND: (lag[:, 1:] >= lag[:, :-1]).all(axis=1),
    }
    verdict = np.select(
        [end_backwards, *(holds[rule] for rule in RULE_ORDER)],
        [_END_BACKWARDS, *RULE_ORDER],
        Verdict.CONSUMING,
    )
    time_lag = _time_lags(times, ends, latest_committed, every)

    columns: list[list[Any]] = [
        verdict.tolist(),
        current_lag.tolist(),
        latest_committed.tolist(),
        ends[:, -1].tolist(),
        time_lag.tolist(),
        # The numbers the sentences need.
        ends[every, first_end_fall - 1].tolist(),
        ends[every, first_end_fall].tolist(),
        (stamps[-1] - stamps[last_no_lag]).tolist(),
        committed[every, first_commit_fall - 1].tolist(),
        committed[every, first_commit_fall].tolist(),
        since_commit.tolist(),
        span.tolist(),
        lag[:, 0].tolist(),
        committed[:, 0].tolist(),
    ]
    judged = []
    for (_, topic, partition), members, values in zip(
        keys, has_members, zip(*columns, strict=True), strict=True
    ):
        (
            code,
            current,
            offset,
            end,
            seconds,
            end_before,
            end_after,
            since_no_lag,
            commit_before,
            commit_after,
            since,
            window_span,
            first_lag,
            first_committed,
        ) = values
        if code == _END_BACKWARDS:
            judged.append(
                PartitionLag(
                    topic,
                    partition,
                    LagStatus.ERR,
                    current,
                    None,
                    offset,
                    end,
                    Sentence(end_backwards_sentence, end_before, end_after),
                )
            )
            continue
        verdict = _VERDICTS[code]
        summary: str | Sentence
        if verdict is Verdict.CAUGHT_UP:
            summary, seconds = CAUGHT_UP, 0.0
        elif verdict is Verdict.STOPPED:
            summary = Sentence(stop_sentence, members, since, current)
        elif verdict is Verdict.KEEPING_UP:
            summary = Sentence(keeping_up_sentence, since_no_lag, current)
        elif verdict is Verdict.REWOUND:
            summary = Sentence(rewind_sentence, commit_before, commit_after)
        elif verdict is Verdict.STALLED:
            summary = Sentence(stall_sentence, offset, since, current)
        elif verdict is Verdict.FALLING_BEHIND:
            summary = Sentence(
                falling_behind_sentence, offset - first_committed, window_span, first_lag, current
            )
        else:
            summary = Sentence(consuming_sentence, current, window_span)
        if seconds is not None and seconds != seconds:  # NaN: no time lag can be estimated
            seconds = None
        judged.append(PartitionLag(topic, partition, verdict.status, current, seconds, offset, end, summary))
    return judged


def _time_lags(times: Any, ends: Any, target: Any, every: Any) -> Any:
    """`lag._time_lag` of every row, NaN where it has none: the arrival of the oldest waiting
    message, interpolated between the polls whose end offsets straddle it, or extrapolated back at
    the window's produce rate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        straddles = (ends[:, :-1] <= target[:, None]) & (target[:, None] < ends[:, 1:])
        after = straddles.argmax(axis=1) + 1
        end_before, end_after = ends[every, after - 1], ends[every, after]
        fraction = (target - end_before) / (end_after - end_before)
        time_before = times[every, after - 1]
        arrived = time_before + (times[every, after] - time_before) * fraction
        interpolated = np.maximum((times[:, -1] - arrived) / 1000, 0.0)
        span_seconds = (times[:, -1] - times[:, 0]) / 1000
        rate = (ends[:, -1] - ends[:, 0]) / span_seconds
        extrapolated = np.where(
            rate <= 0, span_seconds, span_seconds + np.maximum(ends[:, 0] - target, 0) / rate
        )
        extrapolated = np.where(span_seconds <= 0, np.nan, extrapolated)
        return np.where(straddles.any(axis=1), interpolated, extrapolated)
