"""Channel leases: with several `retsync run` instances on one PostgreSQL database, each channel is pulled by one.

A lease is two columns of the channel's row (`lease_owner`, `lease_expires_at`). Taking it is one atomic
UPDATE that succeeds only when the lease is free, lapsed, or already ours, so two instances can never both
hold it. The holder keeps it for as long as it runs: a heartbeat renews every lease it holds, and every page
of a pull renews it *inside the page's own transaction*, so a page is only ever committed by the instance
holding the lease (an instance that stalled past its lease finds it taken and its page rolled back).
When the holder dies its lease lapses, and the next heartbeat of another instance takes the channel over.
Lease lengths come from the channel's poll interval so that this happens within one poll interval.
A holder known to be dead is not even waited for: on PostgreSQL every instance holds a session advisory lock
named after itself for as long as its connection lives, so a lease whose owner's lock can be taken belongs to
a dead process (a killed `retsync sync` does not block the next one); on SQLite the owner's pid is checked.

Times come from the database's clock on PostgreSQL, so instances on machines whose clocks disagree still
agree on when a lease lapses.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, func, or_, select, text, update

from retsync.store.models import Channel

channels_t = Channel.__table__

MIN_LEASE = timedelta(seconds=6)
"""A shorter lease would lapse on an ordinary pause of a busy machine and hand the channel back and forth."""
HEARTBEATS_PER_LEASE = 3
ALIVE_LOCK_CLASS = 7270
"""The first key of the two-key advisory locks that say "this instance lives" (one per instance)."""
"""The holder renews this many times per lease length, so it survives missing one or two heartbeats."""


class LeaseLost(Exception):
    """Another instance holds this channel now; the page in hand is rolled back and the pull stops."""


def instance_id() -> str:
    """`host:pid:random`: unique per process, and tells the admin which machine and process holds a channel."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_length(poll_interval: timedelta) -> timedelta:
    """Three quarters of the poll interval: a lapsed lease plus one heartbeat still fits in one poll interval."""
    return max(poll_interval * 0.75, MIN_LEASE)


def heartbeat_interval(lengths: Iterable[timedelta]) -> timedelta:
    return min(lengths, default=MIN_LEASE) / HEARTBEATS_PER_LEASE


@dataclass(frozen=True)
class Holder:
    owner: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Taken:
    """The outcome of asking for a channel's lease."""

    ok: bool
    holder: Holder
    """Who held it before (when `ok`), or who holds it now (when not)."""

    @property
    def taken_over(self) -> bool:
        """We took a lease another instance had let lapse (it died or stalled)."""
        return self.ok and self.holder.owner is not None


