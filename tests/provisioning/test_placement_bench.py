"""The placement benchmark's Kafka baseline and the shared report helper."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.placement import compare, kafka_assign, kafka_rack_alternated, missed_targets
from bench.report import format_table, write_report
from provisioning.placement import place_brokers

# The example from the documentation of Kafka's rack-aware assignment.
DOCUMENTED = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}


def test_baseline_follows_kafkas_documented_example() -> None:
    assert kafka_rack_alternated(DOCUMENTED) == [0, 3, 1, 5, 4, 2]
    result = kafka_assign(DOCUMENTED, 7, 3, random.Random(0), fixed_start=0)
    assert result[:6] == [[0, 3, 1], [3, 1, 5], [1, 5, 4], [5, 4, 2], [4, 2, 0], [2, 0, 3]]
    # After a full round the followers shift instead of repeating partition 0's list.
    assert result[6] == [0, 4, 2]


def test_baseline_keeps_racks_distinct() -> None:
    brokers = place_brokers(["a", "b", "c"], 12)
    for replicas in kafka_assign(brokers, 200, 3, random.Random(1)):
        assert len({brokers[b] for b in replicas}) == 3


def test_compare_reports_both_engines() -> None:
    old = place_brokers(["a", "b", "c"], 6)
    current = {("t", i): r for i, r in enumerate(kafka_assign(old, 60, 3, random.Random(2), fixed_start=0))}
    grown = place_brokers(["a", "b", "c"], 9, old)
    rows = compare("b scale-out", current, grown, set(), 3 * (180 // 9), runs=1)
    engine, kafka = rows
    assert (engine["engine"], kafka["engine"]) == ("engine", "kafka")
    assert engine["rack_violations"] == 0 and engine["replica_spread"] <= 1
    assert isinstance(engine["moves"], int) and isinstance(kafka["moves"], int)
    assert engine["moves"] <= kafka["moves"]
    assert not missed_targets([{**engine, "plan_s": 0.0}])


def test_write_report_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[dict[str, object]] = [{"name": "a", "seconds": 0.5, "moves": 3}, {"name": "bb", "moves": None}]
    path = write_report("demo", rows, meta={"runs": 1}, directory=tmp_path)
    printed = capsys.readouterr().out
    assert printed.strip() == format_table(rows)
    assert printed.splitlines()[2].split() == ["a", "0.500", "3"]
    data = json.loads(path.read_text())
    assert path == tmp_path / "demo.json"
    assert data["rows"] == rows and data["meta"] == {"runs": 1}
    assert data["generated_at"].endswith("+00:00") and data["machine"]["cpus"]
