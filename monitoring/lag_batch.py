"""Burrow's rules for a whole cluster's windows at once: `evaluate_groups`.

A collection judges every partition of every consumer group of a cluster, thousands of windows of
ten observations each. Judged one by one (`lag.judge_window`) that is the largest part of a
collection's cost. Here the windows that need no special handling, those with at least two
observations, every offset known and no commit times, are stacked into one matrix per window length
and every rule is answered for all rows at once with numpy. The other windows go through
`judge_window`. The results are the same, sentence for sentence and float for float: the
arithmetic is the same IEEE double arithmetic in the same order, and a property test holds both to
it on arbitrary windows.

The rules, per row of committed offsets C and end offsets E at times T: end offset went backwards
-> ERR; then `lag.RULE_ORDER`, the one statement of their order (no lag now -> OK; no commit for
longer than the window spans, or no members and no progress -> STOP; no lag at some point -> OK; a
commit below its predecessor -> REWIND; no progress -> STALL; lag never fell -> WARN; otherwise OK).
Rows with a committed offset beyond its end offset anywhere are judged one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from monitoring.lag import (
    CAUGHT_UP,
    RULE_ORDER,
    GroupLag,
    LagStatus,
    PartitionLag,
    PartitionWindow,
    Sentence,
    TopicPartition,
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

GroupToJudge = tuple[str, Mapping[TopicPartition, PartitionWindow], int | None]  # id, windows, members
_Row = tuple[int, int, str, int, PartitionWindow, bool | None]  # group, position, topic, partition, ...


def evaluate_groups(groups: Sequence[GroupToJudge], now: datetime) -> list[GroupLag]:
    """`lag.evaluate_group` of every (group id, windows, member count) of a cluster, in order."""
    now_ms = millis(now)
    results: list[list[PartitionLag | None]] = []
    by_length: dict[int, list[_Row]] = {}
    for group_index, (_, windows, members) in enumerate(groups):
        has_members = None if members is None else members > 0
        ordered = sorted(windows.items())
        results.append([None] * len(ordered))
        for position, ((topic, partition), window) in enumerate(ordered):
            by_length.setdefault(len(window.times), []).append(
                (group_index, position, topic, partition, window, has_members)
            )
    for length, rows in by_length.items():
        judged = _judge_rows(rows, now_ms) if length >= 2 and len(rows) >= MIN_BATCH else None
        for index, (group_index, position, topic, partition, window, has_members) in enumerate(rows):
            lag = judged[index] if judged is not None else None
            if lag is None:
                lag = judge_window(
                    topic,
                    partition,
                    window.times,
                    window.committed,
                    window.ends,
                    window.commit_times,
                    now_ms,
                    has_members,
                )
            results[group_index][position] = lag
    return [
        group_lag(group_id, tuple(partitions))  # type: ignore[arg-type]  # every slot is filled
        for (group_id, _, _), partitions in zip(groups, results, strict=True)
    ]


def _judge_rows(rows: Sequence[_Row], now: int) -> list[PartitionLag | None]:
    """Judge windows of one length; None for a row that must be judged one by one."""
    windows = [row[4] for row in rows]
    try:
        committed = np.array([w.committed for w in windows], dtype=np.int64)
        ends = np.array([w.ends for w in windows], dtype=np.int64)
    except (TypeError, OverflowError):
        # An unknown offset (None) somewhere, or one beyond 64 bits: split the regular rows out.
        regular = [i for i, w in enumerate(windows) if None not in w.committed and None not in w.ends]
        judged: list[PartitionLag | None] = [None] * len(rows)
        if len(regular) >= MIN_BATCH:
            try:
                for i, lag in zip(regular, _judge_rows([rows[i] for i in regular], now), strict=True):
                    judged[i] = lag
            except OverflowError:
                pass
        return judged
    times = np.array([w.times for w in windows], dtype=np.int64)
    count, length = committed.shape
    every = np.arange(count)

    # Rows the vectorised rules do not cover: incomplete, contradictory or huge offsets, known
    # commit times.
    special = (
        (committed < 0).any(axis=1)
        | (committed > ends).any(axis=1)
        | (ends >= EXACT_DOUBLE_LIMIT).any(axis=1)
        | np.array([w.commit_times is not None for w in windows])
    )

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
    last_commit = times[every, length - trailing_run]
    unchanged = (committed[:, 0] == latest_committed) & ~rewound
    span = times[:, -1] - times[:, 0]
    since_commit = now - last_commit
    members_gone = np.array([row[5] is False for row in rows])
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
        special.tolist(),
        verdict.tolist(),
        current_lag.tolist(),
        latest_committed.tolist(),
        ends[:, -1].tolist(),
        time_lag.tolist(),
        # The numbers the sentences need.
        ends[every, first_end_fall - 1].tolist(),
        ends[every, first_end_fall].tolist(),
        (times[:, -1] - times[every, last_no_lag]).tolist(),
        committed[every, first_commit_fall - 1].tolist(),
        committed[every, first_commit_fall].tolist(),
        since_commit.tolist(),
        span.tolist(),
        lag[:, 0].tolist(),
        committed[:, 0].tolist(),
    ]
    judged = []
    for row, values in zip(rows, zip(*columns, strict=True), strict=True):
        (
            is_special,
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
        if is_special:
            judged.append(None)
            continue
        if code == _END_BACKWARDS:
            judged.append(
                PartitionLag(
                    row[2],
                    row[3],
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
            summary = Sentence(stop_sentence, row[5], since, current)
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
        judged.append(PartitionLag(row[2], row[3], verdict.status, current, seconds, offset, end, summary))
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
