"""A feed platform's returns: each marketplace behind it has figures of its own, and test returns count nowhere.

The planned two-channel history (conftest) is changed in two places, as a Channable channel would store them:
bol's B0 and B1 are said to come from Amazon (B2 stays without a marketplace), and Allegro's A1 is a test return.
Every figure below is the hand-worked one of the plan without A1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from retsync.app.cli import main
from retsync.store.models import Return
from tests.reporting.conftest import History
from tests.reporting.test_views import rows


@pytest.fixture
def feed(history: History) -> History:
    with history.db.begin() as conn:
        conn.execute(update(Return).where(Return.id.in_([history.returns["B0"], history.returns["B1"]]))
                     .values(marketplace="amazon"))
        conn.execute(update(Return).where(Return.id == history.returns["A1"]).values(is_test=True))
    return history


def report(capsys: pytest.CaptureFixture[str], history: History, *args: str) -> tuple[int, str]:
    code = main(["--config", str(history.config_path), "report", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, out


def test_the_report_counts_no_test_return_and_says_how_many_it_left_out(
        feed: History, capsys: pytest.CaptureFixture[str]) -> None:
    r: dict[str, Any] = json.loads(report(capsys, feed, "--format", "json")[1])
    assert (r["summary"]["returns"], r["summary"]["units_returned"], r["summary"]["test_returns_left_out"]) == (5, 6, 1)
    allegro = next(ch for ch in r["channels"] if ch["channel"] == "allegro")
    assert (allegro["returns"], allegro["units_returned"]) == (2, 2)
    assert {"reason": "wrong_item", "returns": 1, "units": 1, "channels": {"allegro": 1}} in r["reasons"]
    # A1 was the only return of customer group G1 on Allegro; G1's bol return B0 still counts
    assert sum(w["channels"]["allegro"] for w in r["weekly_returns"]) == 2


def test_each_marketplace_behind_a_channel_has_its_own_figures(feed: History,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    r: dict[str, Any] = json.loads(report(capsys, feed, "--format", "json")[1])
    bol = next(ch for ch in r["channels"] if ch["channel"] == "bol")
    assert bol["marketplaces"] == [
        {"marketplace": "amazon", "returns": 2, "units_returned": 3,
         "refunded": [{"currency": "EUR", "amount": 3500}]},
        {"marketplace": "(not named)", "returns": 1, "units_returned": 1, "refunded": []},
    ]
    assert next(ch for ch in r["channels"] if ch["channel"] == "allegro")["marketplaces"] == []
    text = report(capsys, feed)[1]
    assert "PER MARKETPLACE (behind a feed platform)" in text
    assert "amazon via bol" in text and "test returns       1 marked by their channel" in text
    html = report(capsys, feed, "--format", "html")[1]
    assert 'id="marketplaces"' in html and "amazon via bol" in html


def test_the_figure_views_split_by_marketplace_and_leave_test_returns_out(feed: History) -> None:
    daily = [(r["day"].isoformat(), r["channel"], r["marketplace"], r["returns"])
             for r in rows(feed.db, "SELECT * FROM v_returns_daily ORDER BY day, channel, marketplace")]
    assert daily == [("2026-10-05", "allegro", None, 1), ("2026-10-05", "bol", "amazon", 2),
                     ("2026-10-12", "bol", None, 1), ("2026-10-14", "allegro", None, 1)]
    reasons = {(r["channel"], r["marketplace"], r["reason"]): r["returns"]
               for r in rows(feed.db, "SELECT * FROM v_return_reasons")}
    assert reasons == {("allegro", None, "damaged"): 1, ("allegro", None, "wrong_item"): 1,
                       ("bol", "amazon", "defective"): 2, ("bol", None, "wrong_size"): 1}
    handling = {r["return_id"]: r["marketplace"] for r in rows(feed.db, "SELECT * FROM v_handling_times")}
    assert feed.returns["A1"] not in handling and handling[feed.returns["B0"]] == "amazon"
    skus = {(r["channel"], r["sku"]): r["units_returned"] for r in rows(feed.db, "SELECT * FROM v_sku_returns")}
    assert skus[("allegro", "SKU-P1")] == 0  # A1 returned P1; a test return counts in no figure


def test_the_listing_views_show_test_returns_marked(feed: History) -> None:
    listed = {r["return_id"]: (r["marketplace"], bool(r["is_test"]))
              for r in rows(feed.db, "SELECT * FROM v_returns")}
    assert listed[feed.returns["A1"]] == (None, True) and listed[feed.returns["B1"]] == ("amazon", False)
    lines = {r["return_id"]: bool(r["is_test"]) for r in rows(feed.db, "SELECT * FROM v_return_lines")}
    assert lines[feed.returns["A1"]] is True
    flags = {r["return_id"]: r["marketplace"] for r in rows(feed.db, "SELECT * FROM v_return_flags")}
    assert flags[feed.returns["B1"]] == "amazon"
