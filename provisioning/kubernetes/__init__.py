"""The `kubernetes` backend: rack-aware KRaft clusters on a Kubernetes cluster (see docs/kubernetes.md).

`target` is where a cluster goes, `layout` which KRaft nodes it has, `render` every object it needs
(pure, so plans need no reachable target) and `backend` applies them with server-side apply.
"""

# Kubernetes releases whose API the rendered objects are validated against (tests, kubernetes-validate).
SUPPORTED_KUBERNETES_VERSIONS = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
