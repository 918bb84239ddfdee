"""Scheduling overhead: `retsync run` with 50 channels, idle between polls: its CPU share and RSS.

The channels are spread over every connector (a small sandbox each, on its own loopback server in this process)
and poll every hour. Once each has finished its first pull, the daemon is only waiting: its push job, its
lease heartbeat and the scheduler tick. Its CPU time (utime + stime from /proc) over the idle window, as a
percentage of one core, and its resident memory at the end are the figures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    channel_table,
    daemon_running,
    sandboxed,
    serve_sandboxes,
    wait_for_first_pulls,
    write_sandbox_config,
)
from retsync.store.db import make_engine

CPU_TARGET_PERCENT = 1.0
RSS_TARGET_MB = 150


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(channels: int = 50, idle_seconds: float = 60.0, connectors: list[str] | None = None) -> dict[str, Any]:
    sandboxes = list(sandboxed(connectors))
    with tempfile.TemporaryDirectory(prefix="retsync-bench-idle-") as folder, contextlib.ExitStack() as stack:
        work = Path(folder)
        # a sandbox each: one shared by five channels is one account, and BaseLinker's 100 requests a minute
        # belong to the account (its sandbox refuses the fifth channel's first pull, as BaseLinker would)
        classes = {f"{name}_{n:02d}": cls for n, (name, cls) in
                   ((n, sandboxes[n % len(sandboxes)]) for n in range(channels))}
        served = serve_sandboxes(stack, list(classes.items()), returns=20)
        tables = {channel: {**channel_table(cls, served[channel][1]), "poll_interval": "1h"}
                  for channel, cls in classes.items()}
        db_url = f"sqlite:///{work / 'bench.db'}"
        config = work / "bench.toml"
        write_sandbox_config(config, work, db_url, tables, daemon={"log_level": "ERROR"})
        daemon = stack.enter_context(daemon_running(config))
        engine = make_engine(db_url)
        try:
            first_pulls = wait_for_first_pulls(engine, daemon, channels, config)
            if first_pulls is None:
                raise RuntimeError("the first pulls of the idle benchmark did not finish within 10 minutes")
            time.sleep(3)  # the first push pass runs 2 s after start
            cpu_before, wall_before = _cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(idle_seconds)
            cpu = _cpu_seconds(daemon.pid) - cpu_before
            wall = time.monotonic() - wall_before
            rss = _rss_mb(daemon.pid)
            with engine.connect() as conn:
                failed = dict(conn.execute(text("SELECT name, last_error FROM channels WHERE last_error IS NOT NULL "
                                                "AND consecutive_failures > 0")).all())
        finally:
            engine.dispose()
    percent = 100 * cpu / wall
    return {
        "channels": channels, "connectors": [name for name, _ in sandboxes], "failing_channels": {str(k): str(v)[:300] for k, v in failed.items()},
        "first_pulls_seconds": round(first_pulls, 1), "idle_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 3), "cpu_percent": round(percent, 2), "rss_mb": round(rss, 1),
        "target": f"CPU <= {CPU_TARGET_PERCENT:g} % of a core, RSS <= {RSS_TARGET_MB} MB",
        "met": percent <= CPU_TARGET_PERCENT and rss <= RSS_TARGET_MB and not failed,
    }
