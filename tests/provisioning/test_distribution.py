"""Obtaining Apache Kafka: the official tarball from a mirror, or the layout assembled from Maven Central.

The tarball tests serve a real release-shaped archive from a local HTTP server: the Apache mirrors are
out of reach from these machines, so what they prove is the download, verification, unpacking and
fallback logic, not that downloads.apache.org answers as served here. The Maven source runs real Maven
against Maven Central.
"""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning import distribution
from provisioning.distribution import DistributionConfig, DistributionError, maven, tarball
from provisioning.distribution.launchers import TOOLS

pytestmark = pytest.mark.slow

VERSION = distribution.DEFAULT_VERSION


class Mirror:
    """Files served over HTTP on loopback; counts the requests per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: dict[str, int] = {}
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(mirror.root), **kwargs)  # type: ignore[arg-type]

            def do_GET(self) -> None:
                mirror.requests[self.path] = mirror.requests.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kafka"


@pytest.fixture
def release(tmp_path: Path, kafka_distributions) -> Path:  # type: ignore[no-untyped-def]
    """kafka_2.13-<v>.tgz in Apache's layout, built from the Maven-assembled distribution."""
    home = kafka_distributions(VERSION).home
    archive = tmp_path / "mirror" / "kafka" / VERSION / tarball.archive_name(VERSION)
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for part in ("bin", "config", "libs"):
            tar.add(home / part, arcname=f"kafka_2.13-{VERSION}/{part}")
    return archive


def publish_checksum(archive: Path, digest: str | None = None) -> None:
    """The .sha512 in GnuPG's --print-md layout, as Apache publishes it."""
    digest = (digest or hashlib.sha512(archive.read_bytes()).hexdigest()).upper()
    groups = " ".join(digest[i : i + 8] for i in range(0, 128, 8))
    (archive.parent / (archive.name + ".sha512")).write_text(
        f"{archive.name}: {groups[:80]}\n  {groups[80:]}\n"
    )


@pytest.fixture
def mirror(release: Path) -> Iterator[Mirror]:
    served = Mirror(release.parents[2])
    yield served
    served.server.shutdown()


def test_sha512_files_in_both_published_layouts_are_read() -> None:
    digest = hashlib.sha512(b"kafka").hexdigest()
    name = "kafka_2.13-4.4.0.tgz"
    gpg = f"{name}: " + " ".join(digest[i : i + 8].upper() for i in range(0, 128, 8))
    assert tarball.parse_sha512(gpg, name) == digest
    assert tarball.parse_sha512(f"{digest}  {name}\n", name) == digest
    with pytest.raises(DistributionError, match="holds no SHA-512 digest"):
        tarball.parse_sha512("<html>404</html>", name)


def test_the_official_tarball_is_verified_and_cached(release: Path, mirror: Mirror, tmp_path: Path) -> None:
    publish_checksum(release)
    config = DistributionConfig(cache_dir=tmp_path / "cache", sources=("tarball",), mirrors=(mirror.url,))
    found = distribution.ensure(VERSION, config)
    assert (found.source, found.origin) == ("tarball", tarball.archive_url(mirror.url, VERSION))
    assert found.home == tmp_path / "cache" / VERSION
    assert found.script("kafka-server-start.sh").is_file()
    assert distribution.ensure(VERSION, config) == found
    assert mirror.requests[f"/kafka/{VERSION}/{release.name}"] == 1, "the second call uses the cache"


def test_a_tarball_that_does_not_match_its_checksum_is_refused(
    release: Path, mirror: Mirror, tmp_path: Path
) -> None:
    publish_checksum(release, digest="0" * 128)
    config = DistributionConfig(
        cache_dir=tmp_path / "cache", sources=("tarball", "maven"), mirrors=(mirror.url,)
    )
    with pytest.raises(DistributionError, match=r"published checksum is 0000.*refusing"):
        distribution.ensure(VERSION, config)
    assert distribution.installed(VERSION, config) is None, "nothing half-fetched looks usable"
    assert not list((tmp_path / "cache").glob(".partial-*"))


