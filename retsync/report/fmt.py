"""How figures read in the text and HTML reports; the JSON report keeps the raw numbers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} h" if value < 72 else f"{value:.1f} h ({value / 24:.1f} d)"


def _moment(text: str, end: bool) -> str:
    moment = datetime.fromisoformat(text)
    if moment.hour == moment.minute == moment.second == moment.microsecond == 0:
        return (moment - timedelta(days=1) if end else moment).date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def period(report: dict[str, Any]) -> str:
    """`2026-10-01 to 2026-10-31` for the documented [since, until) of the report, whole days inclusive."""
    since, until = report["period"]["since"], report["period"]["until"]
    if since is None and until is None:
        return "all time"
    if until is None:
        return f"from {_moment(since, end=False)}"
    if since is None:
        return f"up to {_moment(until, end=True)}"
    return f"{_moment(since, end=False)} to {_moment(until, end=True)}"


def channels(report: dict[str, Any]) -> str:
    return ", ".join(report["channels_selected"]) if report["channels_selected"] else "all channels"


def marketplace_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(channel, marketplace figures) for every channel that passes on several marketplaces' returns."""
    return [(ch["channel"], m) for ch in report["channels"] for m in ch["marketplaces"]]


def generated(report: dict[str, Any]) -> str:
    return datetime.fromisoformat(report["generated_at"]).strftime("%Y-%m-%d %H:%M UTC")


def dates_out_of_range(report: dict[str, Any], shown_in: str) -> str | None:
    """The note under the weekly series when some returns' dates are not plausible (see kpis.FUTURE_MARGIN)."""
    out = report["dates_out_of_range"]
    if not out["returns"]:
        return None
    earliest, latest = out["earliest"][:10], out["latest"][:10]
    dated = earliest if earliest == latest else f"{earliest} to {latest}"
    noun = "return" if out["returns"] == 1 else "returns"
    return (f"{out['returns']} {noun} dated outside {out['plausible_from'][:10]} to {out['plausible_until'][:10]} "
            f"({dated}): counted above, not in the weekly {shown_in}; `retsync returns list` shows them")
