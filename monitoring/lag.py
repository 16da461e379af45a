"""Consumer lag evaluation in the manner of LinkedIn's Burrow, plus an estimated time lag.

A collector polls each consumer group's committed offsets and the partitions' log end offsets and
adds one observation per partition to its window (the last N polls, default 10: `PartitionWindow`
for one partition, `lag_windows.ClusterWindows` for all of a cluster's). `judge_window` judges each
window on its trend rather than on a fixed threshold (`lag_batch.evaluate_groups` does the same for a
whole cluster at once):

1. no usable offsets, or offsets that contradict each other (the end offset went
   backwards, or the newest committed offset is beyond the log end offset)  -> ERR
2. no lag at the newest observation                                        -> OK
3. a single observation: no trend yet                                      -> OK
4. the time since the last commit is longer than the window's span, or the
   offset never moved and the group has no members                        -> STOP
5. lag was 0 at any point in the window                                    -> OK
6. the committed offset went backwards                                     -> REWIND
7. the committed offset never moved while there is lag                     -> STALL
8. the committed offset moves but the lag never falls                      -> WARN
9. otherwise                                                               -> OK

This is Burrow's current order (since its #290): STOP comes before "lag was zero somewhere", because
a consumer that stopped right after catching up has had zero lag in its window, and would otherwise
read OK until that observation left the window. Once a rule matches, the later ones are not consulted
(a rewind makes "unchanged" and "not falling" meaningless). `RULE_ORDER` holds rules 2-9; both
evaluators take it from there. Burrow spares a partition whose recent broker offsets show it caught
up at its last commit from STOP; that grace is not applied here, because end offsets and commits come
from the same polls, so it would cancel rule 4 exactly in the case it exists for.

Polling cannot see a consumer re-committing the same offset, so "the last commit" is the first poll
that saw the current committed offset, unless the source knows the real commit time
(`Observation.committed_at`). Evaluated right after a poll, an unmoving offset therefore reads as
STALL; it becomes STOP when the group has no members (nobody can commit) or when the window itself
has gone stale. The window must span more than the consumers' commit interval (poll interval x window
size), otherwise a consumer that commits rarely looks stalled between its commits.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple

TopicPartition = tuple[str, int]

DEFAULT_WINDOW_SIZE = 10
DEFAULT_MAX_AGE = timedelta(hours=1)

_TIMESTAMP = attrgetter("timestamp")
_MILLISECOND = timedelta(milliseconds=1)


class LagStatus(StrEnum):
    OK = "OK"  # consuming normally, or caught up at some point in the window
    WARN = "WARN"  # consuming, but not fast enough: lag did not fall once in the window
    ERR = "ERR"  # offsets missing or contradictory; the partition cannot be judged
    REWIND = "REWIND"  # committed offset went backwards: messages will be processed again
    STALL = "STALL"  # consumer present, committed offset not moving, messages waiting
    STOP = "STOP"  # no commits for longer than the window spans, messages waiting

    @property
    def rank(self) -> int:
        """How bad the status is; a group takes the worst rank of its partitions."""
        return _RANK[self]

    @classmethod
    def worst(cls, statuses: Iterable[LagStatus]) -> LagStatus:
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


# A rewind is ranked below stall and stop, unlike Burrow: it is usually a deliberate offset reset,
# and the consumer is processing again, whereas STALL and STOP mean nothing is processed at all.
# ERR ranks above WARN because a partition nobody can judge deserves a look, but below the
# statuses that positively show a consumer in trouble.
_RANK: dict[LagStatus, int] = {
    LagStatus.OK: 0,
    LagStatus.WARN: 1,
    LagStatus.ERR: 2,
    LagStatus.REWIND: 3,
    LagStatus.STALL: 4,
    LagStatus.STOP: 5,
}


class Verdict(IntEnum):
    """Which trend rule judged a window (rules 2-9 of the module docstring)."""

    CAUGHT_UP = 0
    TOO_EARLY = 1
    STOPPED = 2
    KEEPING_UP = 3
    REWOUND = 4
    STALLED = 5
    FALLING_BEHIND = 6
    CONSUMING = 7

    @property
    def status(self) -> LagStatus:
        return _VERDICT_STATUS[self]


# The order the rules are checked in, the first that holds decides; `CONSUMING` holds when none
# does. The one place this order is written: `judge_window` and `lag_batch` both follow it.
RULE_ORDER: tuple[Verdict, ...] = (
    Verdict.CAUGHT_UP,
    Verdict.TOO_EARLY,
    Verdict.STOPPED,
    Verdict.KEEPING_UP,
    Verdict.REWOUND,
    Verdict.STALLED,
    Verdict.FALLING_BEHIND,
)

_VERDICT_STATUS: dict[Verdict, LagStatus] = {
    Verdict.CAUGHT_UP: LagStatus.OK,
    Verdict.TOO_EARLY: LagStatus.OK,
    Verdict.STOPPED: LagStatus.STOP,
    Verdict.KEEPING_UP: LagStatus.OK,
    Verdict.REWOUND: LagStatus.REWIND,
    Verdict.STALLED: LagStatus.STALL,
    Verdict.FALLING_BEHIND: LagStatus.WARN,
    Verdict.CONSUMING: LagStatus.OK,
}


def first_verdict(holds: Mapping[Verdict, bool]) -> Verdict:
    """The first rule in `RULE_ORDER` that holds, `CONSUMING` when none does."""
    for verdict in RULE_ORDER:
        if holds[verdict]:
            return verdict
    return Verdict.CONSUMING


class Observation(NamedTuple):
    """One poll of a partition: the group's committed offset and the partition's log end offset.

    `committed_offset` is None when the group has no commit for the partition (Kafka answers -1);
    `end_offset` is None when the log end offset could not be fetched. `committed_at` is the time of
    the commit itself, when the source knows it (reading `__consumer_offsets` does; OffsetFetch
    does not).

    The readable unit for one partition's history; windows store the same data as columns.
    """

    timestamp: datetime
    committed_offset: int | None
    end_offset: int | None
    committed_at: datetime | None = None

    @property
    def complete(self) -> bool:
        return _complete(self.committed_offset, self.end_offset)

    @property
    def lag(self) -> int | None:
        return _lag(self.committed_offset, self.end_offset)


@dataclass(slots=True)
class PartitionWindow:
    """The sliding window of recent observations for one (group, topic, partition), as columns.

    Kept in time order: an observation older than the newest one is ignored (a late or duplicated
    poll), and one with the same timestamp replaces it. Columns, as `judge_window` takes them. The
    collector keeps a cluster's windows as matrices (`lag_windows.ClusterWindows`), which give one
    window at a time as this (`ClusterWindows.window`) to the API, the exporter and the rows judged
    one by one.
    """

    size: int = DEFAULT_WINDOW_SIZE
    max_age: timedelta | None = DEFAULT_MAX_AGE
    times: list[int] = field(default_factory=list)  # epoch milliseconds, increasing
    committed: list[int | None] = field(default_factory=list)
    ends: list[int | None] = field(default_factory=list)
    # Epoch milliseconds of each commit, only when the source knows any (see Observation).
    commit_times: list[int | None] | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"window size must be at least 1, got {self.size}")

    @classmethod
    def of(
        cls,
        observations: Iterable[Observation],
        *,
        size: int = DEFAULT_WINDOW_SIZE,
        max_age: timedelta | None = DEFAULT_MAX_AGE,
    ) -> PartitionWindow:
        window = cls(size=size, max_age=max_age)
        for observation in observations:
            window.append(observation)
        return window

    @property
    def observations(self) -> list[Observation]:
        commit_times = self.commit_times or [None] * len(self.times)
        return [
            Observation(from_millis(at), committed, end, from_millis(commit) if commit is not None else None)
            for at, committed, end, commit in zip(
                self.times, self.committed, self.ends, commit_times, strict=True
            )
        ]

    def append(self, observation: Observation) -> None:
        committed_at = observation.committed_at
        self.add(
            millis(observation.timestamp),
            observation.committed_offset,
            observation.end_offset,
            millis(committed_at) if committed_at is not None else None,
        )

    def add(self, at: int, committed: int | None, end: int | None, committed_at: int | None = None) -> None:
        """`append` in epoch milliseconds: the collector's hot path."""
        times = self.times
        if committed_at is not None and self.commit_times is None:
            self.commit_times = [None] * len(times)
        if times and at <= times[-1]:
            if at == times[-1]:
                self.committed[-1], self.ends[-1] = committed, end
                if self.commit_times is not None:
                    self.commit_times[-1] = committed_at
            return
        times.append(at)
        self.committed.append(committed)
        self.ends.append(end)
        if self.commit_times is not None:
            self.commit_times.append(committed_at)
        self.prune(at)

    def prune(self, now: int) -> None:
        """Drop observations beyond the window size or older than `max_age` at `now` (epoch ms)."""
        drop = len(self.times) - self.size
        if self.max_age is not None:
            oldest_allowed = now - self.max_age // _MILLISECOND
            drop = max(drop, bisect_left(self.times, oldest_allowed))
        if drop > 0:
            del self.times[:drop], self.committed[:drop], self.ends[:drop]
            if self.commit_times is not None:
                del self.commit_times[:drop]


