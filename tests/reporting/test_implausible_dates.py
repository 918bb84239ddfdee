"""A return a channel dated in year 9999 (or 9990) is still a return, but no reason to draw 415,527 weeks.

Channels' far-future dates are stored as the channel wrote them (the cursor does not follow them); the report
counts such returns but leaves them out of the weekly series and says so, in every format.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from retsync.app.cli import main
from retsync.store.models import Return
from tests.reporting.conftest import History


def _report(capsys: pytest.CaptureFixture[str], history: History, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(history.config_path), "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_far_future_returns_are_counted_but_not_drawn_week_by_week(history: History,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with history.db.begin() as conn:
        conn.execute(update(Return).where(Return.id == history.returns["B2"])
                     .values(created_at=datetime(9999, 12, 31, 23, 0, tzinfo=timezone.utc)))
        conn.execute(update(Return).where(Return.id == history.returns["A1"])
                     .values(created_at=datetime(9990, 6, 1, 12, 0, tzinfo=timezone.utc)))
    code, out, err = _report(capsys, history, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["summary"]["returns"] == 6, "the returns still count"
    weeks = report["weekly_returns"]
    assert [w["week"] for w in weeks] == ["2026-W41", "2026-W42"]
    assert sum(w["returns"] for w in weeks) == 4
    left_out = report["dates_out_of_range"]
    assert left_out["returns"] == 2 and left_out["latest"].startswith("9999-12-31")
    assert left_out["plausible_from"].startswith("1995-01-01")

    code, out, err = _report(capsys, history)
    assert code == 0, err
    assert "2 returns dated outside" in out and "9999-12-31" in out and "not in the weekly table" in out
    assert out.count("2026-W4") == 2
    code, out, err = _report(capsys, history, "--format", "html")
    assert code == 0, err
    assert "2 returns dated outside" in out and "9990-06-01 to 9999-12-31" in out and len(out) < 200_000


@pytest.mark.parametrize("args", [("--until", "9999-12-31"), ("--since", "0001-01-01T00:00+01:00"),
                                  ("--since", "2026-10-01", "--until", "9999-12-31T23:59:59-05:00")])
def test_dates_at_the_edge_of_the_calendar_are_a_message_or_an_open_end(
        history: History, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = _report(capsys, history, "--format", "json", *args)
    assert "Traceback" not in err and "OverflowError" not in err
    if code == 0:
        assert json.loads(out)["summary"]["returns"] >= 1
    else:
        assert code == 2 and err.startswith("retsync report: ") and "outside the calendar" in err
