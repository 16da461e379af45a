"""The working copy of an assignment that goals read and change while planning.

Partitions are addressed by index (`pid`) into flat lists; brokers by node id. Only brokers in the
target set are "live" here: replicas on any other broker (being removed, or dead) are orphans that
must be moved before anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

Rack = str | None


class Buckets:
    """An integer count per broker, grouped by value so the lowest and highest are found at once.

    Counts change by one at a time, so the low and high marks move by at most one step per update.
    Within a value, brokers keep the order they arrived in, which keeps every choice deterministic.
    """

    __slots__ = ("_groups", "count", "high", "low")

    def __init__(self, counts: Mapping[int, int]) -> None:
        self.count: dict[int, int] = dict(counts)
        self._groups: dict[int, dict[int, None]] = {}
        for key, value in counts.items():
            self._groups.setdefault(value, {})[key] = None
        self.low = min(self._groups, default=0)
        self.high = max(self._groups, default=0)

    def __len__(self) -> int:
        return len(self.count)

    def add(self, key: int, delta: int) -> None:
        """Change one broker's count by `delta` (+1 or -1)."""
        old = self.count[key]
        new = old + delta
        group = self._groups[old]
        del group[key]
        if not group:
            del self._groups[old]
        self._groups.setdefault(new, {})[key] = None
        self.count[key] = new
        if delta > 0:
            self.high = max(self.high, new)
            if old == self.low and old not in self._groups:
                self.low = new
        else:
            self.low = min(self.low, new)
            if old == self.high and old not in self._groups:
                self.high = new

    def at(self, value: int) -> list[int]:
        """Brokers whose count is exactly `value` (a copy, safe to use while updating)."""
        group = self._groups.get(value)
        return list(group) if group else []

    def ascending(self, upto: int) -> Iterator[tuple[int, list[int]]]:
        """(count, brokers) groups from the lowest count up to `upto` inclusive."""
        for value in range(self.low, upto + 1):
            group = self._groups.get(value)
            if group:
                yield value, list(group)

    @property
    def spread(self) -> int:
        return self.high - self.low if self.count else 0


