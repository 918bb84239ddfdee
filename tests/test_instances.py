"""Several `retsync run` instances on one PostgreSQL database, one of them killed mid-pull; one daemon per SQLite file.

Three real daemons share three channels (Bol sandboxes on loopback). The instance pulling the slow channel is
killed with SIGKILL in the middle of its backfill; another instance must take the channel over and finish it,
every return must be stored once, and every decision recorded while the survivors race to push must reach the
channel exactly once (the sandbox's log of applied handling results).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.demo import write_config
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.store.db import make_engine, upgrade
from retsync.testing.pgcluster import PgCluster

REPO = Path(__file__).resolve().parent.parent
FAST = {"max_retries": 2, "max_backoff": "0.1s", "process_poll_delay": "0.05s", "backfill_days": 3650}


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _config(tmp_path: Path, db_url: str, channels: dict[str, dict[str, Any]]) -> Path:
    config = tmp_path / "config.toml"
    write_config(config, tmp_path, channels)
    config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url)
                      .replace('log_level = "WARNING"', 'log_level = "INFO"\npush_interval = "1s"\njitter = 0'))
    return config


def _start(config: Path, log: Path, command: str = "run") -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "retsync", "--config", str(config), command], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "RETSYNC_DAEMON__LOG_FORMAT": "json"})


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@contextmanager
def _running(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _open_refs(db: Engine, channel: str, count: int) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(text(
            "SELECT channel || '/' || external_id FROM v_returns WHERE channel = :channel AND decision IS NULL "
            "AND handled_by_channel = false AND status = 'requested' ORDER BY return_id LIMIT :n"),
            {"channel": channel, "n": count}).scalars())


@pytest.mark.postgres
def test_three_instances_one_killed_mid_pull_channel_taken_over_everything_once(pg_cluster: PgCluster,
                                                                               tmp_path: Path) -> None:
    db_url = pg_cluster.new_database()
    db = make_engine(db_url)
    upgrade(db)
    cls = registry.get("bol")
    assert cls is not None
    emulators = {"slow": cls.sandbox(seed=11, returns=300), "b": cls.sandbox(seed=12, returns=120),
                 "c": cls.sandbox(seed=13, returns=120)}
    for emulator in emulators.values():
        emulator.log_requests = False
    emulators["slow"].inject("slow", times=None, delay=0.15)  # its backfill lasts long enough to be killed in
    with emulators["slow"].serve() as slow_url, emulators["b"].serve() as b_url, emulators["c"].serve() as c_url:
        # poll interval 12 s: a lease of 9 s, renewed every 3 s; a dead holder's channel is taken within 12 s
        config = _config(tmp_path, db_url, {
            name: {**cls.sandbox_channel(url), **FAST, "poll_interval": "12s"}
            for name, url in (("slow", slow_url), ("b", b_url), ("c", c_url))})
        logs = [tmp_path / f"instance{n}.log" for n in range(3)]
        processes = [_start(config, log) for log in logs]
        with _running(processes):
            def stored(channel: str) -> int:
                with db.connect() as conn:
                    return int(conn.execute(text("SELECT COUNT(*) FROM v_returns WHERE channel = :c"),
                                            {"c": channel}).scalar_one())

            def lease_owner(channel: str) -> str | None:
                with db.connect() as conn:
                    return conn.execute(text("SELECT lease_owner FROM channels WHERE name = :c"),
                                        {"c": channel}).scalar()

            _wait_for(lambda: lease_owner("slow") is not None and 0 < stored("slow") < 300, 40,
                      "the slow channel's backfill to be under way")
            holder = lease_owner("slow")
            assert holder is not None
            victim = next(p for p in processes if f":{p.pid}:" in holder)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            stored_at_kill = stored("slow")
            emulators["slow"].clear_faults()
            survivors = [p for p in processes if p is not victim]

            _wait_for(lambda: stored("b") == 120 and stored("c") == 120, 40, "channels b and c")
            decided = _open_refs(db, "b", 6) + _open_refs(db, "c", 6)
            for ref in decided:  # the two survivors' push jobs race for these
                record_decision(db, ref, DecisionKind.ACCEPT, connector_for=registry.get)
            _wait_for(lambda: stored("slow") == len(emulators["slow"].truth()["returns"]), 45,
                      "the slow channel taken over and finished")
            slow_refs = _open_refs(db, "slow", 6)
            for ref in slow_refs:
                record_decision(db, ref, DecisionKind.REJECT, note="instances test", connector_for=registry.get)

            def all_pushed() -> bool:
                with db.connect() as conn:
                    return conn.execute(text("SELECT COUNT(*) FROM decisions WHERE origin = 'merchant' "
                                             "AND state != 'pushed'")).scalar_one() == 0

            _wait_for(all_pushed, 30, "every decision to be pushed")
            new_holder = lease_owner("slow")
        assert all(p.returncode == 0 for p in survivors), [p.returncode for p in survivors]
        with db.connect() as conn:
            assert set(conn.execute(text("SELECT lease_owner FROM channels")).scalars()) == {None}, \
                "instances stopping cleanly hand their channels back"

    assert stored_at_kill < 300, "the kill landed mid-pull"
    assert new_holder is not None and any(f":{p.pid}:" in new_holder for p in survivors), new_holder
    takeovers = [e for log, p in zip(logs, processes) if p is not victim for e in _events(log)
                 if e["event"] == "channel_taken_over" and e.get("channel") == "slow"]
    assert takeovers and takeovers[0]["previous_owner"] == holder, "a survivor took the dead holder's channel"
    failed = [e for log in logs for e in _events(log) if e["event"] in ("channel_failed", "push_job_failed")]
    assert not failed, failed
    assert not any("Traceback" in log.read_text() for log in logs)
    with db.connect() as conn:
        rows = conn.execute(text("SELECT c.name, r.external_id FROM returns r JOIN channels c ON c.id = r.channel_id"))
        stored_ids = Counter((name, external_id) for name, external_id in rows)
        lines = Counter(conn.execute(text("SELECT return_id, external_id FROM return_lines")).all())
        states = Counter(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
    for name, emulator in emulators.items():
        assert {e for (c, e) in stored_ids if c == name} == emulator.truth()["returns"], f"{name}: none lost"
    assert max(stored_ids.values()) == 1 and max(lines.values()) == 1, "no return or line stored twice"
    assert set(states) == {"pushed"}, states
    applied = Counter()
    for emulator in emulators.values():
        for rma, results in emulator.handled_log.items():
            if results:
                applied[rma] += len(results)
    with db.connect() as conn:
        pushed_lines = conn.execute(text("SELECT COUNT(*) FROM decisions WHERE origin = 'merchant'")).scalar_one()
    assert sum(applied.values()) == pushed_lines and max(applied.values()) == 1, "each decision sent once"
    db.dispose()


def test_a_second_daemon_on_one_sqlite_file_is_refused_naming_the_lock_and_the_holder(tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=2, returns=20)
    db_url = f"sqlite:///{tmp_path / 'retsync.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    with emulator.serve() as base_url:
        config = _config(tmp_path, db_url, {"bol": {**cls.sandbox_channel(base_url), **FAST, "poll_interval": "1m"}})
        first = _start(config, tmp_path / "first.log")
        with _running([first]):
            lock = tmp_path / "retsync.db.lock"
            _wait_for(lambda: lock.exists() and f"pid {first.pid} retsync run" in lock.read_text(), 20,
                      "the first daemon to hold the lock")
            second = subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), "run"], cwd=REPO,
                                    capture_output=True, text=True, timeout=30)
            once = subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), "sync"], cwd=REPO,
                                  capture_output=True, text=True, timeout=30)
        assert first.returncode == 0
        # the lock goes with its process: once the daemon has stopped, a sync runs
        after = subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), "sync"], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
    assert second.returncode == 1, second.stderr
    assert "another retsync daemon already runs" in second.stderr
    assert str(lock) in second.stderr and f"pid {first.pid}" in second.stderr and "PostgreSQL" in second.stderr
    assert once.returncode == 1, once.stderr
    assert f"in use by pid {first.pid} retsync run" in once.stderr and "retsync sync" in once.stderr
    assert "Traceback" not in second.stderr + once.stderr
    assert after.returncode == 0, after.stderr


def test_sync_on_postgresql_skips_a_channel_a_daemon_holds(pg_cluster: PgCluster, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from retsync.store.channels import ensure_channel
    from retsync.store.lease import ChannelLeases

    db_url = pg_cluster.new_database()
    db = make_engine(db_url)
    upgrade(db)
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=4, returns=10)
    with emulator.serve() as base_url:
        config = _config(tmp_path, db_url, {"held": {**cls.sandbox_channel(base_url), **FAST},
                                            "free": {**cls.sandbox_channel(base_url), **FAST}})
        held_id = ensure_channel(db, "held", "bol", datetime.now(timezone.utc))
        other = ChannelLeases(db, owner="otherhost:4242:abcdef")
        assert other.acquire(held_id, timedelta(minutes=5)).ok
        result = subprocess.run([sys.executable, "-m", "retsync", "--config", str(config), "sync"], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        with db.connect() as conn:
            counts = dict(conn.execute(text("SELECT channel, COUNT(*) FROM v_returns GROUP BY channel")).all())
            owners = dict(conn.execute(text("SELECT name, lease_owner FROM channels")).all())
    db.dispose()
    assert result.returncode == 1, result.stderr
    assert "held: skipped: pulled by the instance otherhost:4242:abcdef" in result.stderr
    assert "free: ok" in result.stdout
    assert counts == {"free": len(emulator.truth()["returns"])}
    assert owners == {"held": "otherhost:4242:abcdef", "free": None}, "sync hands its leases back"


@pytest.mark.postgres
def test_a_killed_instance_s_lease_is_taken_at_once_because_its_liveness_lock_is_gone(pg_cluster: PgCluster) -> None:
    """PostgreSQL drops a dead process's session locks: its channels need not wait for the lease to lapse."""
    from datetime import datetime, timedelta, timezone

    from retsync.store.channels import ensure_channel
    from retsync.store.lease import ChannelLeases

    db = make_engine(pg_cluster.new_database())
    upgrade(db)
    channel = ensure_channel(db, "shop", "woocommerce", datetime.now(timezone.utc))
    alive, doomed = ChannelLeases(db, owner="host:1:alive"), ChannelLeases(db, owner="host:2:doomed")
    assert doomed.acquire(channel, timedelta(minutes=10)).ok
    refused = alive.acquire(channel, timedelta(minutes=10))
    assert not refused.ok and refused.holder.owner == "host:2:doomed", "a live holder keeps its channel"
    assert doomed._alive is not None
    doomed._alive.invalidate()  # the process is gone: its connection, and with it its liveness lock
    doomed._alive = None
    taken = alive.acquire(channel, timedelta(minutes=10))
    assert taken.ok and taken.taken_over and taken.holder.owner == "host:2:doomed"
    alive.close()
    with db.connect() as conn:
        assert conn.execute(text("SELECT lease_owner FROM channels")).scalar() is None, "a clean stop hands it back"
    db.dispose()
