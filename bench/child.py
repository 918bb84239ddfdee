"""The measured side of a benchmark: a separate process, so its peak RSS is retsync's alone.

Usage: python -m bench.child CONFIG CHANNEL  -> prints one JSON line with seconds, returns stored and peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from retsync import logs, registry
from retsync.config import load_config
from retsync.daemon import Runner


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux carries the parent's high-water mark
    into it across fork and exec, so a child of a big sandbox process would report the sandbox's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    config = load_config(Path(sys.argv[1]), registry.settings_model_for, registry.names, registry.holds_returns)
    logs.configure(level="WARNING")
    runner = Runner(config)
    runner.open([sys.argv[2]])
    started = time.perf_counter()
    outcome = runner.pull(sys.argv[2])
    seconds = time.perf_counter() - started
    runner.close()
    print(json.dumps({"ok": outcome.ok, "error": outcome.error, "seconds": seconds,
                      "returns_new": outcome.returns_new,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
