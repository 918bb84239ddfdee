"""One daemon per SQLite file: a lock file beside the database, held by `retsync run` and `retsync sync`.

SQLite has one writer at a time and nothing like PostgreSQL's row locks, so retsync does not run several
instances on one SQLite file; a second daemon is refused with the file and the process that holds it, not
left to fight over the write lock. The lock is `flock(2)`: the kernel drops it when its process dies, so a
killed daemon never leaves a stale lock behind. The file's text (pid, command, start time) is only there
to name the holder in the message.
"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from retsync.kit.files import private_file_opener


class InstanceLocked(Exception):
    """Another retsync process holds this SQLite database; the message names it and what to do."""


def sqlite_lock_path(database_url: str) -> Path | None:
    """`<database file>.lock` for an SQLite file; None for PostgreSQL or an in-memory database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database + ".lock")


class SingleInstance:
    """Hold the lock file of one SQLite database for as long as this process runs `command`."""

    def __init__(self, path: Path, command: str) -> None:
        self.path = path
        self.command = command
        self._file: IO[str] | None = None
        self._writable = True

    def holder(self) -> str:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or "another retsync process"

    def acquire(self, wait_for_one_shot: bool = False) -> None:
        """Take the lock or raise InstanceLocked; `wait_for_one_shot`: wait while a `retsync sync` finishes."""
        try:
            handle = open(self.path, "a+", encoding="utf-8",  # noqa: SIM115 - held until release()
                          opener=private_file_opener)
        except PermissionError:
            if not self.path.exists():
                raise InstanceLocked(f"cannot create the lock file {self.path} beside the database: the folder "
                                     f"is not writable by this user (nor, then, is the database)") from None
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115 - a read-only lock file still locks
            self._writable = False
        except OSError as exc:
            raise InstanceLocked(f"cannot create the lock file {self.path} beside the database: "
                                 f"{exc.strerror or exc} (the database's folder must be writable)") from None
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self.holder()
                if wait_for_one_shot and " run " not in f" {holder} ":
                    time.sleep(0.5)
                    continue
                handle.close()
                raise InstanceLocked(self._refusal(holder)) from None
        if self._writable:
            handle.seek(0)
            handle.truncate()
            started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            handle.write(f"pid {os.getpid()} retsync {self.command} since {started}\n")
            handle.flush()
        self._file = handle

    def _refusal(self, holder: str) -> str:
        database = str(self.path)[: -len(".lock")]
        if self.command == "run":
            return (f"another retsync daemon already runs on the SQLite database {database} ({holder}; lock file "
                    f"{self.path}). SQLite takes one daemon per database file: stop the other one first, or use "
                    f"PostgreSQL to run several instances")
        return (f"the SQLite database {database} is in use by {holder} (lock file {self.path}): the daemon pulls "
                f"every channel on its schedule, so `retsync {self.command}` would only compete with it for the "
                f"database. Leave it to the daemon (see `retsync channels`), or stop it first")

    def release(self) -> None:
        if self._file is not None:
            if self._writable:
                self._file.seek(0)
                self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SingleInstance:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
