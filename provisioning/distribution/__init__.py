"""Obtaining Apache Kafka: a distribution per version, with Kafka's layout (`bin/`, `libs/`, `config/`).

Every backend that runs real brokers gets its distribution here. Two sources, tried in the configured
order, each verified:
- `tarball`: the official `kafka_2.13-<version>.tgz` from a mirror, checked against its published
  SHA-512 (`tarball.py`), which is how real installations and the broker image get Kafka;
- `maven`: the same layout assembled from Maven Central with Maven, every jar pinned by a checksum
  kept in this repository (`maven.py`), which is how machines without the Apache mirrors get it.

Distributions are cached per version under a cache directory. A fetch builds into a scratch directory
beside the cache and renames it into place only when complete, under a per-version file lock, so two
processes fetching at once get one copy and a fetch killed half-way leaves nothing that looks usable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.backends.local_process import file_lock
from provisioning.distribution import maven, tarball
from provisioning.distribution.errors import DistributionError, SourceUnavailableError

# Apache's support window as served on Maven Central: the newest three 4.x minor lines, and 3.9.x, the
# bridge release clusters coming from 3.x upgrade through. Newest first; the first is the default.
SUPPORTED_VERSIONS: tuple[str, ...] = ("4.4.0", "4.3.2", "4.2.2", "3.9.2")
DEFAULT_VERSION = SUPPORTED_VERSIONS[0]

SOURCE_TARBALL = "tarball"
SOURCE_MAVEN = "maven"
SOURCES = (SOURCE_TARBALL, SOURCE_MAVEN)
DEFAULT_MIRRORS = ("https://downloads.apache.org/kafka", "https://archive.apache.org/dist/kafka")
MARKER = ".kcp-distribution.json"

__all__ = [
    "DEFAULT_VERSION",
    "SUPPORTED_VERSIONS",
    "DistributionConfig",
    "DistributionError",
    "KafkaDistribution",
    "SourceUnavailableError",
    "ensure",
    "from_home",
    "installed",
]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kafka-control-plane" / "kafka"


@dataclass(frozen=True)
class DistributionConfig:
    cache_dir: Path = field(default_factory=default_cache_dir)
    sources: tuple[str, ...] = SOURCES
    mirrors: tuple[str, ...] = DEFAULT_MIRRORS
    maven: str = "mvn"
    download_timeout: float = 60.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise DistributionError(
                f"unknown distribution source(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(SOURCES)}"
            )


@dataclass(frozen=True)
class KafkaDistribution:
    version: str
    home: Path
    source: str  # tarball, maven, or kafka_home (a distribution the operator pointed at)
    origin: str = ""  # where it came from (URL, Maven Central, a path)

    def script(self, name: str) -> Path:
        return self.home / "bin" / name


def _version_dir(config: DistributionConfig, version: str) -> Path:
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise DistributionError(f"{version!r} is not an Apache Kafka release version like {DEFAULT_VERSION}")
    return config.cache_dir / version


def installed(version: str, config: DistributionConfig) -> KafkaDistribution | None:
    """The cached distribution of `version`, when a complete one is there."""
    home = _version_dir(config, version)
    try:
        marker = json.loads((home / MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not (home / "bin" / "kafka-server-start.sh").is_file():
        return None
    return KafkaDistribution(version, home, marker.get("source", ""), marker.get("origin", ""))


def ensure(
    version: str, config: DistributionConfig, *, progress: Callable[[str], None] | None = None
) -> KafkaDistribution:
    """The distribution of `version`, fetched into the cache first if it is not there yet."""
    home = _version_dir(config, version)
    found = installed(version, config)
    if found is not None:
        return found
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(config.cache_dir / ".locks" / f"{version}.lock"):
        found = installed(version, config)  # fetched by another process while this one waited
        if found is not None:
            return found
        failures: list[str] = []
        for source in config.sources:
            scratch = config.cache_dir / f".partial-{version}-{source}-{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                origin = _fetch(source, version, scratch / "home", config, progress)
                _write_marker(scratch / "home", version, source, origin)
                shutil.rmtree(home, ignore_errors=True)  # an incomplete leftover without a marker
                (scratch / "home").rename(home)
            except SourceUnavailableError as exc:
                failures.append(f"{source}: {exc}")
                if progress is not None:
                    progress(f"{source} source unavailable: {exc}")
                continue
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            found = installed(version, config)
            assert found is not None
            return found
    raise DistributionError(
        f"Apache Kafka {version} could not be fetched from any source: " + "; ".join(failures)
    )


def _fetch(
    source: str,
    version: str,
    home: Path,
    config: DistributionConfig,
    progress: Callable[[str], None] | None,
) -> str:
    home.parent.mkdir(parents=True, exist_ok=True)
    if source == SOURCE_TARBALL:
        return tarball.download(
            version, home, mirrors=config.mirrors, timeout=config.download_timeout, progress=progress
        )
    maven.assemble(version, home, maven=config.maven, progress=progress)
    return "Maven Central"


def _write_marker(home: Path, version: str, source: str, origin: str) -> None:
    marker = {"version": version, "source": source, "origin": origin, "fetched_at": time.time()}
    (home / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def from_home(path: Path) -> KafkaDistribution:
    """A distribution the operator unpacked (`KAFKA_HOME`); its version is read from `libs/`."""
    jars = sorted(Path(path).glob("libs/kafka_2.13-*.jar")) + sorted(Path(path).glob("libs/kafka_2.12-*.jar"))
    versions = {
        m.group(1) for jar in jars if (m := re.fullmatch(r"kafka_2\.1[23]-(\d+\.\d+\.\d+)\.jar", jar.name))
    }
    if not (Path(path) / "bin" / "kafka-server-start.sh").is_file() or len(versions) != 1:
        raise DistributionError(
            f"{path} is not an unpacked Apache Kafka distribution (bin/kafka-server-start.sh and one "
            f"libs/kafka_2.13-<version>.jar are expected)"
        )
    return KafkaDistribution(versions.pop(), Path(path), "kafka_home", str(path))


def parse_sources(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())
