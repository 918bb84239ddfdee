"""Channel rows, cursors and health: what `retsync channels` reads and the engine writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from retsync.store.models import Channel, SyncCursor

channels_t = Channel.__table__
cursors_t = SyncCursor.__table__


def ensure_channel(engine: Engine, name: str, connector: str, now: datetime) -> int:
    """The channel's id, creating its row on first sight (a channel renamed in the config is a new channel).

    Several instances starting together may all try to create it; the one whose insert loses reads the winner's.
    """
    try:
        return _ensure_channel(engine, name, connector, now)
    except IntegrityError:
        return _ensure_channel(engine, name, connector, now)


def _ensure_channel(engine: Engine, name: str, connector: str, now: datetime) -> int:
    with engine.begin() as conn:
        row = conn.execute(select(channels_t.c.id, channels_t.c.connector).where(channels_t.c.name == name)).first()
        if row is not None:
            if row.connector != connector:
                conn.execute(update(channels_t).where(channels_t.c.id == row.id).values(connector=connector))
            return int(row.id)
        return int(
            conn.execute(
                insert(channels_t).values(name=name, connector=connector, created_at=now, consecutive_failures=0)
            ).inserted_primary_key[0]  # type: ignore[index]
        )


def load_cursor(conn: Connection, channel_id: int, stream: str) -> dict[str, Any] | None:
    value = conn.execute(
        select(cursors_t.c.cursor).where(cursors_t.c.channel_id == channel_id, cursors_t.c.stream == stream)
    ).scalar()
    return dict(value) if value else None


def save_cursor(conn: Connection, channel_id: int, stream: str, cursor: dict[str, Any], now: datetime) -> None:
    """Called only inside the transaction that stored the page this cursor follows."""
    changed = conn.execute(
        update(cursors_t)
        .where(cursors_t.c.channel_id == channel_id, cursors_t.c.stream == stream)
        .values(cursor=cursor, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(insert(cursors_t).values(channel_id=channel_id, stream=stream, cursor=cursor, updated_at=now))


def mark_pull_started(engine: Engine, channel_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(channels_t).where(channels_t.c.id == channel_id).values(last_pull_started_at=now))


def mark_pull_succeeded(engine: Engine, channel_id: int, now: datetime) -> int:
    """Record success; return how many failures in a row it ends (0 when it was healthy)."""
    with engine.begin() as conn:
        failures = conn.execute(
            select(channels_t.c.consecutive_failures).where(channels_t.c.id == channel_id)
        ).scalar_one()
        conn.execute(
            update(channels_t)
            .where(channels_t.c.id == channel_id)
            .values(last_pull_finished_at=now, last_success_at=now, consecutive_failures=0, last_error=None)
        )
        return int(failures or 0)


def mark_pull_failed(engine: Engine, channel_id: int, error: str, now: datetime) -> int:
    """Record a failure; return the number of failures in a row, this one included."""
    with engine.begin() as conn:
        failures = int(
            conn.execute(select(channels_t.c.consecutive_failures).where(channels_t.c.id == channel_id)).scalar_one()
            or 0
        ) + 1
        conn.execute(
            update(channels_t)
            .where(channels_t.c.id == channel_id)
            .values(last_pull_finished_at=now, last_error=error[:4000], last_error_at=now, consecutive_failures=failures)
        )
        return failures


def add_rate_limit_waits(engine: Engine, channel_id: int, waits: int, seconds: float, at: datetime) -> None:
    """Count a pull's held-back requests into the channel's totals (read by `retsync channels` and the console)."""
    if not waits:
        return
    with engine.begin() as conn:
        conn.execute(update(channels_t).where(channels_t.c.id == channel_id).values(
            rate_limit_waits=channels_t.c.rate_limit_waits + waits,
            rate_limit_wait_seconds=channels_t.c.rate_limit_wait_seconds + seconds, last_rate_limited_at=at))
