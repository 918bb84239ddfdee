"""`retsync report --format text`: the report as a terminal reads it, sections of aligned columns.

Titles, SKUs and reasons come from channels: their control characters are shown escaped, not obeyed, and a
line break in a cell does not break its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retsync.report import fmt
from retsync.report.money import format_money, format_totals
from retsync.safe_text import for_terminal


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> list[str]:
    cells = [[str(c) for c in header]] + [[for_terminal(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return ["  " + line(cells[0]), "  " + "  ".join("-" * w for w in widths)] + ["  " + line(r) for r in cells[1:]]


def render_text(report: dict[str, Any]) -> str:
    s = report["summary"]
    t = s["time_to_refund_hours"]
    c = report["customers"]
    out = [f"retsync returns report: {fmt.period(report)}, {fmt.channels(report)}",
           f"generated {fmt.generated(report)}", "", "SUMMARY"]
    out += [
        f"  returns            {s['returns']} ({s['units_returned']} units)",
        f"  sold               {s['orders']} orders, {s['units_sold']} units",
        f"  return rate        {fmt.percent(s['return_rate'])} of units sold",
        f"  refunded           {format_totals(s['refunded'])}",
        f"  return costs       {format_totals(s['return_cost'])}",
        f"  time to refund     median {fmt.hours(t['median'])}, 90th percentile {fmt.hours(t['p90'])} "
        f"({t['count']} refunds)",
        f"  bought again       {c['bought_again']} of {c['with_return']} customers with a return "
        f"({fmt.percent(c['share_bought_again'])})",
        f"  no customer group  {c['returns_without_group']} of the returns (not counted above)",
    ]
    if s["test_returns_left_out"]:
        out.append(f"  test returns       {s['test_returns_left_out']} marked by their channel (counted nowhere)")
    out += ["", "PER CHANNEL"]
    rows = []
    for ch in report["channels"]:
        cost = ch["return_cost"]
        rows.append([ch["channel"], ch["connector"], ch["returns"], ch["units_returned"], ch["units_sold"],
                     fmt.percent(ch["return_rate"]), format_totals(ch["refunded"]),
                     fmt.hours(ch["time_to_refund_hours"]["median"]), fmt.hours(ch["time_to_refund_hours"]["p90"]),
                     format_money(cost["per_return"]["amount"], cost["per_return"]["currency"])
                     if cost["per_return"] else "-",
                     format_money(cost["total"]["amount"], cost["total"]["currency"]) if cost["total"] else "-"])
    out += _table(["channel", "connector", "returns", "units", "sold", "rate", "refunded", "refund median",
                   "refund p90", "cost/return", "return costs"], rows, right=(2, 3, 4, 5))
    behind = fmt.marketplace_rows(report)
    if behind:
        out += ["", "PER MARKETPLACE (behind a feed platform)"]
        out += _table(["marketplace", "returns", "units", "refunded"],
                      [[f"{m['marketplace']} via {channel}", m["returns"], m["units_returned"],
                        format_totals(m["refunded"])] for channel, m in behind], right=(1, 2))
    out += ["", "TOP REASONS"]
    out += _table(["reason", "returns", "units", "by channel"],
                  [[r["reason"], r["returns"], r["units"], ", ".join(f"{k} {v}" for k, v in r["channels"].items())]
                   for r in report["reasons"]], right=(1, 2)) if report["reasons"] else ["  none"]
    out += ["", "MOST RETURNED SKUS"]
    out += _table(["sku", "ean", "title", "returned", "sold", "rate"],
                  [[r["sku"] or "-", r["ean"] or "-", r["title"] or "-", r["units_returned"], r["units_sold"],
                    fmt.percent(r["return_rate"])] for r in report["skus"]], right=(3, 4, 5)) \
        if report["skus"] else ["  none"]
    out += ["", "TIME TO REFUND"]
    buckets = report["time_to_refund"]["buckets"]
    widest = max((b["returns"] for b in buckets), default=0) or 1
    out += _table(["after", "refunds", ""], [[b["label"], b["returns"], "#" * round(30 * b["returns"] / widest)]
                                             for b in buckets], right=(1,))
    out += ["", "RETURNS PER WEEK"]
    names = [ch["channel"] for ch in report["channels"]]
    out += _table(["week", "from", *names, "total"],
                  [[w["week"], w["week_start"], *(w["channels"].get(n, 0) for n in names), w["returns"]]
                   for w in report["weekly_returns"]], right=tuple(range(2, len(names) + 3))) \
        if report["weekly_returns"] else ["  none"]
    note = fmt.dates_out_of_range(report, "table")
    out += [f"  {note}"] if note else []
    out += ["", "OPEN FLAGS (now)"]
    out += _table(["code", "open", "by channel"],
                  [[f["code"], f["open"], ", ".join(f"{k} {v}" for k, v in f["channels"].items())]
                   for f in report["open_flags"]], right=(1,)) if report["open_flags"] else ["  none"]
    return for_terminal("\n".join(out), keep_newlines=True) + "\n"
