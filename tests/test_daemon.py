"""`retsync run` as systemd runs it: scheduled pulls and pushes, a dead channel isolated, SIGTERM within 10 s."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.demo import write_config
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision

REPO = Path(__file__).resolve().parent.parent


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connections are refused


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_pulls_pushes_isolates_a_dead_channel_and_stops_on_sigterm(db: Engine, db_url: str,
                                                                       tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=5, returns=400)
    with emulator.serve() as base_url:
        dead = f"http://127.0.0.1:{_dead_port()}"
        fast = {"poll_interval": "1s", "max_retries": 1, "max_backoff": "0.1s", "process_poll_delay": "0.05s"}
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, {
            "live": {**cls.sandbox_channel(base_url), **fast, "backfill_days": 3650},
            "dead": {**cls.sandbox_channel(dead), **fast},
        })
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url)
                          .replace('log_level = "WARNING"', 'log_level = "INFO"\npush_interval = "1s"\njitter = 0'))
        process = subprocess.Popen([sys.executable, "-m", "retsync", "--config", str(config), "run"], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            def stored() -> int:
                with db.connect() as conn:
                    return int(conn.execute(text("SELECT COUNT(*) FROM v_returns WHERE channel = 'live'")).scalar_one())

            _wait_for(lambda: stored() >= len(emulator.truth()["returns"]), 60, "the live channel's backfill")
            with db.connect() as conn:
                ref = conn.execute(text(
                    "SELECT channel || '/' || external_id FROM v_returns WHERE channel = 'live' AND decision IS NULL "
                    "AND handled_by_channel = :no AND status = 'requested' ORDER BY return_id LIMIT 1"),
                    {"no": False}).scalar_one()
            record_decision(db, ref, DecisionKind.ACCEPT, connector_for=registry.get)

            def pushed() -> bool:
                with db.connect() as conn:
                    return conn.execute(text("SELECT COUNT(*) FROM decisions WHERE origin = 'merchant' "
                                             "AND state != 'pushed'")).scalar_one() == 0

            _wait_for(pushed, 30, "the decision to be pushed")
            time.sleep(3)  # several more polls of both channels
            emulator.inject("slow", times=None, delay=0.3)  # keep it busy mid-pull when the signal comes
            time.sleep(1)
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=15)
            took = time.monotonic() - stopping
        finally:
            if process.poll() is None:
                process.kill()
        out, err = process.communicate()
    assert code == 0 and took < 10, f"stopped with {code} after {took:.1f}s"
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, err[-2000:]
    failures = [l for l in lines if l["event"] == "channel_failed"]
    assert len(failures) == 1 and failures[0]["channel"] == "dead", "a dead channel is logged once"
    assert any(l["event"] == "pull_finished" and l.get("channel") == "live" and l.get("stream") == "returns"
               for l in lines)
    assert any(l["event"] == "daemon_stopped" for l in lines)
    assert "sandbox-secret" not in err
    with db.connect() as conn:
        health = dict(conn.execute(text("SELECT name, consecutive_failures FROM channels")).all())
    assert health["dead"] >= 2 and health["live"] == 0
    rma_results = [r for r in emulator.handled_log.values() if r]
    assert len(rma_results) >= 1 and all(len(r) == 1 for r in rma_results)


def test_many_channels_first_pulls_side_by_side_into_one_database_all_land(db: Engine, db_url: str,
                                                                            tmp_path: Path) -> None:
    """The daemon pulls up to eight channels at once into one database: every first pull must land, each
    channel's reconciliation included (on SQLite a transaction that opened without the write lock and read
    before writing failed at once with "database is locked" whenever another channel had written meanwhile)."""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import ExitStack

    from retsync.app.daemon import Runner
    from retsync.config import load_config

    kinds = ("bol", "woocommerce", "shoper", "allegro")
    channels, expected = {}, {}
    with ExitStack() as stack:
        for n in range(16):
            cls = registry.get(kinds[n % len(kinds)])
            assert cls is not None
            emulator = cls.sandbox(seed=100 + n, returns=10)
            url = stack.enter_context(emulator.serve())
            name = f"{kinds[n % len(kinds)]}_{n:02d}"
            channels[name] = {**cls.sandbox_channel(url), "max_retries": 1, "max_backoff": "0.1s",
                              "backfill_days": 3650}
            expected[name] = len(emulator.truth()["returns"])
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, channels)
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url))
        runner = Runner(load_config(config, registry.settings_model_for, registry.names, registry.holds_returns))
        runner.open()
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:  # as many as the daemon's scheduler runs at once
                outcomes = list(pool.map(runner.pull, channels))
        finally:
            runner.close()
    assert [(o.channel, o.error) for o in outcomes if not o.ok] == []
    with db.connect() as conn:
        stored = dict(conn.execute(text("SELECT channel, COUNT(*) FROM v_returns GROUP BY channel")).all())
        failing = conn.execute(text("SELECT COUNT(*) FROM channels WHERE consecutive_failures > 0")).scalar_one()
        flagged = conn.execute(text("SELECT COUNT(DISTINCT r.channel_id) FROM return_flags f "
                                    "JOIN returns r ON r.id = f.return_id")).scalar_one()
    assert stored == expected and failing == 0
    assert flagged > 0, "reconciliation ran for the channels: the sandboxes' odd returns are flagged"


def test_a_stop_that_hangs_ends_the_process_after_the_limit_and_says_what_hung() -> None:
    """`retsync run` is gone within STOP_LIMIT_SECONDS of SIGTERM even when a job still waits (a request, a
    database lock): it names the thread and where it waits, then ends the process with 0."""
    import threading

    from structlog.testing import capture_logs

    from retsync.app.daemon import stop_within

    release = threading.Event()
    job = threading.Thread(target=release.wait, name="pull-job-bol")
    job.start()
    ended: list[int] = []
    done = threading.Event()
    try:
        with capture_logs() as logs:
            stop_within(0.2, exit=lambda code: (ended.append(code), done.set()))
            assert done.wait(10), "the process was not ended"
    finally:
        release.set()
        job.join()
    assert ended == [0]
    overran = [entry for entry in logs if entry["event"] == "stop_overran"]
    assert len(overran) == 1 and "threading.py" in overran[0]["busy"]["pull-job-bol"], overran
    assert " wait" in overran[0]["busy"]["pull-job-bol"]
