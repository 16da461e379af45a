"""The topic configuration keys Apache Kafka knows, per release line, and the values each one takes.

The table is what Kafka documents for its topic configs: `LogConfig`'s own documentation (run
`java -cp "libs/*" org.apache.kafka.storage.internals.log.LogConfig` in a distribution; Kafka's topic
config docs are generated from it). tests/provisioning/test_topic_configs.py checks it against every
supported release, so a new release that adds, drops or retypes a key fails the suite until this table
follows.

It lets a request be refused with a message per key (an unknown key with the nearest known one, a value
of the wrong type or outside its range) before Kafka is asked. Kafka's own validation, when the topic is
created or changed, stays the final word: what this table lets through and Kafka refuses is reported
with Kafka's reason.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from provisioning.kafka_config import parse_kafka_version

ReleaseLine = tuple[int, int]

# Java's integer ranges: Kafka parses `int` and `long` configs with them.
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)

# Keys the control plane sets itself: the replicas a running reassignment throttles. A user's value
# would be overwritten by the next reassignment, or would throttle replicas nobody moves.
MANAGED_KEYS: Mapping[str, str] = {
    "leader.replication.throttled.replicas": "set by the control plane while it moves replicas",
    "follower.replication.throttled.replicas": "set by the control plane while it moves replicas",
}


@dataclass(frozen=True)
class TopicConfigKey:
    name: str
    type: str  # Kafka's type name: boolean, int, long, double, string, list
    valid: str | None  # Kafka's "Valid Values" text ("" when any value of the type); None: Kafka checks
    since: ReleaseLine | None = None  # the first release line that knows it
    until: ReleaseLine | None = None  # the first release line that no longer knows it

    def known_in(self, line: ReleaseLine) -> bool:
        return (self.since is None or line >= self.since) and (self.until is None or line < self.until)


def _key(
    name: str,
    type_: str,
    valid: str | None,
    since: ReleaseLine | None = None,
    until: ReleaseLine | None = None,
) -> TopicConfigKey:
    return TopicConfigKey(name, type_, valid, since, until)


THROTTLED_REPLICAS = "[partitionId]:[brokerId],[partitionId]:[brokerId],..."

TOPIC_CONFIG_KEYS: tuple[TopicConfigKey, ...] = (
    _key("cleanup.policy", "list", "[compact, delete]"),
    _key("compression.gzip.level", "int", "[1,...,9] or -1"),
    _key("compression.lz4.level", "int", "[1,...,17]"),
    _key("compression.type", "string", "[uncompressed, zstd, lz4, snappy, gzip, producer]"),
    _key("compression.zstd.level", "int", "[-131072,...,22]"),
    _key("delete.retention.ms", "long", "[0,...]"),
    _key("errors.deadletterqueue.group.enable", "boolean", "", since=(4, 4)),
    _key("file.delete.delay.ms", "long", "[0,...]"),
    _key("flush.messages", "long", "[1,...]"),
    _key("flush.ms", "long", "[0,...]"),
    _key("follower.replication.throttled.replicas", "list", THROTTLED_REPLICAS),
    _key("index.interval.bytes", "int", "[0,...]"),
    _key("leader.replication.throttled.replicas", "list", THROTTLED_REPLICAS),
    _key("local.retention.bytes", "long", "[-2,...]"),
    _key("local.retention.ms", "long", "[-2,...]"),
    _key("max.compaction.lag.ms", "long", "[1,...]"),
    _key("max.decompressed.message.bytes", "int", "[1,...,2147483639]", since=(4, 2)),
    _key("max.message.bytes", "int", "[0,...]"),
    _key("message.downconversion.enable", "boolean", "", until=(4, 0)),
    # Deprecated, its valid values are every inter-broker protocol version: left to Kafka.
    _key("message.format.version", "string", None, until=(4, 0)),
    _key("message.timestamp.after.max.ms", "long", "[0,...]"),
    _key("message.timestamp.before.max.ms", "long", "[0,...]"),
    _key("message.timestamp.difference.max.ms", "long", "[0,...]", until=(4, 0)),
    _key("message.timestamp.type", "string", "[CreateTime, LogAppendTime]"),
    _key("min.cleanable.dirty.ratio", "double", "[0,...,1]"),
    _key("min.compaction.lag.ms", "long", "[0,...]"),
    _key("min.insync.replicas", "int", "[1,...]"),
    _key("preallocate", "boolean", ""),
    _key("remote.copy.lag.bytes", "long", "[-1,...]", since=(4, 4)),
    _key("remote.copy.lag.ms", "long", "[-1,...]", since=(4, 4)),
    _key("remote.log.copy.disable", "boolean", ""),
    _key("remote.log.delete.on.disable", "boolean", ""),
    _key("remote.storage.enable", "boolean", ""),
    _key("retention.bytes", "long", ""),
    _key("retention.ms", "long", "[-1,...]"),
    _key("segment.bytes", "int", "[14,...]", until=(4, 0)),
    _key("segment.bytes", "int", "[1048576,...]", since=(4, 0)),
    _key("segment.index.bytes", "int", "[4,...]"),
    _key("segment.jitter.ms", "long", "[0,...]"),
    _key("segment.ms", "long", "[1,...]"),
    _key("unclean.leader.election.enable", "boolean", ""),
)


def release_line(kafka_version: str) -> ReleaseLine:
    return parse_kafka_version(kafka_version)


def known_topic_configs(kafka_version: str) -> dict[str, TopicConfigKey]:
    """Every topic config key the release of `kafka_version` knows, by name."""
    line = release_line(kafka_version)
    return {key.name: key for key in TOPIC_CONFIG_KEYS if key.known_in(line)}


def topic_config_errors(config: Mapping[str, str | None], kafka_version: str) -> dict[str, str]:
    """Key -> what is wrong with it, for topic config overrides (a None value removes the override)."""
    known = known_topic_configs(kafka_version)
    errors: dict[str, str] = {}
    for name, value in config.items():
        key = known.get(name)
        if key is None:
            errors[name] = _unknown(name, known, kafka_version)
        elif name in MANAGED_KEYS:
            errors[name] = f"cannot be set: {MANAGED_KEYS[name]}"
        elif value is not None and (problem := value_problem(key, value)):
            errors[name] = problem
    return errors


def _unknown(name: str, known: Mapping[str, TopicConfigKey], kafka_version: str) -> str:
    message = f"not a topic config of Apache Kafka {kafka_version}"
    nearest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    if nearest:
        return f"{message}; did you mean {nearest[0]!r}?"
    removed = [key for key in TOPIC_CONFIG_KEYS if key.name == name]
    if removed:
        return f"{message} (it was removed or is not there yet in this release)"
    return message


def value_problem(key: TopicConfigKey, value: str) -> str | None:
    """Why `value` is not a valid value of `key`, in plain words; None when it is."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "the value contains a line break or another control character"
    text = value.strip()
    if key.type == "boolean":
        return None if text.lower() in ("true", "false") else "must be true or false"
    if key.type in ("int", "long"):
        low, high = _INT_RANGE if key.type == "int" else _LONG_RANGE
        if not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= high:
            return f"must be a whole number{_range_words(key)}"
        return _out_of_range(key, int(text))
    if key.type == "double":
        try:
            number = float(text)
        except ValueError:
            return f"must be a number{_range_words(key)}"
        if not math.isfinite(number):
            return f"must be a finite number{_range_words(key)}"
        return _out_of_range(key, number)
    choices = _choices(key)
    if choices is None:
        return None
    if key.type == "list":
        items = [item.strip() for item in text.split(",") if item.strip()]
        wrong = [item for item in items if item not in choices]
        if wrong:
            return f"{wrong[0]!r} is not one of {', '.join(choices)} (comma-separated)"
        return None
    if text not in choices:
        return f"must be one of {', '.join(choices)}"
    return None


