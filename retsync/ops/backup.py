"""`retsync db backup FILE`: a consistent copy of a SQLite database, taken while the daemon runs.

SQLite's online backup API copies page by page under its own locks, so the copy is a database as it was at one
moment even while the daemon writes (copying the file with `cp` can catch it half-written, and misses what still
sits in the `-wal` file). On PostgreSQL the server's own tool does this better than retsync could: `pg_dump`.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupRefused(Exception):
    """The backup cannot be made as asked; the message says why and what to do."""


def backup_database(url: str, target: Path) -> int:
    """Copy the SQLite database at `url` to `target` (created 0600, never over an existing file); its size."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        where = parsed.set(drivername="postgresql").render_as_string(hide_password=True)
        raise BackupRefused(f"the database is PostgreSQL: back it up with its own tool, e.g. `pg_dump --format=custom "
                            f"--file={target} '{where}'` (restore with pg_restore); retsync db backup copies SQLite "
                            f"databases")
    source = Path(parsed.database or "")
    if not parsed.database or parsed.database == ":memory:" or not source.is_file():
        raise BackupRefused(f"there is no database file at {source} to back up")
    if target.exists() or target.is_symlink():
        raise BackupRefused(f"{target} exists already; nothing was written (choose a new file name)")
    if target.resolve() == source.resolve():
        raise BackupRefused("the backup would overwrite the database itself")
    partial = target.with_name(f".{target.name}.partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # customer data: readable by us only
        os.close(fd)
    except OSError as exc:
        raise BackupRefused(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as origin, \
                closing(sqlite3.connect(partial)) as copy:
            origin.backup(copy)
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        if check != "ok":
            raise BackupRefused(f"the copy failed SQLite's integrity check ({check}); the database may be damaged")
        os.link(partial, target)  # appears whole or not at all, and never over a file that appeared meanwhile
    except FileExistsError:
        raise BackupRefused(f"{target} appeared while the backup ran; the copy was dropped") from None
    except sqlite3.Error as exc:
        raise BackupRefused(f"the backup of {source} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size