class Sentence:
    """A sentence written when it is first read, equal to (and hashed as) its text. A collection
    judges every partition of every group but reads the sentences of a few (a group's first partition
    at its worst status, an incident's troubled partitions): written up front, most were written for
    nothing, and they were a fifth of judging a cluster's windows."""

    __slots__ = ("_args", "_text", "_write")

    def __init__(self, write: Callable[..., str], *args: Any) -> None:
        self._write, self._args, self._text = write, args, None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._write(*self._args)
        return self._text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sentence):
            other = str(other)
        return str(self) == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return repr(str(self))


class PartitionLag(NamedTuple):
    """One partition's verdict. A named tuple: a collection builds one per partition of every group
    (thousands per cluster), and a tuple is several times cheaper to build than a frozen dataclass."""

    topic: str
    partition: int
    status: LagStatus
    lag: int | None  # messages waiting at the newest observation; None when unknown
    time_lag_seconds: float | None  # estimated age of the oldest waiting message; None if unknown
    committed_offset: int | None
    end_offset: int | None
    explanation: str | Sentence  # `summary`, possibly not written yet

    @property
    def summary(self) -> str:
        """One plain sentence explaining the status, with numbers."""
        return str(self.explanation)


@dataclass(frozen=True)
class GroupLag:
    group_id: str
    status: LagStatus  # the worst partition status
    total_lag: int
    max_lag: int
    max_lag_partition: TopicPartition | None
    time_lag_seconds: float | None  # the largest partition time lag, like MSK's EstimatedMaxTimeLag
    partitions: tuple[PartitionLag, ...]
    summary: str

    def partitions_with(self, status: LagStatus) -> tuple[PartitionLag, ...]:
        return tuple(p for p in self.partitions if p.status == status)