def _choices(key: TopicConfigKey) -> list[str] | None:
    if not key.valid or not key.valid.startswith("[") or "..." in key.valid:
        return None
    return [item.strip() for item in key.valid.strip("[]").split(",")]


def _bounds(key: TopicConfigKey) -> tuple[float | None, float | None, float | None]:
    """(lowest, highest, one extra allowed value) from Kafka's "[a,...]", "[a,...,b]", "... or -1"."""
    match = re.fullmatch(r"\[(-?[\d.]+),\.\.\.(?:,(-?[\d.]+))?\](?: or (-?[\d.]+))?", key.valid or "")
    if match is None:
        return None, None, None
    low, high, extra = (float(group) if group is not None else None for group in match.groups())
    return low, high, extra


def _out_of_range(key: TopicConfigKey, number: float) -> str | None:
    low, high, extra = _bounds(key)
    if number == extra:
        return None
    if (low is not None and number < low) or (high is not None and number > high):
        return f"must be{_range_words(key)}"
    return None


def _range_words(key: TopicConfigKey) -> str:
    low, high, extra = _bounds(key)

    def show(number: float) -> str:
        return str(int(number)) if number.is_integer() else str(number)

    if low is None:
        return ""
    words = f" from {show(low)} to {show(high)}" if high is not None else f" of at least {show(low)}"
    return words + (f", or {show(extra)}" if extra is not None else "")
