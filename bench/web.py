"""The web console's Returns page on 100,000 returns, on SQLite and on PostgreSQL: each listing in <= 200 ms.

The history is written straight into the tables: three channels (one a feed platform with marketplaces),
100,000 returns of one or two lines, a decision on every third, open flags on every twentieth. Then the
listing a member of staff opens most (newest first), each filter, the free-text searches (order id, e-mail,
part of a name, EAN), another sort and a deep page are requested from the console itself (Starlette's test
client, logged in: routing, query, template and all), each several times; the figure is the slowest median.

`python -m bench.web [--returns N] [--no-postgres]`; `run()` is what `python -m bench` calls.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from bench.common import Postgres, chunks
from retsync.store.db import make_engine, upgrade
from retsync.store.models import Channel, Decision, Return, ReturnFlag, ReturnLine

TARGET_MS = 200.0
REPEATS = 5
PASSWORD = "bench password 1"



def seed(db: Engine, returns: int, now: datetime) -> None:
    rng = random.Random(7)
    names = ["Nowak", "Kowalski", "Wiśniewska", "de Vries", "Jansen", "Müller", "Dubois", "Smith"]
    with db.begin() as conn:
        for channel_id, name, connector in ((1, "allegro", "allegro"), (2, "shop", "woocommerce"),
                                            (3, "feeds", "channable")):
            conn.execute(insert(Channel).values(id=channel_id, name=name, connector=connector, created_at=now,
                                                consecutive_failures=0))

    def return_rows() -> Iterator[dict[str, Any]]:
        for n in range(1, returns + 1):
            channel = 1 + n % 3
            created = now - timedelta(minutes=n * 3 + rng.uniform(0, 2))
            status = ("requested", "in_transit", "received", "decided", "refunded", "closed")[n % 6]
            yield {"id": n, "channel_id": channel, "external_id": f"R{n}", "order_external_id": f"O{n}",
                   "status": status, "channel_status": status.upper(), "reason": "wrong_size", "created_at": created,
                   "refunded_at": created + timedelta(days=5) if status == "refunded" else None,
                   "refund_amount": 4999 if status == "refunded" else None, "currency": "PLN",
                   "customer_email": f"buyer{n % 40_000}@example.com", "customer_name":
                   f"Customer{n % 40_000} {names[n % len(names)]}", "handled_by_channel": False,
                   "marketplace": ("bol", "amazon", "zalando")[n % 3] if channel == 3 else None,
                   "extra": {}, "content_hash": "x" * 32, "first_seen_at": now, "updated_at": now}

    first_line: dict[int, int] = {}

    def line_rows() -> Iterator[dict[str, Any]]:
        line = 0
        for n in range(1, returns + 1):
            first_line[n] = line + 1
            for k in range(1 + n % 2):
                line += 1
                yield {"id": line, "return_id": n, "external_id": f"R{n}-L{k}", "sku": f"SKU-{n % 5000}-{k}",
                       "ean": f"{5900000000000 + n * 2 + k}", "title": "Shoes", "quantity": 1}

    def decision_rows() -> Iterator[dict[str, Any]]:
        for n in range(3, returns + 1, 3):
            yield {"return_id": n, "return_line_id": first_line[n], "kind": "accept", "quantity": 1, "origin": "merchant",
                   "state": ("pushed", "pending", "failed")[n % 3 if n % 9 else 0], "idempotency_key": f"k{n}",
                   "act_key": f"a{n}", "attempts": 1, "created_at": now, "updated_at": now}

    def flag_rows() -> Iterator[dict[str, Any]]:
        for n in range(20, returns + 1, 20):
            yield {"return_id": n, "code": ("refund_overdue", "double_refund")[n % 40 == 0], "detail": "bench",
                   "flagged_at": now, "updated_at": now}

    for table, rows in ((Return, return_rows()), (ReturnLine, line_rows()), (Decision, decision_rows()),
                        (ReturnFlag, flag_rows())):
        for chunk in chunks(rows):
            with db.begin() as conn:
                conn.execute(insert(table), chunk)
    if db.dialect.name == "postgresql":
        with db.begin() as conn:
            for table in ("returns", "return_lines", "decisions", "return_flags", "channels"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT MAX(id) FROM {table}))")
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


QUERIES = {
    "newest first": "/returns",
    "channel": "/returns?channel=shop",
    "marketplace": "/returns?marketplace=bol",
    "status": "/returns?status=received",
    "decision state": "/returns?decision=failed",
    "no decision yet": "/returns?decision=none",
    "flag": "/returns?flag=double_refund",
    "date range": "/returns?since=2026-01-01&until=2026-03-31",
    "search order id": "/returns?q=O54321",
    "search e-mail": "/returns?q=buyer1234@example.com",
    "search name part": "/returns?q=wiśniewska",
    "search EAN": "/returns?q=5900000108643",
    "sort by channel": "/returns?sort=channel&dir=asc",
    "page 1000": "/returns?page=1000",
}


def measure(db: Engine, workdir: Path) -> dict[str, float]:
    from starlette.testclient import TestClient

    from retsync.testing.config import config_for
    from retsync.web import auth
    from retsync.web.app import create_app

    auth.add_user(db, "bench", "decider", PASSWORD)
    client = TestClient(create_app(db, config_for(workdir, str(db.url), {})))
    page = client.get("/login")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": token}).status_code == 200
    figures = {}
    for label, path in QUERIES.items():
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200, (label, answer.status_code)
        figures[label] = round(statistics.median(times), 1)
    return figures


def run(returns: int = 100_000, postgres: bool = True) -> list[dict[str, Any]]:
    warnings.simplefilter("ignore", DeprecationWarning)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    results = []
    server = Postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="retsync-bench-web-") as folder:
            workdir = Path(folder)
            urls = [f"sqlite:///{workdir / 'web.db'}"] + ([server.new_database()] if postgres else [])
            for url in urls:
                db = make_engine(url)
                try:
                    upgrade(db)
                    started = time.perf_counter()
                    seed(db, returns, now)
                    seeded = time.perf_counter() - started
                    figures = measure(db, workdir)
                finally:
                    db.dispose()
                slowest = max(figures.values())
                results.append({"database": db.dialect.name, "returns": returns, "seed_s": round(seeded, 1),
                                "median_ms": figures, "slowest_median_ms": slowest,
                                "slowest": max(figures, key=figures.__getitem__),
                                "met": slowest <= TARGET_MS})
    finally:
        server.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--returns", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    for row in run(args.returns, postgres=not args.no_postgres):
        print(f"{row['database']}: {row['returns']:,} returns, slowest listing {row['slowest_median_ms']} ms "
              f"({row['slowest']}; target <= {TARGET_MS:.0f} ms: {'met' if row['met'] else 'NOT met'})")
        for label, ms in row["median_ms"].items():
            print(f"  {label:<18} {ms:>7.1f} ms")


if __name__ == "__main__":
    main()
