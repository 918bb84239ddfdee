"""`retsync db backup FILE`: a consistent SQLite copy, restorable; PostgreSQL is pointed at pg_dump."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from retsync.app.cli import main
from retsync.store.db import make_engine, upgrade
from tests.ops.conftest import config_file


def _returns(db_file: Path) -> list[str]:
    with closing(sqlite3.connect(db_file)) as conn:
        return [row[0] for row in conn.execute("SELECT external_id FROM returns ORDER BY external_id")]


def test_backup_and_restore(migrated_sqlite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_file = tmp_path / "retsync.db"
    shutil.copyfile(migrated_sqlite, db_file)
    engine = make_engine(f"sqlite:///{db_file}")
    with engine.begin() as conn:  # the daemon's connection stays open in WAL mode while the backup runs
        conn.execute(text("INSERT INTO channels (id, name, connector, created_at, consecutive_failures) VALUES "
                          "(1, 'shop', 'woocommerce', '2026-11-01 08:00:00', 0)"))
        for ext in ("R1", "R2"):
            conn.execute(text("INSERT INTO returns (channel_id, external_id, status, created_at, handled_by_channel, "
                              "extra, content_hash, first_seen_at, updated_at) VALUES (1, :ext, 'requested', "
                              "'2026-11-01 08:00:00', 0, '{}', 'h', '2026-11-01 08:00:00', '2026-11-01 08:00:00')"),
                         {"ext": ext})
    path = config_file(tmp_path, f"sqlite:///{db_file}", {})
    backup = tmp_path / "backups" / "retsync-2026-12-01.db"
    backup.parent.mkdir()
    assert main(["--config", str(path), "db", "backup", str(backup)]) == 0
    assert f"backed up to {backup}" in capsys.readouterr().out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and not (backup.parent / f".{backup.name}.partial").exists()
    assert not Path(f"{backup}-wal").exists(), "the backup is one self-contained file"

    with engine.begin() as conn:  # the day after: something lost
        conn.execute(text("DELETE FROM returns"))
    engine.dispose()
    assert _returns(db_file) == []
    for suffix in ("-wal", "-shm"):  # restore, as the README says: retsync stopped, the copy over the file
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db_file)
    assert _returns(db_file) == ["R1", "R2"]
    restored = make_engine(f"sqlite:///{db_file}")
    assert upgrade(restored)[0] == upgrade(restored)[1], "the restored database is at this retsync's schema"
    restored.dispose()
    main(["--config", str(path), "doctor", "--format", "json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["database"]["status"] == "ok" and "is current" in checks["database"]["detail"]

    assert main(["--config", str(path), "db", "backup", str(backup)]) == 1
    assert "exists already; nothing was written" in capsys.readouterr().err


def test_backup_on_postgresql_says_to_use_pg_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "postgresql://retsync:s3cret@db.example.com/retsync", {})
    assert main(["--config", str(path), "db", "backup", str(tmp_path / "x.dump")]) == 1
    err = capsys.readouterr().err
    assert "pg_dump --format=custom" in err and "postgresql://retsync:***@db.example.com/retsync" in err
    assert "s3cret" not in err and not (tmp_path / "x.dump").exists()
