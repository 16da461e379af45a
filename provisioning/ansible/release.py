"""The Kafka release the control plane pushes to VMs: a tarball of a cached distribution.

Hosts that cannot download from an Apache mirror get the release from the control plane instead: the
distribution `provisioning.distribution` keeps (official tarball unpacked, or assembled from Maven
Central) is packed with the official tarball's layout (one top directory, `kafka_2.13-<version>/`),
so the playbooks unpack both alike. The archive is byte-for-byte reproducible (sorted entries, fixed
times and owners, no gzip timestamp): pushing it again finds the same file on the host and changes
nothing, and its SHA-512, which the playbook verifies, is stable.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from provisioning.distribution import MARKER, KafkaDistribution

FIXED_MTIME = 1_700_000_000  # any fixed time: the archive's bytes must not depend on when it was made


@dataclass(frozen=True)
class ReleaseArchive:
    version: str
    path: Path
    sha512: str


def archive_name(version: str) -> str:
    return f"kafka_2.13-{version}.tgz"


def release_archive(distribution: KafkaDistribution, archive_dir: Path) -> ReleaseArchive:
    """The archive of `distribution` under `archive_dir`, packed on first use."""
    path = archive_dir / archive_name(distribution.version)
    checksum = path.with_name(path.name + ".sha512")
    if path.is_file() and checksum.is_file():
        return ReleaseArchive(distribution.version, path, checksum.read_text().split()[0])
    archive_dir.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    top = f"kafka_2.13-{distribution.version}"
    with (
        open(scratch, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for source in _files(distribution.home):
            relative = source.relative_to(distribution.home)
            info = tar.gettarinfo(str(source), arcname=f"{top}/{relative}")
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.pax_headers = {}
            if info.isfile():
                with open(source, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
    digest = hashlib.sha512()
    with open(scratch, "rb") as packed:
        for block in iter(lambda: packed.read(1 << 20), b""):
            digest.update(block)
    scratch.rename(path)  # the checksum file is written last: together they mark a complete archive
    checksum.write_text(f"{digest.hexdigest()}  {path.name}\n")
    return ReleaseArchive(distribution.version, path, digest.hexdigest())


def _files(home: Path) -> list[Path]:
    """Every directory and file of the distribution in a stable order, without the cache's marker."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(home):
        subdirectories.sort()
        base = Path(directory)
        if base != home:
            found.append(base)
        found.extend(base / name for name in sorted(files) if not (base == home and name == MARKER))
    return found
