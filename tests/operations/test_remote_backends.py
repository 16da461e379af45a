"""Operations on a backend that applies and returns, as the kubernetes backend does: a restart is asked
for (a pod deleted) and happens later (the pod's controlled shutdown), and what the backend does lands
in the operation's log. Simulated Kafka and a simulated remote backend (the kubernetes backend's own
calls are proven against a real API server in tests/provisioning/test_kubernetes_backend.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controlplane.clusters.actions import request_restart
from controlplane.clusters.specs import get_backend
from controlplane.operations.models import OperationLog
from provisioning.backends.base import BrokerProcessState, ClusterDescription, ClusterSpec
from tests.operations.conftest import ClusterFactory, Driver
from tests.support.simulated_backend import BACKEND_NAME, SimulatedBackend, Simulation
from tests.support.tenants import SYSTEM

SHUTDOWN_SECONDS = 30.0


class ApplyThenPollBackend(SimulatedBackend):
    """Restarts like the kubernetes backend: `restart_broker` only asks; the broker stays in Kafka, in
    sync, while its pod shuts down, and starts again `SHUTDOWN_SECONDS` later."""

    stopping: dict[tuple[str, int], float] = {}
    most_at_once = 0

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        stopping = type(self).stopping
        stopping[(spec.cluster_id, node_id)] = self._kafka(spec).now + SHUTDOWN_SECONDS
        type(self).most_at_once = max(type(self).most_at_once, len(stopping))
        self.events.log(f"pod of broker {node_id} deleted")

    def describe(self, spec: ClusterSpec) -> ClusterDescription:
        kafka = self.simulation.clusters.get(spec.cluster_id)
        stopping = type(self).stopping
        for (cluster_id, node_id), until in list(stopping.items()):
            if cluster_id == spec.cluster_id and kafka is not None and kafka.now >= until:
                del stopping[(cluster_id, node_id)]
                super().restart_broker(spec, node_id)  # the new pod starts
        description = super().describe(spec)
        return replace(
            description,
            brokers=tuple(
                replace(b, state=BrokerProcessState.STOPPED, detail="its pod is being deleted")
                if (spec.cluster_id, b.node_id) in stopping
                else b
                for b in description.brokers
            ),
        )


def apply_then_poll_backend() -> ApplyThenPollBackend:
    return ApplyThenPollBackend()


def test_a_roll_waits_until_the_backend_has_restarted_the_broker(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, settings: Any
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    settings.CONTROLPLANE_BACKENDS = {
        **settings.CONTROLPLANE_BACKENDS,
        BACKEND_NAME: f"{__name__}.apply_then_poll_backend",
    }
    get_backend.cache_clear()
    ApplyThenPollBackend.stopping.clear()
    ApplyThenPollBackend.most_at_once = 0

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "succeeded", operation.error
    # Never a second broker asked to restart while one was still shutting down.
    assert ApplyThenPollBackend.most_at_once == 1
    restarted = [
        (node_id, details["at"]) for action, node_id, details in simulation.events if action == "restart"
    ]
    assert sorted(node_id for node_id, _ in restarted) == [0, 1, 2]
    messages = list(OperationLog.objects.filter(operation=operation).values_list("message", flat=True))
    # What the backend reported is in the operation's log, with the step it belongs to.
    assert sum(m.startswith("pod of broker") for m in messages) == 3
    assert any("is stopped (its pod is being deleted)" in m for m in messages)
    assert (
        OperationLog.objects.filter(
            operation=operation, message__startswith="pod of broker", step__isnull=False
        ).count()
        == 3
    )
