"""The sync engine: cursor in, pages out, each page stored together with the cursor after it.

The only rule that matters: a cursor is saved in the same transaction as the
page it follows. A kill -9 before the commit loses the page *and* the cursor
move, so the page is fetched again; after the commit both are there. Natural
keys make the re-fetch an update, never a duplicate. Pages are consumed one
at a time from the connector's generator, so memory does not grow with the
length of the history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import Connection, Engine, select

from retsync.config import ChannelSettings
from retsync.connector import Connector, PullContext, Stream
from retsync.model import ReturnStatus
from retsync.store.channels import load_cursor, save_cursor
from retsync.store.models import Order as OrderRow
from retsync.store.models import Return as ReturnRow
from retsync.store.pages import PageStats, PageWriter

log = structlog.get_logger(__name__)

RECHECK_CURSOR = "open_returns"
"""The cursor row that keeps where the re-reading of older open returns has reached."""
OPEN_STATUSES = (ReturnStatus.REQUESTED.value, ReturnStatus.IN_TRANSIT.value, ReturnStatus.RECEIVED.value)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StreamResult:
    stream: Stream
    pages: int = 0
    stats: PageStats = field(default_factory=PageStats)
    stopped: bool = False


class SyncEngine:
    """Pulls the streams of one channel into the store."""

    def __init__(
        self,
        db: Engine,
        *,
        channel: str,
        channel_id: int,
        settings: ChannelSettings,
        connector: Connector,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        after_page: Callable[[Stream, int], None] | None = None,
        page_guard: Callable[[Connection], None] | None = None,
    ) -> None:
        self.db = db
        self.channel = channel
        self.channel_id = channel_id
        self.settings = settings
        self.connector = connector
        self.stop = stop or threading.Event()
        self.clock = clock
        self.writer = PageWriter(channel_id, source=f"channel:{channel}")
        self._after_page = after_page
        self._page_guard = page_guard  # runs inside each page's transaction; raising rolls the page back
        self._recheck_after: int | None = None

    def _stored_revisions(self, external_ids: Collection[str]) -> dict[str, str | None]:
        with self.db.connect() as conn:
            return dict(conn.execute(
                select(ReturnRow.external_id, ReturnRow.revision).where(
                    ReturnRow.channel_id == self.channel_id, ReturnRow.external_id.in_(list(external_ids)))
            ).all())

    def _stored_orders(self, external_ids: Collection[str]) -> set[str]:
        with self.db.connect() as conn:
            return set(conn.execute(
                select(OrderRow.external_id).where(
                    OrderRow.channel_id == self.channel_id, OrderRow.external_id.in_(list(external_ids)))
            ).scalars())

    def _open_returns(self) -> list[str]:
        """Open returns to read again this pass: the recent ones all, older ones in turn, a bounded slice each.

        A backlog of returns nobody closes would otherwise cost every poll more requests as the history ages;
        in turn, each of them is still read again within (backlog / recheck_older_per_pass) polls. Where the
        slice ended is kept only once the pass has stored everything (`_save_recheck`).
        """
        recent_since = self.clock() - timedelta(days=self.settings.recheck_recent_days)
        limit = self.settings.recheck_older_per_pass
        open_here = (ReturnRow.channel_id == self.channel_id, ReturnRow.status.in_(OPEN_STATUSES))
        with self.db.connect() as conn:
            recent = list(conn.execute(select(ReturnRow.external_id).where(
                *open_here, ReturnRow.created_at >= recent_since)).scalars())
            position = load_cursor(conn, self.channel_id, RECHECK_CURSOR) or {}
            after = int(position.get("after_id", 0))
            older = select(ReturnRow.id, ReturnRow.external_id).where(
                *open_here, ReturnRow.created_at < recent_since).order_by(ReturnRow.id)
            turn = conn.execute(older.where(ReturnRow.id > after).limit(limit)).all()
            if len(turn) < limit and after:  # the end of the backlog: go on from its start
                turn += conn.execute(older.where(ReturnRow.id <= after).limit(limit - len(turn))).all()
        self._recheck_after = int(turn[-1][0]) if len(turn) == limit else (0 if after else None)
        return recent + [external_id for _, external_id in turn]

    def _save_recheck(self) -> None:
        """Keep where this pass's slice of older open returns ended (only where there is a backlog to turn)."""
        if self._recheck_after is not None:
            with self.db.begin() as conn:
                save_cursor(conn, self.channel_id, RECHECK_CURSOR, {"after_id": self._recheck_after}, self.clock())
            self._recheck_after = None

    def sync_stream(self, stream: Stream) -> StreamResult:
        # every line logged while this stream syncs (HTTP retries included) names channel and stream
        with structlog.contextvars.bound_contextvars(channel=self.channel, stream=stream.value):
            return self._sync_stream(stream)

    def _sync_stream(self, stream: Stream) -> StreamResult:
        result = StreamResult(stream)

        with self.db.connect() as conn:
            cursor = load_cursor(conn, self.channel_id, stream.value)
        now = self.clock()
        context = PullContext(
            channel=self.channel,
            stream=stream,
            cursor=cursor,
            now=now,
            backfill_since=now - timedelta(days=self.settings.backfill_days),
            overlap=self.settings.overlap,
            stored_revisions=self._stored_revisions,
            stored_orders=self._stored_orders,
            open_returns=self._open_returns,
        )
        log.debug("pull_started", resume_from=cursor)
        for page in self.connector.pull(stream, context):
            with self.db.begin() as conn:
                if self._page_guard is not None:
                    self._page_guard(conn)
                stats = self.writer.store(conn, page.orders, page.returns, self.clock())
                if page.cursor is not None:
                    save_cursor(conn, self.channel_id, stream.value, dict(page.cursor), self.clock())
            result.pages += 1
            result.stats.add(stats)
            if self._after_page is not None:
                self._after_page(stream, result.pages)
            if self.stop.is_set():
                result.stopped = True
                break
        if not result.stopped:
            self._save_recheck()
        log.info(
            "pull_finished",
            pages=result.pages,
            returns_new=result.stats.returns_new,
            returns_updated=result.stats.returns_updated,
            orders_new=result.stats.orders_new,
            stopped=result.stopped,
        )
        return result

    def sync(self) -> list[StreamResult]:
        results = []
        for stream in self.connector.capabilities.streams:
            results.append(self.sync_stream(stream))
            if self.stop.is_set():
                break
        return results
