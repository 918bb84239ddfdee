"""The HTML report as a browser shows it: one self-contained file whose charts headless Chromium lays out and
paints with the planned history's bars."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retsync.app.cli import main
from retsync.report import svg
from tests.reporting import chromium
from tests.reporting.conftest import History


@pytest.fixture
def page(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    target = tmp_path / "report.html"
    code = main(["--config", str(history.config_path), "report", "--format", "html", "--output", str(target)])
    assert code == 0, capsys.readouterr().err
    return target


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the figures are proven on both databases elsewhere
def test_html_is_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    for outside in ("<script", "<link", "src=", "@import", "url("):
        assert outside not in html, f"the report must not load anything ({outside})"
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_chromium_lays_out_every_chart_with_its_bars(page: Path) -> None:
    charts = {chart["id"]: chart for chart in chromium.measure(page)}
    assert set(charts) == {"chart-weekly", "chart-reasons", "chart-refund-times"}
    for chart in charts.values():
        assert chart["width"] > 300 and chart["height"] > 80, chart
        assert all(bar["width"] > 0 and bar["height"] > 0 for bar in chart["bars"]), chart["id"]

    weekly = {(b["category"], b["series"]): b for b in charts["chart-weekly"]["bars"]}
    assert {key: bar["value"] for key, bar in weekly.items()} == {
        ("2026-W41", "allegro"): 1, ("2026-W41", "bol"): 2, ("2026-W42", "allegro"): 2, ("2026-W42", "bol"): 1}
    # stacked columns: a bar's height is proportional to its count, both weeks stand equally tall
    assert weekly[("2026-W41", "bol")]["height"] == pytest.approx(2 * weekly[("2026-W41", "allegro")]["height"],
                                                                 rel=0.02)
    assert weekly[("2026-W41", "bol")]["height"] + weekly[("2026-W41", "allegro")]["height"] == pytest.approx(
        weekly[("2026-W42", "bol")]["height"] + weekly[("2026-W42", "allegro")]["height"], rel=0.02)

    reasons = {b["category"]: b for b in charts["chart-reasons"]["bars"]}
    assert {name: bar["value"] for name, bar in reasons.items()} == {
        "defective": 2, "wrong_item": 2, "damaged": 1, "wrong_size": 1}
    assert reasons["defective"]["width"] == pytest.approx(2 * reasons["damaged"]["width"], rel=0.02)

    refunds = {b["category"]: b for b in charts["chart-refund-times"]["bars"]}
    assert {name: bar["value"] for name, bar in refunds.items()} == {"1-2 days": 1, "2-3 days": 1, "3-7 days": 2}
    assert refunds["3-7 days"]["height"] == pytest.approx(2 * refunds["1-2 days"]["height"], rel=0.02)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_chromium_paints_the_bars(page: Path) -> None:
    width, height, rows = chromium.screenshot(page)
    assert (width, height) == chromium.WINDOW
    first, second = (rgb(colour) for colour in svg.PALETTE[:2])
    assert chromium.count_colour(rows, first) > 5000, "the first channel's bars are painted"
    assert chromium.count_colour(rows, second) > 5000, "the second channel's bars are painted"


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
