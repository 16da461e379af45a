"""Both `KafkaAdmin` implementations offer every call of the interface with the same parameters, so
code written against one runs against the other."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from provisioning.kafka_admin.base import KafkaAdmin
from provisioning.kafka_admin.confluent import ConfluentKafkaAdmin
from provisioning.kafka_admin.renumbered import RenumberedKafkaAdmin
from tests.support.simulator import SimulatedKafkaCluster

PRODUCTION_PACKAGES = ("controlplane", "provisioning", "monitoring")
SIMULATOR_IMPORT = re.compile(
    r"(from|import)\s+provisioning\.kafka_admin(\.simulator\b|\s+import\s+[^\n]*\bsimulator\b)"
)
INTERFACE_METHODS = sorted(
    name for name, member in vars(KafkaAdmin).items() if callable(member) and not name.startswith("_")
)


@pytest.mark.parametrize("implementation", [ConfluentKafkaAdmin, SimulatedKafkaCluster, RenumberedKafkaAdmin])
@pytest.mark.parametrize("method", INTERFACE_METHODS)
def test_implementation_matches_the_interface(implementation: type, method: str) -> None:
    expected = inspect.signature(getattr(KafkaAdmin, method))
    actual = inspect.signature(getattr(implementation, method))

    assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
        (p.name, p.kind, p.default) for p in expected.parameters.values()
    ]


def test_the_interface_has_the_expected_calls() -> None:
    assert "describe_cluster" in INTERFACE_METHODS and "close" in INTERFACE_METHODS
    assert len(INTERFACE_METHODS) == 31


def test_no_production_module_imports_the_simulator() -> None:
    """The simulator is for tests and benchmarks; a production import would let a model answer
    for a real cluster."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for package in PRODUCTION_PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "simulator.py" and SIMULATOR_IMPORT.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
