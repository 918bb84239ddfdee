"""Writing one page of unified records: upsert by natural key, log every status change.

A page is written with a handful of set-based statements (one read of what is
stored, one insert and one update per table), so storing costs little next to
fetching it. Unchanged records are not rewritten; changed ones leave an event
in the append-only history with the channel as its source.

What the columns cannot hold is settled here, for every connector alike: text
longer than its column is clipped (free text — reasons, comments, titles —
sits in unbounded text columns and is kept whole), and a record that cannot
be stored without changing what it means (an external id longer than its
column, a number beyond its column, a date before any channel existed, more
than LINE_LIMIT lines) is refused by `refusal`, for the engine to quarantine.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from retsync.kit.model import DecisionKind, DecisionState, Order, OrderLine, Return, ReturnLine
from retsync.kit.payload import EARLIEST, LINE_LIMIT
from retsync.store.models import Decision as DecisionRow
from retsync.store.models import Order as OrderRow
from retsync.store.models import OrderLine as OrderLineRow
from retsync.store.models import Return as ReturnRow
from retsync.store.models import ReturnEvent as EventRow
from retsync.store.models import ReturnLine as ReturnLineRow

orders_t = OrderRow.__table__
order_lines_t = OrderLineRow.__table__
returns_t = ReturnRow.__table__
return_lines_t = ReturnLineRow.__table__
decisions_t = DecisionRow.__table__
events_t = EventRow.__table__


COUNT_LIMIT = 2**31 - 1
"""The INTEGER columns (quantities) on PostgreSQL."""
AMOUNT_LIMIT = 2**63 - 1
"""The BIGINT columns (amounts in minor units)."""
KEY_COLUMNS = frozenset({"external_id"})
"""Identity is never clipped: two records clipped to one id would overwrite each other."""


def _column_limits(table: Any) -> dict[str, int]:
    return {column.name: column.type.length for column in table.columns
            if getattr(column.type, "length", None) and column.name not in KEY_COLUMNS}


def _fit(limits: dict[str, int], values: dict[str, Any]) -> dict[str, Any]:
    """Text clipped to its column: a 36-character postcode in varchar(20) must not fail the page. NUL characters
    are dropped: PostgreSQL refuses them in text, SQLite would keep them, and they mean nothing in either."""
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            values[name] = value.replace("\x00", "")
    for name, limit in limits.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            values[name] = value[:limit]
    return values


EVENT_VALUE_LENGTH: int = events_t.c.new_value.type.length
ORDER_LIMITS = _column_limits(orders_t)
ORDER_LINE_LIMITS = _column_limits(order_lines_t)
RETURN_LIMITS = _column_limits(returns_t)
RETURN_LINE_LIMITS = _column_limits(return_lines_t)


def _too_long(what: str, value: str | None, column: Any) -> str | None:
    limit = column.type.length
    if value is not None and len(value) > limit:
        return f"{what} of {len(value)} characters is longer than the {limit} retsync stores"
    return None


def _number_problem(what: str, value: int | None, limit: int) -> str | None:
    if value is not None and not -limit <= value <= limit:
        return f"{what} {value if len(str(value)) < 30 else str(value)[:20] + '…'} is out of range"
    return None


def _line_problem(line: OrderLine | ReturnLine) -> str | None:
    return (_too_long(f"line id {line.external_id[:40]!r}", line.external_id, order_lines_t.c.external_id)
            or _number_problem(f"line {line.external_id[:40]}: quantity", line.quantity, COUNT_LIMIT)
            or _number_problem(f"line {line.external_id[:40]}: unit price", line.unit_price, AMOUNT_LIMIT)
            or _number_problem(f"line {line.external_id[:40]}: decided quantity",
                               getattr(line, "channel_decision_quantity", None), COUNT_LIMIT))


def refusal(record: Order | Return) -> str | None:
    """Why the store cannot take this record as it is, or None: the engine quarantines a refused record."""
    problem = _too_long("external id", record.external_id, returns_t.c.external_id)
    if problem:
        return problem
    if len(record.lines) > LINE_LIMIT:
        return f"{len(record.lines)} lines: retsync stores at most {LINE_LIMIT} lines per return or order"
    amount = record.total_amount if isinstance(record, Order) else record.refund_amount
    problem = _number_problem("amount", amount, AMOUNT_LIMIT)
    if problem:
        return problem
    for name in ("placed_at", "delivered_at", "created_at", "received_at", "decided_at", "refunded_at"):
        moment = getattr(record, name, None)
        if moment is not None and moment < EARLIEST:
            return f"{name} {moment.date().isoformat()} is before any channel existed"
    for line in record.lines:
        problem = _line_problem(line)
        if problem:
            return problem
    return None


def content_hash(record: Order | Return) -> str:
    """A digest of everything we store of a record, to skip rewriting what did not change."""
    return hashlib.blake2b(record.model_dump_json().encode(), digest_size=16).hexdigest()


@dataclass
class PageStats:
    returns_new: int = 0
    returns_updated: int = 0
    returns_unchanged: int = 0
    orders_new: int = 0
    orders_updated: int = 0

    def add(self, other: PageStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _last_by_key(records: Iterable[Any]) -> dict[str, Any]:
    """A page may repeat a record (an overlap re-read); the last copy wins."""
    return {record.external_id: record for record in records}


def _order_values(order: Order, digest: str) -> dict[str, Any]:
    return _fit(ORDER_LIMITS, {
        "placed_at": order.placed_at,
        "delivered_at": order.delivered_at,
        "channel_status": order.channel_status,
        "currency": order.currency,
        "total_amount": order.total_amount,
        "customer_email": order.customer.email,
        "customer_name": order.customer.name,
        "customer_phone": order.customer.phone,
        "customer_postcode": order.customer.postcode,
        "content_hash": digest,
    })


def _return_values(record: Return, digest: str) -> dict[str, Any]:
    return _fit(RETURN_LIMITS, {
        "order_external_id": record.order_external_id,
        "status": record.status.value,
        "channel_status": record.channel_status,
        "reason": record.reason.value,
        "channel_reason": record.channel_reason,
        "created_at": record.created_at,
        "received_at": record.received_at,
        "decided_at": record.decided_at,
        "refunded_at": record.refunded_at,
        "refund_amount": record.refund_amount,
        "currency": record.currency,
        "customer_email": record.customer.email,
        "customer_name": record.customer.name,
        "customer_phone": record.customer.phone,
        "customer_postcode": record.customer.postcode,
        "handled_by_channel": record.handled_by_channel,
        "tracking_number": record.tracking_number,
        "carrier": record.carrier,
        "marketplace": record.marketplace,
        "is_test": record.is_test,
        "extra": record.extra,
        "revision": record.revision,
        "content_hash": digest,
    })


def _line_values(line: ReturnLine, record: Return) -> dict[str, Any]:
    return _fit(RETURN_LINE_LIMITS, {
        "order_external_id": line.order_external_id or record.order_external_id,
        "order_line_external_id": line.order_line_external_id,
        "sku": line.sku,
        "ean": line.ean,
        "title": line.title,
        "quantity": line.quantity,
        "reason": line.reason.value,
        "channel_reason": line.channel_reason,
        "customer_comment": line.customer_comment,
        "channel_status": line.channel_status,
        "unit_price": line.unit_price,
        "currency": line.currency or record.currency,
    })


class PageWriter:
    """Stores pages of one channel; `source` is what the event log names as the origin."""

    def __init__(self, channel_id: int, source: str) -> None:
        self.channel_id = channel_id
        self.source = source

    def store(self, conn: Connection, orders: Sequence[Order], returns: Sequence[Return], now: datetime) -> PageStats:
        stats = PageStats()
        if orders:
            self._store_orders(conn, _last_by_key(orders), now, stats)
        if returns:
            self._store_returns(conn, _last_by_key(returns), now, stats)
        return stats

    # --- orders -------------------------------------------------------------------------------

    def _store_orders(self, conn: Connection, orders: dict[str, Order], now: datetime, stats: PageStats) -> None:
        stored = {
            row.external_id: row
            for row in conn.execute(
                select(orders_t.c.id, orders_t.c.external_id, orders_t.c.content_hash).where(
                    orders_t.c.channel_id == self.channel_id, orders_t.c.external_id.in_(list(orders))
                )
            )
        }
        new_rows, changed_rows, changed_ids = [], [], {}
        for external_id, order in orders.items():
            digest = content_hash(order)
            row = stored.get(external_id)
            if row is None:
                new_rows.append({"channel_id": self.channel_id, "external_id": external_id, "first_seen_at": now,
                                 "updated_at": now, **_order_values(order, digest)})
            elif row.content_hash != digest:
                changed_rows.append({"_id": row.id, "updated_at": now, **_order_values(order, digest)})
                changed_ids[row.id] = order
        new_ids: dict[int, Order] = {}
        if new_rows:
            inserted = conn.execute(
                insert(orders_t).returning(orders_t.c.id, orders_t.c.external_id, sort_by_parameter_order=True),
                new_rows,
            )
            new_ids = {row.id: orders[row.external_id] for row in inserted}
        if changed_rows:
            conn.execute(update(orders_t).where(orders_t.c.id == bindparam("_id")), changed_rows)
        stats.orders_new += len(new_rows)
        stats.orders_updated += len(changed_rows)
        self._store_order_lines(conn, new_ids, changed_ids)

    def _store_order_lines(self, conn: Connection, new: dict[int, Order], changed: dict[int, Order]) -> None:
        stored: dict[tuple[int, str], int] = {}
        if changed:
            stored = {
                (row.order_id, row.external_id): row.id
                for row in conn.execute(
                    select(order_lines_t.c.id, order_lines_t.c.order_id, order_lines_t.c.external_id).where(
                        order_lines_t.c.order_id.in_(list(changed))
                    )
                )
            }
        inserts, updates = [], []
        for order_id, order in (*new.items(), *changed.items()):
            for line in order.lines:
                values = _fit(ORDER_LINE_LIMITS, {
                    "sku": line.sku, "ean": line.ean, "title": line.title, "quantity": line.quantity,
                    "unit_price": line.unit_price, "currency": line.currency or order.currency})
                line_id = stored.get((order_id, line.external_id))
                if line_id is None:
                    inserts.append({"order_id": order_id, "external_id": line.external_id, **values})
                else:
                    updates.append({"_id": line_id, **values})
        if inserts:
            conn.execute(insert(order_lines_t), inserts)
        if updates:
            conn.execute(update(order_lines_t).where(order_lines_t.c.id == bindparam("_id")), updates)

    # --- returns ------------------------------------------------------------------------------

    def _store_returns(self, conn: Connection, returns: dict[str, Return], now: datetime, stats: PageStats) -> None:
        stored = {
            row.external_id: row
            for row in conn.execute(
                select(returns_t.c.id, returns_t.c.external_id, returns_t.c.content_hash, returns_t.c.status).where(
                    returns_t.c.channel_id == self.channel_id, returns_t.c.external_id.in_(list(returns))
                )
            )
        }
        new_rows, changed_rows, events = [], [], []
        touched: dict[int, Return] = {}
        for external_id, record in returns.items():
            digest = content_hash(record)
            row = stored.get(external_id)
            if row is None:
                new_rows.append({"channel_id": self.channel_id, "external_id": external_id, "first_seen_at": now,
                                 "updated_at": now, **_return_values(record, digest)})
            elif row.content_hash != digest:
                changed_rows.append({"_id": row.id, "updated_at": now, **_return_values(record, digest)})
                touched[row.id] = record
                if row.status != record.status.value:
                    events.append(self._event(row.id, None, now, "status", row.status, record.status.value,
                                              record.channel_status))
            else:
                stats.returns_unchanged += 1
        if new_rows:
            inserted = conn.execute(
                insert(returns_t).returning(returns_t.c.id, returns_t.c.external_id, sort_by_parameter_order=True),
                new_rows,
            )
            for row in inserted:
                record = returns[row.external_id]
                touched[row.id] = record
                events.append(self._event(row.id, None, now, "status", None, record.status.value,
                                          record.channel_status))
        if changed_rows:
            conn.execute(update(returns_t).where(returns_t.c.id == bindparam("_id")), changed_rows)
        stats.returns_new += len(new_rows)
        stats.returns_updated += len(changed_rows)
        if touched:
            events.extend(self._store_return_lines(conn, touched, now))
        if events:
            conn.execute(insert(events_t), events)

    def _store_return_lines(self, conn: Connection, returns: dict[int, Return], now: datetime) -> list[dict[str, Any]]:
        stored = {
            (row.return_id, row.external_id): row
            for row in conn.execute(
                select(return_lines_t.c.id, return_lines_t.c.return_id, return_lines_t.c.external_id,
                       return_lines_t.c.channel_status).where(return_lines_t.c.return_id.in_(list(returns)))
            )
        }
        inserts, updates, events = [], [], []
        for return_id, record in returns.items():
            for line in record.lines:
                values = _line_values(line, record)
                row = stored.get((return_id, line.external_id))
                if row is None:
                    inserts.append({"return_id": return_id, "external_id": line.external_id, **values})
                else:
                    updates.append({"_id": row.id, **values})
                    if row.channel_status != line.channel_status:
                        events.append(self._event(return_id, row.id, now, "line_status", row.channel_status,
                                                  line.channel_status, None))
        if inserts:
            conn.execute(insert(return_lines_t), inserts)
        if updates:
            conn.execute(update(return_lines_t).where(return_lines_t.c.id == bindparam("_id")), updates)
        events.extend(self._store_channel_decisions(conn, returns, now))
        return events

    def _store_channel_decisions(self, conn: Connection, returns: dict[int, Return], now: datetime) -> list[dict[str, Any]]:
        """Decisions the channel reports as taken become history (`synced`), never outbox work."""
        wanted = {
            (return_id, line.external_id): line
            for return_id, record in returns.items()
            for line in record.lines
            if line.channel_decision is not None
        }
        if not wanted:
            return []
        line_ids = {
            (row.return_id, row.external_id): row.id
            for row in conn.execute(
                select(return_lines_t.c.id, return_lines_t.c.return_id, return_lines_t.c.external_id).where(
                    return_lines_t.c.return_id.in_({key[0] for key in wanted})
                )
            )
        }
        latest: dict[int, str] = {}
        for row in conn.execute(
            select(decisions_t.c.return_line_id, decisions_t.c.kind)
            .where(decisions_t.c.return_line_id.in_(list(line_ids.values())))
            .order_by(decisions_t.c.id)
        ):
            latest[row.return_line_id] = row.kind
        decisions, events = [], []
        for (return_id, external_id), line in wanted.items():
            line_id = line_ids[(return_id, external_id)]
            kind = DecisionKind(line.channel_decision).value  # type: ignore[arg-type]
            if latest.get(line_id) == kind:
                continue
            key = str(uuid.uuid4())  # history, never pushed: each is an act of its own
            decisions.append({
                "return_id": return_id, "return_line_id": line_id, "kind": kind,
                "quantity": line.channel_decision_quantity or line.quantity, "note": None, "origin": "channel",
                "state": DecisionState.SYNCED.value, "idempotency_key": key, "act_key": key, "attempts": 0,
                "next_attempt_at": None, "last_error": None, "reference": None,
                "created_at": now, "updated_at": now, "pushed_at": None,
            })
            events.append(self._event(return_id, line_id, now, "decision", latest.get(line_id), kind,
                                      "decided on the channel"))
        if decisions:
            conn.execute(insert(decisions_t), decisions)
        return events

    def _event(self, return_id: int, line_id: int | None, now: datetime, kind: str, old: str | None,
               new: str | None, detail: str | None) -> dict[str, Any]:
        return {"return_id": return_id, "return_line_id": line_id, "at": now, "kind": kind,
                "old_value": old[:EVENT_VALUE_LENGTH] if old else old,
                "new_value": new[:EVENT_VALUE_LENGTH] if new else new,
                "source": self.source, "detail": detail}
