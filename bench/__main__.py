"""`make bench` / `python -m bench`: run the benchmarks, write bench/results.json and print a short table.

Defaults take about 23 minutes on 2 cores (`took_s` in results.json says where); the issue's full sizes are
`python -m bench --returns 100000 --history 50000,200000 --reconcile-returns 100000 --reconcile-order-lines
1000000 --web-returns 100000`, several hours. `python -m bench.readme` then writes the figures into the
README's Performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import backfill, decisions, freshness, history, push, reconcile, scheduling, web
from bench.common import machine

BENCHMARKS = ("backfill", "memory", "incremental", "freshness", "decisions", "push", "scheduling", "reconcile", "web")


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
    parser.add_argument("--returns", type=int, default=int(os.environ.get("BENCH_RETURNS", 1_000)),
                        help="backfill size per sandbox and database at 0 ms (default 1000; the issue's: 100000)")
    parser.add_argument("--history", type=_sizes, default=_sizes(os.environ.get("BENCH_HISTORY", "1000,4000")),
                        help="history sizes for memory and the poll with nothing new (default 1000,4000; the "
                             "issue's: 50000,200000)")
    parser.add_argument("--decisions", type=int, default=50,
                        help="returns decided per sandbox by the push benchmark (default 50; BaseLinker 20 at most)")
    parser.add_argument("--freshness-minutes", type=float, default=3.0,
                        help="how long returns are created at the sandboxes while the daemon polls (default 3)")
    parser.add_argument("--freshness-returns", type=int, default=8,
                        help="returns created per sandbox, at random moments (default 8)")
    parser.add_argument("--latency-decisions", type=int, default=40,
                        help="decisions recorded against the running daemon (default 40)")
    parser.add_argument("--latency-seconds", type=float, default=60.0,
                        help="window over which they are recorded, at random moments (default 60)")
    parser.add_argument("--channels", type=int, default=50, help="channels of the idle daemon (default 50)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle window measured (default 30)")
    parser.add_argument("--reconcile-returns", type=int, default=20_000,
                        help="returns of the reconciliation benchmark (default 20000; bench.reconcile: 100000)")
    parser.add_argument("--reconcile-order-lines", type=int, default=200_000)
    parser.add_argument("--web-returns", type=int, default=20_000,
                        help="returns behind the web console's listing (default 20000; issue 20's: 100000)")
    parser.add_argument("--latency-ms", type=_latencies, default=_latencies("0,80"),
                        help="answer times of the sandboxes for the backfill (default 0,80: CPU-bound, then 80 ms "
                             "± 20 ms a request, as a real API; the floor waits the same)")
    parser.add_argument("--latency-returns", type=int, default=100,
                        help="backfill size where the sandbox waits (default 100: each request costs its latency)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--update", action="store_true",
                        help="keep the other benchmarks' figures already in --output and replace only those run now "
                             "(each section says when it was measured)")
    return parser.parse_args(argv)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _figure(benchmark: str, run: str, figure: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"benchmark": benchmark, "run": run, "figure": figure, "target": row.get("target", "-"),
            "met": row.get("met")}


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per figure measured, each with its target and whether it was met (None: no target)."""
    found: list[dict[str, Any]] = []
    for row in results.get("backfill", []):
        found.append(_figure(
            f"backfill {row['connector']}", f"{row['database']}, {_cell(row['returns_stored'])} returns, "
            f"{row.get('latency_ms', 0)} ms a request",
            f"ratio {row['ratio_to_floor']:.2f} ({_cell(row['returns_per_second'])} returns/s, floor "
            f"{row['floor_seconds']} s), {_cell(row['peak_rss_mb'])} MB, {row.get('over_limit', 0)} over the limit",
            row))
    for row in results.get("memory", []):
        found.append(_figure(f"memory {row['connector']}", f"{_cell(row['returns'])} returns",
                             f"peak RSS {_cell(row['peak_rss_mb'])} MB", row))
    for row in results.get("incremental", []):
        found.append(_figure(f"poll, nothing new, {row['connector']}", f"on {_cell(row['history'])} stored",
                             f"{_cell(row['requests'])} requests, {_cell(row['seconds'])} s", row))
    for row in results.get("freshness", []):
        found.append(_figure(f"created -> visible, {row['connector']}",
                             f"{_cell(row.get('returns', row.get('samples', '-')))} returns, poll_interval "
                             f"{row.get('poll_interval', '-')}",
                             f"p50 {_cell(row.get('p50_s'))} s, p95 {_cell(row.get('p95_s'))} s"
                             if row.get("p95_s") is not None else "not measured", row))
    decided = results.get("decisions")
    if decided:
        found.append(_figure("decision -> pushed, daemon running",
                             f"{decided['decisions']} decisions over {_cell(decided['window_s'])} s, "
                             f"{len(decided['per_connector'])} connectors",
                             f"p50 {_cell(decided['p50_s'])} s, p95 {_cell(decided['p95_s'])} s, max "
                             f"{_cell(decided['max_s'])} s", decided))
    for row in results.get("push", []):
        found.append(_figure(f"push {row['connector']}", f"{_cell(row['decisions'])} decisions",
                             f"{_cell(row['sent_per_second'])} sent/s, {_cell(row['pushed_per_second'])} confirmed/s",
                             row))
    idle = results.get("scheduling")
    if idle:
        found.append(_figure("scheduling", f"{idle['channels']} idle channels, {_cell(idle['idle_seconds'])} s",
                             f"CPU {idle['cpu_percent']:.2f} % of a core, RSS {_cell(idle['rss_mb'])} MB"
                             + (f", {len(idle['failing_channels'])} channels failing"
                                if idle["failing_channels"] else ""), idle))
    for row in results.get("reconcile", []):
        first, again = row["first_pass"], row["pass_with_nothing_new"]
        rss = f", {_cell(row['peak_rss_mb'])} MB" if "peak_rss_mb" in row else ""
        found.append(_figure(f"reconcile {row['database']}", f"{_cell(row['returns'])} returns, "
                             f"{_cell(row['order_lines'])} order lines",
                             f"{_cell(first['total_s'])} s first pass{rss}, {_cell(again['total_s'])} s with "
                             f"nothing new", row))
    for row in results.get("web", []):
        found.append(_figure(f"web listing {row['database']}", f"{_cell(row['returns'])} returns",
                             f"slowest {_cell(row['slowest_median_ms'])} ms ({row['slowest']})", row))
    return found


