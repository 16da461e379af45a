"""`make bench`: every benchmark in turn, each printing its table and writing bench/results/<name>.json.

    .venv/bin/python -m bench                 # all of them
    .venv/bin/python -m bench placement       # some of them, by name

Each runs in its own process, so one benchmark's memory and caches do not colour the next one's.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["placement", "operations", "cluster_list", "monitoring_fleet", "detection_latency", "scale_out"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
