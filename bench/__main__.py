"""`make bench`: run every benchmark, write bench/results.json and print a short table."""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from bench import backfill


def machine() -> dict[str, object]:
    memory = "?"
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--returns", type=int, default=int(os.environ.get("BENCH_RETURNS", 20_000)))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "backfill": backfill.run(args.returns, postgres=not args.no_postgres)}
    Path(__file__).with_name("results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"machine: {results['machine']}")
    print(f"{'benchmark':<28}{'db':<12}{'returns':>9}{'ret/s':>10}{'ratio':>8}{'peak MB':>9}")
    for row in results["backfill"]:
        print(f"{'backfill ' + row['connector']:<28}{row['database']:<12}{row['returns_stored']:>9}"
              f"{row['returns_per_second']:>10}{row['ratio_to_floor']:>8}{row['peak_rss_mb']:>9}")
    print("ratio = backfill wall time / the same requests with plain httpx (target <= 1.3); written to "
          "bench/results.json")


if __name__ == "__main__":
    main()
