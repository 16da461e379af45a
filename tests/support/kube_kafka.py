"""A stand-in for the Kafka inside a Kubernetes cluster's pods. FOR TESTS ONLY.

kwok (tests/support/kube_apiserver.py) makes pods Ready without running anything in them, so no Kafka
answers at a kubernetes cluster's bootstrap Service. `PodsAsKafka` answers the control plane's Kafka
questions as Kafka would if every node were up, registered and caught up exactly while its pod is
Ready: a broker whose pod is ready is registered; dedicated controllers are the quorum's voters (a
combined layout has no quorum to describe), `leader` leads while its pod is ready (else the lowest
ready voter, none without a majority), and a controller named in `behind` lags the leader until its
pod has been replaced. It has no topics and no partitions.

What tests using it prove: the control plane's side against a real API server — which objects it
applies, which pods it deletes, in which order, one at a time, and that the workflows wait for pods.
What they do not prove: that Kafka runs in those pods and forms a cluster (the broker image's tests
start its entrypoint on the real distribution), or the in-sync-replica rules of a roll (proven on the
simulator and on real Kafka).

`pods_as_kafka` is a `KAFKA_ADMIN_FACTORY` for worker processes: it finds the cluster's target through
the database.
"""

from __future__ import annotations

import time

from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import backend_for
from provisioning.backends.base import BrokerProcessState, ClusterSpec, KafkaConnection
from provisioning.kafka_admin.base import BrokerInfo, ClusterState, QuorumMember, QuorumState
from provisioning.kubernetes import render
from provisioning.kubernetes.api import KubernetesApi
from provisioning.kubernetes.backend import KubernetesBackend

# How far behind the leader a lagging voter is said to be: far beyond any quorum fetch timeout.
LAG_MS = 60_000


class PodsAsKafka:
    def __init__(
        self,
        backend: KubernetesBackend,
        spec: ClusterSpec,
        *,
        leader: int | None = None,
        behind: dict[int, str] | None = None,  # controller node id -> uid of the pod that lags
    ) -> None:
        self.backend, self.spec, self.leader = backend, spec, leader
        self.behind = dict(behind or {})
        self.most_not_running = 0  # the most nodes seen not running at once
        self.features = {"metadata.version": 20}

    def describe_cluster(self) -> ClusterState:
        description = self.backend.describe(self.spec)
        nodes = (*description.brokers, *description.controllers)
        running = {n.node_id for n in nodes if n.state is BrokerProcessState.RUNNING}
        self.most_not_running = max(self.most_not_running, len(nodes) - len(running))
        self._forget_replaced(running)
        brokers = tuple(
            BrokerInfo(b.node_id, b.endpoint.rsplit(":", 1)[0], render.CLIENT_PORT, b.rack)
            for b in description.brokers
            if b.node_id in running
        )
        voters = [c.node_id for c in description.controllers]
        if not voters:
            controller = min((b.node_id for b in brokers), default=None)
            return ClusterState(self.spec.cluster_id, controller, brokers, topics=())
        up = [v for v in voters if v in running]
        leader = self.leader if self.leader in up else min(up, default=None)
        if 2 * len(up) <= len(voters):
            leader = None
        now_ms = int(time.time() * 1000)
        members = tuple(
            QuorumMember(v, 500, now_ms if v in up and v not in self.behind else now_ms - LAG_MS)
            for v in voters
        )
        quorum = QuorumState(leader_id=leader, leader_epoch=1, high_watermark=500, voters=members)
        return ClusterState(self.spec.cluster_id, leader, brokers, topics=(), quorum=quorum)

    def _forget_replaced(self, running: set[int]) -> None:
        """A lagging controller whose pod was replaced (and runs) has caught up."""
        if not self.behind:
            return
        api = KubernetesApi(self.backend.target)
        try:
            for node_id, uid in list(self.behind.items()):
                pod = api.get("Pod", render.pod_name(self.spec, node_id, render.CONTROLLER))
                if pod is not None and pod["metadata"]["uid"] != uid and node_id in running:
                    del self.behind[node_id]
        finally:
            api.close()

    def finalized_features(self) -> dict[str, int]:
        return dict(self.features)

    def update_features(self, release: str) -> dict[str, int]:
        self.features["metadata.version"] += 1
        return dict(self.features)

    def close(self) -> None:
        pass


def pods_as_kafka(spec: ClusterSpec, connection: KafkaConnection) -> PodsAsKafka:
    """`KAFKA_ADMIN_FACTORY`: the stand-in for a kubernetes cluster recorded in the database."""
    backend = backend_for(Cluster.objects.get(pk=spec.cluster_id))
    assert isinstance(backend, KubernetesBackend), backend
    return PodsAsKafka(backend, spec)
