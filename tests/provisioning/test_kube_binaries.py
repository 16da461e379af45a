"""How the tests' Kubernetes binaries are built (tests/support/kube_binaries.py); the build itself is
proven by every test that starts the control plane."""

from __future__ import annotations

from tests.support.kube_binaries import build_go_mod, staging_modules

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
)
"""


def test_every_staging_module_is_replaced_by_its_published_version() -> None:
    assert staging_modules(KUBERNETES_GO_MOD) == [
        "k8s.io/api",
        "k8s.io/apimachinery",
        "k8s.io/sample-controller",
    ]
    go_mod = build_go_mod("1.37.2", KUBERNETES_GO_MOD)
    assert "go 1.26.0\n" in go_mod
    assert "require k8s.io/kubernetes v1.37.2\n" in go_mod
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in go_mod
    assert "\tk8s.io/apimachinery => k8s.io/apimachinery v0.37.2\n" in go_mod
    # The samples are not published at every version and no command imports them.
    assert "sample-controller" not in go_mod
