"""Testing a Kubernetes target's connection before clusters are placed on it: does its API server
answer to the stored credentials, does its namespace exist, and may those credentials do everything
the backend does there. Each finding is said in plain words, so a person can fix the kubeconfig or the
role before the first cluster fails half-way.

Permissions are read with one SelfSubjectRulesReview (every rule the credentials have in the
namespace); whatever it does not show as allowed is asked again with a SelfSubjectAccessReview, the
authoritative answer (a rules review may be incomplete, e.g. behind a webhook authorizer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provisioning.backends.base import BackendError, Check, ConnectionReport
from provisioning.kubernetes.api import KINDS, KubernetesApi, KubernetesApiError
from provisioning.kubernetes.backend import OWNED_KINDS
from provisioning.kubernetes.target import KubernetesTarget

# What the backend does to each kind it owns: it applies every kind but the ones the StatefulSets
# make (server-side apply creates or patches), and reads, lists and deletes all of them.
_MADE_BY_STATEFULSETS = ("Pod", "PersistentVolumeClaim")
_READ_AND_DELETE = ("get", "list", "delete")
_APPLY = ("create", "patch")


def required_permissions() -> dict[str, tuple[str, ...]]:
    """Kind -> the verbs the backend needs on it, in its target's namespace."""
    return {
        kind: _READ_AND_DELETE + (() if kind in _MADE_BY_STATEFULSETS else _APPLY) for kind in OWNED_KINDS
    }


def check_kubernetes_connection(target: KubernetesTarget, *, timeout: float = 10.0) -> ConnectionReport:
    """Reach the target's API server with its credentials and say what was found. Never raises for
    what the target answers (refusals, an unreachable server): those are the findings."""
    try:
        api = KubernetesApi(target, timeout=timeout)
    except BackendError as exc:  # a kubeconfig the client cannot use
        return ConnectionReport(checks=(Check("api_server", False, _sentence(str(exc))),))
    try:
        try:
            version = api.request("GET", "/version", what="reading the server version") or {}
        except BackendError as exc:
            return ConnectionReport(checks=(Check("api_server", False, _sentence(str(exc))),))
        server_version = str(version.get("gitVersion", "unknown"))
        checks = [Check("api_server", True, f"the API server answered (Kubernetes {server_version})")]
        checks.append(_namespace(api, target))
        missing = _missing_permissions(api, target)
        checks.append(_permissions(target, missing))
        return ConnectionReport(checks=tuple(checks), server_version=server_version, missing=missing)
    except BackendError as exc:  # the server stopped answering half-way
        return ConnectionReport(checks=(Check("api_server", False, _sentence(str(exc))),))
    finally:
        api.close()


def _namespace(api: KubernetesApi, target: KubernetesTarget) -> Check:
    namespace = target.namespace
    try:
        found = api.request("GET", f"/api/v1/namespaces/{namespace}", what=f"reading namespace {namespace}")
    except KubernetesApiError as exc:
        if exc.status == 403:
            # Reading namespaces is not something the backend needs; say so rather than fail.
            return Check(
                "namespace",
                True,
                f"whether namespace {namespace} exists cannot be read with these credentials (the "
                "backend does not need to read it)",
            )
        raise
    if found is None:
        return Check(
            "namespace",
            False,
            f"namespace {namespace} does not exist on target {target.name}: create it "
            f"(kubectl create namespace {namespace}) or change the target's namespace setting.",
        )
    return Check("namespace", True, f"namespace {namespace} exists")


def _permissions(target: KubernetesTarget, missing: Mapping[str, tuple[str, ...]]) -> Check:
    if not missing:
        return Check(
            "permissions",
            True,
            f"its credentials may create, change and delete everything a cluster needs in namespace "
            f"{target.namespace}",
        )
    lacking = "; ".join(f"{', '.join(verbs)} {_resource(kind)}" for kind, verbs in sorted(missing.items()))
    return Check(
        "permissions",
        False,
        f"its credentials may not do everything a cluster needs in namespace {target.namespace}: they "
        f"may not {lacking}. Grant a Role with these verbs (bound to its user or service account), then "
        "test again.",
    )


def _missing_permissions(api: KubernetesApi, target: KubernetesTarget) -> dict[str, tuple[str, ...]]:
    answer = api.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": target.namespace},
        },
        what="reviewing its own permissions",
    )
    rules = ((answer or {}).get("status") or {}).get("resourceRules") or []
    missing: dict[str, tuple[str, ...]] = {}
    for kind, verbs in required_permissions().items():
        group, plural = _group(kind), KINDS[kind].plural
        unsure = [verb for verb in verbs if not _allowed_by(rules, group, plural, verb)]
        denied = tuple(verb for verb in unsure if not _access_review(api, target, group, plural, verb))
        if denied:
            missing[kind] = denied
    return missing


def _allowed_by(rules: Iterable[Mapping[str, Any]], group: str, plural: str, verb: str) -> bool:
    """Whether a rule of the rules review allows the verb on every object of the kind (a rule limited
    to named objects cannot cover creating or listing)."""
    return any(
        _matches(rule.get("verbs"), verb)
        and _matches(rule.get("apiGroups"), group)
        and _matches(rule.get("resources"), plural)
        and not rule.get("resourceNames")
        for rule in rules
    )


def _matches(values: Iterable[str] | None, wanted: str) -> bool:
    return any(value in ("*", wanted) for value in values or ())


def _access_review(api: KubernetesApi, target: KubernetesTarget, group: str, plural: str, verb: str) -> bool:
    answer = api.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": target.namespace,
                    "group": group,
                    "resource": plural,
                    "verb": verb,
                }
            },
        },
        what=f"asking whether it may {verb} {plural}",
    )
    return bool(((answer or {}).get("status") or {}).get("allowed"))


def _group(kind: str) -> str:
    prefix = KINDS[kind].prefix  # /api/v1 (the core group) or /apis/<group>/<version>
    return "" if prefix.startswith("/api/") else prefix.split("/")[2]


def _resource(kind: str) -> str:
    group = _group(kind)
    return KINDS[kind].plural + (f".{group}" if group else "")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