def test_an_unreachable_mirror_falls_back_to_maven_central(tmp_path: Path) -> None:
    config = DistributionConfig(cache_dir=tmp_path / "cache", mirrors=("http://127.0.0.1:9/kafka",))
    lines: list[str] = []
    found = distribution.ensure(VERSION, config, progress=lines.append)
    assert (found.source, found.origin) == ("maven", "Maven Central")
    assert any("tarball source unavailable" in line and "127.0.0.1:9" in line for line in lines)
    libs = sorted(p.name for p in (found.home / "libs").iterdir())
    assert libs == sorted(jar.file_name for jar in maven.read_lock(VERSION))


def test_no_source_answers_with_every_reason(tmp_path: Path) -> None:
    config = DistributionConfig(
        cache_dir=tmp_path / "cache", mirrors=("http://127.0.0.1:9/kafka",), maven="no-such-mvn"
    )
    with pytest.raises(DistributionError) as failure:
        distribution.ensure(VERSION, config)
    message = str(failure.value)
    assert f"Apache Kafka {VERSION} could not be fetched from any source" in message
    assert (
        f"tarball: http://127.0.0.1:9/kafka/{VERSION}/kafka_2.13-{VERSION}.tgz.sha512 could not be" in message
    )
    assert "maven: Maven (no-such-mvn) is not installed" in message

    with pytest.raises(DistributionError, match=r"maven: Apache Kafka 4\.0\.99 has no Maven lock file"):
        distribution.ensure("4.0.99", config)


def test_two_processes_fetching_at_once_get_one_copy(release: Path, mirror: Mirror, tmp_path: Path) -> None:
    publish_checksum(release)
    script = (
        "import sys; from pathlib import Path; from provisioning import distribution as d; "
        "c = d.DistributionConfig(cache_dir=Path(sys.argv[1]), sources=('tarball',), mirrors=(sys.argv[2],)); "
        "print(d.ensure(sys.argv[3], c).home)"
    )
    command = [
        str(Path(__import__("sys").executable)),
        "-c",
        script,
        str(tmp_path / "cache"),
        mirror.url,
        VERSION,
    ]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    homes = {p.communicate(timeout=300)[0].strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert homes == {str(tmp_path / "cache" / VERSION)}
    assert mirror.requests[f"/kafka/{VERSION}/{release.name}"] == 1


def test_a_jar_not_matching_the_lock_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    text = maven.lock_path(VERSION).read_text().splitlines()
    tampered = [
        line if "kafka-clients" not in line else line.rsplit(" ", 1)[0] + " " + "f" * 64 for line in text
    ]
    (locks / f"kafka-{VERSION}.lock").write_text("\n".join(tampered) + "\n")
    monkeypatch.setattr(maven, "LOCKS_DIR", locks)
    config = DistributionConfig(cache_dir=tmp_path / "cache", sources=("maven",))
    with pytest.raises(DistributionError, match=r"kafka-clients:\S+ from Maven Central has SHA-256 \w+, but"):
        distribution.ensure(VERSION, config)
    assert distribution.installed(VERSION, config) is None


@pytest.mark.parametrize("version", distribution.SUPPORTED_VERSIONS)
def test_every_supported_version_is_pinned_and_its_tools_run(version: str, kafka_distributions) -> None:  # type: ignore[no-untyped-def]
    jars = maven.read_lock(version)
    assert any(j.coordinates == f"org.apache.kafka:kafka_2.13:{version}" for j in jars)
    home = kafka_distributions(version).home
    assert distribution.from_home(home).version == version
    scripts = {p.name for p in (home / "bin").iterdir()}
    assert set(TOOLS) <= scripts
    result = subprocess.run(
        [str(home / "bin" / "kafka-topics.sh"), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(version)
    uuid = subprocess.run(
        [str(home / "bin" / "kafka-storage.sh"), "random-uuid"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert len(uuid.stdout.strip()) == 22


def test_kafka_home_must_look_like_a_distribution(tmp_path: Path) -> None:
    with pytest.raises(DistributionError, match="not an unpacked Apache Kafka distribution"):
        distribution.from_home(tmp_path)
    with pytest.raises(DistributionError, match="not an Apache Kafka release version"):
        distribution.installed("../etc", DistributionConfig(cache_dir=tmp_path))