def evaluate_partition(
    topic: str,
    partition: int,
    observations: Sequence[Observation],
    now: datetime,
    *,
    group_has_members: bool | None = None,
) -> PartitionLag:
    """Judge one partition's observations, in any order. `group_has_members` is None when
    membership is unknown."""
    times, committed, ends, commit_times = _columns(observations)
    return judge_window(
        topic, partition, times, committed, ends, commit_times, millis(now), group_has_members
    )


def judge_window(
    topic: str,
    partition: int,
    times: Sequence[int],
    committed: Sequence[int | None],
    ends: Sequence[int | None],
    commit_times: Sequence[int | None] | None,
    now: int,
    group_has_members: bool | None = None,
) -> PartitionLag:
    """Judge one partition's window given as time-ordered columns, times in epoch milliseconds.

    Hot path: runs for every partition of every group on every collection of every cluster. Every
    rule below is answered from what one pass over the columns gathered.
    """
    if not times:
        return PartitionLag(topic, partition, LagStatus.ERR, None, None, None, None, NO_OFFSETS)
    latest_committed, latest_end = committed[-1], ends[-1]

    def result(status: LagStatus, summary: str, time_lag: float | None = None) -> PartitionLag:
        return PartitionLag(
            topic,
            partition,
            status,
            _lag(latest_committed, latest_end),
            time_lag,
            latest_committed,
            latest_end,
            summary,
        )

    if latest_end is None or latest_end < 0:
        return result(LagStatus.ERR, NO_END_OFFSET)
    if latest_committed is None or latest_committed < 0:
        return result(LagStatus.ERR, no_commit_sentence(latest_end))
    if latest_committed > latest_end:
        return result(LagStatus.ERR, beyond_end_sentence(latest_committed, latest_end))

    # One pass over the usable observations. Incomplete or contradictory polls earlier in the window
    # are skipped rather than failing the partition: one failed end-offset fetch should not hide an
    # otherwise clear trend.
    kept_times: list[int] = []
    kept_committed: list[int] = []
    kept_ends: list[int] = []
    last_zero = -1  # index of the last observation with no lag
    rewind = 0  # index of the first commit below its predecessor; 0 when none
    lag_never_falls = True
    last_commit_time: int | None = None
    previous_end = previous_offset = -1
    previous_lag = 0
    for stamp, offset, end, committed_at in zip(
        times, committed, ends, commit_times or repeat(None, len(times)), strict=True
    ):
        if offset is None or end is None or offset < 0 or offset > end:
            continue
        if end < previous_end:
            return result(LagStatus.ERR, end_backwards_sentence(previous_end, end))
        if offset < previous_offset and not rewind:
            rewind = len(kept_times)
        lag = end - offset
        if lag == 0:
            last_zero = len(kept_times)
        elif lag < previous_lag:
            lag_never_falls = False
        if committed_at is not None and (last_commit_time is None or committed_at > last_commit_time):
            last_commit_time = committed_at
        kept_times.append(stamp)
        kept_committed.append(offset)
        kept_ends.append(end)
        previous_end, previous_offset, previous_lag = end, offset, lag

    current_lag = previous_lag
    newest_at = kept_times[-1]
    # Without commit times, the best evidence of the last commit is the first poll that saw the
    # current committed offset.
    if last_commit_time is None:
        index = len(kept_times) - 1
        while index > 0 and kept_committed[index - 1] == latest_committed:
            index -= 1
        last_commit_time = kept_times[index]
    # Commits that never fell are all equal when the first equals the last.
    unchanged = kept_committed[0] == latest_committed and not rewind
    span = newest_at - kept_times[0]
    since_commit = now - last_commit_time
    verdict = first_verdict(
        {
            Verdict.CAUGHT_UP: current_lag == 0,
            Verdict.TOO_EARLY: len(kept_times) < 2,
            Verdict.STOPPED: since_commit > span or (unchanged and group_has_members is False),
            Verdict.KEEPING_UP: last_zero >= 0,
            Verdict.REWOUND: rewind > 0,
            Verdict.STALLED: unchanged,
            Verdict.FALLING_BEHIND: lag_never_falls,
        }
    )
    if verdict is Verdict.CAUGHT_UP:
        return result(LagStatus.OK, CAUGHT_UP, 0.0)
    time_lag = _time_lag(kept_times, kept_ends, latest_committed)
    if verdict is Verdict.TOO_EARLY:
        summary = too_early_sentence(current_lag)
    elif verdict is Verdict.STOPPED:
        summary = stop_sentence(group_has_members, since_commit, current_lag)
    elif verdict is Verdict.KEEPING_UP:
        summary = keeping_up_sentence(newest_at - kept_times[last_zero], current_lag)
    elif verdict is Verdict.REWOUND:
        summary = rewind_sentence(kept_committed[rewind - 1], kept_committed[rewind])
    elif verdict is Verdict.STALLED:
        summary = stall_sentence(latest_committed, since_commit, current_lag)
    elif verdict is Verdict.FALLING_BEHIND:
        first_lag = kept_ends[0] - kept_committed[0]
        processed = latest_committed - kept_committed[0]
        summary = falling_behind_sentence(processed, span, first_lag, current_lag)
    else:
        summary = consuming_sentence(current_lag, span)
    return result(verdict.status, summary, time_lag)


