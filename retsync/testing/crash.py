"""Killing `retsync sync` with SIGKILL at random moments, for a connector's crash test.

A crash test serves the connector's sandbox on loopback, runs `retsync sync` as a real process against it, kills
it at random moments (start-up, paging, pushing), lets it finish, and then checks that the database matches the
sandbox and the sandbox's `acts_applied()` shows every act once. These helpers are the killing and the finishing;
what is checked is each test's.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

STRESS = bool(os.environ.get("RETSYNC_STRESS"))
"""`make stress`: many more kills, and every crash test on both databases."""


def crash_databases() -> Any:
    """The databases a connector's crash test runs on: SQLite in `make test`, PostgreSQL too under `make stress`.

    A connector's crash test proves its acts are idempotent and its pages resumable, which is the connector's
    and the same on both; what differs between the databases (transactions, row locks, the outbox's claims) is
    the core's, and the core's own crash test (tests/test_crash.py) kills on both in every run.
    """
    params: list[Any] = ["sqlite"]
    if STRESS:
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return pytest.mark.parametrize("db_url", params, indirect=True)


def sync_process(config: Path) -> subprocess.Popen[bytes]:
    """`retsync sync` on `config`, started and not waited for; it logs errors only."""
    return subprocess.Popen([sys.executable, "-m", "retsync", "--config", str(config), "sync"], cwd=config.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "RETSYNC_DAEMON__LOG_LEVEL": "ERROR"})


def run_sync(config: Path) -> None:
    """One `retsync sync` run to its end; it must succeed (its stderr is the failure's message)."""
    done = subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), "sync"], check=False,
                          cwd=config.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def kill_at_random(config: Path, rng: random.Random, kills: int, *, longest: float = 2.5) -> int:
    """Start `retsync sync` and kill it after a random delay of up to `longest` seconds, `kills` times; answer
    how many kills landed.

    Start-up is ~0.5 s, so kills land in start-up, paging and pushing. Once the history is stored a run is
    short, so the delays shrink to a run's length whenever a run finishes before its kill."""
    killed = 0
    for _ in range(kills):
        process = sync_process(config)
        started = time.monotonic()
        time.sleep(rng.uniform(0.3, longest))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        else:
            longest = max(0.4, 0.9 * (time.monotonic() - started))
        process.wait()
    return killed


STORE_COUNTS = ("SELECT (SELECT COUNT(*) FROM returns), (SELECT COUNT(*) FROM return_events), "
                "(SELECT COUNT(*) FROM sync_cursors)")


def settle_decisions(config: Path, db: Engine, rounds: int = 5) -> int:
    """Run `retsync sync` until no decision waits, at most `rounds` times; answer how many still wait.

    A decision a killed process had claimed waits out its lease before anyone sends it again; each round lifts
    that wait, as the lease running out would, so the test need not sit through it.
    """
    waiting = 0
    for _ in range(rounds):
        with db.begin() as conn:
            conn.execute(text("UPDATE decisions SET next_attempt_at = NULL WHERE state IN ('sending', 'pending')"))
        run_sync(config)
        with db.connect() as conn:
            waiting = int(conn.execute(text(
                "SELECT COUNT(*) FROM decisions WHERE state IN ('pending', 'sending')")).scalar_one())
        if not waiting:
            break
    return waiting


def rerun_counts(config: Path, db: Engine) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Returns, history rows and cursors after one more `retsync sync`, and after another: equal when the
    cursors are consistent (once everything is stored, a run finds nothing new and writes no history)."""
    counts = []
    for _ in range(2):
        run_sync(config)
        with db.connect() as conn:
            counts.append(tuple(conn.execute(text(STORE_COUNTS)).one()))
    return counts[0], counts[1]