def rack_limits(rack_sizes: Mapping[Rack, int], replication_factor: int) -> tuple[int, int]:
    """(most replicas of one partition any rack should hold, fewest distinct racks it should use).

    The cap is ceil(RF / racks), raised only when small racks cannot hold their share; the racks
    used are min(RF, racks). Both together describe the best spread the brokers allow.
    """
    racks = len(rack_sizes)
    cap = -(-replication_factor // racks)
    while sum(min(size, cap) for size in rack_sizes.values()) < replication_factor:
        cap += 1
    return cap, min(replication_factor, racks)


class ClusterState:
    """Replica lists plus per-broker replica, leader and byte counters kept in step with them."""

    def __init__(
        self,
        brokers: Mapping[int, Rack],
        replicas: list[list[int]],
        sizes: list[int],
        *,
        keys: list[tuple[str, int]] | None = None,
        former_racks: Mapping[int, Rack] | None = None,
    ) -> None:
        self.keys = keys
        # Racks of brokers being drained, so their replicas can stay in the same rack.
        self.former_rack: dict[int, Rack] = dict(former_racks or {})
        self.rack: dict[int, Rack] = dict(brokers)
        self.rack_members: dict[Rack, list[int]] = {}
        for broker_id in sorted(self.rack):
            self.rack_members.setdefault(self.rack[broker_id], []).append(broker_id)
        self.racks: list[Rack] = sorted(self.rack_members, key=lambda r: (r is not None, r or ""))
        self.rack_sizes = {rack: len(members) for rack, members in self.rack_members.items()}
        self.replicas = [list(r) for r in replicas]
        self._initial = [list(r) for r in replicas]
        self.initial_leaders = [r[0] for r in self.replicas]
        self.sizes = sizes
        # Where each moved replica started, per partition (current broker -> original broker), so a
        # replica moved twice counts once and one moved back counts not at all.
        self._origins: dict[int, dict[int, int]] = {}
        self._limits: dict[int, tuple[int, int]] = {}

        counts = dict.fromkeys(self.rack, 0)
        leaders = dict.fromkeys(self.rack, 0)
        self.bytes: dict[int, int] = dict.fromkeys(self.rack, 0)
        for pid, reps in enumerate(self.replicas):
            size = sizes[pid]
            for position, broker_id in enumerate(reps):
                if broker_id in counts:
                    counts[broker_id] += 1
                    self.bytes[broker_id] += size
                    if position == 0:
                        leaders[broker_id] += 1
        self.counts = Buckets(counts)
        self.leaders = Buckets(leaders)
        self.rack_counts = {
            rack: Buckets({b: counts[b] for b in members}) for rack, members in self.rack_members.items()
        }

    # Rack arithmetic -------------------------------------------------------------------------

    def limits(self, replication_factor: int) -> tuple[int, int]:
        cached = self._limits.get(replication_factor)
        if cached is None:
            cached = self._limits[replication_factor] = rack_limits(self.rack_sizes, replication_factor)
        return cached

    def tally(self, pid: int) -> dict[Rack, int]:
        """Replicas of one partition per rack, live brokers only."""
        tally: dict[Rack, int] = {}
        rack = self.rack
        for broker_id in self.replicas[pid]:
            if broker_id in rack:
                r = rack[broker_id]
                tally[r] = tally.get(r, 0) + 1
        return tally

    def _violation(self, tally: Mapping[Rack, int], replication_factor: int) -> int:
        cap, spread = self.limits(replication_factor)
        excess = sum(c - cap for c in tally.values() if c > cap)
        used = sum(1 for c in tally.values() if c)
        return excess + max(0, spread - used)

    def violation(self, pid: int) -> int:
        """How far a partition is from the best rack spread (0 when rack-aware)."""
        return self._violation(self.tally(pid), len(self.replicas[pid]))

    def move_delta(self, pid: int, source: int, destination: int) -> int:
        """Change in the partition's rack violation if `source`'s replica went to `destination`."""
        return self.rack_delta(pid, source, self.rack[destination])

    def rack_delta(self, pid: int, source: int, destination_rack: Rack) -> int:
        """Change in the partition's rack violation if `source`'s replica went to that rack.

        A source outside the target set holds no rack here, so the move only adds a replica.
        This runs for every candidate destination, hence the arithmetic instead of two tallies.
        """
        rack = self.rack
        live = source in rack
        source_rack = rack[source] if live else None
        if live and source_rack == destination_rack:
            return 0
        reps = self.replicas[pid]
        cap, spread = self.limits(len(reps))
        in_destination = in_source = 0
        used = set()
        for broker_id in reps:
            if broker_id in rack:
                r = rack[broker_id]
                used.add(r)
                if r == destination_rack:
                    in_destination += 1
                elif live and r == source_rack:
                    in_source += 1
        delta = 0
        if in_destination >= cap:
            delta += 1
        if in_source > cap:
            delta -= 1
        racks_after = len(used) + (in_destination == 0) - (live and in_source == 1)
        return delta + max(0, spread - racks_after) - max(0, spread - len(used))

    # Changes ---------------------------------------------------------------------------------

    def can_host(self, pid: int, broker_id: int) -> bool:
        """Whether a replica of the partition may be placed on this broker."""
        return broker_id not in self.replicas[pid]

    def move(self, pid: int, source: int, destination: int) -> None:
        """Replace the replica on `source` by one on `destination`, keeping its position."""
        reps = self.replicas[pid]
        position = reps.index(source)
        reps[position] = destination
        size = self.sizes[pid]
        if source in self.rack:
            self._count(source, -1, size, position == 0)
        self._count(destination, 1, size, position == 0)
        origins = self._origins.setdefault(pid, {})
        origin = origins.pop(source, source)
        if origin != destination:
            origins[destination] = origin

    def net_moves(self) -> list[tuple[int, int, int]]:
        """(pid, source, destination) for the replicas that differ between start and now.

        Sources and destinations are paired along the recorded history where it links them, and
        in list order otherwise (a replica moved onto a broker that later gave its own away).
        """
        result = []
        for pid in sorted(self._origins):
            before, after = self._initial[pid], self.replicas[pid]
            sources = [b for b in before if b not in after]
            destinations = [b for b in after if b not in before]
            origins = self._origins[pid]
            paired = [(origins[d], d) for d in destinations if origins.get(d) in sources]
            taken_sources = {s for s, _ in paired}
            taken_destinations = {d for _, d in paired}
            rest = zip(
                (s for s in sources if s not in taken_sources),
                (d for d in destinations if d not in taken_destinations),
                strict=True,
            )
            pairs = dict(paired)
            pairs.update(rest)
            result.extend((pid, s, pairs[s]) for s in sources)
        return result

    def _count(self, broker_id: int, delta: int, size: int, leader: bool) -> None:
        self.counts.add(broker_id, delta)
        self.rack_counts[self.rack[broker_id]].add(broker_id, delta)
        self.bytes[broker_id] += delta * size
        if leader:
            self.leaders.add(broker_id, delta)

    def make_leader(self, pid: int, broker_id: int) -> None:
        """Swap `broker_id` into the first (preferred leader) position of the partition."""
        reps = self.replicas[pid]
        position = reps.index(broker_id)
        if position == 0:
            return
        previous = reps[0]
        reps[0], reps[position] = broker_id, previous
        if previous in self.rack:
            self.leaders.add(previous, -1)
        self.leaders.add(broker_id, 1)

    def describe(self, pid: int) -> str:
        """A partition's name for messages."""
        if self.keys is None:
            return f"partition {pid}"
        topic, partition = self.keys[pid]
        return f"{topic}-{partition}"

    def orphans(self) -> list[tuple[int, int]]:
        """(pid, broker) for every replica on a broker outside the target set."""
        rack = self.rack
        return [(pid, b) for pid, reps in enumerate(self.replicas) for b in reps if b not in rack]