def evaluate_group(
    group_id: str,
    windows: Mapping[TopicPartition, Sequence[Observation] | PartitionWindow],
    now: datetime,
    *,
    members: int | None = None,
) -> GroupLag:
    """Judge every partition a group has committed on; the group takes the worst status."""
    has_members = None if members is None else members > 0
    now_ms = millis(now)
    partitions = []
    for (topic, partition), window in sorted(windows.items()):
        if isinstance(window, PartitionWindow):
            columns = window.times, window.committed, window.ends, window.commit_times
        else:
            columns = _columns(window)
        partitions.append(judge_window(topic, partition, *columns, now_ms, has_members))
    return group_lag(group_id, tuple(partitions))


def group_lag(group_id: str, partitions: tuple[PartitionLag, ...]) -> GroupLag:
    """A group's result from its partitions' (in topic and partition order): the worst status, the
    total and largest lag, the largest time lag."""
    status = LagStatus.OK
    total_lag = max_lag = 0
    max_lag_partition: TopicPartition | None = None
    time_lag: float | None = None
    for p in partitions:
        if p.status is not status and p.status.rank > status.rank:
            status = p.status
        if p.lag:
            total_lag += p.lag
            if p.lag > max_lag:
                max_lag, max_lag_partition = p.lag, (p.topic, p.partition)
        if p.time_lag_seconds is not None and (time_lag is None or p.time_lag_seconds > time_lag):
            time_lag = p.time_lag_seconds
    return GroupLag(
        group_id=group_id,
        status=status,
        total_lag=total_lag,
        max_lag=max_lag,
        max_lag_partition=max_lag_partition,
        time_lag_seconds=time_lag,
        partitions=partitions,
        summary=_group_summary(group_id, status, partitions, total_lag, time_lag),
    )


