"""The import folder of a manual channel (`import_dir`): exports dropped by a script or a mail rule, imported by
the daemon and moved out of the way with a report beside them.

A file is taken once it has not changed for SETTLE (a script may still be writing it); names starting with a
dot or ending in .tmp/.part are someone's work in progress and left alone. After the import, the file goes to
`done/` (every row imported) or `failed/` (a bad row, or a file that could not be imported at all), renamed
with the time it was taken so a second export of the same name never overwrites the first, and a
`<name>.report.txt` beside it says what happened, line by line. The rows that were good are imported either
way: fixing a bad row and dropping the file again imports only what was missing. A database that cannot be
reached leaves the file where it is, for the next pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Engine

from retsync.intake.imports import ImportProblem, import_file, report_text
from retsync.intake.records import IntakeError
from retsync.kit.settings import ChannelSettings

log = structlog.get_logger(__name__)

SETTLE = timedelta(seconds=10)
"""A file changed more recently than this may still be being written."""
IMPORTED = ("done", "failed")
WORK_IN_PROGRESS = (".tmp", ".part", ".crdownload")


@dataclass(frozen=True)
class FolderOutcome:
    file: str
    moved_to: Path
    report: Path
    ok: bool


def waiting_files(folder: Path, now: datetime) -> list[Path]:
    """The files of `folder` ready to import, oldest first."""
    if not folder.is_dir():
        return []
    ready = []
    for path in folder.iterdir():
        if not path.is_file() or path.name.startswith(".") or path.name.lower().endswith(WORK_IN_PROGRESS):
            continue
        changed = datetime.fromtimestamp(path.stat().st_mtime, tz=now.tzinfo)
        if now - changed >= SETTLE:
            ready.append(path)
    return sorted(ready, key=lambda p: (p.stat().st_mtime, p.name))


def _move(path: Path, folder: Path, now: datetime, report: str) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    stamp = f"{now:%Y%m%dT%H%M%SZ}"
    target = folder / f"{stamp}-{path.name}"
    counter = 1
    while target.exists():
        target = folder / f"{stamp}-{counter}-{path.name}"
        counter += 1
    report_path = target.with_name(target.name + ".report.txt")
    report_path.write_text(report + "\n", encoding="utf-8")
    os.replace(path, target)
    return target, report_path


def import_folder(db: Engine, channel: str, settings: ChannelSettings, now: datetime,
                  base: Path | None = None) -> list[FolderOutcome]:
    """Import every waiting file of the channel's `import_dir` and move each to done/ or failed/."""
    folder = getattr(settings, "import_dir", None)
    if folder is None:
        return []
    folder = Path(folder)
    outcomes = []
    for path in waiting_files(folder, now):
        try:
            result = import_file(db, channel, settings, path, now=now, base=base)
        except (ImportProblem, IntakeError) as exc:
            report, ok = f"{path.name} into {channel}: not imported: {exc}", False
        else:
            report, ok = report_text(result), not result.bad_rows
        moved, report_path = _move(path, folder / ("done" if ok else "failed"), now, report)
        log.info("import_folder_file", channel=channel, file=path.name, ok=ok, moved_to=str(moved))
        outcomes.append(FolderOutcome(path.name, moved, report_path, ok))
    return outcomes
