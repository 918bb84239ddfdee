"""The measured side of a benchmark: a separate process, so its CPU and peak RSS are retsync's alone.

Usage: python -m bench.child MODE CONFIG CHANNEL, MODE one of
  pull  one pull of the channel (a backfill on an empty database, an incremental sync on a full one)
  push  push passes until every open decision of the channel is settled
It prints one JSON line: ok, error, seconds and what the mode counts, plus this process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from retsync import logs, registry
from retsync.app.daemon import Runner
from retsync.config import load_config


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux carries the parent's high-water mark
    into it across fork and exec, so a child of a big sandbox process would report the sandbox's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pull(runner: Runner, channel: str) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = runner.pull(channel)
    seconds = time.perf_counter() - started
    return {"ok": outcome.ok, "error": outcome.error, "seconds": seconds, "returns_new": outcome.returns_new,
            "returns_updated": outcome.returns_updated}


def _open_decisions(runner: Runner) -> int:
    assert runner.db is not None
    with runner.db.connect() as conn:
        return int(conn.execute(text(
            "SELECT COUNT(*) FROM decisions WHERE origin = 'merchant' AND state IN ('pending', 'sending')"
        )).scalar_one())


def _push(runner: Runner, channel: str) -> dict[str, Any]:
    """Passes until nothing is open: the first pass shows the send rate, the whole run the confirmed rate
    (channels that process asynchronously, like bol, confirm on a later pass)."""
    started = time.perf_counter()
    first = runner.push([channel])
    first_seconds = time.perf_counter() - started
    sent = first.attempted
    passes = 1
    while _open_decisions(runner) and passes < 500:
        time.sleep(0.2)
        runner.push([channel])
        passes += 1
    seconds = time.perf_counter() - started
    assert runner.db is not None
    with runner.db.connect() as conn:
        states = dict(conn.execute(text(
            "SELECT state, COUNT(*) FROM decisions WHERE origin = 'merchant' GROUP BY state")).all())
    return {"ok": True, "error": None, "seconds": seconds, "first_pass_seconds": first_seconds,
            "sent_first_pass": sent, "passes": passes, "states": {str(k): int(v) for k, v in states.items()}}


def main() -> None:
    mode, config_path, channel = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    config = load_config(config_path, registry.settings_model_for, registry.names, registry.holds_returns)
    logs.configure(level="ERROR")
    runner = Runner(config)
    runner.open([channel])
    try:
        measured = {"pull": _pull, "push": _push}[mode](runner, channel)
    finally:
        runner.close()
    print(json.dumps({**measured, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