def estimate_time_lag(observations: Sequence[Observation]) -> float | None:
    """Seconds between the newest observation and the moment the oldest waiting message arrived.

    The oldest waiting message has the committed offset C. It was appended when the log end offset
    first passed C, so the window's end-offset history says when that happened: between the last
    poll whose end offset was still <= C and the next one, interpolated linearly. When C is older
    than the whole window, the arrival time is extrapolated backwards at the window's average
    produce rate (end-offset growth per second); with no produce traffic in the window the span of
    the window is returned as a lower bound. This reads "how far behind in time", which stays
    meaningful when producers pause, unlike dividing lag by the current produce rate.
    """
    complete = sorted((o for o in observations if o.complete), key=_TIMESTAMP)
    if not complete or complete[-1].lag is None:  # nothing known, or the newest is contradictory
        return None
    window = [o for o in complete if o.lag is not None]
    newest = window[-1]
    if newest.lag == 0:
        return 0.0
    assert newest.committed_offset is not None
    return _time_lag(
        [millis(o.timestamp) for o in window], [o.end_offset or 0 for o in window], newest.committed_offset
    )


def _time_lag(times: Sequence[int], ends: Sequence[int], target: int) -> float | None:
    """`estimate_time_lag` of a complete, time-ordered window with lag, as its times (epoch
    milliseconds) and end offsets."""
    for i in range(1, len(ends)):
        if ends[i - 1] <= target < ends[i]:
            fraction = (target - ends[i - 1]) / (ends[i] - ends[i - 1])
            arrived = times[i - 1] + (times[i] - times[i - 1]) * fraction
            return max((times[-1] - arrived) / 1000, 0.0)
    span_seconds = (times[-1] - times[0]) / 1000
    if span_seconds <= 0:
        return None
    rate = (ends[-1] - ends[0]) / span_seconds
    if rate <= 0:
        return span_seconds
    before_window = max(ends[0] - target, 0) / rate
    return span_seconds + before_window


def _columns(
    observations: Sequence[Observation],
) -> tuple[list[int], list[int | None], list[int | None], list[int | None] | None]:
    """Observations in time order as columns: times, commits, end offsets and commit times (epoch
    milliseconds; commit times None when no observation has one)."""
    ordered = sorted(observations, key=_TIMESTAMP) if len(observations) > 1 else observations
    times = [millis(o.timestamp) for o in ordered]
    commit_times = None
    if any(o.committed_at is not None for o in ordered):
        commit_times = [millis(o.committed_at) if o.committed_at else None for o in ordered]
    return times, [o.committed_offset for o in ordered], [o.end_offset for o in ordered], commit_times


def _complete(committed: int | None, end: int | None) -> bool:
    return committed is not None and end is not None and committed >= 0 and end >= 0


def _lag(committed: int | None, end: int | None) -> int | None:
    # A committed offset beyond the log end offset is contradictory, not "no lag": the collector
    # reads the committed offsets before the end offsets, and a log end offset never falls, so
    # consistent data cannot show it (a development broker's high watermark can).
    if committed is None or end is None or committed < 0 or committed > end:
        return None
    return end - committed


def millis(moment: datetime) -> int:
    """A moment as epoch milliseconds, the resolution windows keep."""
    return round(moment.timestamp() * 1000)


def from_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# -- the sentences ---------------------------------------------------------------------------------
# Durations are in milliseconds.

