"""The sync engine: cursor in, pages out, each page stored together with the cursor after it.

The only rule that matters: a cursor is saved in the same transaction as the
page it follows. A kill -9 before the commit loses the page *and* the cursor
move, so the page is fetched again; after the commit both are there. Natural
keys make the re-fetch an update, never a duplicate. Pages are consumed one
at a time from the connector's generator, so memory does not grow with the
length of the history.

One record must never stop a channel: a record the connector could not map
arrives set aside on its page (`Page.quarantined`); one the store cannot take
is refused before the write (`pages.refusal`) or, when the database still
refuses the page, found by trying each record alone in a transaction that is
rolled back. Either way it goes to the quarantine in the page's transaction
and the rest of the page and the cursor are committed. Quarantined returns are
asked for again with the open returns on every pull, and a record stored
normally later resolves its quarantine row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from retsync.kit.contract import Connector, Page, PullContext, Stream
from retsync.kit.model import Order, Return, ReturnStatus, utcnow
from retsync.kit.records import Quarantined
from retsync.kit.settings import ChannelSettings
from retsync.logs import remember_customers
from retsync.store.channels import load_cursor, save_cursor
from retsync.store.models import Order as OrderRow
from retsync.store.models import QuarantinedRecord
from retsync.store.models import Return as ReturnRow
from retsync.store.pages import PageStats, PageWriter, refusal
from retsync.store.quarantine import open_external_ids, payload_text, personal_values, resolve, set_aside
from retsync.sync.lookahead import ahead
from retsync.sync.progress import PullProgress

log = structlog.get_logger(__name__)

RECHECK_CURSOR = "open_returns"
"""The cursor row that keeps where the re-reading of older open returns has reached."""
OPEN_STATUSES = (ReturnStatus.REQUESTED.value, ReturnStatus.IN_TRANSIT.value, ReturnStatus.RECEIVED.value)


def is_data_error(exc: BaseException) -> bool:
    """The database refused a value (too long, out of range, a constraint), not the database being unusable:
    such an error is the record's, and is quarantined with it."""
    if isinstance(exc, (DataError, IntegrityError, OverflowError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def data_problem(exc: BaseException) -> str:
    """The database's refusal in one line, without the statement or its values (they hold personal data)."""
    orig = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"the database refused it: {type(orig).__name__}: {message}"[:500]


def page_customers(page: Page) -> list[str | None]:
    """The names, e-mail addresses and phones of a page's orders and returns, and those in the records set aside
    as the channel sent them: a database error, a failed page or a quarantine reason may quote them, and the log
    redacts what the thread remembers (retsync.logs.remember_customers)."""
    values: list[str | None] = [value for record in (*page.orders, *page.returns)
                                for value in (record.customer.name, record.customer.email, record.customer.phone)]
    for record in page.quarantined:  # rare, and the quarantine dumps each anyway
        values += personal_values(payload_text(record.payload)[0])
    return values


def _dump(record: Order | Return) -> object:
    return record.model_dump(mode="json")


@dataclass
class StreamResult:
    stream: Stream
    pages: int = 0
    stats: PageStats = field(default_factory=PageStats)
    stopped: bool = False
    quarantined: int = 0


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
        progress: PullProgress | None = None,
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
        self._progress = progress
        self._page_guard = page_guard  # runs inside each page's transaction; raising rolls the page back
        self._recheck_after: int | None = None
        self._quarantine_open = True  # until a pull looked: resolving costs one statement per page

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
            quarantined = open_external_ids(conn, self.channel_id, "return")
        self._recheck_after = int(turn[-1][0]) if len(turn) == limit else (0 if after else None)
        again = recent + [external_id for _, external_id in turn]
        asked = set(again)
        return again + [external_id for external_id in quarantined if external_id not in asked]

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
        with self.db.connect() as conn:
            self._quarantine_open = conn.execute(select(QuarantinedRecord.id).where(
                QuarantinedRecord.channel_id == self.channel_id, QuarantinedRecord.resolved_at.is_(None)
            ).limit(1)).first() is not None
        log.debug("pull_started", resume_from=cursor)
        if self._progress is not None:
            self._progress.start(self.channel, stream)
        for page in ahead(self.connector.pull(stream, context), self.settings.prefetch_pages, self.stop):
            stats, aside = self._store_page(stream, page)
            result.pages += 1
            result.stats.add(stats)
            result.quarantined += len(aside)
            if self._after_page is not None:
                self._after_page(stream, result.pages)
            if self._progress is not None:
                self._progress.page(self.channel, stream, result.pages,
                                    result.stats.returns_new + result.stats.returns_updated,
                                    result.stats.orders_new + result.stats.orders_updated)
            if self.stop.is_set():
                result.stopped = True
                break
        if not result.stopped:
            self._save_recheck()
        remember_customers(())  # kept on a failure, for the error logged once it has left this stream
        log.info(
            "pull_finished",
            pages=result.pages,
            returns_new=result.stats.returns_new,
            returns_updated=result.stats.returns_updated,
            orders_new=result.stats.orders_new,
            quarantined=result.quarantined,
            stopped=result.stopped,
        )
        return result

    def _store_page(self, stream: Stream, page: Page) -> tuple[PageStats, list[Quarantined]]:
        """Store the page and its cursor in one transaction, setting aside each record that cannot be stored."""
        remember_customers(page_customers(page))
        aside = list(page.quarantined)
        orders = self._vetted(page.orders, "order", aside)
        returns = self._vetted(page.returns, "return", aside)
        try:
            stats = self._commit(stream, page, orders, returns, aside)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning("page_refused_by_database", problem=data_problem(exc),
                        hint="trying its records one by one; those refused are quarantined")
            refused = self._refused_alone(orders, "order") + self._refused_alone(returns, "return")
            if not refused:
                raise  # no single record is to blame: the page fails and is fetched again
            kept = {(item.kind, item.external_id) for item in refused}
            orders = [order for order in orders if ("order", order.external_id) not in kept]
            returns = [record for record in returns if ("return", record.external_id) not in kept]
            aside += refused
            stats = self._commit(stream, page, orders, returns, aside)
        if aside:
            self._quarantine_open = True
            log.warning("records_quarantined", count=len(aside), records=[
                {"kind": item.kind, "external_id": item.external_id, "reason": item.reason} for item in aside[:20]])
        return stats, aside

    @staticmethod
    def _vetted(records: Sequence[Any], kind: str, aside: list[Quarantined]) -> list[Any]:
        """The records the store can take; the others go to `aside` with why."""
        kept = []
        for record in records:
            problem = refusal(record)
            if problem is None:
                kept.append(record)
            else:
                aside.append(Quarantined(kind, record.external_id, problem, _dump(record)))
        return kept

    def _commit(self, stream: Stream, page: Page, orders: Sequence[Order], returns: Sequence[Return],
                aside: Sequence[Quarantined]) -> PageStats:
        now = self.clock()
        with self.db.begin() as conn:
            if self._page_guard is not None:
                self._page_guard(conn)
            stats = self.writer.store(conn, orders, returns, now)
            if aside:
                set_aside(conn, self.channel_id, stream.value, aside, now)
            if self._quarantine_open or aside:  # a record stored now that was set aside before, or on this page
                resolve(conn, self.channel_id, "order", [order.external_id for order in orders], now)
                resolve(conn, self.channel_id, "return", [record.external_id for record in returns], now)
            if page.cursor is not None:
                save_cursor(conn, self.channel_id, stream.value, dict(page.cursor), now)
        return stats

    def _refused_alone(self, records: Sequence[Order | Return], kind: str) -> list[Quarantined]:
        """Each record written alone in a transaction that is rolled back: those the database refuses."""
        refused = []
        for record in records:
            with self.db.connect() as conn:
                trans = conn.begin()
                try:
                    if kind == "order":
                        self.writer.store(conn, [record], [], self.clock())  # type: ignore[list-item]
                    else:
                        self.writer.store(conn, [], [record], self.clock())  # type: ignore[list-item]
                except Exception as exc:
                    if not is_data_error(exc):
                        raise
                    refused.append(Quarantined(kind, record.external_id, data_problem(exc), _dump(record)))
                finally:
                    trans.rollback()
        return refused

    def sync(self) -> list[StreamResult]:
        results = []
        for stream in self.connector.capabilities.streams:
            results.append(self.sync_stream(stream))
            if self.stop.is_set():
                break
        return results
