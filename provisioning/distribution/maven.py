"""Apache Kafka's layout assembled from Maven Central with Maven: the source these machines have.

Each supported version has a lock file in `locks/`: every jar of the distribution's `libs/`, pinned by
coordinates and SHA-256. Assembling resolves exactly those artifacts (no transitive resolution, so a
republished or newly added dependency changes nothing), checks every checksum, copies the jars into
`libs/` and writes the launchers (`launchers.py`). `lock_text` makes a lock file for a new version by
resolving Kafka's own dependency tree once.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from provisioning.distribution.errors import DistributionError, SourceUnavailableError
from provisioning.distribution.launchers import write_launchers

LOCKS_DIR = Path(__file__).parent / "locks"
# Pinned so a new plugin release cannot change how the artifacts are listed.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# The broker (kafka.Kafka, kafka.tools.StorageTool) and the command-line tools.
ROOT_ARTIFACTS = (
    "org.apache.kafka:kafka_2.13",
    "org.apache.kafka:kafka-tools",
    "org.apache.kafka:kafka-storage",
)
# Kafka 4.x logs through Log4j 2; the SLF4J binding is a runtime-only part of the release tarball,
# absent from the published POMs, so without it a broker would log nothing at all.
LOG4J2_CORE = "org.apache.logging.log4j:log4j-core"
LOG4J2_SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl"
MAVEN_TIMEOUT_SECONDS = 1800.0

# "   group:artifact:jar:version:scope:/absolute/path.jar -- module name" (dependency:list output).
_LISTED = re.compile(r"^\s*([^:\s]+):([^:\s]+):jar:([^:\s]+):(?:compile|runtime):(/\S+\.jar)")


@dataclass(frozen=True)
class LockedJar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"


def lock_path(version: str) -> Path:
    return LOCKS_DIR / f"kafka-{version}.lock"


def read_lock(version: str) -> tuple[LockedJar, ...]:
    path = lock_path(version)
    if not path.is_file():
        raise SourceUnavailableError(
            f"Apache Kafka {version} has no Maven lock file ({path.name}); supported versions have one "
            f"(python -m provisioning.distribution lock {version} makes it)"
        )
    jars = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        coordinates, sha256 = line.split()
        group, artifact, jar_version = coordinates.split(":")
        jars.append(LockedJar(group, artifact, jar_version, sha256))
    return tuple(jars)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pom(coordinates: Iterable[str], *, transitive: bool) -> str:
    exclusions = (
        ""
        if transitive
        else "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
    )
    dependencies = "\n".join(
        f"    <dependency><groupId>{escape(g)}</groupId><artifactId>{escape(a)}</artifactId>"
        f"<version>{escape(v)}</version>{exclusions}</dependency>"
        for g, a, v in (c.split(":") for c in coordinates)
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kafka-control-plane</groupId>
  <artifactId>kafka-distribution</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


def resolve(
    coordinates: Iterable[str],
    *,
    transitive: bool,
    maven: str = "mvn",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Resolve artifacts into the local Maven repository; returns `group:artifact:version` -> jar."""
    if shutil.which(maven) is None:
        raise SourceUnavailableError(f"Maven ({maven}) is not installed (on Debian: apt-get install maven)")
    with tempfile.TemporaryDirectory(prefix="kcp-maven-") as workdir:
        (Path(workdir) / "pom.xml").write_text(_pom(coordinates, transitive=transitive))
        listing = Path(workdir) / "resolved.txt"
        command = [
            maven,
            "--batch-mode",
            f"{DEPENDENCY_PLUGIN}:list",
            "-DincludeScope=runtime",
            "-DoutputAbsoluteArtifactFilename=true",
            f"-DoutputFile={listing}",
        ]
        errors = _run_maven(command, Path(workdir), progress)
        if errors is not None:
            raise SourceUnavailableError(
                f"Maven could not resolve the artifacts from Maven Central: {errors}"
            )
        resolved: dict[str, Path] = {}
        for line in listing.read_text().splitlines():
            match = _LISTED.match(line)
            if match:
                group, artifact, version, path = match.groups()
                resolved[f"{group}:{artifact}:{version}"] = Path(path)
    return resolved


def _run_maven(command: list[str], workdir: Path, progress: Callable[[str], None] | None) -> str | None:
    """Run Maven, passing each downloaded jar to `progress`; the error lines when it fails."""
    errors: list[str] = []
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    downloaded = 0
    try:
        for line in process.stdout:
            if line.startswith("Downloaded from") and ".jar " in line:
                downloaded += 1
                if progress is not None:
                    name = line.split()[3].rsplit("/", 1)[-1]
                    progress(f"downloaded {name} ({downloaded} jar(s) so far)")
            elif line.startswith("[ERROR]") and line.strip() != "[ERROR]":
                errors.append(line[len("[ERROR]") :].strip())
        process.wait(timeout=MAVEN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return f"gave up after {MAVEN_TIMEOUT_SECONDS:.0f} s"
    if process.returncode != 0:
        return " / ".join(errors[:3]) or f"mvn exited with status {process.returncode}"
    return None


def lock_text(version: str, *, maven: str = "mvn") -> str:
    """The lock file of `version`: Kafka's runtime dependency tree, resolved once, with checksums."""
    roots = [f"{artifact}:{version}" for artifact in ROOT_ARTIFACTS]
    resolved = resolve(roots, transitive=True, maven=maven)
    log4j_core = next((c for c in resolved if c.startswith(LOG4J2_CORE + ":")), None)
    if log4j_core is not None:
        binding = f"{LOG4J2_SLF4J_BINDING}:{log4j_core.rsplit(':', 1)[1]}"
        resolved |= resolve([*roots, binding], transitive=True, maven=maven)
    names = [f"{c.split(':')[1]}-{c.split(':')[2]}.jar" for c in resolved]
    if len(set(names)) != len(names):
        raise DistributionError(f"two artifacts of Kafka {version} share a file name; libs/ cannot hold both")
    lines = [
        f"# Apache Kafka {version}: every jar of libs/, assembled from Maven Central, with its SHA-256.",
        f"# Made by: python -m provisioning.distribution lock {version}",
    ]
    lines += [f"{c} {sha256_of(path)}" for c, path in sorted(resolved.items())]
    return "\n".join(lines) + "\n"


def assemble(
    version: str, home: Path, *, maven: str = "mvn", progress: Callable[[str], None] | None = None
) -> None:
    """Build Kafka's layout for `version` under `home` (which must not exist yet)."""
    jars = read_lock(version)
    if progress is not None:
        progress(f"resolving {len(jars)} pinned jars of Apache Kafka {version} from Maven Central")
    resolved = resolve([j.coordinates for j in jars], transitive=False, maven=maven, progress=progress)
    libs = home / "libs"
    libs.mkdir(parents=True)
    for jar in jars:
        path = resolved.get(jar.coordinates)
        if path is None:
            raise SourceUnavailableError(f"Maven did not resolve {jar.coordinates}")
        actual = sha256_of(path)
        if actual != jar.sha256:
            raise DistributionError(
                f"{jar.coordinates} from Maven Central has SHA-256 {actual}, but {lock_path(version).name} "
                f"pins {jar.sha256}; refusing to use it (delete it from ~/.m2 to download it again)"
            )
        shutil.copyfile(path, libs / jar.file_name)
    write_launchers(home)