NO_OFFSETS = "No offsets have been collected for this partition yet."
NO_END_OFFSET = "The partition's log end offset could not be read, so its lag is unknown."
CAUGHT_UP = "Caught up: no messages are waiting."


def no_commit_sentence(end: int) -> str:
    return (
        f"The group has no committed offset for this partition (log end offset {_count(end)}); "
        f"its consumer never committed here or the commit expired."
    )


def beyond_end_sentence(committed: int, end: int) -> str:
    return (
        f"Inconsistent offsets: the committed offset {_count(committed)} is beyond the log end offset "
        f"{_count(end)}, which consistent data cannot show (the topic was recreated or truncated, "
        f"offsets were set by hand, or the broker reports a stale high watermark), so the lag is unknown."
    )


def end_backwards_sentence(before: int, after: int) -> str:
    return (
        f"The log end offset went backwards from {_count(before)} to {_count(after)}; the topic was "
        f"probably deleted and recreated or truncated, so these offsets cannot be compared."
    )


def keeping_up_sentence(since_caught_up: int, lag: int) -> str:
    return f"Keeping up: the consumer was caught up {_duration(since_caught_up)} ago and {_waiting(lag)} now."


def too_early_sentence(lag: int) -> str:
    return f"Too early to judge: {_waiting(lag)} and one observation shows no trend yet."


def rewind_sentence(before: int, after: int) -> str:
    return (
        f"The committed offset went backwards from {_count(before)} to {_count(after)}, so "
        f"{_count(before - after)} messages will be processed again (an offset reset or a "
        f"restored checkpoint)."
    )


def stop_sentence(group_has_members: bool | None, since_commit: int, lag: int) -> str:
    who = "No consumer is connected and the group" if group_has_members is False else "The consumer"
    return f"{who} committed nothing for {_duration(since_commit)} while {_waiting(lag)}."


def stall_sentence(offset: int, since_commit: int, lag: int) -> str:
    return (
        f"The consumer is stuck at offset {_count(offset)}: it has not moved for "
        f"{_duration(since_commit)} while {_waiting(lag)}."
    )


def falling_behind_sentence(processed: int, span: int, first_lag: int, lag: int) -> str:
    trend = (
        f"stayed at {_count(lag)}" if first_lag == lag else f"grew from {_count(first_lag)} to {_count(lag)}"
    )
    return (
        f"The consumer is not keeping up: it processed {_count(processed)} messages in "
        f"{_duration(span)}, but the lag {trend}."
    )


def consuming_sentence(lag: int, span: int) -> str:
    return f"Consuming normally: {_waiting(lag)} and the lag fell within the last {_duration(span)}."


def _group_summary(
    group_id: str,
    status: LagStatus,
    partitions: Sequence[PartitionLag],
    total_lag: int,
    time_lag: float | None,
) -> str:
    if not partitions:
        return f"Group {group_id} has no committed offsets to evaluate."
    behind = f"{_waiting(total_lag)} in total"
    if time_lag:
        behind += f", the oldest about {format_seconds(time_lag)} old"
    if status == LagStatus.OK:
        return f"Group {group_id} is consuming normally across {len(partitions)} partitions; {behind}."
    affected = [p for p in partitions if p.status == status]
    first = affected[0]
    more = f" and {len(affected) - 1} more partitions" if len(affected) > 1 else ""
    return (
        f"Group {group_id} {_GROUP_VERB[status]} ({status.value}) on {first.topic}[{first.partition}]"
        f"{more}: {first.summary[0].lower()}{first.summary[1:]}"
    )


_GROUP_VERB: dict[LagStatus, str] = {
    LagStatus.OK: "is consuming normally",
    LagStatus.WARN: "is falling behind",
    LagStatus.ERR: "cannot be evaluated",
    LagStatus.REWIND: "rewound",
    LagStatus.STALL: "is stalled",
    LagStatus.STOP: "has stopped",
}


def _count(value: int) -> str:
    return f"{value:,}"


def _waiting(messages: int) -> str:
    return "1 message waits" if messages == 1 else f"{messages:,} messages wait"


def _duration(milliseconds: int) -> str:
    return format_seconds(milliseconds // 1000)


def format_seconds(value: float) -> str:
    """A rounded, human duration of any number of seconds: '45 s', '12 min', '2 h 5 min', '3 d 4 h'."""
    seconds = max(int(value), 0)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
