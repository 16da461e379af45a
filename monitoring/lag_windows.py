"""Every consumer group's offset windows of one cluster, kept as matrices: `ClusterWindows`.

A collection polls every partition of every group of a cluster at one instant, so the windows of a
cluster share their timestamps: the last N collection times (`stamps`). Each (group, topic, partition)
the cluster lists is a row of two matrices, committed offsets and log end offsets, one column per
collection time; a row has observations from its `start` column on (a partition joins the windows when
its group first commits to it, and leaves them when the group no longer lists a commit for it).
Unknown offsets (Kafka's -1 "no commit", an end offset that could not be read) are `UNKNOWN`.

Recording a collection, judging it (`lag_batch.evaluate_groups`) and storing it then work on whole
arrays: a collection of a cluster with thousands of group partitions adds a column rather than an
observation to thousands of window objects, and its stored form is the arrays' bytes with the rows'
names, not a JSON document parsed into lists and rebuilt every ten seconds.

The rules of a window are `lag.PartitionWindow`'s: at most `size` observations, none older than
`max_age` at the newest; an observation at the newest time replaces it. Unlike `PartitionWindow`, a
poll older than the newest stored one (the clock went back) adds nothing to the windows: their
columns are one time axis. `windows_by_group` gives the windows one by one, for the API and the
exporter.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import orjson

from monitoring.lag import DEFAULT_MAX_AGE, DEFAULT_WINDOW_SIZE, PartitionWindow, TopicPartition

UNKNOWN = -1  # an offset not known, or a cell before the row's first observation; offsets are >= 0
RowKey = tuple[str, str, int]  # group id, topic, partition
WindowsByGroup = dict[str, dict[TopicPartition, PartitionWindow]]

_INT64 = np.dtype("<i8")
# The stored form: this prefix, a 4-byte little-endian header length, the JSON header (settings, row
# keys, column count), then stamps, starts, committed and end offsets as little-endian int64.
_MAGIC = b"KCPW\x03"


def _empty_matrix() -> np.ndarray:
    return np.empty((0, 0), dtype=_INT64)


@dataclass(frozen=True, eq=False)
class ClusterWindows:
    size: int = DEFAULT_WINDOW_SIZE
    max_age_ms: int | None = int(DEFAULT_MAX_AGE.total_seconds() * 1000)
    stamps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=_INT64))  # (T,) epoch ms
    keys: tuple[RowKey, ...] = ()  # sorted
    starts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=_INT64))  # (R,) first column
    committed: np.ndarray = field(default_factory=_empty_matrix)  # (R, T)
    ends: np.ndarray = field(default_factory=_empty_matrix)  # (R, T)

    @property
    def rows(self) -> int:
        return len(self.keys)

    def record(
        self,
        groups: Iterable[tuple[str, Mapping[TopicPartition, int]]],
        end_offsets: Mapping[TopicPartition, int],
        at: int,
        *,
        size: int = DEFAULT_WINDOW_SIZE,
        max_age: timedelta | None = DEFAULT_MAX_AGE,
    ) -> ClusterWindows:
        """The windows after one poll at `at` (epoch ms) of every group's committed offsets (Kafka's
        -1 is unknown) and the partitions' end offsets. Rows the poll does not list are dropped, new
        ones start with this poll. `size` and `max_age` apply to every window from this poll on."""
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        polled: dict[RowKey, tuple[int, int]] = {}
        for group_id, committed in groups:
            for (topic, partition), offset in committed.items():
                end = end_offsets.get((topic, partition))
                polled[(group_id, topic, partition)] = (
                    offset if offset is not None and offset >= 0 else UNKNOWN,
                    end if end is not None and end >= 0 else UNKNOWN,
                )
        keys = tuple(sorted(polled))
        old_columns = len(self.stamps)
        newest = int(self.stamps[-1]) if old_columns else None
        if newest is None or at > newest:
            stamps = [*self.stamps.tolist(), at]
            oldest_allowed = at - max_age // timedelta(milliseconds=1) if max_age is not None else None
            aged = bisect_left(stamps, oldest_allowed) if oldest_allowed is not None else 0
            drop = max(len(stamps) - size, aged, 0)
            stamps = stamps[drop:]
            kept_columns = old_columns - drop  # how many of the old columns stay, at the front
            observed = True
        else:  # the same instant again (replaces it) or an older one (adds nothing)
            stamps, drop, kept_columns = self.stamps.tolist(), 0, old_columns
            observed = at == newest
        columns = len(stamps)
        newest_column = columns - 1 if observed else columns  # `columns` itself: not observed
        committed = np.full((len(keys), columns), UNKNOWN, dtype=_INT64)
        ends = np.full((len(keys), columns), UNKNOWN, dtype=_INT64)
        starts = np.full(len(keys), newest_column, dtype=_INT64)
        if self.keys and kept_columns > 0:
            if keys == self.keys:
                old_rows = np.arange(len(keys))
                new_rows: Any = slice(None)
            else:
                index = {key: row for row, key in enumerate(self.keys)}
                pairs = [(new, index[key]) for new, key in enumerate(keys) if key in index]
                new_rows = np.array([new for new, _ in pairs], dtype=np.intp)
                old_rows = np.array([old for _, old in pairs], dtype=np.intp)
            if len(old_rows):
                old = slice(old_columns - kept_columns, old_columns)
                committed[new_rows, :kept_columns] = self.committed[old_rows, old]
                ends[new_rows, :kept_columns] = self.ends[old_rows, old]
                starts[new_rows] = np.minimum(np.maximum(self.starts[old_rows] - drop, 0), newest_column)
        if observed and keys:
            values = np.array([polled[key] for key in keys], dtype=_INT64)
            committed[:, newest_column] = values[:, 0]
            ends[:, newest_column] = values[:, 1]
        return ClusterWindows(
            size,
            max_age // timedelta(milliseconds=1) if max_age is not None else None,
            np.array(stamps, dtype=_INT64),
            keys,
            starts,
            committed,
            ends,
        )

    # -- stored form -----------------------------------------------------------------------------

    def encode(self) -> bytes:
        header = orjson.dumps(
            {"size": self.size, "max_age_ms": self.max_age_ms, "columns": len(self.stamps), "keys": self.keys}
        )
        return b"".join(
            [
                _MAGIC,
                len(header).to_bytes(4, "little"),
                header,
                self.stamps.astype(_INT64, copy=False).tobytes(),
                self.starts.astype(_INT64, copy=False).tobytes(),
                np.ascontiguousarray(self.committed, dtype=_INT64).tobytes(),
                np.ascontiguousarray(self.ends, dtype=_INT64).tobytes(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes | memoryview | str | None) -> ClusterWindows:
        """The windows `encode` stored; empty (start afresh) for anything else. Windows stored as
        JSON by earlier versions (format 2) are read too."""
        if not data:
            return cls()
        if isinstance(data, str):
            return _from_json(data)
        data = bytes(data)
        if not data.startswith(_MAGIC):
            return _from_json(data)
        try:
            offset = len(_MAGIC) + 4
            length = int.from_bytes(data[len(_MAGIC) : offset], "little")
            header = orjson.loads(data[offset : offset + length])
            offset += length
            rows, columns = len(header["keys"]), int(header["columns"])
            arrays = []
            for count in (columns, rows, rows * columns, rows * columns):
                arrays.append(np.frombuffer(data, dtype=_INT64, count=count, offset=offset))
                offset += count * _INT64.itemsize
            if offset != len(data):
                return cls()
            stamps, starts, committed, ends = arrays
            return cls(
                int(header["size"]),
                header["max_age_ms"],
                stamps,
                tuple((group, topic, int(partition)) for group, topic, partition in header["keys"]),
                starts,
                committed.reshape(rows, columns),
                ends.reshape(rows, columns),
            )
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return cls()

    # -- one window at a time ----------------------------------------------------------------------

    def window(self, row: int) -> PartitionWindow:
        start = int(self.starts[row])
        return PartitionWindow(
            self.size,
            timedelta(milliseconds=self.max_age_ms) if self.max_age_ms is not None else None,
            self.stamps[start:].tolist(),
            _known(self.committed[row, start:]),
            _known(self.ends[row, start:]),
        )

    def windows_by_group(self) -> WindowsByGroup:
        """Every group's windows, one `PartitionWindow` per partition."""
        by_group: WindowsByGroup = {}
        for row, (group_id, topic, partition) in enumerate(self.keys):
            by_group.setdefault(group_id, {})[(topic, partition)] = self.window(row)
        return by_group

    @classmethod
    def of(cls, windows: Mapping[str, Mapping[TopicPartition, PartitionWindow]]) -> ClusterWindows:
        """Windows kept one by one as a cluster's matrices. A window's observations must be the newest
        run of the cluster's timestamps; what is not (a gap, a partition not seen at the newest
        time) is left out, and commit times, which no collection records, are dropped."""
        times = sorted({t for group in windows.values() for window in group.values() for t in window.times})
        settings = next((w for group in windows.values() for w in group.values()), PartitionWindow())
        times = times[-settings.size :]
        columns = {stamp: column for column, stamp in enumerate(times)}
        keys = sorted((g, topic, p) for g, group in windows.items() for topic, p in group)
        committed = np.full((len(keys), len(times)), UNKNOWN, dtype=_INT64)
        ends = np.full((len(keys), len(times)), UNKNOWN, dtype=_INT64)
        starts = np.full(len(keys), len(times), dtype=_INT64)
        for row, (group_id, topic, partition) in enumerate(keys):
            window = windows[group_id][(topic, partition)]
            count = 0  # the newest run of observations at the newest columns, one column apart
            while (
                count < len(window.times) and columns.get(window.times[-1 - count]) == len(times) - 1 - count
            ):
                count += 1
            if count:
                starts[row] = len(times) - count
                committed[row, -count:] = [_stored(v) for v in window.committed[-count:]]
                ends[row, -count:] = [_stored(v) for v in window.ends[-count:]]
        return cls(
            settings.size,
            settings.max_age // timedelta(milliseconds=1) if settings.max_age is not None else None,
            np.array(times, dtype=_INT64),
            tuple(keys),
            starts,
            committed,
            ends,
        )


def _known(values: np.ndarray) -> list[int | None]:
    return [None if v < 0 else v for v in values.tolist()]


def _stored(value: int | None) -> int:
    return UNKNOWN if value is None or value < 0 else value


def _from_json(data: bytes | str) -> ClusterWindows:
    # Imported here: the JSON format of earlier versions is read only once per cluster, after an upgrade.
    from monitoring.lag_state import decode_json_windows

    return ClusterWindows.of(decode_json_windows(data))
