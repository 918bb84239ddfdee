"""Reconciliation: 100,000 returns against 1,000,000 order lines, on SQLite and on PostgreSQL.

The history is written straight into the tables (as a year of pulls would have left it): two channels,
500,000 orders of two lines each, 100,000 returns of one line each — most name their order line, a fifth
only the SKU (the fallback link), a few name an order the store lacks — and customers who buy on both
channels. Then the three steps that run after every pull are timed over the whole history at once: linking,
customer grouping, and the flag rules of each channel. A second pass with nothing new shows what a routine
pull costs: the daemon's own pass (the rules are skipped when nothing they read changed), and the rules run
again anyway (as once an hour, or after a decision). On PostgreSQL the tables are analysed between the two
passes, as autovacuum would before the next poll.

The passes run in a child process (`--child`), so its peak RSS is the reconciliation's alone, the seeding
not counted. Target (issue 19, point 6): first pass <= 10 s, peak RSS <= 150 MB.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from bench.child import peak_rss_mb
from bench.common import REPO, Postgres, chunks
from retsync.kit.settings import ChannelSettings
from retsync.reconcile.customers import group_customers
from retsync.reconcile.flags import recompute
from retsync.reconcile.linking import link_returns, refresh_flags
from retsync.store.db import make_engine, upgrade
from retsync.store.models import Channel, Order, OrderLine, Return, ReturnLine

LINES_PER_ORDER = 2
CHANNELS = (1, 2)
TARGET_SECONDS = 10.0
TARGET_MB = 150.0
TARGET = "first pass <= 10 s, <= 150 MB"


def _seed(db: Engine, returns: int, order_lines: int, now: datetime) -> None:
    rng = random.Random(42)
    orders = order_lines // LINES_PER_ORDER
    with db.begin() as conn:
        for channel_id, name in ((1, "market"), (2, "shop")):
            conn.execute(insert(Channel).values(id=channel_id, name=name, connector="bench", created_at=now,
                                                consecutive_failures=0))

    def order_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, orders + 1):
            customer = rng.randrange(orders // 3)
            yield {"id": i, "channel_id": 1 + i % 2, "external_id": f"O{i}", "currency": "EUR",
                   "placed_at": now - timedelta(days=rng.uniform(1, 365)), "total_amount": 2 * 2500 + 495,
                   "customer_email": f"buyer{customer}@example.com" if i % 2 else f"b{customer}+{i}@relay.example",
                   "customer_phone": f"+48 5{customer:08d}", "customer_name": f"Buyer {customer}",
                   "customer_postcode": f"{customer % 99:02d}-{customer % 999:03d}", "content_hash": "x" * 32,
                   "first_seen_at": now, "updated_at": now}

    def line_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, orders + 1):
            for k in range(LINES_PER_ORDER):
                yield {"order_id": i, "external_id": f"L{i}-{k}", "sku": f"SKU-{(i * 7 + k) % 5000}",
                       "ean": None, "title": "Shoes", "quantity": 1 + (i + k) % 2, "unit_price": 2500,
                       "currency": "EUR"}

    def return_rows() -> Iterator[dict[str, Any]]:
        for n in range(1, returns + 1):
            order = n * (orders // returns)
            status = ("requested", "in_transit", "received", "decided", "refunded")[n % 5]
            created = now - timedelta(days=rng.uniform(0, 120))
            yield {"id": n, "channel_id": 1 + order % 2, "external_id": f"R{n}",
                   "order_external_id": f"O{order}" if n % 50 else f"MISSING{n}", "status": status,
                   "created_at": created, "received_at": created + timedelta(days=3) if n % 5 >= 2 else None,
                   "refunded_at": created + timedelta(days=9) if status == "refunded" else None,
                   "refund_amount": (2500 if n % 7 else 2000) if status == "refunded" else None, "currency": "EUR",
                   "handled_by_channel": False, "extra": {}, "content_hash": "x" * 32, "first_seen_at": now,
                   "updated_at": now}

    def return_line_rows() -> Iterator[dict[str, Any]]:
        for n in range(1, returns + 1):
            order = n * (orders // returns)
            by_key = n % 5 != 0
            yield {"return_id": n, "external_id": f"RL{n}", "order_external_id": f"O{order}",
                   "order_line_external_id": f"L{order}-0" if by_key else None,
                   "sku": None if by_key else f"SKU-{(order * 7) % 5000}", "quantity": 1 + n % 2,
                   "unit_price": None, "currency": "EUR"}

    for model, rows in ((Order, order_rows()), (OrderLine, line_rows()), (Return, return_rows()),
                        (ReturnLine, return_line_rows())):
        for chunk in chunks(rows):
            with db.begin() as conn:
                conn.execute(insert(model), chunk)
    if db.dialect.name == "postgresql":
        with db.begin() as conn:  # rows were written with their ids: move the sequences past them
            for table in ("orders", "order_lines", "returns", "return_lines", "channels"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT MAX(id) FROM {table}))"))
            conn.execute(text("ANALYZE"))


def _pass(db: Engine, now: datetime) -> dict[str, float]:
    """Link, group and flag every channel, as the daemon does after a pull of each (all channels at once)."""
    settings = ChannelSettings(connector="bench")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    linked = link_returns(db)
    timings["link_s"] = time.perf_counter() - started
    started = time.perf_counter()
    group_customers(db, now)
    timings["group_s"] = time.perf_counter() - started
    started = time.perf_counter()
    changed = bool(linked.orders_linked or linked.lines_linked)
    for channel_id in CHANNELS:
        refresh_flags(db, channel_id, settings, now, changed=changed)
    timings["flags_s"] = time.perf_counter() - started
    timings["total_s"] = sum(timings.values())
    return {key: round(value, 2) for key, value in timings.items()}


def child(db_url: str, now: datetime) -> dict[str, Any]:
    """The measured side: the first pass, a pass with nothing new, the rules again; this process's peak RSS."""
    db = make_engine(db_url)
    try:
        first = _pass(db, now)
        if db.dialect.name == "postgresql":
            # what autovacuum does within a minute of a pass that changed most rows, before the next poll: the
            # planner's statistics from before the first pass would have it scan whole tables for what is left
            with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        again = _pass(db, now)
        started = time.perf_counter()
        for channel_id in CHANNELS:
            recompute(db, channel_id, ChannelSettings(connector="bench"), now)
        rerun = round(time.perf_counter() - started, 2)
    finally:
        db.dispose()
    return {"first_pass": first, "pass_with_nothing_new": again, "flags_rerun_s": rerun, "peak_rss_mb": peak_rss_mb()}


