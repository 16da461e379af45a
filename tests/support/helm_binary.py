"""The `helm` binary the chart's tests render and install with, built from its Go module and cached.

No Helm is packaged for the registries these machines reach, but the Go module proxy serves
`helm.sh/helm/v4`, whose go.mod replaces nothing, so `go install` builds the real command (about six
minutes on two cores the first time, seconds once Go's build cache is warm).

    python -m tests.support.helm_binary build     # what `make test` runs, beside kube_binaries

The binary lands in `~/.cache/kafka-control-plane/helm/<version>/helm` (`HELM_CACHE_DIR` overrides the
parent). Like tests.support.kube_binaries, a build runs at the lowest CPU priority under a file lock, in
a scratch directory renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provisioning.backends.local_process import file_lock
from tests.support.kube_binaries import KubeBuildError, tool_cache_dir

HELM_MODULE = "helm.sh/helm/v4"
HELM_VERSION = "4.3.2"
BUILD_TIMEOUT_SECONDS = 1800


def cache_dir() -> Path:
    return tool_cache_dir("helm", "HELM_CACHE_DIR")


def installed(version: str = HELM_VERSION) -> Path | None:
    binary = cache_dir() / version / "helm"
    return binary if binary.is_file() else None


def ensure(version: str = HELM_VERSION, *, log=print) -> Path:  # type: ignore[no-untyped-def]
    """The `helm` of `version`, built first if this machine has none yet."""
    found = installed(version)
    if found is not None:
        return found
    cache_dir().mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir() / f".{version}.lock"):
        found = installed(version)  # another process may have built it while we waited
        if found is not None:
            return found
        go = shutil.which("go")
        if go is None:
            raise KubeBuildError(
                "the Go toolchain is needed to build helm (on Debian: apt-get install golang)"
            )
        log(f"building helm {version} from {HELM_MODULE} (minutes, once) ...")
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache_dir()))
        try:
            stamp = "helm.sh/helm/v4/internal/version"
            result = subprocess.run(
                [
                    "nice",
                    "-n",
                    "19",
                    go,
                    "install",
                    "-trimpath",
                    "-ldflags",
                    f"-s -w -X {stamp}.version=v{version} -X {stamp}.gitTreeState=clean",
                    f"{HELM_MODULE}/cmd/helm@v{version}",
                ],
                cwd=scratch,
                env={**os.environ, "GOBIN": str(scratch), "GOFLAGS": ""},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_SECONDS,
            )
            if result.returncode != 0 or not (scratch / "helm").is_file():
                raise KubeBuildError(f"building helm {version} failed:\n{result.stderr[-4000:]}")
            home = cache_dir() / version
            if home.exists():
                shutil.rmtree(home)
            scratch.rename(home)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"built helm {version} in {round(time.monotonic() - started)} s into {home}")
        return home / "helm"


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.support.helm_binary build", file=sys.stderr)
        return 2
    try:
        helm = ensure(log=lambda message: print(message, flush=True))
    except KubeBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"helm {HELM_VERSION} at {helm}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
