"""How full each broker's data volume is, from DescribeLogDirs (KIP-827: total and usable bytes of the
volume each log directory is on; Apache Kafka 3.3 and later).

A broker whose log directory fills up takes that directory offline, and its partitions with it, so
what counts for a broker is its fullest log directory. "Used" is whatever the broker can no longer
write: `total - usable`, where usable is Java's `FileStore.getUsableSpace()`. Blocks a filesystem
reserves for root therefore count as used, because Kafka cannot write to them either; `df` counts
them as free, so its Use% reads lower than ours on such filesystems.

Left out: directories that report an error (offline: they show up as offline partitions instead)
or no sizes (Kafka before 3.3). A broker with none left has no disk figure at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.kafka_admin.base import LogDirUsage


@dataclass(frozen=True)
class BrokerDisk:
    """The fullest log directory of one broker."""

    broker_id: int
    path: str
    total_bytes: int
    usable_bytes: int

    @property
    def used_percent(self) -> float:
        if self.total_bytes <= 0:
            return 0.0
        return 100.0 * (self.total_bytes - min(self.usable_bytes, self.total_bytes)) / self.total_bytes


def broker_disks(usage: Mapping[int, tuple[LogDirUsage, ...]]) -> dict[int, BrokerDisk]:
    """Each broker's fullest healthy log directory, for the brokers that report one."""
    disks: dict[int, BrokerDisk] = {}
    for broker_id, log_dirs in sorted(usage.items()):
        candidates = [
            BrokerDisk(broker_id, d.path, d.total_bytes, d.usable_bytes)
            for d in log_dirs
            if not d.error and d.total_bytes is not None and d.usable_bytes is not None and d.total_bytes > 0
        ]
        if candidates:
            disks[broker_id] = max(candidates, key=lambda d: (d.used_percent, d.path))
    return disks


def disks_data(disks: Mapping[int, BrokerDisk]) -> dict[str, dict[str, Any]]:
    """As stored in `ClusterHealth.disks` and shown by the API: keyed by broker id as text (JSON)."""
    return {
        str(disk.broker_id): {
            "path": disk.path,
            "total_bytes": disk.total_bytes,
            "usable_bytes": disk.usable_bytes,
            "used_percent": round(disk.used_percent, 2),
        }
        for disk in disks.values()
    }
