"""Bad input at the edge: a broken config, a database that is read-only, locked or out of space.

Each must give one clear message and a non-zero exit of the CLI command, never a traceback, and must leave the
database intact (`PRAGMA integrity_check`); a daemon keeps the other channels going where it can. Permissions
are checked for real: when the tests run as root, the command runs without root's power to ignore them
(CAP_DAC_OVERRIDE and friends dropped from its capability bounding set), as retsync runs under systemd.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from retsync import registry
from retsync.app.cli import main
from retsync.app.daemon import Runner
from retsync.app.demo import write_config
from retsync.config import load_config
from retsync.store import db as store_db
from retsync.store.db import make_engine, upgrade
from retsync.store.pages import PageWriter

REPO = Path(__file__).resolve().parent.parent
FAST = {"max_retries": 1, "max_backoff": "0.1s", "process_poll_delay": "0.05s", "backfill_days": 3650}
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def _without_root_powers() -> None:
    """In the child before exec: file permissions apply to it even when it runs as root."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _retsync(config: Path, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, preexec_fn=preexec,
                          env={**os.environ, "RETSYNC_DAEMON__LOG_LEVEL": "ERROR", "PYTHONDONTWRITEBYTECODE": "1"})


def _integrity_ok(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _setup(tmp_path: Path, channels: dict[str, dict[str, Any]]) -> tuple[Path, Path]:
    folder = tmp_path / "state"
    folder.mkdir()
    config = tmp_path / "config.toml"
    write_config(config, folder, channels)
    database = folder / "demo.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    engine.dispose()
    return config, database


def _bol() -> Any:
    cls = registry.get("bol")
    assert cls is not None
    return cls


# --- the config ---------------------------------------------------------------------------------------------


def test_corrupt_toml_names_the_file_and_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "/tmp/x"\n[channels.bol\nconnector = "bol"\n')
    for command in (["sync"], ["run"], ["channels"], ["config", "check"]):
        assert main(["--config", str(config), *command]) == 2
        err = capsys.readouterr().err
        assert f"{config}: not valid TOML" in err and "line 3" in err, err
    config.write_bytes(b'[daemon]\nstate_dir = "\xff\xfe"\n')
    assert main(["--config", str(config), "sync"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


def test_unreadable_config_file_is_a_clear_error_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nstate_dir = "/tmp/x"\n')
    config.chmod(0)
    result = _retsync(config, "sync", preexec=_without_root_powers)
    assert result.returncode == 2, result.stderr
    assert f"{config}: cannot read the config file: Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    directory = tmp_path / "folder.toml"
    directory.mkdir()
    result = _retsync(directory, "run")
    assert result.returncode == 2 and "cannot read the config file: Is a directory" in result.stderr


# --- the database -------------------------------------------------------------------------------------------


def test_read_only_database_file_and_folder_fail_clearly_and_stay_intact(tmp_path: Path) -> None:
    cls = _bol()
    emulator = cls.sandbox(seed=7, returns=30)
    with emulator.serve() as base_url:
        config, database = _setup(tmp_path, {"bol": {**cls.sandbox_channel(base_url), **FAST}})
        assert _retsync(config, "sync").returncode == 0
        before = database.stat().st_size
        folder = database.parent
        modes = {path: stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.iterdir()]}
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        try:
            synced = _retsync(config, "sync", preexec=_without_root_powers)
            decided = _retsync(config, "decide", "1", "accept", preexec=_without_root_powers)
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    for result in (synced, decided):
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"the database {database} is read-only for this process" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert database.stat().st_size == before
    _integrity_ok(database)


def test_locked_database_fails_clearly_instead_of_hanging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cls = _bol()
    emulator = cls.sandbox(seed=8, returns=10)
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    with emulator.serve() as base_url:
        config, database = _setup(tmp_path, {"bol": {**cls.sandbox_channel(base_url), **FAST}})
        assert main(["--config", str(config), "sync"]) == 0
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program keeps a write transaction open
        holder.execute("CREATE TABLE someone_elses (x)")
        try:
            codes = [main(["--config", str(config), "sync"]), main(["--config", str(config), "decide", "1", "keep"])]
            err = capsys.readouterr().err
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert codes == [1, 1], err
        assert f"bol: FAILED: the database {database} is locked by another process" in err, err
        assert f"retsync: the database {database} is locked by another process" in err, err
        assert "Traceback" not in err and "INSERT" not in err
        assert main(["--config", str(config), "sync"]) == 0, "once the lock is gone, the sync runs"
    _integrity_ok(database)


def test_full_disk_sync_fails_clearly_rolls_back_and_resumes(tmp_path: Path) -> None:
    cls = _bol()
    emulator = cls.sandbox(seed=9, returns=400)
    with emulator.serve() as base_url:
        config, database = _setup(tmp_path, {"bol": {**cls.sandbox_channel(base_url), **FAST}})
        limit = database.stat().st_size + 96 * 1024

        def small_disk() -> None:  # every file this process writes stops growing at `limit` bytes
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        full = _retsync(config, "sync", preexec=small_disk)
        _integrity_ok(database)
        after = _retsync(config, "sync")
        with sqlite3.connect(database) as conn:
            stored = {row[0] for row in conn.execute("SELECT external_id FROM returns")}
            duplicates = conn.execute(
                "SELECT COUNT(*) - COUNT(DISTINCT external_id) FROM return_lines").fetchone()[0]
    assert full.returncode == 1, full.stdout + full.stderr
    assert "bol: FAILED: the database" in full.stderr and "disk is full or failing" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr
    assert after.returncode == 0, after.stderr
    assert stored == emulator.truth()["returns"] and duplicates == 0
    _integrity_ok(database)


def test_a_channel_whose_writes_fail_does_not_stop_the_others(tmp_path: Path) -> None:
    """The daemon's path (Runner), one channel's pages failing with ENOSPC: the other channel syncs fully."""
    cls = _bol()
    broken_emulator, fine_emulator = cls.sandbox(seed=21, returns=40), cls.sandbox(seed=22, returns=40)
    with broken_emulator.serve() as broken_url, fine_emulator.serve() as fine_url:
        config_path, database = _setup(tmp_path, {"broken": {**cls.sandbox_channel(broken_url), **FAST},
                                                  "fine": {**cls.sandbox_channel(fine_url), **FAST}})
        config = load_config(config_path, registry.settings_model_for, registry.names, registry.holds_returns)
        runner = Runner(config)
        runner.open()
        original = PageWriter.store
        broken_id = runner.channel_ids["broken"]

        def store(self: PageWriter, conn: Any, *args: Any, **kwargs: Any) -> Any:
            if self.channel_id == broken_id:
                raise OperationalError("INSERT INTO returns ...", {}, sqlite3.OperationalError(
                    "database or disk is full"))
            return original(self, conn, *args, **kwargs)

        try:
            PageWriter.store = store  # type: ignore[method-assign]
            outcomes = {o.channel: o for o in (runner.pull("broken"), runner.pull("fine"))}
        finally:
            PageWriter.store = original  # type: ignore[method-assign]
            runner.close()
    assert not outcomes["broken"].ok and "is full" in (outcomes["broken"].error or "")
    assert outcomes["fine"].ok and outcomes["fine"].returns_new == len(fine_emulator.truth()["returns"])
    with sqlite3.connect(database) as conn:
        health = {name: (error, failures) for name, error, failures in conn.execute(
            "SELECT name, last_error, consecutive_failures FROM channels")}
        cursors = {row[0] for row in conn.execute(
            "SELECT c.name FROM sync_cursors s JOIN channels c ON c.id = s.channel_id")}
    assert health["broken"][1] == 1 and f"disk holding the database {database} is full" in health["broken"][0]
    assert health["fine"] == (None, 0)
    assert cursors == {"fine"}, "a page that could not be stored never advances its cursor"
    _integrity_ok(database)


def test_oserror_enospc_from_a_write_is_named_as_a_full_disk() -> None:
    from retsync.app.daemon import describe_failure

    message = describe_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert message.startswith("the disk holding the database is full")


def test_daemon_on_a_full_disk_keeps_running_says_so_once_and_stops_cleanly(tmp_path: Path) -> None:
    import json
    import signal
    import time

    cls = _bol()
    emulator = cls.sandbox(seed=10, returns=400)
    with emulator.serve() as base_url:
        config, database = _setup(tmp_path, {"bol": {**cls.sandbox_channel(base_url), **FAST, "poll_interval": "1s"}})
        config.write_text(config.read_text().replace('log_level = "WARNING"',
                                                     'log_level = "INFO"\npush_interval = "1s"\njitter = 0'))
        limit = database.stat().st_size + 96 * 1024
        log = tmp_path / "daemon.log"
        with open(log, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "retsync", "--config", str(config), "run"], cwd=REPO, stdout=subprocess.DEVNULL,
                stderr=err, env={**os.environ, "RETSYNC_DAEMON__LOG_FORMAT": "json", "PYTHONDONTWRITEBYTECODE": "1",
                                "PYTHONFAULTHANDLER": "1"},
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        try:
            def events() -> list[dict[str, Any]]:
                return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(e["event"] == "channel_still_failing" or (
                    e["event"] == "channel_failed") for e in events()):
                time.sleep(0.2)
            time.sleep(2.5)  # more polls fail the same way: they must not be logged again
            alive = process.poll() is None
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGABRT)  # with PYTHONFAULTHANDLER: every thread's stack, into the log
                time.sleep(1)
                raise AssertionError(f"no exit 20 s after SIGTERM:\n{log.read_text()[-6000:]}") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    seen = events()
    failed = [e for e in seen if e["event"] == "channel_failed"]
    assert alive and code == 0, log.read_text()[-2000:]
    assert len(failed) == 1 and "disk is full or failing" in failed[0]["error"], failed
    assert str(database) in failed[0]["error"]
    assert sum(e["event"] == "push_job_failed" for e in seen) <= 1
    assert "Traceback" not in log.read_text()
    _integrity_ok(database)


@pytest.mark.postgres
def test_read_only_postgresql_database_fails_clearly(pg_cluster: Any, tmp_path: Path) -> None:
    cls = _bol()
    emulator = cls.sandbox(seed=12, returns=10)
    url = pg_cluster.new_database()
    engine = make_engine(url)
    upgrade(engine)
    name = engine.url.database
    with engine.begin() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    engine.dispose()
    with emulator.serve() as base_url:
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, {"bol": {**cls.sandbox_channel(base_url), **FAST}})
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", url))
        synced = _retsync(config, "sync")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert f"the database {url}" in synced.stderr, synced.stderr
    assert "only takes reads" in synced.stderr and "standby" in synced.stderr, synced.stderr
    assert "Traceback" not in synced.stderr
