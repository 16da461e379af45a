"""Shared output for benchmarks: an aligned text table on stdout and a JSON file under results/."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, object]:
    """Enough about the machine to compare runs: CPU, cores, memory, Python."""
    info: dict[str, object] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    memory = _memory_bytes()
    if memory:
        info["memory_gb"] = round(memory / 2**30, 1)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """Columns in order of first appearance; numbers right-aligned, text left-aligned."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(column), int | float) or row.get(column) is None for row in rows)
        for column in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    header = line(columns)
    rule = "  ".join("-" * width for width in widths)
    return "\n".join([header, rule, *(line(values) for values in cells)])


def write_report(
    name: str,
    rows: list[dict[str, object]],
    *,
    meta: dict[str, object] | None = None,
    directory: Path | None = None,
) -> Path:
    """Print `rows` as a table and write `<directory or results>/<name>.json`; returns the path."""
    print(format_table(rows), file=sys.stdout, flush=True)
    target = (directory or RESULTS_DIR) / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "meta": meta or {},
        "rows": rows,
    }
    target.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return target