def verdict(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "NOT met"


def print_table(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    table = [("benchmark", "run", "figure", "target", ""),
             *((f["benchmark"], f["run"], f["figure"], f["target"], verdict(f["met"])) for f in results["figures"])]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


IDENTITY = ("connector", "database", "latency_ms")
"""What tells a benchmark's rows apart: a row measured again replaces the row of the same connector, database
and latency; `--connector bol --update` leaves the other connectors' rows as they were."""


def _merge(earlier: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(name) for name in IDENTITY)

    measured = {key(row) for row in now}
    return [row for row in earlier if key(row) not in measured] + now


def _write(output: Path, results: dict[str, Any], earlier: dict[str, list[dict[str, Any]]]) -> None:
    """results.json as it stands: the sections measured so far, beside the rows `--update` keeps."""
    written = dict(results)
    for section, rows in earlier.items():  # --update: the rows not measured now stay as they were
        written[section] = _merge(rows, results.get(section, []))
    written["figures"] = figures(written)
    output.write_text(json.dumps(written, indent=2) + "\n")
    results["figures"] = written["figures"]


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    wanted = args.only or list(BENCHMARKS)
    postgres = not args.no_postgres
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results: dict[str, Any] = {}
    if args.update and args.output.exists():
        results = json.loads(args.output.read_text())
    results.update({"when": now, "machine": machine()})
    results.setdefault("measured_at", {})
    results.setdefault("arguments", {}).update({k: str(v) for k, v in vars(args).items()})
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
    if "freshness" in wanted:
        steps.append(("freshness", lambda: results.update(freshness=freshness.run(
            args.freshness_minutes, args.freshness_returns, connectors=args.connector))))
    if "decisions" in wanted:
        steps.append(("decisions", lambda: results.update(decisions=decisions.run(
            args.latency_decisions, args.latency_seconds, connectors=args.connector))))
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
    earlier = {section: results.pop(section) for section in BENCHMARKS if isinstance(results.get(section), list)}
    results.setdefault("took_s", {})
    for label, step in steps:
        print(f"running {label} ...", flush=True)
        started = time.monotonic()
        step()
        results["took_s"][label] = round(time.monotonic() - started)  # what `make bench` spends where
        for section in label.split(" and "):
            results["measured_at"][section] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _write(args.output, results, earlier)  # a benchmark that fails later loses none of these figures
    _write(args.output, results, earlier)
    print_table(results)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
