"""Which KRaft nodes a Kubernetes cluster has besides its brokers, chosen once when it is created.

Small clusters run combined nodes (brokers that are also controllers, as `local` and VMs do): three
extra pods would cost more than the isolation is worth. From `DEDICATED_CONTROLLERS_FROM` brokers on,
the quorum runs on three dedicated controller pods, one per rack while racks last: a busy broker's
disk and network no longer delay the metadata log, a broker can be restarted without also moving the
quorum's leadership, and scale-in never meets a broker it may not remove because it is a voter.

The choice is recorded in the cluster's layout ConfigMap and read back from it, never derived again:
a cluster scaled past the threshold keeps the quorum it was created with, since changing a quorum's
members is a membership change, not a re-render.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from provisioning import kafka_config
from provisioning.backends.base import ClusterSpec, NodeSize

DEDICATED_CONTROLLERS_FROM = 6
DEDICATED_CONTROLLER_COUNT = 3
# Dedicated controllers' node ids start here, far above any broker id the placement engine hands out
# (they count up from 0 and a cluster has at most a few hundred brokers), so the two never meet.
CONTROLLER_ID_BASE = 90000
# A controller holds only the metadata log: small and fixed, whatever the brokers' size.
CONTROLLER_SIZE = NodeSize(cpu=0.5, memory_mb=2048, disk_gb=10)


@dataclass(frozen=True)
class QuorumLayout:
    controllers: tuple[int, ...]  # node ids of the KRaft voters
    dedicated: bool  # True: the voters are controller-only pods, not brokers
    quorum: kafka_config.QuorumStyle
    controller_racks: tuple[tuple[int, str], ...] = ()  # dedicated controllers: node id -> rack

    def rack_of_controller(self, node_id: int) -> str:
        return dict(self.controller_racks)[node_id]

    def explanation(self) -> str:
        voters = ", ".join(str(n) for n in self.controllers)
        if self.dedicated:
            placed = ", ".join(f"{n} in rack {rack}" for n, rack in self.controller_racks)
            return (
                f"KRaft quorum on {len(self.controllers)} dedicated controller pods ({placed}): from "
                f"{DEDICATED_CONTROLLERS_FROM} brokers on, busy brokers must not slow the metadata log "
                f"and every broker stays removable; {self.quorum.value} quorum"
            )
        return (
            f"KRaft quorum on combined broker-controller nodes {voters}: below "
            f"{DEDICATED_CONTROLLERS_FROM} brokers, dedicated controller pods would cost more than they "
            f"isolate; {self.quorum.value} quorum"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "controllers": list(self.controllers),
                "dedicated": self.dedicated,
                "quorum": self.quorum.value,
                "controller_racks": {str(n): rack for n, rack in self.controller_racks},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> QuorumLayout:
        data = json.loads(text)
        return cls(
            controllers=tuple(int(n) for n in data["controllers"]),
            dedicated=bool(data["dedicated"]),
            quorum=kafka_config.QuorumStyle(data["quorum"]),
            controller_racks=tuple(sorted((int(n), r) for n, r in data.get("controller_racks", {}).items())),
        )


def layout_for_new_cluster(spec: ClusterSpec) -> QuorumLayout:
    quorum = kafka_config.quorum_style_for_new_cluster(spec.kafka_version)
    if len(spec.brokers) < DEDICATED_CONTROLLERS_FROM:
        return QuorumLayout(kafka_config.choose_controllers(spec.brokers), dedicated=False, quorum=quorum)
    racks = spec.racks
    placed = tuple((CONTROLLER_ID_BASE + i, racks[i % len(racks)]) for i in range(DEDICATED_CONTROLLER_COUNT))
    return QuorumLayout(
        controllers=tuple(n for n, _ in placed), dedicated=True, quorum=quorum, controller_racks=placed
    )
