"""Kill -9 at random moments while Channable returns arrive and decisions go out: nothing lost, nothing duplicated,
no status change sent twice (Channable takes no idempotency key: a retry finds the return in the status asked for).

The same shape as tests/test_crash.py (bol), smaller: 6 kills here, 40 under RETSYNC_STRESS=1 (`make stress`).
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
RETURNS = 1500 if STRESS else 300

pytestmark = pytest.mark.crash


@crash_databases()
def test_sigkill_anywhere_loses_nothing_and_sends_no_status_twice(db: Engine, db_url: str, tmp_path: Path) -> None:
    cls = registry.get("channable")
    assert cls is not None
    emulator = cls.sandbox(seed=3, returns=RETURNS)
    emulator.log_requests = False
    rng = random.Random(20261206)
    with emulator.serve() as base_url:
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, {"channable": {**cls.sandbox_channel(base_url), "backfill_days": 3650,
                                                      "max_backoff": "0.2s"}})
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url))
        killed = kill_at_random(config, rng, KILLS // 2, longest=1.5)
        run_sync(config)
        with db.connect() as conn:
            open_refs = list(conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE decision IS NULL "
                "AND status IN ('requested', 'received') ORDER BY return_id LIMIT 40")).scalars())
        kinds = list(DecisionKind)
        for n, ref in enumerate(open_refs):
            record_decision(db, ref, kinds[n % len(kinds)], note="crash test", connector_for=registry.get)
        for _ in range(3):  # the channel changes under us between kills
            emulator.add_odd_return()
        killed += kill_at_random(config, rng, KILLS - KILLS // 2, longest=1.5)
        settle_decisions(config, db)
        before, after = rerun_counts(config, db)
        with db.connect() as conn:
            stored = Counter(conn.execute(text("SELECT external_id FROM returns")).scalars())
            states = Counter(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
    assert killed >= KILLS // 2, "the kills must land while the process runs"
    assert before == after and before[2] > 0, (before, after)
    assert set(stored) == {str(number) for number in emulator.returns}, "no return lost, none invented"
    assert max(stored.values()) == 1, "no duplicate rows"
    assert open_refs and states == Counter({"pushed": len(open_refs)}), states
    applied = Counter(emulator.acts_applied())
    assert len(applied) == len(open_refs) and max(applied.values()) == 1, "each status change sent once"
