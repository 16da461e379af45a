"""The plain data the placement engine hands back: plans, moves, batches and goal outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

TopicPartition = tuple[str, int]


class PlacementError(ValueError):
    """A hard goal cannot be met; the message says what is missing."""


class ReplicaMove(NamedTuple):
    """One replica copied to `destination`, after which the one on `source` is dropped."""

    partition: TopicPartition
    source: int
    destination: int
    bytes: int


class LeadershipChange(NamedTuple):
    """The preferred leader (first replica) of a partition changes."""

    partition: TopicPartition
    previous: int
    new: int


class GoalResult(NamedTuple):
    """How far one goal was from satisfied before and after planning (0 means satisfied)."""

    name: str
    hard: bool
    before: int
    after: int


@dataclass(frozen=True)
class Batch:
    """Partition reassignments submitted together and awaited before the next batch starts.

    `reassignments` maps each partition to its full target replica list, the shape Kafka's
    AlterPartitionReassignments takes. A batch without moves only reorders replicas.
    """

    reassignments: Mapping[TopicPartition, list[int]]
    moves: tuple[ReplicaMove, ...]

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.moves)


@dataclass(frozen=True)
class Plan:
    """A reassignment from the current assignment to `target`, ready for throttled execution."""

    target: Mapping[TopicPartition, list[int]]
    moves: tuple[ReplicaMove, ...]
    leadership_changes: tuple[LeadershipChange, ...]
    batches: tuple[Batch, ...]
    goals: tuple[GoalResult, ...]
    warnings: tuple[str, ...] = ()

    @property
    def moved_bytes(self) -> int:
        return sum(m.bytes for m in self.moves)

    @property
    def is_empty(self) -> bool:
        return not self.moves and not self.leadership_changes

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable form, for storing a plan on an operation and showing it to users."""

        def tp(partition: TopicPartition) -> list[object]:
            return [partition[0], partition[1]]

        return {
            "target": [[*tp(p), list(r)] for p, r in self.target.items()],
            "moves": [[*tp(m.partition), m.source, m.destination, m.bytes] for m in self.moves],
            "leadership_changes": [[*tp(c.partition), c.previous, c.new] for c in self.leadership_changes],
            "batches": [
                {
                    "reassignments": [[*tp(p), list(r)] for p, r in b.reassignments.items()],
                    "moves": len(b.moves),
                    "bytes": b.bytes,
                }
                for b in self.batches
            ],
            "goals": [g._asdict() for g in self.goals],
            "warnings": list(self.warnings),
        }
