"""Balance and rack figures for any assignment, whoever produced it (dashboards, benchmarks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AssignmentStats:
    replicas: Mapping[int, int]  # broker -> replica count
    leaders: Mapping[int, int]  # broker -> preferred-leader count
    rack_violations: int  # partitions not spread over min(RF, racks) racks, or over ceil(RF / racks) in one

    @property
    def replica_spread(self) -> int:
        return max(self.replicas.values()) - min(self.replicas.values()) if self.replicas else 0

    @property
    def leader_spread(self) -> int:
        return max(self.leaders.values()) - min(self.leaders.values()) if self.leaders else 0


def assignment_stats(
    assignment: Iterable[list[int]] | Mapping[object, list[int]], brokers: Mapping[int, str | None]
) -> AssignmentStats:
    """Replica and leader counts for every broker in `brokers` (zero when it holds none) and rack faults."""
    lists = assignment.values() if isinstance(assignment, Mapping) else assignment
    replicas = dict.fromkeys(brokers, 0)
    leaders = dict.fromkeys(brokers, 0)
    racks = len(set(brokers.values()))
    violations = 0
    for reps in lists:
        leaders[reps[0]] = leaders.get(reps[0], 0) + 1
        for broker_id in reps:
            replicas[broker_id] = replicas.get(broker_id, 0) + 1
        per_rack = Counter(brokers.get(b) for b in reps)
        if len(per_rack) < min(len(reps), racks) or max(per_rack.values()) > -(-len(reps) // racks):
            violations += 1
    return AssignmentStats(replicas, leaders, violations)
