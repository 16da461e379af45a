"""Command line: fetch distributions ahead of time (`make kafka`), or write a version's lock file.

    python -m provisioning.distribution fetch [VERSION ...]   # default: the default version
    python -m provisioning.distribution lock VERSION ...      # maintainers: pin a new version's jars
    python -m provisioning.distribution list                  # supported versions and what is cached

Settings come from the environment as for the control plane (KAFKA_DISTRIBUTION_CACHE_DIR,
KAFKA_DISTRIBUTION_SOURCES, KAFKA_MIRROR_URLS, MAVEN).
"""

from __future__ import annotations

import os
import sys
import time

from provisioning.distribution import (
    DEFAULT_MIRRORS,
    DEFAULT_VERSION,
    SOURCES,
    SUPPORTED_VERSIONS,
    DistributionConfig,
    DistributionError,
    default_cache_dir,
    ensure,
    installed,
    maven,
    parse_sources,
)


def config_from_environment() -> DistributionConfig:
    from pathlib import Path

    return DistributionConfig(
        cache_dir=Path(os.environ.get("KAFKA_DISTRIBUTION_CACHE_DIR") or default_cache_dir()),
        sources=parse_sources(os.environ.get("KAFKA_DISTRIBUTION_SOURCES") or ",".join(SOURCES)),
        mirrors=parse_sources(os.environ.get("KAFKA_MIRROR_URLS") or ",".join(DEFAULT_MIRRORS)),
        maven=os.environ.get("MAVEN") or "mvn",
    )


def main(argv: list[str]) -> int:
    command, *versions = argv or ["fetch"]
    try:
        config = config_from_environment()
        if command == "fetch":
            for version in versions or [DEFAULT_VERSION]:
                started = time.monotonic()
                found = installed(version, config)
                if found is None:
                    print(
                        f"fetching Apache Kafka {version} (sources: {', '.join(config.sources)}) ...",
                        flush=True,
                    )
                    found = ensure(version, config, progress=lambda line: print(f"  {line}", flush=True))
                    took = f" in {time.monotonic() - started:.0f} s"
                else:
                    took = " (already cached)"
                print(f"Apache Kafka {version}: {found.home} from {found.origin or found.source}{took}")
        elif command == "lock":
            for version in versions:
                path = maven.lock_path(version)
                path.write_text(maven.lock_text(version, maven=config.maven))
                print(f"wrote {path}")
        elif command == "list":
            for version in SUPPORTED_VERSIONS:
                found = installed(version, config)
                where = f"cached at {found.home}" if found else "not fetched yet"
                print(f"{version}{' (default)' if version == DEFAULT_VERSION else ''}: {where}")
        else:
            print(__doc__)
            return 2
    except DistributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
