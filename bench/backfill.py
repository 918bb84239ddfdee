"""Backfill: N returns with their orders from each sandbox over loopback HTTP into SQLite and PostgreSQL.

The figure is the ratio of the backfill's wall time to the network floor: the very same requests (replayed
from the emulator's request log) sent with plain httpx and discarded, in the same run against the same
server. Storing should cost little on top of fetching (target: ratio <= 1.3). The backfill runs in its own
process (bench.child), so its peak RSS is retsync's; the emulator serves from this one.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Postgres, channel_table, database_name, run_child, sandboxed, write_sandbox_config
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator

TARGET_RATIO = 1.3
"""At 0 ms latency (retsync's CPU against loopback)."""
NETWORK_TARGET = 1.05
"""At 80 ms ± 20 ms a request: storing must hide behind the network's waits."""
CONCURRENT_TARGET = 0.5
CONCURRENT = {"bol", "allegro", "prestashop"}
PEAK_RSS_TARGET_MB = 150
RATE_BOUND = {"baselinker": (100, 60.0, 60)}
"""APIs whose documented rate limit, not their answer time, bounds a backfill: requests allowed per window, the
window in seconds (BaseLinker: 100 a minute, then the token is blocked), and the most returns worth a run.
Their floor is replayed against a fresh sandbox (the sync has used the first one's window) and is at least
what the limit allows: a request past each `allowed` waits for the window to move on."""


REPLAYED_HEADERS = ("accept", "authorization", "content-type", "x-shopify-access-token", "x-bltoken", "apikey",
                    "x-api-key", "x-amz-access-token")
"""The headers a read needs to be answered as the sync's was: its format and its credentials."""


def _replay(base_url: str, requests: list[Any], token: str) -> float:
    """Send the same reads with plain httpx (GETs, and the POSTs of APIs that read by POST: GraphQL queries,
    BaseLinker's get* calls), bodies read and dropped: the floor no sync can beat."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        started = time.perf_counter()
        for logged in requests:
            headers = {k: v for k, v in logged.headers.items() if k in REPLAYED_HEADERS}
            if headers.get("authorization", "").lower().startswith("bearer "):
                headers["authorization"] = f"Bearer {token}"  # the sync's own token was rotated or expired
            body = logged.body
            content = (json.dumps(body).encode() if isinstance(body, (dict, list)) else
                       body.encode() if isinstance(body, str) else None)
            client.request(logged.method, logged.path, params=logged.query, headers=headers, content=content).read()
        return time.perf_counter() - started


def _floor(cls: type[Connector], returns: int, latency_ms: int, emulator: Emulator, base_url: str,
           reads: list[Any]) -> float:
    """The replay's time: the better of two where loopback's noise matters, one where each request waits. A
    rate-bound API's is replayed against a fresh sandbox of the same seed, whose window the sync has not used."""
    replays = 1 if latency_ms else 2
    if cls.name not in RATE_BOUND:
        return min(_replay(base_url, reads, emulator.issue_token(3600)) for _ in range(replays))
    fresh = cls.sandbox(seed=1, returns=returns)
    assert fresh is not None
    fresh.set_latency(latency_ms / 1000, latency_ms / 4000)
    fresh.log_requests = False
    with fresh.serve() as fresh_url:
        return _replay(fresh_url, reads, fresh.issue_token(3600))


def _target(connector: str, latency_ms: int) -> float:
    if not latency_ms:
        return TARGET_RATIO
    return CONCURRENT_TARGET if connector in CONCURRENT else NETWORK_TARGET


def backfill(connector: str, cls: type[Connector], returns: int, db_url: str, workdir: Path,
             latency_ms: int = 0) -> dict[str, Any]:
    """One backfill and its floor, both against the sandbox answering `latency_ms` ± a quarter of it late."""
    emulator = cls.sandbox(seed=1, returns=returns)
    assert emulator is not None
    emulator.set_latency(latency_ms / 1000, latency_ms / 4000)
    with emulator.serve() as base_url:
        config = workdir / "bench.toml"
        write_sandbox_config(config, workdir, db_url, {"bench": channel_table(cls, base_url)})
        measured = run_child("pull", config, "bench")
        over_limit = emulator.over_limit
        gets = [r for r in emulator.requests if not r.changes_state]
        emulator.log_requests = False
        floor = _floor(cls, returns, latency_ms, emulator, base_url, gets)
    floor_kind = "plain httpx replay"
    limit = RATE_BOUND.get(connector)
    if limit is not None and (len(gets) - 1) // limit[0] * limit[1] > floor:
        floor, floor_kind = (len(gets) - 1) // limit[0] * limit[1], f"{limit[0]} requests per {limit[1]:g} s"
    target = _target(connector, latency_ms)
    return {
        "connector": connector,
        "database": database_name(db_url),
        "latency_ms": latency_ms,
        "returns_stored": measured["returns_new"],
        "requests": len(gets),
        "seconds": round(measured["seconds"], 2),
        "returns_per_second": round(measured["returns_new"] / measured["seconds"], 1),
        "floor_seconds": round(floor, 2),
        "floor": floor_kind,
        "ratio_to_floor": round(measured["seconds"] / floor, 3),
        "peak_rss_mb": round(measured["peak_rss_mb"], 1),
        "over_limit": over_limit,
        "target": f"ratio <= {target}, <= {PEAK_RSS_TARGET_MB} MB, never over the rate limit",
        "met": measured["seconds"] / floor <= target and measured["peak_rss_mb"] <= PEAK_RSS_TARGET_MB
        and not over_limit,
    }


def run(returns: int, postgres: bool = True, connectors: list[str] | None = None,
        latencies_ms: tuple[int, ...] = (0,), latency_returns: int | None = None) -> list[dict[str, Any]]:
    """Every sandbox's backfill at each latency: `returns` at 0 ms, `latency_returns` where the sandbox waits
    (every request then costs its 80 ms, floor included)."""
    results = []
    pg = Postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="retsync-bench-") as folder:
            for name, cls in sandboxed(connectors):
                # each run its own state directory: a stored (rotated) token belongs to that run's sandbox
                urls = [("sqlite", None)] + ([("postgresql", pg)] if postgres else [])
                for latency in latencies_ms:
                    for label, server in urls:
                        work = Path(folder) / name / label / f"{latency}ms"
                        work.mkdir(parents=True)
                        db_url = server.new_database() if server else f"sqlite:///{work / 'bench.db'}"
                        size = returns if not latency else (latency_returns or returns)
                        size = min(size, RATE_BOUND[name][2]) if name in RATE_BOUND else size
                        results.append(backfill(name, cls, size, db_url, work, latency))
    finally:
        pg.stop()
    return results
