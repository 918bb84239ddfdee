"""Many rows in and out at once, below the ORM: what the reconcile steps write after a long first backfill.

A first pass groups hundreds of thousands of orders and raises as many flags; one
bound statement per row through SQLAlchemy's parameter processing costs more
than the database's own work. These helpers hand plain tuples to the driver
inside the caller's transaction: `executemany` on SQLite (one prepared statement,
in-process), `COPY` on PostgreSQL (one round trip for all the rows), and for an
update arrays joined once (`UPDATE … FROM unnest(…)`), since PostgreSQL has no
bulk form of `UPDATE … WHERE id = ?`. Values must be what the driver takes: use
`stamp` for times, as the store's `UTCDateTime` would bind them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from retsync.store.models import UTCDateTime

Row = Sequence[Any]

FETCH = 10_000
"""Rows read from a cursor at a time."""


def raw(conn: Connection) -> Any:
    """A DBAPI cursor on the connection's current transaction."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def sql(conn: Connection, statement: str) -> str:
    """`?` placeholders in the driver's own style (sqlite3: `?`, psycopg: `%s`); the statements here hold no
    other `?` and no `%`."""
    return statement.replace("?", "%s") if conn.dialect.name == "postgresql" else statement


def stamp(conn: Connection, moment: datetime) -> Any:
    """A time as the store's `UTCDateTime` column binds it (naive UTC text on SQLite, aware on PostgreSQL)."""
    processor = UTCDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor(moment) if processor is not None else moment


def rows(conn: Connection, statement: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows of one query as plain tuples, FETCH at a time."""
    cursor = raw(conn)
    try:
        cursor.execute(sql(conn, statement), tuple(params))
        while batch := cursor.fetchmany(FETCH):
            yield from batch
    finally:
        cursor.close()


def execute(conn: Connection, statement: str, params: Sequence[Any] = ()) -> int:
    """Run one statement; answer its row count."""
    cursor = raw(conn)
    try:
        cursor.execute(sql(conn, statement), tuple(params))
        return int(cursor.rowcount)
    finally:
        cursor.close()


def insert(conn: Connection, table: str, columns: Sequence[str], values: Iterable[Row]) -> None:
    """Insert every row of `values` (tuples in the order of `columns`); nothing at all where there is none.

    Nothing at all matters on SQLite: Python's sqlite3 opens a transaction before an INSERT's `executemany`
    even with no rows to run it on, and takes no lock doing so. The reads that follow then pin a snapshot, and
    the transaction's first real write fails at once with "database is locked" if any other connection wrote
    since (SQLite cannot wait for the lock then: the snapshot would be stale). 35 of 50 channels of one
    database failed their first pull that way."""
    rows_in = iter(values)
    first = next(rows_in, None)
    if first is None:
        return
    values = itertools.chain((first,), rows_in)
    cursor = raw(conn)
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' * len(columns))})", values)
    finally:
        cursor.close()


def update(conn: Connection, table: str, columns: Sequence[str], values: Sequence[Row],
           types: Sequence[str]) -> None:
    """Set `columns` on the rows of `table` named by id: each row of `values` is (id, *columns).

    `types` are the columns' PostgreSQL types: there the new values go as one array a column, unnested and
    joined by id. No rows, no statement (see `insert`).
    """
    if not values:
        return
    cursor = raw(conn)
    try:
        if conn.dialect.name == "postgresql":
            arrays = [list(column) for column in zip(*values)]
            casts = ", ".join(f"%s::{kind}[]" for kind in ("bigint", *types))
            names = ", ".join(columns)
            assignments = ", ".join(f"{column} = u.{column}" for column in columns)
            # the id range too: else a merge join reads the id index from its start, once a chunk
            cursor.execute(f"UPDATE {table} t SET {assignments} FROM unnest({casts}) AS u(id, {names}) "
                           f"WHERE t.id = u.id AND t.id BETWEEN %s AND %s", [*arrays, min(arrays[0]), max(arrays[0])])
        else:
            assignments = ", ".join(f"{column} = ?" for column in columns)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = ?",
                               ((*row[1:], row[0]) for row in values))
    finally:
        cursor.close()


def no_jit(conn: Connection) -> None:
    """PostgreSQL compiles a statement it expects to be costly before running it, which takes longer than the
    set-based statements of reconciliation then run (0.1 to 0.4 s each, measured): this transaction goes without."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))


_STALE_STATISTICS = """
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname IN ('returns', 'return_lines', 'orders', 'order_lines')
  AND n_mod_since_analyze > 1000 + 0.2 * GREATEST(n_live_tup - n_mod_since_analyze, 0)
ORDER BY relname
"""


def fresh_statistics(conn: Connection) -> None:
    """Analyse the tables reconciliation joins where they changed a lot since PostgreSQL last looked at them.

    A first backfill fills them from empty faster than autovacuum analyses them (it waits a minute between
    rounds); planned with the statistics of near-empty tables, the joined linking statement became nested loops
    over thousands of rows and ran for ten minutes on a shop of 3,000 orders until autovacuum caught up. Linking
    on PostgreSQL has since gone to index look-ups, which no statistics spoil; the flag rules' joins that follow
    still plan on them. Analysing samples 30,000 rows a table: a few tens of milliseconds, paid only after such
    a change."""
    if conn.dialect.name != "postgresql":
        return
    for (table,) in conn.execute(text(_STALE_STATISTICS)).all():
        conn.exec_driver_sql(f'ANALYZE "{table}"')
