"""Backfill: N returns with their orders from each sandbox over loopback HTTP into SQLite (and PostgreSQL).

The figure is the ratio of the backfill's wall time to the network floor: the very same requests (replayed
from the emulator's request log) sent with plain httpx and discarded, in the same run against the same
server. Storing should cost little on top of fetching (target: ratio <= 1.3). Peak RSS is the backfill
process's own (the emulator runs in this, separate, process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from retsync import registry
from retsync.demo import write_config
from retsync.store.db import make_engine, upgrade

REPO = Path(__file__).resolve().parent.parent


def _replay(base_url: str, requests: list[Any], token: str) -> float:
    """Send the same GETs with plain httpx, bodies read and dropped: the floor no sync can beat."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        started = time.perf_counter()
        for logged in requests:
            headers = {"accept": logged.headers.get("accept", "*/*"), "authorization": f"Bearer {token}"}
            client.get(logged.path, params=logged.query, headers=headers).read()
        return time.perf_counter() - started


def backfill(connector: str, returns: int, db_url: str, workdir: Path) -> dict[str, Any]:
    cls = registry.get(connector)
    assert cls is not None
    emulator = cls.sandbox(seed=1, returns=returns)
    assert emulator is not None, f"{connector} ships no sandbox"
    with emulator.serve() as base_url:
        table = {**cls.sandbox_channel(base_url), "backfill_days": 3650, "max_retries": 5}
        config = workdir / "bench.toml"
        write_config(config, workdir, {"bench": table})
        text = config.read_text().replace(f"sqlite:///{workdir / 'demo.db'}", db_url)
        config.write_text(text)
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        result = subprocess.run([sys.executable, "-m", "bench.child", str(config), "bench"], cwd=REPO,
                                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if result.returncode != 0:
            raise RuntimeError(f"backfill process failed:\n{result.stderr[-3000:]}")
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        if not measured["ok"]:
            raise RuntimeError(f"backfill failed: {measured['error']}")
        gets = [r for r in emulator.requests if r.method == "GET"]
        emulator.log_requests = False
        token = emulator.issue_token(3600)
        floor = min(_replay(base_url, gets, token) for _ in range(2))
    return {
        "connector": connector,
        "database": db_url.split(":", 1)[0].split("+")[0],
        "returns_stored": measured["returns_new"],
        "requests": len(gets),
        "seconds": round(measured["seconds"], 2),
        "returns_per_second": round(measured["returns_new"] / measured["seconds"], 1),
        "floor_seconds": round(floor, 2),
        "ratio_to_floor": round(measured["seconds"] / floor, 3),
        "peak_rss_mb": round(measured["peak_rss_mb"], 1),
    }


def run(returns: int = 20_000, postgres: bool = True) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="retsync-bench-") as folder:
        for name, cls in registry.connectors().items():
            if cls.sandbox(seed=1, returns=10) is None:
                continue
            # each run its own state directory: a stored (rotated) token belongs to that run's sandbox
            work = Path(folder) / name / "sqlite"
            work.mkdir(parents=True)
            results.append(backfill(name, returns, f"sqlite:///{work / 'bench.db'}", work))
            if postgres:
                from tests.pgcluster import PgCluster

                work = Path(folder) / name / "postgresql"
                work.mkdir(parents=True)
                cluster = PgCluster()
                try:
                    results.append(backfill(name, returns, cluster.new_database(), work))
                finally:
                    cluster.stop()
    return results
