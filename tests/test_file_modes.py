"""The state directory and every file holding customer data or credentials are private to retsync's user, whatever
the umask: run by hand or from cron (umask 022), not only under systemd's UMask=0077.

Each test runs under umask 022, where a plain mkdir/open would give 0755/0644: readable by every local user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from retsync.kit.tokens import TokenStore
from retsync.store.db import make_engine, upgrade
from retsync.store.filelock import SingleInstance, sqlite_lock_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_database_folder_file_wal_and_shm_are_private(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "retsync"
    url = f"sqlite:///{state / 'retsync.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as connection:  # while a connection is open, WAL mode keeps -wal and -shm beside the file
        connection.execute(text("SELECT count(*) FROM returns")).scalar_one()
        files = sorted(path.name for path in state.iterdir())
        assert files == ["retsync.db", "retsync.db-shm", "retsync.db-wal"]
        assert {name: _mode(state / name) for name in files} == {name: 0o600 for name in files}
    engine.dispose()
    for folder in (state, state.parent, state.parent.parent):
        assert _mode(folder) == 0o700, f"{folder} was created by retsync"


def test_an_existing_database_keeps_the_mode_its_admin_gave_it(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    make_engine(f"sqlite:///{database}").dispose()
    database.chmod(0o640)  # e.g. a reporting group reads it on purpose
    upgrade(make_engine(f"sqlite:///{database}"))
    assert _mode(database) == 0o640


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    lock_path = sqlite_lock_path(f"sqlite:///{tmp_path / 'retsync.db'}")
    assert lock_path is not None
    with SingleInstance(lock_path, "run") as lock:
        lock.acquire()
        assert _mode(lock_path) == 0o600
        assert "retsync run" in lock_path.read_text()


def test_token_files_and_a_new_state_directory_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = TokenStore("allegro", state, backend="file")
    store.save("refresh-token-0123456789")
    assert _mode(state) == 0o700 and _mode(state / "tokens") == 0o700
    assert _mode(state / "tokens" / "allegro.json") == 0o600
    assert store.load() == "refresh-token-0123456789"
