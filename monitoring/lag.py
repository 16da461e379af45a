"""Consumer lag evaluation in the manner of LinkedIn's Burrow, plus an estimated time lag.

A collector polls each consumer group's committed offsets and the partitions' log end offsets and
appends one `Observation` per partition to a `PartitionWindow` (the last N polls, default 10). The
evaluator judges each window on its trend rather than on a fixed threshold:

1. no usable offsets, or offsets that contradict each other          -> ERR
2. lag was 0 at any point in the window                              -> OK
3. the committed offset went backwards                                -> REWIND
4. the time since the last commit is longer than the window's span    -> STOP
5. the committed offset never moved while there is lag                -> STALL
6. the committed offset moves but the lag never falls                 -> WARN
7. otherwise                                                          -> OK

Rules 3-6 are checked in Burrow's order: once one matches, the later ones are not consulted (a rewind
makes "unchanged" and "not falling" meaningless, and a stopped consumer trivially has unchanged
offsets).

Polling cannot see a consumer re-committing the same offset, so "the last commit" is the first poll
that saw the current committed offset, unless the source knows the real commit time
(`Observation.committed_at`). Evaluated right after a poll, an unmoving offset therefore reads as
STALL; it becomes STOP when the group has no members (nobody can commit) or when the window itself
has gone stale. The window must span more than the consumers' commit interval (poll interval x window
size), otherwise a consumer that commits rarely looks stalled between its commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

TopicPartition = tuple[str, int]

DEFAULT_WINDOW_SIZE = 10
DEFAULT_MAX_AGE = timedelta(hours=1)

_TIMESTAMP = attrgetter("timestamp")


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


class Observation(NamedTuple):
    """One poll of a partition: the group's committed offset and the partition's log end offset.

    `committed_offset` is None when the group has no commit for the partition (Kafka answers -1);
    `end_offset` is None when the log end offset could not be fetched. `committed_at` is the time of
    the commit itself, when the source knows it (reading `__consumer_offsets` does; OffsetFetch
    does not).

    A named tuple rather than a frozen dataclass: every collection builds one per partition per
    stored poll (thousands per cluster), and a tuple is several times cheaper to build and read.
    """

    timestamp: datetime
    committed_offset: int | None
    end_offset: int | None
    committed_at: datetime | None = None

    @property
    def complete(self) -> bool:
        return (
            self.committed_offset is not None
            and self.end_offset is not None
            and self.committed_offset >= 0
            and self.end_offset >= 0
        )

    @property
    def lag(self) -> int | None:
        if not self.complete:
            return None
        assert self.end_offset is not None and self.committed_offset is not None
        # The two offsets come from separate requests, so a fast consumer can be seen ahead of a
        # slightly older log end offset; that is no lag, not negative lag.
        return max(self.end_offset - self.committed_offset, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "committed_offset": self.committed_offset,
            "end_offset": self.end_offset,
            "committed_at": self.committed_at.isoformat() if self.committed_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        committed_at = data.get("committed_at")
        return cls(
            timestamp=datetime.fromisoformat(data["timestamp"]),
            committed_offset=data.get("committed_offset"),
            end_offset=data.get("end_offset"),
            committed_at=datetime.fromisoformat(committed_at) if committed_at else None,
        )


@dataclass
class PartitionWindow:
    """The sliding window of recent observations for one (group, topic, partition).

    Kept in time order: an observation older than the newest one is ignored (a late or duplicated
    poll), and one with the same timestamp replaces it. Serialises to plain JSON-able data so a
    collector can persist it between runs.
    """

    size: int = DEFAULT_WINDOW_SIZE
    max_age: timedelta | None = DEFAULT_MAX_AGE
    observations: list[Observation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"window size must be at least 1, got {self.size}")

    def append(self, observation: Observation) -> None:
        if self.observations:
            newest = self.observations[-1].timestamp
            if observation.timestamp < newest:
                return
            if observation.timestamp == newest:
                self.observations[-1] = observation
                return
        self.observations.append(observation)
        self.prune(observation.timestamp)

    def prune(self, now: datetime) -> None:
        """Drop observations beyond the window size or older than `max_age` at `now`."""
        kept = self.observations[-self.size :]
        if self.max_age is not None:
            oldest_allowed = now - self.max_age
            kept = [o for o in kept if o.timestamp >= oldest_allowed]
        self.observations = kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "max_age_seconds": self.max_age.total_seconds() if self.max_age is not None else None,
            "observations": [o.to_dict() for o in self.observations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionWindow:
        max_age_seconds = data.get("max_age_seconds")
        return cls(
            size=int(data.get("size", DEFAULT_WINDOW_SIZE)),
            max_age=timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None,
            observations=[Observation.from_dict(o) for o in data.get("observations", [])],
        )


def record_observations(
    windows: Mapping[TopicPartition, PartitionWindow],
    committed: Mapping[TopicPartition, int],
    end_offsets: Mapping[TopicPartition, int],
    at: datetime,
    *,
    size: int = DEFAULT_WINDOW_SIZE,
    max_age: timedelta | None = DEFAULT_MAX_AGE,
) -> dict[TopicPartition, PartitionWindow]:
    """Add one poll of a group to its windows; returns the windows to keep.

    `committed` is what OffsetFetch returned for the group (Kafka's -1, "no commit", becomes None);
    `end_offsets` the high watermarks. Partitions the group no longer has a commit for are dropped,
    new ones get a fresh window. Windows passed in are updated in place.
    """
    kept: dict[TopicPartition, PartitionWindow] = {}
    for tp in sorted(committed):
        window = windows.get(tp) or PartitionWindow(size=size, max_age=max_age)
        offset = committed[tp]
        window.append(Observation(at, offset if offset >= 0 else None, end_offsets.get(tp)))
        kept[tp] = window
    return kept


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    status: LagStatus
    lag: int | None  # messages waiting at the newest observation; None when unknown
    time_lag_seconds: float | None  # estimated age of the oldest waiting message; None if unknown
    committed_offset: int | None
    end_offset: int | None
    summary: str  # one plain sentence explaining the status, with numbers


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
    """Judge one partition's window. `group_has_members` is None when membership is unknown.

    Hot path: runs for every partition of every group on every collection of every cluster. The
    window is read once into plain lists (no property calls per observation), and every rule below
    is answered from what that one pass gathered.
    """
    ordered = sorted(observations, key=_TIMESTAMP) if len(observations) > 1 else observations
    if not ordered:
        return _partition_lag(
            topic, partition, None, LagStatus.ERR, "No offsets have been collected for this partition yet."
        )
    latest = ordered[-1]
    latest_committed = latest.committed_offset
    latest_end = latest.end_offset
    if latest_end is None or latest_end < 0:
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.ERR,
            "The partition's log end offset could not be read, so its lag is unknown.",
        )
    if latest_committed is None or latest_committed < 0:
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.ERR,
            f"The group has no committed offset for this partition (log end offset "
            f"{_count(latest_end)}); its consumer never committed here or the commit expired.",
        )

    # One pass over the complete observations. Incomplete polls earlier in the window are skipped
    # rather than failing the partition: one failed end-offset fetch should not hide an otherwise
    # clear trend.
    times: list[datetime] = []
    committed: list[int] = []
    ends: list[int] = []
    last_zero = -1  # index of the last observation with no lag
    rewind = 0  # index of the first commit below its predecessor; 0 when none
    lag_never_falls = True
    commit_times: list[datetime] = []
    previous_end = previous_offset = -1
    previous_lag = 0
    for stamp, offset, end, committed_at in ordered:
        if offset is None or end is None or offset < 0 or end < 0:
            continue
        if end < previous_end:
            return _partition_lag(
                topic,
                partition,
                latest,
                LagStatus.ERR,
                f"The log end offset went backwards from {_count(previous_end)} to {_count(end)}; "
                f"the topic was probably deleted and recreated or truncated, so these offsets "
                f"cannot be compared.",
            )
        if offset < previous_offset and not rewind:
            rewind = len(times)
        lag = end - offset if end > offset else 0
        if lag == 0:
            last_zero = len(times)
        elif lag < previous_lag:
            lag_never_falls = False
        if committed_at is not None:
            commit_times.append(committed_at)
        times.append(stamp)
        committed.append(offset)
        ends.append(end)
        previous_end, previous_offset, previous_lag = end, offset, lag

    current_lag = previous_lag
    if current_lag == 0:
        return _partition_lag(
            topic, partition, latest, LagStatus.OK, "Caught up: no messages are waiting.", 0.0
        )
    newest_at = latest.timestamp
    time_lag = _time_lag(times, ends, latest_committed)
    if last_zero >= 0:
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.OK,
            f"Keeping up: the consumer was caught up "
            f"{format_duration(newest_at - times[last_zero])} ago and "
            f"{_waiting(current_lag)} now.",
            time_lag,
        )
    if len(times) < 2:
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.OK,
            f"Too early to judge: {_waiting(current_lag)} and one observation shows no trend yet.",
            time_lag,
        )
    if rewind:
        before, after = committed[rewind - 1], committed[rewind]
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.REWIND,
            f"The committed offset went backwards from {_count(before)} to {_count(after)}, so "
            f"{_count(before - after)} messages will be processed again (an offset reset or a "
            f"restored checkpoint).",
            time_lag,
        )

    # Without commit times, the best evidence of the last commit is the first poll that saw the
    # current committed offset.
    if commit_times:
        last_commit = max(commit_times)
    else:
        index = len(times) - 1
        while index > 0 and committed[index - 1] == latest_committed:
            index -= 1
        last_commit = times[index]
    # Commits never fall here (no rewind), so they are all equal when the first equals the last.
    unchanged = committed[0] == latest_committed
    span = newest_at - times[0]
    since_commit = now - last_commit
    if since_commit > span or (unchanged and group_has_members is False):
        who = "No consumer is connected and the group" if group_has_members is False else "The consumer"
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.STOP,
            f"{who} committed nothing for {format_duration(since_commit)} while {_waiting(current_lag)}.",
            time_lag,
        )
    if unchanged:
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.STALL,
            f"The consumer is stuck at offset {_count(latest_committed)}: it has not moved for "
            f"{format_duration(since_commit)} while {_waiting(current_lag)}.",
            time_lag,
        )
    if lag_never_falls:
        first_lag = ends[0] - committed[0]
        trend = (
            f"stayed at {_count(current_lag)}"
            if first_lag == current_lag
            else f"grew from {_count(first_lag)} to {_count(current_lag)}"
        )
        return _partition_lag(
            topic,
            partition,
            latest,
            LagStatus.WARN,
            f"The consumer is not keeping up: it processed {_count(latest_committed - committed[0])} "
            f"messages in {format_duration(span)}, but the lag {trend}.",
            time_lag,
        )
    return _partition_lag(
        topic,
        partition,
        latest,
        LagStatus.OK,
        f"Consuming normally: {_waiting(current_lag)} and the lag fell within the last "
        f"{format_duration(span)}.",
        time_lag,
    )


def evaluate_group(
    group_id: str,
    windows: Mapping[TopicPartition, Sequence[Observation] | PartitionWindow],
    now: datetime,
    *,
    members: int | None = None,
) -> GroupLag:
    """Judge every partition a group has committed on; the group takes the worst status."""
    has_members = None if members is None else members > 0
    partitions = tuple(
        evaluate_partition(
            topic,
            partition,
            window.observations if isinstance(window, PartitionWindow) else window,
            now,
            group_has_members=has_members,
        )
        for (topic, partition), window in sorted(windows.items())
    )
    status = LagStatus.worst(p.status for p in partitions)
    total_lag = sum(p.lag or 0 for p in partitions)
    worst_lag = max(partitions, key=lambda p: p.lag or 0, default=None)
    max_lag = (worst_lag.lag or 0) if worst_lag else 0
    time_lags = [p.time_lag_seconds for p in partitions if p.time_lag_seconds is not None]
    time_lag = max(time_lags) if time_lags else None
    return GroupLag(
        group_id=group_id,
        status=status,
        total_lag=total_lag,
        max_lag=max_lag,
        max_lag_partition=(worst_lag.topic, worst_lag.partition) if worst_lag and max_lag else None,
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
    window = sorted((o for o in observations if o.complete), key=_TIMESTAMP)
    if not window:
        return None
    newest = window[-1]
    if (newest.lag or 0) == 0:
        return 0.0
    assert newest.committed_offset is not None
    return _time_lag(
        [o.timestamp for o in window], [o.end_offset or 0 for o in window], newest.committed_offset
    )


def _time_lag(times: Sequence[datetime], ends: Sequence[int], target: int) -> float | None:
    """`estimate_time_lag` of a complete, time-ordered window with lag, as its times and end offsets."""
    for i in range(1, len(ends)):
        if ends[i - 1] <= target < ends[i]:
            earlier, later = times[i - 1], times[i]
            fraction = (target - ends[i - 1]) / (ends[i] - ends[i - 1])
            arrived = earlier + (later - earlier) * fraction
            return max((times[-1] - arrived).total_seconds(), 0.0)
    span_seconds = (times[-1] - times[0]).total_seconds()
    if span_seconds <= 0:
        return None
    rate = (ends[-1] - ends[0]) / span_seconds
    if rate <= 0:
        return span_seconds
    before_window = max(ends[0] - target, 0) / rate
    return span_seconds + before_window


def _partition_lag(
    topic: str,
    partition: int,
    latest: Observation | None,
    status: LagStatus,
    summary: str,
    time_lag: float | None = None,
) -> PartitionLag:
    """The result of one partition, with the offsets of its newest observation."""
    if latest is None:
        return PartitionLag(topic, partition, status, None, time_lag, None, None, summary)
    return PartitionLag(
        topic, partition, status, latest.lag, time_lag, latest.committed_offset, latest.end_offset, summary
    )


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
        behind += f", the oldest about {format_duration(timedelta(seconds=time_lag))} old"
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


def format_duration(delta: timedelta) -> str:
    """A rounded, human duration: '45 s', '12 min', '2 h 5 min', '3 d 4 h'."""
    seconds = max(int(delta.total_seconds()), 0)
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
