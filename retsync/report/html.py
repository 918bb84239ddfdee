"""`retsync report --format html`: one self-contained page (inline CSS, inline SVG charts, no script).

Nothing is fetched when the page opens, so it can be mailed, archived or opened on a server without
internet, and it shows the same thing forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from retsync.report import fmt, svg
from retsync.report.money import format_money, format_totals

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329; margin: 2rem auto;
       max-width: 70rem; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d8dde3; padding-bottom: .2rem; }
.meta { color: #5b6570; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { border: 1px solid #d8dde3; border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
.card .value { font-size: 1.3rem; font-weight: 600; }
.card .label { color: #5b6570; font-size: .85rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e8ebef; text-align: left; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.wide { overflow-x: auto; }
svg.chart { display: block; margin: .5rem 0; max-width: 100%; height: auto; }
.none { color: #5b6570; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = (),
           table_id: str = "") -> str:
    if not rows:
        return '<p class="none">none</p>'
    head = "".join(f'<th{" class=n" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{escape(str(c))}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f'<div class="wide"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><div class="value">{escape(value)}</div><div class="label">{escape(label)}</div></div>'


def render_html(report: dict[str, Any]) -> str:
    s, c = report["summary"], report["customers"]
    t = s["time_to_refund_hours"]
    title = f"Returns report: {fmt.period(report)}"
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="meta">{escape(fmt.channels(report))} · generated {escape(fmt.generated(report))}</p>',
             '<div class="cards">',
             _card(str(s["returns"]), f"returns ({s['units_returned']} units)"),
             _card(fmt.percent(s["return_rate"]), f"return rate ({s['units_sold']} units sold)"),
             _card(fmt.hours(t["median"]), f"median time to refund (90th percentile {fmt.hours(t['p90'])})"),
             _card(format_totals(s["refunded"]), "refunded"),
             _card(format_totals(s["return_cost"]), "return costs"),
             _card(fmt.percent(c["share_bought_again"]),
                   f"bought again after a return ({c['bought_again']} of {c['with_return']} customers)"),
             "</div>"]

    parts.append("<h2>Per channel</h2>")
    rows = []
    for ch in report["channels"]:
        cost = ch["return_cost"]
        rows.append([ch["channel"], ch["connector"], ch["returns"], ch["units_returned"], ch["units_sold"],
                     fmt.percent(ch["return_rate"]), format_totals(ch["refunded"]),
                     fmt.hours(ch["time_to_refund_hours"]["median"]), fmt.hours(ch["time_to_refund_hours"]["p90"]),
                     format_money(cost["per_return"]["amount"], cost["per_return"]["currency"])
                     if cost["per_return"] else "-",
                     format_money(cost["total"]["amount"], cost["total"]["currency"]) if cost["total"] else "-"])
    parts.append(_table(["channel", "connector", "returns", "units", "sold", "return rate", "refunded",
                         "refund median", "refund p90", "cost per return", "return costs"], rows,
                        numeric=(2, 3, 4, 5), table_id="channels"))
    behind = fmt.marketplace_rows(report)
    if behind:
        parts.append("<h2>Per marketplace behind a feed platform</h2>")
        parts.append(_table(["marketplace", "returns", "units", "refunded"],
                            [[f"{m['marketplace']} via {channel}", m["returns"], m["units_returned"],
                              format_totals(m["refunded"])] for channel, m in behind],
                            numeric=(1, 2), table_id="marketplaces"))
    if s["test_returns_left_out"]:
        parts.append(f'<p class="meta">{s["test_returns_left_out"]} test returns marked by their channel are '
                     "counted nowhere in this report.</p>")

    weeks = report["weekly_returns"]
    parts.append("<h2>Returns per week</h2>")
    if weeks:
        names = [ch["channel"] for ch in report["channels"]]
        parts.append(svg.stacked_columns(
            "chart-weekly", "Returns per week by channel", [w["week"] for w in weeks],
            {name: [w["channels"].get(name, 0) for w in weeks] for name in names}))
    else:
        parts.append('<p class="none">no returns in this period</p>')
    note = fmt.dates_out_of_range(report, "chart")
    if note:
        parts.append(f'<p class="none">{escape(note)}</p>')

    parts.append("<h2>Reasons</h2>")
    if report["reasons"]:
        parts.append(svg.horizontal_bars("chart-reasons", "Returns per reason",
                                         [(r["reason"], r["returns"]) for r in report["reasons"]]))
    parts.append(_table(["reason", "returns", "units", "by channel"],
                        [[r["reason"], r["returns"], r["units"], ", ".join(f"{k} {v}" for k, v in r["channels"].items())]
                         for r in report["reasons"]], numeric=(1, 2), table_id="reasons"))

    parts.append("<h2>Time to refund</h2>")
    parts.append(svg.columns("chart-refund-times", "Refunds by time from return to refund",
                             [(b["label"], b["returns"]) for b in report["time_to_refund"]["buckets"]]))

    parts.append("<h2>Most returned SKUs</h2>")
    parts.append(_table(["sku", "ean", "title", "returned", "sold", "return rate"],
                        [[r["sku"] or "-", r["ean"] or "-", r["title"] or "-", r["units_returned"], r["units_sold"],
                          fmt.percent(r["return_rate"])] for r in report["skus"]], numeric=(3, 4, 5),
                        table_id="skus"))

    parts.append("<h2>Open flags (now)</h2>")
    parts.append(_table(["code", "open", "by channel"],
                        [[f["code"], f["open"], ", ".join(f"{k} {v}" for k, v in f["channels"].items())]
                         for f in report["open_flags"]], numeric=(1,), table_id="flags"))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
