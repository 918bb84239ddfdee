"""Kill -9 at random moments while Amazon returns arrive from the reports and refunds go out as feeds: nothing
lost, nothing duplicated, no order item refunded twice (a retry finds its feed through the act's reference or the
feed journal before submitting again).

The same shape as tests/test_crash.py (bol), smaller: 6 kills here, 40 under RETSYNC_STRESS=1 (`make stress`).
The sandbox's usage plans are off: every process starts with full buckets of its own, which the shared sandbox
would count as one client's. Eight decisions: getFeedDocument allows a burst of 10 and then one call in 45 s, which
each process's own pacing honours (more acts would make the test wait minutes, as the daemon would).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.demo import write_config
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.testing.crash import crash_databases, kill_at_random, rerun_counts, run_sync, settle_decisions

STRESS = bool(os.environ.get("RETSYNC_STRESS"))
KILLS = 40 if STRESS else 6
RETURNS = 28

pytestmark = pytest.mark.crash


@crash_databases()
def test_sigkill_anywhere_loses_nothing_and_refunds_nothing_twice(db: Engine, db_url: str, tmp_path: Path) -> None:
    cls = registry.get("amazon")
    assert cls is not None
    emulator = cls.sandbox(seed=3, returns=RETURNS)
    emulator.log_requests = False
    emulator.rate_limits = False  # type: ignore[attr-defined]
    rng = random.Random(20261206)
    with emulator.serve() as base_url:
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, {"amazon": {**cls.sandbox_channel(base_url), "max_backoff": "0.2s"}})
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url))
        killed = kill_at_random(config, rng, KILLS // 2, longest=1.5)
        run_sync(config)
        with db.connect() as conn:
            open_refs = list(conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE decision IS NULL "
                "AND handled_by_channel = :no AND status IN ('requested', 'in_transit', 'received') "
                "ORDER BY return_id LIMIT 8"), {"no": False}).scalars())
        kinds = [DecisionKind.ACCEPT, DecisionKind.KEEP]
        for n, ref in enumerate(open_refs):
            record_decision(db, ref, kinds[n % len(kinds)], note="crash test", connector_for=registry.get)
        for _ in range(3):  # the channel changes under us between kills
            emulator.add_odd_return()  # type: ignore[attr-defined]
        killed += kill_at_random(config, rng, KILLS - KILLS // 2, longest=1.5)
        settle_decisions(config, db)
        before, after = rerun_counts(config, db)
        with db.connect() as conn:
            stored = Counter(conn.execute(text("SELECT external_id FROM returns")).scalars())
            states = Counter(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
            lines = conn.execute(text("SELECT COUNT(*) FROM decisions WHERE origin = 'merchant'")).scalar_one()
    assert killed >= KILLS // 2, "the kills must land while the process runs"
    assert before == after and before[2] > 0, (before, after)
    assert set(stored) == emulator.returns_in_window(), "no return lost, none invented"  # type: ignore[attr-defined]
    assert max(stored.values()) == 1, "no duplicate rows"
    assert open_refs and states == Counter({"pushed": lines}), states
    applied = Counter(emulator.acts_applied())
    assert len(applied) == lines and max(applied.values()) == 1, "each order item refunded once"
