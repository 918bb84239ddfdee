"""Push: decisions per second through the outbox against each sandbox over loopback HTTP.

A sandbox is backfilled into SQLite (not measured), a whole-return decision is recorded on each of D of its open
returns (one act at the channel, one decision per return line), every kind the connector supports in turn, and a separate process pushes until each one is settled. Two figures:
the send rate of the first pass, and the rate at which decisions end up `pushed` (confirmed), which for a
channel that processes asynchronously (bol) includes its later status checks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import channel_table, run_child, sandboxed, write_sandbox_config
from retsync import registry
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import DecisionRefused, record_decision
from retsync.store.db import make_engine

DECISIONS_AT_MOST = {"baselinker": 20}
"""BaseLinker's 100 requests a minute for the whole account set its pace: 20 decisions, on a sandbox of six
returns a decision instead of the others' 400 at least, show the push rate as well as 100 did, and the
backfill before them takes a minute instead of over ten (it was the default run's longest step)."""

OVERRIDES: dict[str, dict[str, Any]] = {"bol": {"process_poll_delay": "0.05s"}}
"""The bol sandbox finishes a handling at once; waiting bol's real-world second between status checks would
measure that pause, not retsync."""


def _decide(db_url: str, channel: str, connector: str, decisions: int) -> int:
    cls = registry.get(connector)
    assert cls is not None
    kinds = [k for k in DecisionKind if cls.capabilities.supports(k)]
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            refs = list(conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE channel = :channel AND "
                "handled_by_channel = :no AND decision IS NULL AND status IN ('requested', 'in_transit', 'received') "
                "ORDER BY return_id LIMIT :limit"), {"channel": channel, "no": False, "limit": decisions}).scalars())
        recorded = 0
        for n, ref in enumerate(refs):
            try:
                record_decision(engine, ref, kinds[n % len(kinds)], note="decided by the push benchmark",
                                connector_for=registry.get)
                recorded += 1
            except DecisionRefused:
                continue
        return recorded
    finally:
        engine.dispose()


def push(name: str, decisions: int, workdir: Path) -> dict[str, Any]:
    cls = registry.get(name)
    assert cls is not None
    emulator = cls.sandbox(seed=1, returns=decisions * 6 if name in DECISIONS_AT_MOST else max(400, decisions * 6))
    assert emulator is not None
    emulator.log_requests = False
    db_url = f"sqlite:///{workdir / 'bench.db'}"
    with emulator.serve() as base_url:
        config = workdir / "bench.toml"
        write_sandbox_config(config, workdir, db_url, {"bench": {**channel_table(cls, base_url), **OVERRIDES.get(name, {})}},
                             daemon={"push_interval": "1s"})
        run_child("pull", config, "bench")
        recorded = _decide(db_url, "bench", name, decisions)
        measured = run_child("push", config, "bench")
    states = measured["states"]
    settled = sum(states.values()) - states.get("pending", 0) - states.get("sending", 0)
    return {
        "connector": name, "returns_decided": recorded, "decisions": sum(states.values()),
        "pushed": states.get("pushed", 0), "states": states,
        "first_pass_seconds": round(measured["first_pass_seconds"], 2),
        "sent_per_second": round(measured["sent_first_pass"] / measured["first_pass_seconds"], 1),
        "seconds": round(measured["seconds"], 2), "passes": measured["passes"],
        "pushed_per_second": round(states.get("pushed", 0) / measured["seconds"], 1),
        "settled": settled, "peak_rss_mb": round(measured["peak_rss_mb"], 1),
    }


def run(decisions: int, connectors: list[str] | None = None) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="retsync-bench-push-") as folder:
        for name, _cls in sandboxed(connectors):
            work = Path(folder) / name
            work.mkdir(parents=True)
            results.append(push(name, min(decisions, DECISIONS_AT_MOST.get(name, decisions)), work))
    return results
