"""Rack-aware placement: broker layout, replica assignment and minimal-movement reassignment plans.

Pure Python, deterministic for the same input, and never mutates its inputs. Used by every backend
and workflow that decides where brokers and replicas go.
"""

from provisioning.placement.assignment import add_partitions, assign_replicas
from provisioning.placement.layout import place_brokers, rack_alternated
from provisioning.placement.metrics import AssignmentStats, assignment_stats
from provisioning.placement.model import (
    Batch,
    GoalResult,
    LeadershipChange,
    PlacementError,
    Plan,
    ReplicaMove,
    TopicPartition,
)
from provisioning.placement.reassignment import plan_reassignment

__all__ = [
    "AssignmentStats",
    "Batch",
    "GoalResult",
    "LeadershipChange",
    "PlacementError",
    "Plan",
    "ReplicaMove",
    "TopicPartition",
    "add_partitions",
    "assign_replicas",
    "assignment_stats",
    "place_brokers",
    "plan_reassignment",
    "rack_alternated",
]
