"""What every benchmark shares: the machine's description, sandbox configs and the measured child process."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.demo import write_config
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator
from retsync.store.db import make_engine, upgrade

REPO = Path(__file__).resolve().parent.parent


INSERT_CHUNK = 20_000
"""Rows a seeding benchmark inserts per statement: memory stays flat however large the history."""


def chunks(rows: Iterator[dict[str, Any]], size: int = INSERT_CHUNK) -> Iterator[list[dict[str, Any]]]:
    """`rows` in lists of `size`, the last one shorter."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def machine() -> dict[str, object]:
    memory = "?"
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def sandboxed(only: list[str] | None = None) -> Iterator[tuple[str, type[Connector]]]:
    """Every installed connector that ships a sandbox (optionally only the named ones)."""
    for name, cls in registry.connectors().items():
        if only and name not in only:
            continue
        if cls.sandbox(seed=1, returns=10) is not None:
            yield name, cls


def database_name(db_url: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(db_url.split(":", 1)[0].split("+")[0], db_url)


def write_sandbox_config(path: Path, workdir: Path, db_url: str, channels: dict[str, dict[str, Any]],
                         daemon: dict[str, str] | None = None) -> None:
    """A config file for sandbox channels on `db_url`, its schema created."""
    write_config(path, workdir, channels)
    text = path.read_text().replace(f"sqlite:///{workdir / 'demo.db'}", db_url)
    for key, value in (daemon or {}).items():
        text = re.sub(rf"(?m)^{key} = .*\n", "", text)
        text = text.replace("[daemon]\n", f'[daemon]\n{key} = "{value}"\n', 1)
    path.write_text(text)
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()


def channel_table(cls: type[Connector], base_url: str) -> dict[str, Any]:
    return {**cls.sandbox_channel(base_url), "backfill_days": 3650, "max_retries": 5}


def run_child(mode: str, config: Path, channel: str) -> dict[str, Any]:
    """Run `python -m bench.child MODE CONFIG CHANNEL` and answer its JSON line (its own timing and peak RSS)."""
    result = subprocess.run([sys.executable, "-m", "bench.child", mode, str(config), channel], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise RuntimeError(f"bench.child {mode} failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if not measured.get("ok", True):
        raise RuntimeError(f"bench.child {mode} failed: {measured.get('error')}")
    return measured


class Postgres:
    """A throwaway PostgreSQL cluster for the runs that want one, started on first use."""

    def __init__(self) -> None:
        self.cluster: Any = None

    def new_database(self) -> str:
        if self.cluster is None:
            from retsync.testing.pgcluster import PgCluster

            self.cluster = PgCluster()
        return str(self.cluster.new_database())

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


def serve_sandboxes(stack: contextlib.ExitStack, sandboxes: list[tuple[str, type[Connector]]], *, returns: int,
                    seed: int = 1, log_requests: bool = False) -> dict[str, tuple[Emulator, str]]:
    """Each connector's sandbox on a loopback port of its own until `stack` closes: name -> (emulator, base URL).
    Their request logs stay off unless a benchmark reads them (a long run would keep every request)."""
    served = {}
    for name, cls in sandboxes:
        emulator = cls.sandbox(seed=seed, returns=returns)
        assert emulator is not None
        emulator.log_requests = log_requests
        served[name] = (emulator, stack.enter_context(emulator.serve()))
    return served


@contextlib.contextmanager
def daemon_running(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`retsync run` on `config`, as a merchant's systemd would run it; stopped (SIGTERM, then killed after 30 s)
    when the block ends.

    Its log goes to `daemon.log` beside the config, not to a pipe: a pipe nobody reads fills after 64 kB, and a
    daemon blocked writing its log holds whatever it held, the database's write lock included."""
    with open(_log_of(config), "wb") as err:
        daemon = subprocess.Popen([sys.executable, "-m", "retsync", "--config", str(config), "run"], cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _log_of(config: Path) -> Path:
    return config.parent / "daemon.log"


def daemon_log(config: Path) -> str:
    """What `daemon_running(config)` logged."""
    log = _log_of(config)
    return log.read_text(errors="replace") if log.exists() else ""


def wait_for_first_pulls(engine: Engine, daemon: subprocess.Popen[bytes], channels: int, config: Path,
                         limit_s: float = 600.0) -> float | None:
    """Seconds until every channel has finished a pull; None after `limit_s` (a channel failing its first pull).
    The daemon exiting is an error, with its last words."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if daemon.poll() is not None:
            raise RuntimeError(f"retsync run exited: {daemon_log(config)[-3000:]}")
        with contextlib.suppress(Exception), engine.connect() as conn:
            if conn.execute(text("SELECT COUNT(*) FROM channels WHERE last_pull_finished_at IS NOT NULL")
                            ).scalar_one() >= channels:
                return time.monotonic() - started
        time.sleep(0.5)
    return None
