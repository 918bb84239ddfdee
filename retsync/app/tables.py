"""Tables on a terminal: what `retsync returns list`, `returns show`, `channels` and the demo print.

Both the CLI and the demo print the unified returns the same way; keeping the table here lets the demo do that
without importing the CLI (which starts the demo), and keeps one place where channel text is made safe for a
terminal before it is laid out in columns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from retsync.safe_text import for_terminal

RETURN_LIST_COLUMNS = ("return_id", "channel", "marketplace", "external_id", "order_external_id", "status",
                       "channel_status", "decision", "decision_state", "reason", "quantity", "created_at")
"""The columns of `retsync returns list` (and the demo), all read from `v_returns`."""


def cell(value: Any) -> str:
    """One table cell on one line: channel text comes with its control characters escaped."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return for_terminal(value)


def print_table(rows: list[dict[str, Any]], columns: Sequence[str], out: Any = None) -> None:
    out = out or sys.stdout
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def plural(count: int, noun: str) -> str:
    """`1 return`, `3 returns`: counts a person reads (English nouns of this CLI take an s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
