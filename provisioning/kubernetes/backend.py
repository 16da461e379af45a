"""The `kubernetes` backend: renders a cluster's objects and applies them to one target.

Apply, then poll: every call asks the API server for a change and returns without waiting; pods become
ready on their own and the workflows' polling steps judge readiness (`describe` says what each pod is
doing, Kafka whether the broker is back), so no worker waits on a pod and cancellation works. The
backend keeps nothing locally: what it needs later (the quorum layout) is recorded in the cluster's
layout ConfigMap on the target.

A secured cluster's node certificates are issued here (from the cluster's CA, for the node's DNS names)
and kept in its Secret: a node keeps the one there while it is of the cluster's CA and certificate
generation and not near its end (the Secret's annotation records both), so applying again changes
nothing, and a rotation (a raised generation) gives each node a new one as the roll restarts it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from provisioning import kafka_config, security
from provisioning.backends.base import (
    NULL_EVENTS,
    BackendError,
    BackendEvents,
    BackendUnavailableError,
    BrokerProcessState,
    BrokerStatus,
    ClusterDescription,
    ClusterSpec,
    KafkaConnection,
    ProvisioningPlan,
)
from provisioning.kubernetes import render
from provisioning.kubernetes.api import KubernetesApi
from provisioning.kubernetes.layout import QuorumLayout, layout_for_new_cluster
from provisioning.kubernetes.target import KubernetesTarget, VolumeRetention, target_errors

# Kinds a cluster owns, deleted in this order (pods last but one: their StatefulSets go first, so
# nothing recreates them; claims last, once no pod holds them).
OWNED_KINDS = (
    "StatefulSet",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Pod",
    "PersistentVolumeClaim",
)
# Waiting reasons of a container that will not get better by waiting.
STUCK_REASONS = (
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
)


class KubernetesBackend:
    name = "kubernetes"

    def __init__(
        self,
        target: KubernetesTarget,
        *,
        events: BackendEvents = NULL_EVENTS,
        offline: bool = False,
        request_timeout: float = 10.0,
    ) -> None:
        """`offline`: never contact the API server (plans of clusters not created yet)."""
        self.target = target
        self.events = events
        self.offline = offline
        self.request_timeout = request_timeout

    # --- planning ----------------------------------------------------------------------------------

    def validate(self, spec: ClusterSpec) -> dict[str, str]:
        errors = render.spec_errors(spec)
        if problems := target_errors(self.target):
            errors["target"] = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        if "brokers" not in errors and (left_out := self._controllers_left_out(spec)):
            # Refused up front: a replacement or scale-in would otherwise move every replica off the
            # broker and only then meet remove_brokers' refusal.
            errors["brokers"] = (
                f"broker(s) {', '.join(map(str, left_out))} of cluster {spec.name} are its KRaft "
                "controllers, which stay for the cluster's life: removing one would shrink the controller "
                "quorum, a membership change this backend does not make"
            )
        return errors

    def _controllers_left_out(self, spec: ClusterSpec) -> list[int]:
        """The recorded combined controllers of an existing cluster that `spec` no longer has. Unknown
        (none) for a plan, a new cluster, or a target that does not answer: remove_brokers still refuses
        to remove a voter."""
        if self.offline:
            return []
        try:
            with self._api() as api:
                layout = self._recorded_layout(api, spec)
        except BackendError:
            return []
        if layout is None or layout.dedicated:
            return []
        return sorted(set(layout.controllers) - {b.node_id for b in spec.brokers})

    def plan(self, spec: ClusterSpec) -> ProvisioningPlan:
        layout, note = self._planned_layout(spec)
        objects = render.render(spec, self.target, layout)
        kinds: dict[str, int] = {}
        for obj in objects:
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        placement = ", ".join(
            f"broker {b.node_id} in zone {b.rack}" for b in sorted(spec.brokers, key=lambda b: b.node_id)
        )
        summary = (
            f"Apache Kafka {spec.kafka_version} on Kubernetes target {self.target.name}, namespace "
            f"{self.target.namespace}: {placement} (node label {self.target.topology_key}). "
            f"{layout.explanation()}. Objects: {', '.join(f'{n} {k}' for k, n in kinds.items())}. "
            f"Clients bootstrap from {render.bootstrap_servers(spec, self.target)}.{note}"
        )
        manifests = render.to_yaml(objects)
        return ProvisioningPlan(summary=summary, artifacts={"manifests.yaml": manifests}, manifests=manifests)

    def _planned_layout(self, spec: ClusterSpec) -> tuple[QuorumLayout, str]:
        if self.offline:
            return layout_for_new_cluster(spec), ""
        try:
            with self._api() as api:
                recorded = self._recorded_layout(api, spec)
        except BackendError as exc:
            return layout_for_new_cluster(spec), f" (The recorded quorum layout could not be read: {exc}.)"
        return recorded or layout_for_new_cluster(spec), ""

    # --- applying ----------------------------------------------------------------------------------

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        self._require_valid(spec)
        with self._api() as api:
            layout, owner_uid = self._ensure_layout(api, spec)
            tls = self._certificates(api, spec, render.nodes(spec, layout))
            for obj in render.render(spec, self.target, layout, owner_uid=owner_uid, tls=tls)[1:]:
                self._apply(api, obj)
            return self._describe(api, spec)

    def restart_broker(self, spec: ClusterSpec, node_id: int) -> None:
        """Apply the node's current objects (a new image or configuration takes effect now), then
        delete its pod; its StatefulSet starts it again. Readiness is the caller's to poll. The node
        may be a broker or a dedicated controller."""
        self._require_valid(spec)
        with self._api() as api:
            layout, owner_uid = self._ensure_layout(api, spec)
            dedicated = dict(layout.controller_racks)
            if node_id not in dedicated and all(b.node_id != node_id for b in spec.brokers):
                raise BackendError(f"cluster {spec.name} has no node {node_id}")
            tls = self._certificates(api, spec, [render.node_of(spec, layout, node_id)])
            for obj in render.render_broker(spec, self.target, layout, node_id, owner_uid=owner_uid, tls=tls):
                self._apply(api, obj)
            pod = render.pod_name(spec, node_id, render.CONTROLLER if node_id in dedicated else render.BROKER)
            if api.delete("Pod", pod):
                self.events.log(f"pod {pod} deleted; its StatefulSet starts it again")

    def replace_broker(self, spec: ClusterSpec, node_id: int, *, keep_disk: bool) -> ClusterDescription:
        if all(b.node_id != node_id for b in spec.brokers):
            raise BackendError(f"broker {node_id} is not part of cluster {spec.name}")
        if keep_disk:
            self.restart_broker(spec, node_id)
            with self._api() as api:
                return self._describe(api, spec)
        self._require_valid(spec)
        with self._api() as api:
            layout, owner_uid = self._ensure_layout(api, spec)
            *secrets, config_map, statefulset = render.render_broker(
                spec,
                self.target,
                layout,
                node_id,
                owner_uid=owner_uid,
                tls=self._certificates(api, spec, [render.node_of(spec, layout, node_id)]),
            )
            # Scaled to zero, the StatefulSet deletes the claim (whenScaled: Delete); the data is given
            # up anyway, so the pod gets no grace period.
            self._apply(api, {**statefulset, "spec": {**statefulset["spec"], "replicas": 0}})
            api.delete("Pod", render.pod_name(spec, node_id), grace_seconds=0)
            claims = api.list(
                "PersistentVolumeClaim", f"{render.cluster_selector(spec)},{render.LABEL_NODE}={node_id}"
            )
            for claim in claims:
                api.delete("PersistentVolumeClaim", claim["metadata"]["name"])
            if self._still_there(api, spec, node_id):
                # Asked again by the step's retry (with backoff) rather than waited for here.
                raise BackendUnavailableError(
                    f"the old pod or volume of broker {node_id} is still being removed; the replacement "
                    "starts once they are gone"
                )
            for obj in (*secrets, config_map, statefulset):
                self._apply(api, obj)
            return self._describe(api, spec)

    def remove_brokers(self, spec: ClusterSpec, node_ids: list[int]) -> ClusterDescription:
        removed = set(node_ids)
        remaining = replace(spec, brokers=tuple(b for b in spec.brokers if b.node_id not in removed))
        with self._api() as api:
            layout = self._recorded_layout(api, spec)
            if layout is not None and (voters := sorted(removed & set(layout.controllers))):
                raise BackendError(
                    f"brokers {', '.join(map(str, voters))} of cluster {spec.name} are KRaft controllers; "
                    "removing them would shrink the controller quorum, which needs a membership change first"
                )
            for node_id in sorted(removed):
                name = render.node_name(spec, node_id)
                api.delete("StatefulSet", name)
                api.delete("ConfigMap", name)
                api.delete("Secret", render.tls_secret(spec, node_id))
                selector = f"{render.cluster_selector(spec)},{render.LABEL_NODE}={node_id}"
                for pod in api.list("Pod", selector):
                    api.delete("Pod", pod["metadata"]["name"])
                if self.target.volume_retention is VolumeRetention.DELETE:
                    for claim in api.list("PersistentVolumeClaim", selector):
                        api.delete("PersistentVolumeClaim", claim["metadata"]["name"])
                self.events.log(f"broker {node_id}: StatefulSet, pod, configuration and volume deleted")
            return self._describe(api, remaining)

    def delete(self, spec: ClusterSpec) -> bool:
        """Ask for every object of the cluster to be deleted; True once none is left."""
        selector = render.cluster_selector(spec)
        left = 0
        with self._api() as api:
            for kind in OWNED_KINDS:
                if kind == "PersistentVolumeClaim" and self.target.volume_retention is VolumeRetention.RETAIN:
                    continue
                for obj in api.list(kind, selector):
                    left += 1
                    if obj["metadata"].get("deletionTimestamp") is None:
                        # The data goes (or stays, retained) either way: no controlled shutdown to wait for.
                        api.delete(kind, obj["metadata"]["name"], grace_seconds=0 if kind == "Pod" else None)
                        self.events.log(f"{kind} {obj['metadata']['name']} deleted")
        return left == 0

    def describe(self, spec: ClusterSpec) -> ClusterDescription:
        with self._api() as api:
            return self._describe(api, spec)

    def connection(self, spec: ClusterSpec, bootstrap_servers: str) -> KafkaConnection:
        # The bootstrap Service, whatever was recorded: its name follows from the spec and target. A
        # secured cluster's admin connection authenticates like any client, as the control plane.
        config = tuple(security.admin_client_config(spec.security).items()) if spec.security else ()
        return KafkaConnection(bootstrap_servers=render.bootstrap_servers(spec, self.target), config=config)

    # --- helpers -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _api(self) -> Iterator[KubernetesApi]:
        if self.offline:
            raise BackendError("this backend was made for planning only")
        api = KubernetesApi(self.target, timeout=self.request_timeout)
        try:
            yield api
        finally:
            api.close()

    def _require_valid(self, spec: ClusterSpec) -> None:
        if errors := self.validate(spec):
            raise BackendError("; ".join(f"{name}: {message}" for name, message in sorted(errors.items())))

    def _recorded_layout(self, api: KubernetesApi, spec: ClusterSpec) -> QuorumLayout | None:
        record = api.get("ConfigMap", render.layout_configmap(spec))
        if record is None:
            return None
        try:
            return QuorumLayout.from_json(record["data"]["layout.json"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"the layout record {render.layout_configmap(spec)} is unreadable: {exc}"
            ) from exc

    def _ensure_layout(self, api: KubernetesApi, spec: ClusterSpec) -> tuple[QuorumLayout, str]:
        """The recorded layout (recording it for a new cluster) and the uid of its record, the owner of
        every other object."""
        layout = self._recorded_layout(api, spec) or layout_for_new_cluster(spec)
        applied = self._apply(api, render.render_layout_configmap(spec, self.target, layout))
        return layout, applied["metadata"]["uid"]

    def _apply(self, api: KubernetesApi, obj: dict[str, Any]) -> dict[str, Any]:
        applied = api.apply(obj)
        meta = applied.get("metadata", {})
        self.events.log(
            f"applied {obj['kind']} {meta.get('name')} (resource version {meta.get('resourceVersion')})"
        )
        return applied

    def _certificates(
        self, api: KubernetesApi, spec: ClusterSpec, nodes: list[Any]
    ) -> dict[tuple[str, int], render.NodeTls] | None:
        """Each node's certificate: the one its Secret holds while still good, else a new one."""
        if spec.security is None:
            return None
        identity = security.broker_certificate_identity(spec.security)
        renew_before = security.renew_before()
        certificates: dict[tuple[str, int], render.NodeTls] = {}
        for node in nodes:
            kept = _kept_certificate(api.get("Secret", render.tls_secret(spec, node.node_id, node.role)))
            if kept is None or kept.identity != identity or kept.certificate.not_after < renew_before:
                hosts = render.certificate_hosts(spec, self.target, node.node_id, node.role)
                kept = render.NodeTls(identity, security.issue_broker_certificate(spec.security, hosts))
                self.events.log(f"node {node.node_id}: new certificate from the cluster's CA ({identity})")
            certificates[(node.role, node.node_id)] = kept
        return certificates

    def _still_there(self, api: KubernetesApi, spec: ClusterSpec, node_id: int) -> bool:
        """Whether the node's pod or volume claim still exists."""
        selector = f"{render.cluster_selector(spec)},{render.LABEL_NODE}={node_id}"
        return bool(api.list("Pod", selector) or api.list("PersistentVolumeClaim", selector))

    def _describe(self, api: KubernetesApi, spec: ClusterSpec) -> ClusterDescription:
        pods = {_node_label(p): p for p in api.list("Pod", render.cluster_selector(spec))}

        def status(node_id: int, rack: str, role: str, port: int) -> BrokerStatus:
            state, detail = _pod_state(pods.get(str(node_id)))
            endpoint = f"{render.node_host(spec, self.target, node_id, role)}:{port}"
            return BrokerStatus(node_id, rack, endpoint, state, detail)

        layout = self._recorded_layout(api, spec)
        return ClusterDescription(
            bootstrap_servers=render.bootstrap_servers(spec, self.target),
            client_endpoints=render.client_endpoints(spec, self.target),
            brokers=tuple(
                status(b.node_id, b.rack, render.BROKER, render.CLIENT_PORT)
                for b in sorted(spec.brokers, key=lambda b: b.node_id)
            ),
            controllers=tuple(
                status(node_id, rack, render.CONTROLLER, render.CONTROLLER_PORT)
                for node_id, rack in (layout.controller_racks if layout is not None else ())
            ),
        )


