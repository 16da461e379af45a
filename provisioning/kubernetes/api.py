"""The few Kubernetes API calls the backend makes, through the `kubernetes` client's ApiClient, and the
API server's refusals turned into plain words.

Objects are applied with server-side apply under one field manager and never forced: a field another
manager (a person with kubectl, another controller) took over is a conflict the operation reports, not
something the control plane silently takes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from provisioning.backends.base import BackendError, BackendUnavailableError
from provisioning.kubernetes.target import KubernetesTarget

FIELD_MANAGER = "kafka-control-plane"


@dataclass(frozen=True)
class Kind:
    kind: str
    prefix: str  # /api/v1 or /apis/<group>/<version>
    plural: str

    def collection(self, namespace: str) -> str:
        return f"{self.prefix}/namespaces/{namespace}/{self.plural}"

    def path(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


KINDS: Mapping[str, Kind] = {
    k.kind: k
    for k in (
        Kind("ConfigMap", "/api/v1", "configmaps"),
        Kind("Secret", "/api/v1", "secrets"),
        Kind("ServiceAccount", "/api/v1", "serviceaccounts"),
        Kind("Service", "/api/v1", "services"),
        Kind("Pod", "/api/v1", "pods"),
        Kind("PersistentVolumeClaim", "/api/v1", "persistentvolumeclaims"),
        Kind("StatefulSet", "/apis/apps/v1", "statefulsets"),
        Kind("PodDisruptionBudget", "/apis/policy/v1", "poddisruptionbudgets"),
        Kind("NetworkPolicy", "/apis/networking.k8s.io/v1", "networkpolicies"),
    )
}


class KubernetesApiError(BackendError):
    """The API server refused a request; `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def api_client(target: KubernetesTarget) -> k8s_client.ApiClient:
    """A client for the target: its kubeconfig (and context), or the pod's service account."""
    configuration = k8s_client.Configuration()
    try:
        if target.in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config_from_dict(
                yaml.safe_load(target.kubeconfig),
                context=target.context or None,
                client_configuration=configuration,
                persist_config=False,
            )
    except (k8s_config.ConfigException, yaml.YAMLError, TypeError, ValueError) as exc:
        raise BackendError(
            f"the credentials of Kubernetes target {target.name} cannot be used: {exc}"
        ) from exc
    # One attempt per request (urllib3 would make four): a step that fails is retried by the operations
    # engine with backoff, and a connection test answers within its timeout rather than four times it.
    configuration.retries = 0
    return k8s_client.ApiClient(configuration)


class KubernetesApi:
    """Namespaced requests to one target's API server, with plain-word errors."""

    def __init__(self, target: KubernetesTarget, *, timeout: float = 10.0) -> None:
        self.target = target
        self.namespace = target.namespace
        self.timeout = timeout
        self._client = api_client(target)

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
    ) -> dict[str, Any] | None:
        """The answer's JSON; None for 404 on GET and DELETE (already absent)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, _, _ = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The client serializes JSON bodies itself; an apply patch (YAML, of which JSON is a subset) it
        # sends as given.
        payload = json.dumps(body) if body is not None and content_type != "application/json" else body
        try:
            response = self._client.call_api(
                method, url, header_params=headers, body=payload, _request_timeout=self.timeout
            )
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError, k8s_client.ApiException) as exc:
            raise BackendUnavailableError(
                f"the API server of Kubernetes target {self.target.name} "
                f"({self._client.configuration.host}) did not answer: {_why(exc)}"
            ) from exc
        status = response.status
        if status == 404 and method in ("GET", "DELETE"):
            return None
        answer = _json(data)
        if status >= 400:
            raise refusal(status, answer, what or f"{method} {path}", self.target)
        return answer

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = KINDS[obj["kind"]]
        name = obj["metadata"]["name"]
        answer = self.request(
            "PATCH",
            kind.path(self.namespace, name),
            query=[("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")],
            body=obj,
            content_type="application/apply-patch+yaml",
            what=f"applying {obj['kind']} {name}",
        )
        assert answer is not None
        return answer

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.request("GET", KINDS[kind].path(self.namespace, name), what=f"reading {kind} {name}")

    def list(self, kind: str, selector: str) -> list[dict[str, Any]]:
        answer = self.request(
            "GET",
            KINDS[kind].collection(self.namespace),
            query=[("labelSelector", selector)],
            what=f"listing {KINDS[kind].plural}",
        )
        return list((answer or {}).get("items", []))

    def delete(self, kind: str, name: str, *, grace_seconds: int | None = None) -> bool:
        """Ask for the object's deletion; False when it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        answer = self.request(
            "DELETE", KINDS[kind].path(self.namespace, name), body=body, what=f"deleting {kind} {name}"
        )
        return answer is not None


def _why(exc: BaseException) -> str:
    """What went wrong with a connection ('Connection refused', 'timed out', a certificate refused),
    without urllib3's wrapping ('Max retries exceeded with url: ... (Caused by ...')."""
    reason = getattr(exc, "reason", None) or exc
    args = getattr(reason, "args", ())
    text = args[-1] if args and isinstance(args[-1], str) else str(reason)
    return re.sub(r"^HTTPS?Connection\([^)]*\): ", "", text)


def _json(data: bytes | str | None) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {"message": (data or b"").decode("utf-8", "replace") if isinstance(data, bytes) else str(data)}
    return value if isinstance(value, dict) else {}


def refusal(status: int, answer: Mapping[str, Any], what: str, target: KubernetesTarget) -> BackendError:
    """The API server's refusal in plain words: which fields (422), whose fields (409), which
    permission (403)."""
    details = answer.get("details") or {}
    causes = details.get("causes") or []
    message = answer.get("message") or answer.get("reason") or f"HTTP {status}"
    where = f"in namespace {target.namespace} of Kubernetes target {target.name}"
    if status == 422:
        fields = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes) or message
        return KubernetesApiError(f"Kubernetes refused {what} {where} as invalid: {fields}", status)
    if status == 409:
        conflicts = [
            f"{c.get('field', '?')}: {c.get('message', '')}"
            for c in causes
            if c.get("reason") == "FieldManagerConflict"
        ]
        if conflicts:
            return KubernetesApiError(
                f"{_sentence(what)} {where} conflicts with changes made by another field manager "
                f"({'; '.join(conflicts)}). The control plane does not take fields back by force: undo "
                f"that change, or remove that manager's ownership of the field, then retry.",
                status,
            )
        return KubernetesApiError(f"{_sentence(what)} {where} conflicts: {message}", status)
    if status == 401:
        return KubernetesApiError(
            f"the API server of Kubernetes target {target.name} did not accept its credentials ({what}: "
            f"{message}): the kubeconfig's token or client certificate is wrong or has expired. Give the "
            "target a working kubeconfig, then retry.",
            status,
        )
    if status == 403:
        return KubernetesApiError(
            f"the credentials of Kubernetes target {target.name} may not do this ({what} {where}): "
            f"{message}. Grant its user or service account that permission (RBAC), then retry.",
            status,
        )
    if status == 404 and "namespaces" in message:
        return KubernetesApiError(
            f"namespace {target.namespace} does not exist on target {target.name}", status
        )
    if status >= 500 or status == 429:
        return BackendUnavailableError(f"the API server of target {target.name} failed {what}: {message}")
    return KubernetesApiError(f"Kubernetes refused {what} {where}: {message}", status)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
