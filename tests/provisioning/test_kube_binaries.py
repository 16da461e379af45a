"""How the tests' Kubernetes binaries are built (tests/support/kube_binaries.py); the build itself is
proven by every test that starts the control plane."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import kube_binaries
from tests.support.kube_binaries import build_go_mod, etcd_go_mod, required_version, staging_modules

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


def test_two_builds_at_once_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock and the rename: a second caller waits for the first build and takes its result."""
    monkeypatch.setenv("KUBE_BINARIES_CACHE_DIR", str(tmp_path))
    builds: list[Path] = []

    def fake_build(version: str, out: Path, *, log: object) -> None:
        builds.append(out)
        time.sleep(0.5)  # long enough for the other caller to arrive while this one builds
        (out / "bin").mkdir()
        for name in kube_binaries.BINARIES:
            (out / "bin" / name).write_text("")
        (out / kube_binaries.MARKER).write_text(json.dumps({"kubernetes": version}))

    monkeypatch.setattr(kube_binaries, "_build", fake_build)
    with ThreadPoolExecutor(2) as pool:
        homes = list(pool.map(lambda _: kube_binaries.ensure("9.9.9", log=lambda _: None).home, range(2)))
    assert len(builds) == 1
    assert homes == [tmp_path / "9.9.9"] * 2
    assert (tmp_path / "9.9.9" / kube_binaries.MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".9.9.9.lock", "9.9.9"]  # no scratch left


SERVER_GO_MOD = """module go.etcd.io/etcd/server/v3

go 1.26

require go.etcd.io/etcd/api/v3 v3.7.0

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/pkg/v3 => ../client/pkg
)
"""


def test_etcd_is_the_version_kubernetes_is_built_against() -> None:
    kubernetes_go_mod = (
        "require (\n\tgo.etcd.io/etcd/client/v3 v3.7.0\n\tgo.etcd.io/etcd/server/v3 v3.7.0 // indirect\n)\n"
    )
    assert required_version(kubernetes_go_mod, "go.etcd.io/etcd/server/v3") == "v3.7.0"
    go_mod = etcd_go_mod("v3.7.0", SERVER_GO_MOD)
    assert "require go.etcd.io/etcd/server/v3 v3.7.0\n" in go_mod
    assert "\tgo.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.7.0\n" in go_mod
    assert "\tgo.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v3.7.0\n" in go_mod
