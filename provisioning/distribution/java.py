"""Finding a Java runtime that can run Apache Kafka brokers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Apache Kafka 4.x brokers and tools need Java 17 (KIP-1013); 3.9 runs on 11, but one minimum keeps
# every supported version runnable by the same runtime.
MINIMUM_JAVA = 17

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class JavaRuntime:
    executable: Path
    major: int

    @property
    def home(self) -> Path:
        """JAVA_HOME for launchers: the directory above `bin/java` (symlinks resolved)."""
        return self.executable.resolve().parent.parent


def java_major(executable: Path) -> int | None:
    """The feature release of a `java` executable (8 for "1.8.0_x", 17 for "17.0.15")."""
    try:
        result = subprocess.run(
            [str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(minimum: int = MINIMUM_JAVA) -> JavaRuntime | None:
    """`$JAVA_HOME/bin/java`, else `java` on PATH, when it is at least `minimum`; None otherwise."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        major = java_major(candidate)
        if major is not None and major >= minimum:
            return JavaRuntime(candidate, major)
    return None


def no_java_message(minimum: int = MINIMUM_JAVA) -> str:
    return (
        f"no Java {minimum} or newer was found (JAVA_HOME, or java on PATH); Apache Kafka needs one "
        f"(on Debian: apt-get install openjdk-{minimum}-jre-headless)"
    )