def _kept_certificate(secret: dict[str, Any] | None) -> render.NodeTls | None:
    """The certificate a node's Secret holds, if it is whole and says what it was issued for."""
    if secret is None:
        return None
    recorded = (secret.get("metadata", {}).get("annotations") or {}).get(render.ANNOTATION_CERTIFICATE, "")
    identity, _, not_after = recorded.partition("\n")
    data = secret.get("data") or {}
    try:
        key, chain = (
            base64.b64decode(data[name]).decode("ascii")
            for name in (kafka_config.TLS_KEY_FILE, kafka_config.TLS_CHAIN_FILE)
        )
        end = int(not_after)
    except (KeyError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return render.NodeTls(identity, security.BrokerCertificate(chain, end, key))


def _node_label(pod: dict[str, Any]) -> str:
    return pod.get("metadata", {}).get("labels", {}).get(render.LABEL_NODE, "")


def _pod_state(pod: dict[str, Any] | None) -> tuple[BrokerProcessState, str]:
    if pod is None:
        return BrokerProcessState.MISSING, "no pod"
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    if meta.get("deletionTimestamp"):
        return BrokerProcessState.STOPPED, f"pod {meta.get('name')} is being deleted"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return BrokerProcessState.CRASHED, f"{waiting['reason']}: {waiting.get('message', '')}".strip(
                ": "
            )
    if status.get("phase") in ("Failed", "Succeeded"):
        return (
            BrokerProcessState.CRASHED,
            f"pod {meta.get('name')} {status['phase'].lower()}: {status.get('reason', '')}",
        )
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if ready:
        return BrokerProcessState.RUNNING, ""
    unscheduled = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        None,
    )
    if unscheduled is not None:
        return BrokerProcessState.STARTING, f"not scheduled: {unscheduled.get('message', '')}"
    return (
        BrokerProcessState.STARTING,
        f"pod {meta.get('name')} {str(status.get('phase', 'pending')).lower()}, not ready",
    )
