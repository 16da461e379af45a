"""Layout defaults and rules, independent of any backend."""

from __future__ import annotations

import pytest

from controlplane.clusters.layout import (
    Layout,
    default_min_insync_replicas,
    default_racks,
    default_replication_factor,
    layout_errors,
)


@pytest.mark.parametrize(
    ("brokers", "rf", "min_isr", "racks"),
    [
        (1, 1, 1, ["rack-1"]),
        (2, 2, 1, ["rack-1", "rack-2"]),
        (3, 3, 2, ["rack-1", "rack-2", "rack-3"]),
        (6, 3, 2, ["rack-1", "rack-2", "rack-3"]),
    ],
)
def test_defaults(brokers: int, rf: int, min_isr: int, racks: list[str]) -> None:
    assert default_replication_factor(brokers) == rf
    assert default_min_insync_replicas(rf) == min_isr
    assert default_racks(rf) == racks
    assert layout_errors(Layout(brokers, tuple(racks), rf, min_isr)) == {}


def test_a_layout_with_more_racks_than_rf_is_fine() -> None:
    assert layout_errors(Layout(8, ("a", "b", "c", "d"), 3, 2)) == {}


def test_uneven_brokers_suggest_valid_counts() -> None:
    errors = layout_errors(Layout(5, ("a", "b", "c"), 3, 2))
    assert errors == {"brokers": errors["brokers"]}
    assert "3, 6, 9" in errors["brokers"]
