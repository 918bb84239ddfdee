"""The README's Performance figures are written from bench/results.json, never by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import figures
from bench.readme import END, START, main

RESULTS = {
    "when": "2026-12-06T21:00:00+00:00",
    "machine": {"cpus": 2, "python": "3.11.7"},
    "backfill": [{"connector": "bol", "database": "SQLite", "latency_ms": 80, "returns_stored": 100,
                  "ratio_to_floor": 0.28, "returns_per_second": 22.3, "floor_seconds": 16.1, "peak_rss_mb": 97.5,
                  "over_limit": 0, "target": "ratio <= 0.5", "met": True}],
    "decisions": {"decisions": 40, "window_s": 60.0, "per_connector": [{}], "p50_s": 0.5, "p95_s": 1.4,
                  "max_s": 2.0, "target": "p95 <= 10 s", "met": True},
    "web": [{"database": "PostgreSQL", "returns": 20000, "slowest_median_ms": 250.0, "slowest": "search | name",
             "target": "<= 200 ms", "met": False}],
}


def test_every_figure_carries_its_target_and_whether_it_was_met() -> None:
    found = figures(RESULTS)
    assert [(f["benchmark"], f["met"]) for f in found] == [
        ("backfill bol", True), ("decision -> pushed, daemon running", True), ("web listing PostgreSQL", False)]
    assert found[0]["target"] == "ratio <= 0.5" and "ratio 0.28" in found[0]["figure"]


def test_the_table_is_rewritten_between_the_markers_and_nothing_else(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({**RESULTS, "figures": figures(RESULTS)}))
    readme = tmp_path / "README.md"
    readme.write_text(f"# retsync\n\nprose before\n\n{START}\nold figures | stale\n{END}\n\nprose after\n")
    main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# retsync\n\nprose before\n\n") and text.endswith("\n\nprose after\n")
    assert "stale" not in text and "2 figures met their target, 1 did not" in text
    assert "| web listing PostgreSQL | 20,000 returns | slowest 250 ms (search \\| name) | <= 200 ms | NOT met |" in text
    main(["--results", str(results), "--readme", str(readme)])
    assert readme.read_text() == text, "writing twice changes nothing"


def test_a_readme_without_the_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({**RESULTS, "figures": figures(RESULTS)}))
    readme = tmp_path / "README.md"
    readme.write_text("# retsync\n")
    with pytest.raises(SystemExit, match="markers"):
        main(["--results", str(results), "--readme", str(readme)])
    assert readme.read_text() == "# retsync\n"


def test_update_replaces_only_the_rows_measured_again() -> None:
    from bench.__main__ import _merge

    earlier = [{"connector": "bol", "database": "SQLite", "latency_ms": 0, "ratio_to_floor": 1.4},
               {"connector": "shoper", "database": "SQLite", "latency_ms": 0, "ratio_to_floor": 9.9}]
    again = [{"connector": "shoper", "database": "SQLite", "latency_ms": 0, "ratio_to_floor": 1.5}]
    assert [(r["connector"], r["ratio_to_floor"]) for r in _merge(earlier, again)] == [("bol", 1.4), ("shoper", 1.5)]