class ChannelLeases:
    """The leases one instance holds, identified by `owner`."""

    def __init__(self, db: Engine, owner: str | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.owner = owner or instance_id()
        self._clock = clock
        self.lengths: dict[int, timedelta] = {}
        self._alive: Connection | None = None
        self._announcing = threading.Lock()  # pulls of several channels start at once, in their own threads

    def _announce(self) -> None:
        """PostgreSQL: hold our own liveness lock on a connection kept open while this instance lives."""
        if self._alive is not None or self.db.dialect.name != "postgresql":
            return
        with self._announcing:
            if self._alive is not None:
                return
            conn = self.db.connect()
            # try, never wait: a session holding it already can only be this instance's own (a second call)
            conn.execute(text("SELECT pg_try_advisory_lock(:k, hashtext(:owner))"),
                         {"k": ALIVE_LOCK_CLASS, "owner": self.owner})
            conn.commit()
            self._alive = conn

    def _dead(self, conn: Connection, owner: str) -> bool:
        """Is the process that holds this lease known to be gone? (False when unsure: then its lease must lapse.)"""
        if conn.dialect.name == "postgresql":
            params = {"k": ALIVE_LOCK_CLASS, "owner": owner}
            if conn.execute(text("SELECT pg_try_advisory_lock(:k, hashtext(:owner))"), params).scalar_one():
                conn.execute(text("SELECT pg_advisory_unlock(:k, hashtext(:owner))"), params)
                return True
            return False
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def close(self) -> None:
        """Release our leases and our liveness lock (the connection closing would drop it too)."""
        try:
            self.release()
        finally:
            with self._announcing:
                if self._alive is not None:
                    self._alive.close()
                    self._alive = None

    def _now(self, conn: Connection) -> datetime:
        if conn.dialect.name == "postgresql":
            return conn.execute(select(func.clock_timestamp())).scalar_one()  # type: ignore[no-any-return]
        if self._clock is not None:
            return self._clock()
        from retsync.kit.model import utcnow

        return utcnow()

    def _free(self, now: datetime) -> object:
        return or_(channels_t.c.lease_owner.is_(None), channels_t.c.lease_owner == self.owner,
                   channels_t.c.lease_expires_at.is_(None), channels_t.c.lease_expires_at < now)

    def acquire(self, channel_id: int, length: timedelta) -> Taken:
        """Take or keep the channel's lease unless another live instance holds it."""
        self.lengths[channel_id] = length
        self._announce()
        with self.db.begin() as conn:
            now = self._now(conn)
            query = select(channels_t.c.lease_owner, channels_t.c.lease_expires_at).where(
                channels_t.c.id == channel_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).one()
            before = Holder(row.lease_owner, row.lease_expires_at)
            changed = conn.execute(
                update(channels_t).where(channels_t.c.id == channel_id, self._free(now))
                .values(lease_owner=self.owner, lease_expires_at=now + length)
            ).rowcount
            if not changed and before.owner is not None and self._dead(conn, before.owner):
                changed = conn.execute(
                    update(channels_t).where(channels_t.c.id == channel_id, channels_t.c.lease_owner == before.owner)
                    .values(lease_owner=self.owner, lease_expires_at=now + length)
                ).rowcount
        if not changed:
            return Taken(False, before)
        return Taken(True, Holder(None, None) if before.owner in (None, self.owner) else before)

    def renew_in(self, conn: Connection, channel_id: int) -> None:
        """Inside the caller's transaction (a page being stored): keep the lease or raise LeaseLost.

        The UPDATE locks the channel's row until that transaction ends, so nobody can take the lease
        between this check and the page's commit.
        """
        length = self.lengths.get(channel_id, MIN_LEASE)
        now = self._now(conn)
        changed = conn.execute(
            update(channels_t).where(channels_t.c.id == channel_id, channels_t.c.lease_owner == self.owner)
            .values(lease_expires_at=now + length)
        ).rowcount
        if not changed:
            raise LeaseLost(f"channel {channel_id} is held by another instance now")

    def heartbeat(self, channel_ids: Iterable[int]) -> tuple[set[int], set[int]]:
        """Renew what we hold; answer (held, free): our channels, and channels whose lease is free or lapsed."""
        wanted = list(channel_ids)
        if not wanted:
            return set(), set()
        with self.db.begin() as conn:
            now = self._now(conn)
            for channel_id in wanted:
                conn.execute(update(channels_t).where(
                    channels_t.c.id == channel_id, channels_t.c.lease_owner == self.owner)
                    .values(lease_expires_at=now + self.lengths.get(channel_id, MIN_LEASE)))
            rows = conn.execute(select(channels_t.c.id, channels_t.c.lease_owner, channels_t.c.lease_expires_at)
                                .where(channels_t.c.id.in_(wanted))).all()
        held = {int(r.id) for r in rows if r.lease_owner == self.owner}
        free = {int(r.id) for r in rows if r.lease_owner is None or r.lease_expires_at is None
                or (r.lease_owner != self.owner and r.lease_expires_at < now)}
        return held, free

    def release(self, channel_ids: Iterable[int] | None = None) -> None:
        """Hand our leases back (clean stop, or the end of `retsync sync`) so another instance needs no wait."""
        where = [channels_t.c.lease_owner == self.owner]
        ids = list(channel_ids) if channel_ids is not None else None
        if ids is not None:
            if not ids:
                return
            where.append(channels_t.c.id.in_(ids))
        with self.db.begin() as conn:
            conn.execute(update(channels_t).where(and_(*where)).values(lease_owner=None, lease_expires_at=None))


def serialized(conn: Connection, name: str) -> None:
    """Inside the caller's transaction: wait until no other instance runs the same step (PostgreSQL only).

    For work that spans channels (customer groups, flags recomputed by a push pass), which the channel
    leases do not cover. A transaction-level advisory lock: PostgreSQL's own, released at commit or rollback,
    and never left behind by a dead process. SQLite needs none: it has one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"retsync:{name}"})