def _run_child(db_url: str, now: datetime) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "bench.reconcile", "--child", db_url, "--now", now.isoformat()],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise RuntimeError(f"bench.reconcile --child failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def reconcile_once(db_url: str, returns: int, order_lines: int) -> dict[str, Any]:
    db = make_engine(db_url)
    try:
        upgrade(db)
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        _seed(db, returns, order_lines, now)
        seeded = time.perf_counter() - started
        measured = _run_child(db_url, now)
        with db.connect() as conn:
            linked = conn.execute(text("SELECT COUNT(*) FROM return_lines WHERE order_line_id IS NOT NULL")).scalar_one()
            groups = conn.execute(text("SELECT COUNT(*) FROM customer_groups")).scalar_one()
            flags = dict(conn.execute(text(
                "SELECT code, COUNT(*) FROM return_flags WHERE resolved_at IS NULL GROUP BY code")).all())
    finally:
        db.dispose()
    first = measured["first_pass"]
    return {
        "database": db_url.split(":", 1)[0].split("+")[0], "returns": returns, "order_lines": order_lines,
        "seed_s": round(seeded, 1), "first_pass": first, "returns_per_second": round(returns / first["total_s"]),
        "pass_with_nothing_new": measured["pass_with_nothing_new"], "flags_rerun_s": measured["flags_rerun_s"],
        "peak_rss_mb": round(measured["peak_rss_mb"], 1), "lines_linked": int(linked),
        "customer_groups": int(groups), "open_flags": {str(k): int(v) for k, v in flags.items()},
        "target": TARGET,
        "met": first["total_s"] <= TARGET_SECONDS and measured["peak_rss_mb"] <= TARGET_MB,
    }


def run(returns: int = 100_000, order_lines: int = 1_000_000, postgres: bool = True) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="retsync-bench-reconcile-") as folder:
        results.append(reconcile_once(f"sqlite:///{Path(folder) / 'reconcile.db'}", returns, order_lines))
        if postgres:
            cluster = Postgres()
            try:
                results.append(reconcile_once(cluster.new_database(), returns, order_lines))
            finally:
                cluster.stop()
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--returns", type=int, default=100_000)
    parser.add_argument("--order-lines", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child", metavar="DB_URL", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(child(arguments.child, datetime.fromisoformat(arguments.now))))
    else:
        print(json.dumps(run(arguments.returns, arguments.order_lines, postgres=not arguments.no_postgres), indent=2))
