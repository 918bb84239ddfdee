"""The import folder the daemon watches: a dropped export is imported once and moved to done/ or failed/ with
a report beside it; a file still being written is left alone."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, text

from retsync.app.daemon import Runner
from retsync.intake.jobs import IntakeJobs
from retsync.testing.config import config_for
from tests.intake.conftest import sqlite_only

HEADER = "Numer zwrotu;SKU;Ilość;Data zgłoszenia\n"


def drop(folder: Path, name: str, content: str, age: timedelta, now: datetime) -> Path:
    path = folder / name
    path.write_text(content, encoding="cp1250")
    stamp = (now - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_dropped_exports_are_imported_once_and_moved_with_a_report(db: Engine, db_url: str, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    inbox = tmp_path / "exports"
    inbox.mkdir()
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual", "import_dir": str(inbox)}})
    jobs = IntakeJobs(db, config, clock=lambda: now)
    drop(inbox, "good.csv", HEADER + "Z-1;A;1;01.12.2026\nZ-2;B;2;02.12.2026\n", timedelta(minutes=1), now)
    drop(inbox, "partly.csv", HEADER + "Z-3;C;1;01.12.2026\nZ-4;D;x;01.12.2026\n", timedelta(minutes=1), now)
    drop(inbox, "broken.csv", "no;header;here\n1;2;3\n", timedelta(minutes=1), now)
    drop(inbox, "fresh.csv", HEADER + "Z-9;E;1;01.12.2026\n", timedelta(seconds=2), now)
    drop(inbox, "upload.csv.part", "half a file", timedelta(minutes=5), now)
    jobs.import_folder("paper")
    stamp = f"{now:%Y%m%dT%H%M%SZ}"
    assert sorted(p.name for p in (inbox / "done").iterdir()) == [f"{stamp}-good.csv", f"{stamp}-good.csv.report.txt"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == sorted([
        f"{stamp}-broken.csv", f"{stamp}-broken.csv.report.txt", f"{stamp}-partly.csv",
        f"{stamp}-partly.csv.report.txt"])
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["fresh.csv", "upload.csv.part"]
    partly = (inbox / "failed" / f"{stamp}-partly.csv.report.txt").read_text()
    assert "line 3: quantity 'x' is not a whole number" in partly and "1 new" in partly
    assert "no column for the natural key field return_id" in (inbox / "failed" / f"{stamp}-broken.csv.report.txt"
                                                                ).read_text()
    with db.connect() as conn:
        assert sorted(conn.execute(text("SELECT external_id FROM returns")).scalars()) == ["Z-1", "Z-2", "Z-3"]
    drop(inbox, "good.csv", HEADER + "Z-1;A;1;01.12.2026\nZ-2;B;2;02.12.2026\n", timedelta(minutes=1), now)
    later = now + timedelta(minutes=1)
    IntakeJobs(db, config, clock=lambda: later).import_folder("paper")
    report = (inbox / "done" / f"{later:%Y%m%dT%H%M%SZ}-good.csv.report.txt").read_text()
    assert "0 new, 0 updated, 2 unchanged" in report
    assert not (inbox / "fresh.csv").exists(), "settled by now: taken on this pass"
    with db.connect() as conn:
        assert sorted(conn.execute(text("SELECT external_id FROM returns")).scalars()) == ["Z-1", "Z-2", "Z-3", "Z-9"]


@sqlite_only
def test_the_daemon_schedules_the_folder_and_tracking_jobs(db: Engine, db_url: str, tmp_path: Path) -> None:
    from retsync.intake.inpost_emulator import SANDBOX_TOKEN

    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual", "import_dir": str(tmp_path)},
                                           "phone": {"connector": "manual"}})
    runner = Runner(config, db=db)
    runner.open()
    try:
        ids = {job.id for job in runner.schedule().get_jobs()}
        assert {"import:paper", "pull:paper", "pull:phone", "link:paper", "link:phone"} <= ids
        assert "import:phone" not in ids
        assert "tracking:inpost" not in ids
        with_inpost = config.model_copy(update={"settings": config.settings.model_copy(update={
            "carriers": config.settings.carriers.model_validate(
                {"inpost": {"api_token": SANDBOX_TOKEN, "organization_id": 1}})})})
        scheduler = BackgroundScheduler()
        IntakeJobs(db, with_inpost, clock=lambda: datetime.now(timezone.utc)).schedule(scheduler, datetime.now(timezone.utc))
        assert {job.id for job in scheduler.get_jobs()} == {"import:paper", "link:paper", "link:phone",
                                                            "tracking:inpost"}
    finally:
        runner.close()
