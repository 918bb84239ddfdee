"""Kill -9 at random moments: nothing lost, nothing duplicated, no decision pushed twice.

`retsync sync` runs as a real process against a sandbox served on loopback and is killed with SIGKILL at
random moments (10 times in `make test`, 200 in `make stress`, RETSYNC_STRESS=1), then allowed to finish. The
database must then match the sandbox's truth exactly, the sandbox's log must show every decision applied once,
and one more run must find nothing to store.
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
from retsync.testing.crash import kill_at_random, rerun_counts, run_sync, settle_decisions

STRESS = bool(os.environ.get("RETSYNC_STRESS"))
KILLS = 200 if STRESS else 10
RETURNS = 3000 if STRESS else 700

pytestmark = pytest.mark.crash


def test_sigkill_anywhere_loses_nothing_and_pushes_nothing_twice(db: Engine, db_url: str, tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=3, returns=RETURNS)
    emulator.log_requests = False
    rng = random.Random(20261122)
    with emulator.serve() as base_url:
        config = tmp_path / "config.toml"
        write_config(config, tmp_path, {"bol": {**cls.sandbox_channel(base_url), "backfill_days": 3650,
                                                "max_backoff": "0.2s", "process_poll_delay": "0.05s"}})
        config.write_text(config.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url))
        killed = kill_at_random(config, rng, KILLS // 2)
        # decisions recorded while the history is still arriving, then more kills through pull and push
        run_sync(config)
        with db.connect() as conn:
            open_refs = list(conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE handled_by_channel = :no AND "
                "decision IS NULL AND status IN ('requested', 'in_transit') ORDER BY return_id LIMIT 40"),
                {"no": False}).scalars())
        kinds = [DecisionKind.ACCEPT, DecisionKind.REJECT, DecisionKind.REPAIR, DecisionKind.EXCHANGE,
                 DecisionKind.KEEP]
        for n, ref in enumerate(open_refs):
            record_decision(db, ref, kinds[n % len(kinds)], note="crash test", connector_for=registry.get)
        for n in range(3):  # the sandbox changes under us between kills
            emulator.add_return()
        killed += kill_at_random(config, rng, KILLS - KILLS // 2)
        settle_decisions(config, db)
        # cursors consistent: once bol has finished every handling and a run has read that back, one more run
        # finds nothing new and writes no history
        emulator.settle()
        before, after = rerun_counts(config, db)
        with db.connect() as conn:
            added = conn.execute(text("SELECT kind, old_value, new_value, source FROM return_events "
                                      f"ORDER BY id DESC LIMIT {after[1] - before[1]}")).all() \
                if after[1] > before[1] else []
            waiting = conn.execute(text("SELECT state, COUNT(*) FROM decisions GROUP BY state")).all()
    assert before == after and before[2] > 0, (before, after, added[:10], waiting)
    assert killed >= KILLS // 2, "the kills must land while the process runs"
    truth = emulator.truth()
    with db.connect() as conn:
        stored = Counter(conn.execute(text("SELECT external_id FROM returns")).scalars())
        lines = Counter(conn.execute(text("SELECT external_id FROM return_lines")).scalars())
        states = Counter(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
    assert set(stored) == truth["returns"], "no return lost, none invented"
    assert max(stored.values()) == 1 and max(lines.values()) == 1, "no duplicate rows"
    assert set(lines) == truth["rmas"]
    assert states == Counter({"pushed": sum(states.values())}), states
    applied = {rma: results for rma, results in emulator.handled_log.items() if results}
    assert applied and all(len(results) == 1 for results in applied.values()), "each decision applied once"
