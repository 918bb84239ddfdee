"""`retsync report`: return KPIs for a period as text, JSON or a self-contained HTML page.

`kpis` reads and computes every figure once; `text`, `as_json` and `html` only lay them out. This module
checks the command line first (dates, channels, where to write), so a mistake costs no database work and
is reported with exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from retsync.config import Config
from retsync.kit.files import replace_file
from retsync.report.as_json import render_json
from retsync.report.html import render_html
from retsync.report.kpis import Period, build_report
from retsync.report.text import render_text
from retsync.store.models import Channel

RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {"text": render_text, "json": render_json,
                                                         "html": render_html}


class ReportUsageError(Exception):
    """The command line cannot be honoured (bad date, unknown channel, unwritable output): exit code 2."""


def parse_moment(option: str, value: str | None, end: bool = False) -> datetime | None:
    """A date or ISO time as aware UTC. A bare date given to `--until` means the end of that day."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        if end and day == date.max:  # the whole last day of the calendar: no end at all
            return None
        return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReportUsageError(f"{option} {value!r} is not a date; write 2026-11-01 or 2026-11-01T08:00") from None
    try:
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ReportUsageError(f"{option} {value!r} is outside the calendar in UTC; give a date between "
                               f"0001-01-02 and 9999-12-30") from None


def parse_period(since: str | None, until: str | None) -> Period:
    period = Period(parse_moment("--since", since), parse_moment("--until", until, end=True))
    if period.since is not None and period.until is not None and period.since >= period.until:
        raise ReportUsageError(f"--since {since} is not before --until {until}; the period would be empty")
    return period


def check_channels(db: Engine, config: Config, names: Sequence[str] | None) -> list[str] | None:
    """Channels may be configured or only in the database (a channel removed from the config keeps its history)."""
    if not names:
        return None
    with db.connect() as conn:
        stored = set(conn.execute(select(Channel.name)).scalars())
    known = stored | set(config.channels)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ReportUsageError(f"no channel {', '.join(unknown)} in {config.path} or the database "
                               f"(known: {', '.join(sorted(known)) or 'none'})")
    return sorted(set(names))


def check_output(path: Path | None) -> None:
    """Fail before any work when the file cannot be written: a missing folder, a folder, no permission."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ReportUsageError(f"--output {path} is a folder; give a file name")
    if not folder.is_dir():
        raise ReportUsageError(f"--output {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ReportUsageError(f"--output {path}: no permission to write there")


def write_output(path: Path | None, content: str) -> None:
    """Write the whole report or nothing: a temporary file in the same folder, then renamed over the target."""
    if path is None:
        sys.stdout.write(content)
        sys.stdout.flush()
        return
    try:
        replace_file(path, content, mode=0o644)  # a report is meant to be shared
    except OSError as exc:
        raise ReportUsageError(f"--output {path}: cannot write: {exc.strerror or exc}") from None


def run_report(db: Engine, config: Config, *, since: str | None, until: str | None,
               channels: Sequence[str] | None, fmt: str, output: str | None) -> str:
    """Check the command line, compute, render and write; answer where the report went."""
    period = parse_period(since, until)
    target = Path(output) if output else None
    check_output(target)
    selected = check_channels(db, config, channels)
    report = build_report(db, config, period, selected)
    write_output(target, RENDERERS[fmt](report))
    return str(target) if target else "standard output"
