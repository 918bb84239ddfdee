"""Files that hold customer data or credentials are created readable by retsync's user only, whatever the umask.

Under the shipped systemd unit `UMask=0077` already sees to that; run by hand or from cron, the usual umask 022
would leave the database (names, addresses, phone numbers) and its `-wal`/`-shm` readable by every local user.
SQLite creates `-wal` and `-shm` with the mode of the database file, so creating that file 0600 covers them.
A file or folder that already exists keeps the mode its admin gave it (a reporting group may read it on purpose).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(folder: Path) -> None:
    """Create `folder` and any missing parents as 0700; raise OSError as `mkdir` does."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by another process: its mode is that process's business
            continue
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is cut by the umask; an odd umask could cut too much


def private_file_opener(path: str, flags: int) -> int:
    """An `opener` for `open()`: a file it creates is 0600 (the umask can only take bits away from that)."""
    return os.open(path, flags, PRIVATE_FILE_MODE)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists; an empty file is also a valid empty SQLite database."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def replace_file(path: Path, text: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Put `text` in `path` whole or not at all: a temporary file beside it (created with `mode`), written and
    synced, renamed over `path`, and the folder synced, so a crash leaves the old content or the new one, never
    half of either (a token, a journal, a report). Raises OSError as the file system does."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
