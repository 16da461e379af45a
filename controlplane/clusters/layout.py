"""Rules a cluster layout must meet before anything is provisioned.

Checked up front so a user gets a clear reason instead of a half-built cluster. Pure functions over
plain values: the serializer turns the result into HTTP 400 field messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RACK_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
MAX_BROKERS = 500


@dataclass(frozen=True)
class Layout:
    brokers: int
    racks: tuple[str, ...]
    replication_factor: int
    min_insync_replicas: int


def default_replication_factor(brokers: int) -> int:
    return min(3, brokers)


def default_min_insync_replicas(replication_factor: int) -> int:
    return max(1, replication_factor - 1)


def default_racks(replication_factor: int) -> list[str]:
    return [f"rack-{i}" for i in range(1, replication_factor + 1)]


def _multiples_hint(racks: int) -> str:
    return ", ".join(str(racks * k) for k in range(1, 4))


def layout_errors(layout: Layout) -> dict[str, str]:
    """Every broken rule as field -> message; empty when the layout can be built safely."""
    errors: dict[str, str] = {}
    brokers, racks, rf, min_isr = (
        layout.brokers,
        layout.racks,
        layout.replication_factor,
        layout.min_insync_replicas,
    )
    if brokers < 1:
        errors["brokers"] = "A cluster needs at least 1 broker."
    elif brokers > MAX_BROKERS:
        errors["brokers"] = f"At most {MAX_BROKERS} brokers per cluster."
    if rf < 1:
        errors["replication_factor"] = "The replication factor must be at least 1."
    elif rf > brokers >= 1:
        errors["replication_factor"] = (
            f"Replication factor {rf} needs at least {rf} brokers; this cluster has {brokers}."
        )
    if min_isr < 1:
        errors["min_insync_replicas"] = "min.insync.replicas must be at least 1."
    elif rf >= 1 and min_isr > rf:
        errors["min_insync_replicas"] = (
            f"min.insync.replicas ({min_isr}) cannot exceed the replication factor ({rf}): "
            "producers using acks=all could never write."
        )
    if "racks" in errors or "brokers" in errors:
        return errors
    rack_count = len(racks)
    if rack_count == 0:
        errors["racks"] = "Give at least one rack name."
    elif len(set(racks)) != rack_count:
        errors["racks"] = "Rack names must be distinct."
    elif bad := [r for r in racks if not RACK_NAME.match(r) or len(r) > 63]:
        errors["racks"] = f"Invalid rack name {bad[0]!r}: use letters, digits, '-', '_' and '.' (at most 63)."
    elif "replication_factor" in errors:
        # The racks left out default to one per replica: with the factor wrong, counting them against
        # the brokers would blame a field the person did not fill in.
        pass
    elif rack_count > brokers:
        errors["racks"] = (
            f"{rack_count} racks need at least {rack_count} brokers (one per rack); got {brokers}."
        )
    elif rf >= 1 and rack_count < rf:
        errors["racks"] = (
            f"{rack_count} rack(s) for replication factor {rf}: some partition would keep two replicas in one "
            f"rack, so losing that rack could lose the partition. Use at least {rf} racks."
        )
    elif brokers % rack_count:
        errors["brokers"] = (
            f"{brokers} brokers cannot be spread evenly over {rack_count} racks; use a multiple of "
            f"{rack_count} (e.g. {_multiples_hint(rack_count)})."
        )
    return errors


def cluster_name_error(name: str) -> str | None:
    if not DNS1123_LABEL.match(name):
        return (
            "Use lowercase letters, digits and '-', starting and ending with a letter or digit "
            "(a DNS-1123 label)."
        )
    return None
