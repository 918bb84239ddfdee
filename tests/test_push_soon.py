"""A decision recorded while the daemon runs reaches the channel within `decision_check`, not at the next push
pass: the daemon asks every couple of seconds whether anything is due (one indexed query) and pushes at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.testing.config import config_for

SANDBOX_URL = "http://sandbox.invalid"


def _wait(check: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds}s")


def test_a_decision_goes_out_at_once_although_the_push_pass_is_an_hour_away(db: Engine, db_url: str,
                                                                              tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=3, returns=30)
    config = config_for(tmp_path, db_url, {"live": {**cls.sandbox_channel(SANDBOX_URL), "max_backoff": "0.05s",
                                                    "process_poll_delay": "0.05s", "poll_interval": "1h"}},
                        daemon={"push_interval": "1h", "decision_check": "0.2s", "jitter": 0})
    runner = Runner(config, transports={"live": emulator.transport()}, db=db)
    runner.open()
    scheduler = runner.schedule()
    scheduler.start()
    try:
        def pulled() -> bool:
            with db.connect() as conn:
                return bool(conn.execute(text("SELECT COUNT(*) FROM returns")).scalar_one())

        _wait(pulled, 30)
        time.sleep(2.5)  # the push pass at start-up has run and found nothing; the next one is an hour away
        with db.connect() as conn:
            ref = conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE decision IS NULL AND status = 'requested' "
                "AND handled_by_channel = :no ORDER BY return_id LIMIT 1"), {"no": False}).scalar_one()
        writes = len([r for r in emulator.requests if r.method != "GET"])
        record_decision(db, ref, DecisionKind.ACCEPT, connector_for=registry.get)

        def reached_the_channel() -> bool:
            return len([r for r in emulator.requests if r.method != "GET"]) > writes

        assert _wait(reached_the_channel, 5) < 5
    finally:
        runner.stop.set()
        scheduler.shutdown(wait=True)
        runner.close()
