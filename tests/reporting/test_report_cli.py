"""`retsync report` from the command line: the planned history's KPIs in text and JSON, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync.app.cli import main
from retsync.store.db import make_engine, upgrade
from tests.reporting.conftest import History


def run(capsys: pytest.CaptureFixture[str], history: History, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(history.config_path), "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def report_json(capsys: pytest.CaptureFixture[str], history: History, *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, history, "--format", "json", *args)
    assert code == 0, err
    return dict(json.loads(out))


def test_json_report_of_the_whole_history(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    r = report_json(capsys, history)
    assert (r["report"], r["version"], r["period"], r["channels_selected"]) == (
        "retsync returns report", 1, {"since": None, "until": None}, None)
    assert r["summary"] == {
        "returns": 6, "units_returned": 7, "orders": 6, "units_sold": 11, "return_rate": round(7 / 11, 4),
        "refunded": [{"currency": "EUR", "amount": 3500}, {"currency": "PLN", "amount": 38990 + 12900}],
        "return_cost": [{"currency": "EUR", "amount": 3 * 450}, {"currency": "PLN", "amount": 3 * 1200}],
        # refunds after 42, 48, 72 and 102 hours: median (48+72)/2, p90 72 + 0.7 * (102-72)
        "time_to_refund_hours": {"count": 4, "median": 60.0, "p90": 93.0},
        "test_returns_left_out": 0,
    }
    allegro, bol = r["channels"]
    assert bol == {
        "channel": "bol", "connector": "bol", "currency": "EUR", "returns": 3, "units_returned": 4, "orders": 3,
        "units_sold": 7, "return_rate": round(4 / 7, 4), "refunded": [{"currency": "EUR", "amount": 3500}],
        "time_to_refund_hours": {"count": 2, "median": 72.0, "p90": 96.0},
        "return_cost": {"per_return": {"currency": "EUR", "amount": 450},
                        "total": {"currency": "EUR", "amount": 1350}},
        "marketplaces": [],
    }
    assert (allegro["channel"], allegro["returns"], allegro["units_sold"], allegro["return_rate"],
            allegro["time_to_refund_hours"], allegro["return_cost"]["total"]) == (
        "allegro", 3, 4, 0.75, {"count": 2, "median": 60.0, "p90": 69.6}, {"currency": "PLN", "amount": 3600})
    assert [(b["label"], b["returns"]) for b in r["time_to_refund"]["buckets"]] == [
        ("under 1 day", 0), ("1-2 days", 1), ("2-3 days", 1), ("3-7 days", 2), ("1-2 weeks", 0),
        ("2-4 weeks", 0), ("4 weeks or more", 0)]
    assert r["reasons"] == [
        {"reason": "defective", "returns": 2, "units": 3, "channels": {"bol": 2}},
        {"reason": "wrong_item", "returns": 2, "units": 2, "channels": {"allegro": 2}},
        {"reason": "damaged", "returns": 1, "units": 1, "channels": {"allegro": 1}},
        {"reason": "wrong_size", "returns": 1, "units": 1, "channels": {"bol": 1}},
    ]
    assert r["skus"] == [
        {"sku": "SKU-P1", "ean": "1111111111111", "title": "Desk lamp", "units_returned": 3, "units_sold": 5,
         "return_rate": 0.6},
        {"sku": "SKU-P2", "ean": "2222222222222", "title": "Coffee mug", "units_returned": 2, "units_sold": 4,
         "return_rate": 0.5},
        {"sku": "SKU-P3", "ean": None, "title": "Winter jacket", "units_returned": 2, "units_sold": 2,
         "return_rate": 1.0},
    ]
    assert r["customers"] == {"with_return": 3, "bought_again": 2, "share_bought_again": 0.6667,
                              "returns_without_group": 1}
    assert r["open_flags"] == [{"code": "refund_overdue", "open": 1, "channels": {"bol": 1}}]
    assert r["weekly_returns"] == [
        {"week": "2026-W41", "week_start": "2026-10-05", "returns": 3, "channels": {"allegro": 1, "bol": 2}},
        {"week": "2026-W42", "week_start": "2026-10-12", "returns": 3, "channels": {"allegro": 2, "bol": 1}},
    ]


def test_period_and_channel_narrow_every_figure(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    # A1 (10-13) and A2 (10-14 23:30: the --until day is included whole); sales: A1's order of 10-10 only
    r = report_json(capsys, history, "--since", "2026-10-10", "--until", "2026-10-14", "--channel", "allegro")
    assert r["period"] == {"since": "2026-10-10T00:00:00+00:00", "until": "2026-10-15T00:00:00+00:00"}
    assert r["channels_selected"] == ["allegro"]
    assert [c["channel"] for c in r["channels"]] == ["allegro"]
    s = r["summary"]
    assert (s["returns"], s["units_returned"], s["orders"], s["units_sold"], s["return_rate"]) == (2, 2, 1, 2, 1.0)
    assert s["refunded"] == [{"currency": "PLN", "amount": 12900}]
    assert s["return_cost"] == [{"currency": "PLN", "amount": 2400}]
    assert s["time_to_refund_hours"] == {"count": 1, "median": 48.0, "p90": 48.0}
    assert [(k["sku"], k["units_returned"], k["units_sold"], k["return_rate"]) for k in r["skus"]] == [
        ("SKU-P1", 1, 2, 0.5), ("SKU-P3", 1, 0, None)]
    # G1 and G3 returned in the period; neither ordered after that return and before the period's end
    assert r["customers"] == {"with_return": 2, "bought_again": 0, "share_bought_again": 0.0,
                              "returns_without_group": 0}
    assert r["open_flags"] == []
    assert r["weekly_returns"] == [{"week": "2026-W42", "week_start": "2026-10-12", "returns": 2,
                                    "channels": {"allegro": 2}}]


def test_times_are_since_inclusive_until_exclusive_and_may_carry_a_zone(
        history: History, capsys: pytest.CaptureFixture[str]) -> None:
    # A2 was created 2026-10-14 23:30 UTC (= 2026-10-15 01:30 in Warsaw)
    def allegro_returns(*args: str) -> int:
        return int(report_json(capsys, history, "--channel", "allegro", *args)["summary"]["returns"])

    assert allegro_returns("--since", "2026-10-14T23:30") == 1
    assert allegro_returns("--since", "2026-10-15T01:30+02:00") == 1
    assert allegro_returns("--since", "2026-10-13", "--until", "2026-10-14T23:30") == 1  # A1 only
    assert allegro_returns("--since", "2026-10-13", "--until", "2026-10-14T23:30:01") == 2


def test_report_agrees_with_the_views(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    r = report_json(capsys, history)
    with history.db.connect() as conn:
        daily = conn.execute(text("SELECT channel, SUM(returns), SUM(units) FROM v_returns_daily "
                                  "GROUP BY channel ORDER BY channel")).all()
        overall = {row.sku: (row.units_sold, row.units_returned) for row in conn.execute(
            text("SELECT sku, units_sold, units_returned FROM v_sku_returns WHERE channel IS NULL"))}
        open_flags = conn.execute(text("SELECT COUNT(*) FROM v_return_flags WHERE is_open = :yes"),
                                  {"yes": True}).scalar_one()
    assert [(c["channel"], c["returns"], c["units_returned"]) for c in r["channels"]] == [
        (name, int(returns), int(units)) for name, returns, units in daily]
    assert {k["sku"]: (k["units_sold"], k["units_returned"]) for k in r["skus"]} == overall
    assert sum(f["open"] for f in r["open_flags"]) == open_flags


def test_text_report_reads_like_the_json(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, history)
    assert code == 0, err
    for expected in ("retsync returns report: all time, all channels", "returns            6 (7 units)",
                     "return rate        63.6 % of units sold", "refunded           35.00 EUR, 518.90 PLN",
                     "return costs       13.50 EUR, 36.00 PLN", "median 60.0 h, 90th percentile 93.0 h",
                     "2 of 3 customers with a return (66.7 %)", "TOP REASONS", "MOST RETURNED SKUS",
                     "RETURNS PER WEEK", "OPEN FLAGS", "refund_overdue"):
        assert expected in out, expected
    bol = next(line for line in out.splitlines() if line.strip().startswith("bol "))
    assert "57.1 %" in bol and "35.00 EUR" in bol and "4.50 EUR" in bol and "13.50 EUR" in bol
    assert "EUR" not in next(line for line in out.splitlines() if line.strip().startswith("allegro "))


@pytest.mark.parametrize("fmt, marker", [("text", "SUMMARY"), ("json", '"version": 1'), ("html", "<svg")])
def test_output_file_is_written_and_stdout_stays_empty(history: History, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path, fmt: str, marker: str) -> None:
    target = tmp_path / "out" / f"report.{fmt}"
    target.parent.mkdir()
    target.write_text("an older report")
    code, out, err = run(capsys, history, "--format", fmt, "--output", str(target))
    assert code == 0, err
    assert out == "" and f"report written to {target}" in err
    assert marker in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no temporary file is left behind"


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    (["--until", "2026-13-01"], "--until '2026-13-01' is not a date"),
    (["--since", "2026-10-10", "--until", "2026-10-01"], "is not before --until"),
    (["--channel", "amazon"], "no channel amazon"),
    (["--output", "/nonexistent-folder/report.html"], "the folder /nonexistent-folder does not exist"),
])
def test_bad_command_lines_exit_2_with_a_message(history: History, capsys: pytest.CaptureFixture[str],
                                                 args: list[str], message: str) -> None:
    code, out, err = run(capsys, history, *args)
    assert code == 2 and out == ""
    assert err.startswith("retsync report: ") and message in err, err
    if "--channel" in args:
        assert "known: allegro, bol" in err


def test_output_that_is_a_folder_exits_2(history: History, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    code, out, err = run(capsys, history, "--format", "html", "--output", str(tmp_path))
    assert code == 2 and "is a folder" in err and out == ""


def test_a_channel_only_in_the_database_is_still_reportable(history: History,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A channel removed from the config keeps its history; it has no return_cost any more."""
    config = history.config_path.read_text()
    history.config_path.write_text(config[:config.index("[channels.allegro]")])
    r = report_json(capsys, history, "--channel", "allegro")
    assert r["summary"]["returns"] == 3 and r["summary"]["return_cost"] == []
    assert r["channels"][0]["return_cost"] == {"per_return": None, "total": None}


def test_an_outdated_schema_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine: Engine = make_engine(url)
    upgrade(engine, "0005")
    engine.dispose()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[daemon]\nstate_dir = "{tmp_path}"\n')
    code = main(["--config", str(config), "report"])
    _, err = capsys.readouterr()
    assert code == 1 and "retsync db upgrade" in err


def test_an_empty_database_reports_zeros(tmp_path: Path, db: Engine, db_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[daemon]\nstate_dir = "{tmp_path}"\n')
    for fmt in ("text", "json", "html"):
        code = main(["--config", str(config), "report", "--format", fmt])
        out, err = capsys.readouterr()
        assert code == 0, err
    code = main(["--config", str(config), "report", "--format", "json"])
    r = json.loads(capsys.readouterr().out)
    assert r["summary"]["returns"] == 0 and r["summary"]["return_rate"] is None
    assert r["summary"]["time_to_refund_hours"] == {"count": 0, "median": None, "p90": None}
    assert r["channels"] == [] and r["weekly_returns"] == [] and r["customers"]["share_bought_again"] is None
