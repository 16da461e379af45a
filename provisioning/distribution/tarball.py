"""The official binary release, `kafka_2.13-<version>.tgz`, checked against its published SHA-512.

This is how real installations obtain Kafka (the VM playbooks and the broker image do the same). The
`.sha512` file comes from the same mirror; Apache publishes it either in GnuPG's `--print-md` layout
(`file: 3A1C 5F6B ...` over several lines) or in `sha512sum`'s (`<hex>  file`), and both are read.
A mirror that cannot be reached or lacks the version is "unavailable" (the next source is tried); a
download whose digest does not match is an error, never silently replaced by another source.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from provisioning.distribution.errors import DistributionError, SourceUnavailableError

SCALA_VERSION = "2.13"
CHUNK = 1 << 20


def archive_name(version: str) -> str:
    return f"kafka_{SCALA_VERSION}-{version}.tgz"


def archive_url(mirror: str, version: str) -> str:
    return f"{mirror.rstrip('/')}/{version}/{archive_name(version)}"


def parse_sha512(text: str, file_name: str) -> str:
    """The hex digest in an Apache `.sha512` file, lower-case."""
    digest = re.sub(r"\s+", "", text.replace(file_name, "").replace(":", "")).lower()
    if not re.fullmatch(r"[0-9a-f]{128}", digest):
        raise DistributionError(f"the checksum file of {file_name} holds no SHA-512 digest: {text[:200]!r}")
    return digest


def _open(url: str, timeout: float):  # type: ignore[no-untyped-def]
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise SourceUnavailableError(f"{url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceUnavailableError(f"{url} could not be reached: {reason}") from exc


def download(
    version: str,
    home: Path,
    *,
    mirrors: Sequence[str],
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Download, verify and unpack the release into `home` (which must not exist yet); returns the URL
    it came from. Mirrors are tried in order until one has the version."""
    unavailable: list[str] = []
    for mirror in mirrors:
        url = archive_url(mirror, version)
        try:
            _download_from(url, version, home, timeout=timeout, progress=progress)
        except SourceUnavailableError as exc:
            unavailable.append(str(exc))
            continue
        return url
    raise SourceUnavailableError("; ".join(unavailable) or "no mirror is configured")


def _download_from(
    url: str, version: str, home: Path, *, timeout: float, progress: Callable[[str], None] | None
) -> None:
    with _open(url + ".sha512", timeout) as response:
        expected = parse_sha512(response.read(64 * 1024).decode("utf-8", "replace"), archive_name(version))
    with tempfile.TemporaryDirectory(prefix="kcp-tarball-", dir=home.parent) as scratch:
        archive = Path(scratch) / archive_name(version)
        digest = hashlib.sha512()
        with _open(url, timeout) as response, archive.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            received = reported = 0
            try:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    if progress is not None and total and received * 10 // total > reported:
                        reported = received * 10 // total
                        progress(f"{archive_name(version)}: {received * 100 // total}% of {total >> 20} MiB")
            except OSError as exc:
                raise SourceUnavailableError(f"downloading {url} broke off: {exc}") from exc
        if digest.hexdigest() != expected:
            raise DistributionError(
                f"{url} has SHA-512 {digest.hexdigest()}, but its published checksum is {expected}; "
                f"refusing to use it"
            )
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        top = unpacked / archive_name(version).removesuffix(".tgz")
        if not (top / "bin" / "kafka-server-start.sh").is_file():
            raise DistributionError(
                f"{url} does not have Apache Kafka's layout (no {top.name}/bin/kafka-server-start.sh)"
            )
        shutil.move(top, home)
