"""`make bench` / `python -m bench`: run the benchmarks, write bench/results.json and print a short table.

Defaults (10,000 returns per sandbox, histories of 5,000 and 20,000) take most of an hour on 2 cores; the
issue's full sizes are `python -m bench --returns 100000 --history 50000,200000`, several hours (see the
README's Performance section).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import backfill, history, push, reconcile, scheduling, web
from bench.common import machine

BENCHMARKS = ("backfill", "memory", "incremental", "push", "scheduling", "reconcile", "web")


def _latencies(text: str) -> list[int]:
    try:
        found = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give milliseconds, e.g. 0,80") from None
    if not found or any(ms < 0 for ms in found):
        raise argparse.ArgumentTypeError(f"{text!r}: give milliseconds, e.g. 0,80")
    return found


def _sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError("give at least two sizes, e.g. 50000,200000 (memory must stay flat)")
    return sorted(sizes)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=BENCHMARKS,
                        help="run only this benchmark (repeatable; default: all)")
    parser.add_argument("--connector", action="append", help="only this connector's sandbox (repeatable)")
    parser.add_argument("--returns", type=int, default=int(os.environ.get("BENCH_RETURNS", 10_000)),
                        help="backfill size per sandbox and database (default 10000; the issue's: 100000)")
    parser.add_argument("--history", type=_sizes, default=_sizes(os.environ.get("BENCH_HISTORY", "5000,20000")),
                        help="history sizes for memory and incremental (default 5000,20000; the issue's: "
                             "50000,200000)")
    parser.add_argument("--decisions", type=int, default=200,
                        help="returns decided per sandbox, one decision per line (default 200)")
    parser.add_argument("--channels", type=int, default=50, help="channels of the idle daemon (default 50)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle window measured (default 60)")
    parser.add_argument("--reconcile-returns", type=int, default=20_000,
                        help="returns of the reconciliation benchmark (default 20000; bench.reconcile: 100000)")
    parser.add_argument("--reconcile-order-lines", type=int, default=200_000)
    parser.add_argument("--web-returns", type=int, default=100_000, help="returns behind the web console's listing")
    parser.add_argument("--latency-ms", type=_latencies, default=_latencies("0,80"),
                        help="answer times of the sandboxes for the backfill (default 0,80: CPU-bound, then 80 ms "
                             "± 20 ms a request, as a real API; the floor waits the same)")
    parser.add_argument("--latency-returns", type=int, default=300,
                        help="backfill size where the sandbox waits (default 300: each request costs its latency)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    return parser.parse_args(argv)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(benchmark, what, figure, target) for the table."""
    table: list[tuple[str, str, str, str]] = []
    for row in results.get("backfill", []):
        table.append((f"backfill {row['connector']}", f"{row['database']}, {_cell(row['returns_stored'])} returns, "
                      f"{row.get('latency_ms', 0)} ms",
                      f"{_cell(row['returns_per_second'])} returns/s, ratio {row['ratio_to_floor']:.2f}, "
                      f"{_cell(row['peak_rss_mb'])} MB", _verdict(row, row.get("target", "ratio <= 1.3"))))
    for row in results.get("memory", []):
        table.append((f"memory {row['connector']}", f"{_cell(row['returns'])} returns",
                      f"peak RSS {_cell(row['peak_rss_mb'])} MB", _verdict(row, "<= 150 MB, flat")))
    for row in results.get("incremental", []):
        table.append((f"incremental {row['connector']}", f"on {_cell(row['history'])} stored",
                      f"{_cell(row['requests'])} requests, {_cell(row['seconds'])} s",
                      _verdict(row, "same requests, <= 1 s")))
    for row in results.get("push", []):
        table.append((f"push {row['connector']}", f"{_cell(row['decisions'])} decisions",
                      f"{_cell(row['sent_per_second'])} sent/s, {_cell(row['pushed_per_second'])} confirmed/s", "-"))
    idle = results.get("scheduling")
    if idle:
        table.append(("scheduling", f"{idle['channels']} idle channels, {_cell(idle['idle_seconds'])} s",
                      f"CPU {idle['cpu_percent']:.2f} % of a core, RSS {_cell(idle['rss_mb'])} MB"
                      + (f", {len(idle['failing_channels'])} channels failing" if idle["failing_channels"] else ""),
                      _verdict(idle, "<= 1 % CPU, <= 150 MB (own goal)")))
    for row in results.get("reconcile", []):
        first, again = row["first_pass"], row["pass_with_nothing_new"]
        table.append((f"reconcile {row['database']}", f"{_cell(row['returns'])} returns, "
                      f"{_cell(row['order_lines'])} lines", f"{first['total_s']} s first pass, "
                      f"{again['total_s']} s with nothing new", "-"))
    for row in results.get("web", []):
        table.append((f"web listing {row['database']}", f"{_cell(row['returns'])} returns",
                      f"slowest {_cell(row['slowest_median_ms'])} ms ({row['slowest']})", _verdict(row, "<= 200 ms")))
    return table


def _verdict(row: dict[str, Any], target: str) -> str:
    return f"{target}: {'met' if row.get('meets_target') else 'NOT met'}"


def print_table(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    table = [("benchmark", "run", "figure", "target"), *rows(results)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    wanted = args.only or list(BENCHMARKS)
    postgres = not args.no_postgres
    results: dict[str, Any] = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "machine": machine(), "arguments": {k: str(v) for k, v in vars(args).items()}}
    steps: list[tuple[str, Callable[[], None]]] = []
    if "backfill" in wanted:
        steps.append(("backfill", lambda: results.update(
            backfill=backfill.run(args.returns, postgres=postgres, connectors=args.connector,
                                  latencies_ms=tuple(args.latency_ms), latency_returns=args.latency_returns))))
    if "memory" in wanted or "incremental" in wanted:
        def measured_history() -> None:
            found = history.run(args.history, connectors=args.connector)
            results.update({key: value for key, value in found.items() if key in wanted})
        steps.append(("memory and incremental", measured_history))
    if "push" in wanted:
        steps.append(("push", lambda: results.update(push=push.run(args.decisions, connectors=args.connector))))
    if "scheduling" in wanted:
        steps.append(("scheduling", lambda: results.update(scheduling=scheduling.run(
            args.channels, args.idle_seconds, connectors=args.connector))))
    if "reconcile" in wanted:
        steps.append(("reconcile", lambda: results.update(reconcile=reconcile.run(
            args.reconcile_returns, args.reconcile_order_lines, postgres=postgres))))
    if "web" in wanted:
        steps.append(("web", lambda: results.update(web=web.run(args.web_returns, postgres=postgres))))
    for label, step in steps:
        print(f"running {label} ...", flush=True)
        step()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
