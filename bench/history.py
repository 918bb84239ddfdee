"""Memory and incremental sync, measured on the same histories.

For each size N (default 5,000 and 20,000; the issue's figures are 50,000 and 200,000) a sandbox of N
returns is backfilled into SQLite by its own process, whose peak RSS is the memory figure: it must stay
under 150 MB and not grow with N. Then, a few seconds later (a daemon polls minutes apart, so the sandbox's
rate-limit window has recovered), a second process runs the sync a daemon runs at every poll, with nothing
new at the channel, on top of that full history: the HTTP requests it makes (counted in the emulator's log)
must not depend on N, and it must finish within a second.

A larger history is an older one, as a shop's grows: the sandbox's span in days is scaled with N, so returns
per day (and the returns still open, which every poll looks at again) stay as at the smallest size.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.backfill import RATE_BOUND
from bench.common import channel_table, run_child, sandboxed, write_sandbox_config
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator

PEAK_RSS_TARGET_MB = 150
INCREMENTAL_TARGET_S = 1.0


SPAN_FIELDS = ("history_days", "days")
"""What the sandboxes call the span of their seeded history."""


def aged_sandbox(cls: type[Connector], returns: int, smallest: int) -> tuple[Emulator, int | None]:
    """A sandbox of `returns` returns whose history is `returns / smallest` times as long as the default."""
    emulator = cls.sandbox(seed=1, returns=returns)
    assert emulator is not None
    for name in SPAN_FIELDS:
        days = getattr(emulator, name, None)
        if isinstance(days, int):
            span = round(days * returns / smallest)
            return dataclasses.replace(emulator, **{name: span}), span  # type: ignore[type-var]
    return emulator, None


def history(name: str, returns: int, smallest: int, workdir: Path) -> dict[str, Any]:
    from retsync import registry

    cls = registry.get(name)
    assert cls is not None
    emulator, span = aged_sandbox(cls, returns, smallest)
    db_url = f"sqlite:///{workdir / 'bench.db'}"
    with emulator.serve() as base_url:
        config = workdir / "bench.toml"
        write_sandbox_config(config, workdir, db_url, {"bench": channel_table(cls, base_url)})
        backfill = run_child("pull", config, "bench")
        time.sleep(3)
        before = len(emulator.requests)
        incremental = run_child("pull", config, "bench")
        requests = emulator.requests[before:]
    return {
        "connector": name, "returns": returns, "returns_stored": backfill["returns_new"], "history_days": span,
        "backfill_peak_rss_mb": round(backfill["peak_rss_mb"], 1),
        "incremental_requests": len(requests),
        "incremental_requests_by_path": _by_path(requests),
        "incremental_seconds": round(incremental["seconds"], 3),
        "incremental_returns_new": incremental["returns_new"],
        "incremental_peak_rss_mb": round(incremental["peak_rss_mb"], 1),
    }


def _by_path(requests: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for logged in requests:
        key = f"{logged.method} {logged.path}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def run(sizes: list[int], connectors: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Both figures from the same runs: {"memory": [...], "incremental": [...]} with one row per connector."""
    memory, incremental = [], []
    with tempfile.TemporaryDirectory(prefix="retsync-bench-history-") as folder:
        for name, _cls in sandboxed(connectors):
            if name in RATE_BOUND:  # the sizes that show memory staying flat would take hours at its limit
                per_minute = RATE_BOUND[name][0] * 60 / RATE_BOUND[name][1]
                skipped = {"connector": name, "met": None, "target": f"not measured: {per_minute:g} requests a "
                           f"minute make a backfill of {sizes[-1]:,} returns take about {sizes[-1] / per_minute:.0f} "
                           "minutes"}
                memory.append({**skipped, "returns": sizes, "peak_rss_mb": "-"})
                incremental.append({**skipped, "history": sizes, "requests": "-", "seconds": "-"})
                continue
            runs = []
            for size in sizes:
                work = Path(folder) / name / str(size)
                work.mkdir(parents=True)
                runs.append(history(name, size, sizes[0], work))
            peaks = [r["backfill_peak_rss_mb"] for r in runs]
            growth = round(peaks[-1] - peaks[0], 1)
            memory.append({
                "connector": name, "returns": [r["returns_stored"] for r in runs], "peak_rss_mb": peaks,
                "growth_mb": growth, "target": f"<= {PEAK_RSS_TARGET_MB} MB and flat",
                # flat: the larger history may cost at most 10 % more than the smaller one
                "met": max(peaks) <= PEAK_RSS_TARGET_MB and peaks[-1] <= peaks[0] * 1.1,
            })
            requests = [r["incremental_requests"] for r in runs]
            seconds = [r["incremental_seconds"] for r in runs]
            incremental.append({
                "connector": name, "history": [r["returns_stored"] for r in runs],
                "history_days": [r["history_days"] for r in runs], "requests": requests,
                "seconds": seconds, "returns_new": [r["incremental_returns_new"] for r in runs],
                "requests_by_path": runs[-1]["incremental_requests_by_path"],
                "target": f"empty poll: requests independent of history size, <= {INCREMENTAL_TARGET_S:g} s",
                "met": len(set(requests)) == 1 and max(seconds) <= INCREMENTAL_TARGET_S,
            })
    return {"memory": memory, "incremental": incremental}
