"""Which broker goes in which rack, and the order brokers alternate racks in."""

from __future__ import annotations

from collections.abc import Mapping


def place_brokers(
    racks: list[str], broker_count: int, existing: Mapping[int, str] | None = None
) -> dict[int, str]:
    """Node id -> rack for `broker_count` brokers spread evenly over `racks`.

    Existing brokers keep their ids and racks; new ids continue after the highest existing one and
    each new broker joins the rack with the fewest brokers (earlier in `racks` on a tie), so a
    balanced layout stays balanced and an unbalanced one (after a failure) is evened out first.
    """
    if not racks:
        raise ValueError("at least one rack is required")
    if len(set(racks)) != len(racks):
        raise ValueError(f"racks must be distinct, got {racks}")
    existing = dict(existing or {})
    if broker_count < len(existing):
        raise ValueError(
            f"cannot lay out {broker_count} brokers: {len(existing)} already exist "
            "(choose which to remove with plan_reassignment(remove=...))"
        )
    unknown = sorted({rack for rack in existing.values() if rack not in racks})
    if unknown:
        raise ValueError(f"existing brokers are in racks {unknown} that are not in {racks}")

    sizes = dict.fromkeys(racks, 0)
    for rack in existing.values():
        sizes[rack] += 1
    layout = dict(sorted(existing.items()))
    next_id = max(existing, default=-1) + 1
    order = {rack: i for i, rack in enumerate(racks)}
    for node_id in range(next_id, next_id + broker_count - len(existing)):
        rack = min(racks, key=lambda r: (sizes[r], order[r]))
        sizes[rack] += 1
        layout[node_id] = rack
    return layout


def rack_alternated(brokers: Mapping[int, str | None]) -> list[int]:
    """Broker ids ordered rack by rack in turn (racks by name, ids ascending within a rack).

    This is the order Kafka's own assignment walks, so consecutive brokers sit in different racks
    for as long as every rack still has brokers left.
    """
    by_rack: dict[str | None, list[int]] = {}
    for broker_id in sorted(brokers):
        by_rack.setdefault(brokers[broker_id], []).append(broker_id)
    columns = [by_rack[rack] for rack in sorted(by_rack, key=lambda r: (r is not None, r or ""))]
    depth = max((len(c) for c in columns), default=0)
    return [column[i] for i in range(depth) for column in columns if i < len(column)]


def check_racks(brokers: Mapping[int, str | None]) -> bool:
    """Whether the brokers have racks; refuses a mix of brokers with and without one, as Kafka does."""
    with_rack = [b for b, rack in brokers.items() if rack is not None]
    if with_rack and len(with_rack) != len(brokers):
        missing = sorted(b for b, rack in brokers.items() if rack is None)
        raise ValueError(
            f"brokers {missing} have no rack while {len(with_rack)} others do; rack-aware placement "
            "needs a rack for every broker (or for none)"
        )
    return bool(with_rack)
