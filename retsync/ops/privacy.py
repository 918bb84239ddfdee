"""Customers' personal data on a schedule and on request (GDPR): retention, export, erasure.

What is erased is what names or reaches a person: the name, e-mail, phone and postcode on returns and orders,
the free text they wrote (a return's and its lines' channel reason, the customer's comment), the address of a
customer e-mail and what it said, and the record as the channel sent it where it was quarantined. What stays is
what the merchant's figures need: ids, statuses, unified reasons, amounts, dates and the customer group, so the
views and `retsync report` keep working. A customer group's contact keys become keyed hashes (HMAC-SHA256 with a
key kept in the state directory, never in the database), so the group keeps its link and no one holding the
database alone can tell whose it was.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, and_, exists, func, insert, not_, or_, select, update

from retsync.kit.files import private_dir
from retsync.kit.model import utcnow
from retsync.ops.tables import PersonalDataErasure
from retsync.reconcile.customers import email_key
from retsync.store.models import (
    Channel,
    CustomerKey,
    Decision,
    Notification,
    Order,
    OrderLine,
    QuarantinedRecord,
    Return,
    ReturnEvent,
    ReturnLine,
)

log = structlog.get_logger(__name__)

CLOSED = ("refunded", "closed", "cancelled")
"""Statuses a return does not leave by itself: its personal data is only history from then on."""
PERSONAL_RETURN = {"customer_email": None, "customer_name": None, "customer_phone": None, "customer_postcode": None,
                   "channel_reason": None}
PERSONAL_LINE = {"channel_reason": None, "customer_comment": None}
PERSONAL_ORDER = {"customer_email": None, "customer_name": None, "customer_phone": None, "customer_postcode": None}
KEY_FILE = "privacy.key"
_CHUNK = 500

erasures_t = PersonalDataErasure.__table__


@dataclass
class Erased:
    returns: int = 0
    orders: int = 0
    notifications: int = 0
    quarantined: int = 0
    customer_keys: int = 0
    return_ids: list[int] = field(default_factory=list)
    order_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.returns} return{'s' if self.returns != 1 else ''}, {self.orders} order"
                f"{'s' if self.orders != 1 else ''}, {self.notifications} notification"
                f"{'s' if self.notifications != 1 else ''}, {self.quarantined} quarantined record"
                f"{'s' if self.quarantined != 1 else ''}")


def hash_key(state_dir: Path) -> bytes:
    """The key of the keyed hashes, made once (0600 in the state directory) and kept: the same contact always
    hashes the same, so groups stay linked across passes."""
    path = state_dir / KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    private_dir(state_dir)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return key


def keyed(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def apply_retention(db: Engine, keep: timedelta, state_dir: Path, now: datetime | None = None) -> Erased:
    """Erase the personal data of returns closed longer ago than `keep`, of orders last changed before then that no
    newer or open return needs, of what their notifications held, and of quarantined records resolved before
    then; and again of any record erased before that a later pull filled in anew."""
    now = now or utcnow()
    cutoff = now - keep
    key = hash_key(state_dir)
    returns = _ids(db, select(Return.id).where(
        Return.status.in_(CLOSED), Return.updated_at < cutoff, _holds_personal_return()))
    newer_or_open = exists().where(Return.order_id == Order.id, or_(Return.status.not_in(CLOSED),
                                                                    Return.updated_at >= cutoff))
    orders = _ids(db, select(Order.id).where(Order.updated_at < cutoff, not_(newer_or_open), _holds_personal_order()))
    refilled_returns = _ids(db, select(Return.id).where(_erased("return", Return.id), _holds_personal_return()))
    refilled_orders = _ids(db, select(Order.id).where(_erased("order", Order.id), _holds_personal_order()))
    erased = _erase(db, sorted(set(returns) | set(refilled_returns)), sorted(set(orders) | set(refilled_orders)),
                    key, "retention", now)
    with db.begin() as conn:
        erased.quarantined += conn.execute(
            update(QuarantinedRecord).where(QuarantinedRecord.resolved_at < cutoff,
                                            QuarantinedRecord.payload.is_not(None)).values(payload=None)).rowcount
    if erased.returns or erased.orders or erased.quarantined:
        log.info("personal_data_erased", reason="retention", older_than_days=keep.days, returns=erased.returns,
                 orders=erased.orders, notifications=erased.notifications, quarantined=erased.quarantined)
    return erased


def _holds_personal_return() -> Any:
    return or_(Return.customer_email.is_not(None), Return.customer_name.is_not(None),
               Return.customer_phone.is_not(None), Return.customer_postcode.is_not(None),
               Return.channel_reason.is_not(None),
               exists().where(ReturnLine.return_id == Return.id,
                              or_(ReturnLine.channel_reason.is_not(None), ReturnLine.customer_comment.is_not(None))))


def _holds_personal_order() -> Any:
    return or_(Order.customer_email.is_not(None), Order.customer_name.is_not(None),
               Order.customer_phone.is_not(None), Order.customer_postcode.is_not(None))


def _erased(kind: str, column: Any) -> Any:
    return exists().where(erasures_t.c.record_kind == kind, erasures_t.c.record_id == column)


def _ids(db: Engine, query: Any) -> list[int]:
    with db.connect() as conn:
        return [int(row[0]) for row in conn.execute(query)]


def _erase(db: Engine, return_ids: Sequence[int], order_ids: Sequence[int], key: bytes, reason: str,
           now: datetime) -> Erased:
    """Erase in chunks, each its own transaction: a large first retention pass never holds the database long."""
    erased = Erased(return_ids=list(return_ids), order_ids=list(order_ids))
    for start in range(0, len(return_ids), _CHUNK):
        chunk = list(return_ids[start:start + _CHUNK])
        with db.begin() as conn:
            conn.execute(update(Return).where(Return.id.in_(chunk)).values(**PERSONAL_RETURN))
            conn.execute(update(ReturnLine).where(ReturnLine.return_id.in_(chunk)).values(**PERSONAL_LINE))
            erased.notifications += conn.execute(
                update(Notification).where(Notification.return_id.in_(chunk), Notification.audience == "customer",
                                           Notification.recipient.is_not(None))
                .values(recipient=None, payload={})).rowcount
            erased.customer_keys += _hash_keys(conn, [f"r:{i}" for i in chunk], key)
            _mark(conn, "return", chunk, reason, now)
        erased.returns += len(chunk)
    for start in range(0, len(order_ids), _CHUNK):
        chunk = list(order_ids[start:start + _CHUNK])
        with db.begin() as conn:
            conn.execute(update(Order).where(Order.id.in_(chunk)).values(**PERSONAL_ORDER))
            erased.customer_keys += _hash_keys(conn, [f"o:{i}" for i in chunk], key)
            _mark(conn, "order", chunk, reason, now)
        erased.orders += len(chunk)
    return erased


def _hash_keys(conn: Connection, purchases: list[str], key: bytes) -> int:
    """`email:anna@example.pl` -> `email:#<keyed hash>`: the group keeps the key, nobody can read it back."""
    rows = conn.execute(select(CustomerKey.key).where(CustomerKey.purchase.in_(purchases),
                                                      not_(CustomerKey.key.like("%:#%")))).scalars().all()
    for plain in rows:
        rule, _, value = plain.partition(":")
        conn.execute(update(CustomerKey).where(CustomerKey.key == plain).values(key=f"{rule}:#{keyed(key, value)}"))
    return len(rows)


def _mark(conn: Connection, kind: str, ids: list[int], reason: str, now: datetime) -> None:
    known = set(conn.execute(select(erasures_t.c.record_id).where(erasures_t.c.record_kind == kind,
                                                                  erasures_t.c.record_id.in_(ids))).scalars())
    fresh = [{"record_kind": kind, "record_id": i, "reason": reason, "erased_at": now} for i in ids if i not in known]
    if fresh:
        conn.execute(insert(erasures_t), fresh)
    if known:
        conn.execute(update(erasures_t).where(erasures_t.c.record_kind == kind, erasures_t.c.record_id.in_(known))
                     .values(erased_at=now, reason=reason))


# --- one person ------------------------------------------------------------------------------------------


def _matching(conn: Connection, table: Any, address: str) -> list[int]:
    """Ids of the rows whose customer e-mail is this person's (case and `+tag` aside, as customer grouping reads it)."""
    wanted = email_key(address)
    if wanted is None:
        return []
    domain = wanted.rpartition("@")[2]
    rows = conn.execute(select(table.id, table.customer_email).where(
        func.lower(table.customer_email).like(f"%@{domain}"))).all()
    return sorted(int(row.id) for row in rows if email_key(row.customer_email) == wanted)


class NotAnAddress(ValueError):
    """The --email given is not an e-mail address."""


def _person(db: Engine, address: str) -> tuple[list[int], list[int]]:
    if email_key(address) is None:
        raise NotAnAddress(f"{address!r} is not an e-mail address")
    with db.connect() as conn:
        returns = _matching(conn, Return, address)
        orders = set(_matching(conn, Order, address))
        orders |= {int(i) for i in conn.execute(select(Return.order_id).where(
            Return.id.in_(returns), Return.order_id.is_not(None))).scalars()} if returns else set()
        returns = sorted(set(returns) | {int(i) for i in conn.execute(
            select(Return.id).where(Return.order_id.in_(orders))).scalars()} if orders else set(returns))
    return returns, sorted(orders)


def export_person(db: Engine, address: str) -> dict[str, Any]:
    """Everything stored about the person with this e-mail: their returns and orders (and the returns of those
    orders) with lines, decisions and history, the notifications sent to them, the quarantined records naming the
    address, and which of their records were erased already. JSON-ready."""
    returns, orders = _person(db, address)
    with db.connect() as conn:
        channel = {int(i): n for i, n in conn.execute(select(Channel.id, Channel.name))}

        def rows(query: Any) -> list[dict[str, Any]]:
            return [_plain(dict(r._mapping)) for r in conn.execute(query)]

        found_returns = []
        for ret in rows(select(Return).where(Return.id.in_(returns)).order_by(Return.id)):
            ret["channel"] = channel.get(ret.pop("channel_id"))
            ret["lines"] = rows(select(ReturnLine).where(ReturnLine.return_id == ret["id"]).order_by(ReturnLine.id))
            ret["decisions"] = rows(select(Decision.id, Decision.return_line_id, Decision.kind, Decision.quantity,
                                           Decision.note, Decision.origin, Decision.state, Decision.created_at,
                                           Decision.pushed_at)
                                    .where(Decision.return_id == ret["id"]).order_by(Decision.id))
            ret["history"] = rows(select(ReturnEvent.at, ReturnEvent.kind, ReturnEvent.old_value, ReturnEvent.new_value,
                                         ReturnEvent.source, ReturnEvent.detail)
                                  .where(ReturnEvent.return_id == ret["id"]).order_by(ReturnEvent.id))
            found_returns.append(ret)
        found_orders = []
        for order in rows(select(Order).where(Order.id.in_(orders)).order_by(Order.id)):
            order["channel"] = channel.get(order.pop("channel_id"))
            order["lines"] = rows(select(OrderLine).where(OrderLine.order_id == order["id"]).order_by(OrderLine.id))
            found_orders.append(order)
        mine = _notifications_of(conn, address, returns)
        notifications = rows(select(Notification.id, Notification.kind, Notification.transport, Notification.recipient,
                                    Notification.payload, Notification.state, Notification.created_at,
                                    Notification.sent_at).where(Notification.id.in_(mine or [-1]))
                             .order_by(Notification.id))
        quarantined = rows(select(QuarantinedRecord.id, QuarantinedRecord.kind, QuarantinedRecord.external_id,
                                  QuarantinedRecord.payload, QuarantinedRecord.first_seen_at)
                           .where(func.lower(QuarantinedRecord.payload).contains(address.lower(), autoescape=True)))
        erased = rows(select(erasures_t.c.record_kind, erasures_t.c.record_id, erasures_t.c.reason,
                             erasures_t.c.erased_at).where(or_(
                                 and_(erasures_t.c.record_kind == "return",
                                      erasures_t.c.record_id.in_(returns or [-1])),
                                 and_(erasures_t.c.record_kind == "order",
                                      erasures_t.c.record_id.in_(orders or [-1])))))
    return {"email": address, "exported_at": _plain(utcnow()), "returns": found_returns, "orders": found_orders,
            "notifications": notifications, "quarantined_records": quarantined, "erased": erased}


def _notifications_of(conn: Connection, address: str, returns: Sequence[int]) -> list[int]:
    """The notifications about the person's returns, and those addressed to them (a display name aside)."""
    from email.utils import parseaddr

    wanted = email_key(address)
    domain = (wanted or "").rpartition("@")[2]
    found = set(conn.execute(select(Notification.id).where(Notification.return_id.in_(returns))).scalars()) \
        if returns else set()
    for notification_id, recipient in conn.execute(select(Notification.id, Notification.recipient).where(
            func.lower(Notification.recipient).like(f"%{domain}%"))):
        if email_key(parseaddr(recipient)[1] or recipient) == wanted:
            found.add(notification_id)
    return sorted(int(i) for i in found)


def forget_person(db: Engine, address: str, state_dir: Path, now: datetime | None = None) -> Erased:
    """Erase the person's personal data now, wherever their e-mail was stored; logged without the address."""
    now = now or utcnow()
    returns, orders = _person(db, address)
    key = hash_key(state_dir)
    erased = _erase(db, returns, orders, key, "forget", now)
    wanted = email_key(address) or address
    with db.begin() as conn:
        addressed = _notifications_of(conn, address, [])
        if addressed:
            erased.notifications += conn.execute(update(Notification).where(Notification.id.in_(addressed))
                                                 .values(recipient=None, payload={})).rowcount
        erased.quarantined += conn.execute(
            update(QuarantinedRecord)
            .where(func.lower(QuarantinedRecord.payload).contains(address.lower(), autoescape=True))
            .values(payload=None)).rowcount
    log.info("personal_data_erased", reason="forget", person=keyed(key, f"email:{wanted}")[:12],
             returns=erased.returns, orders=erased.orders, notifications=erased.notifications,
             quarantined=erased.quarantined)
    return erased


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def retention_job(db: Engine, keep: timedelta, state_dir: Path, clock: Callable[[], datetime] = utcnow
                  ) -> Callable[[], None]:
    """The daemon's daily pass; a failure is logged and tried again the next day, never stops the daemon."""
    def run() -> None:
        try:
            apply_retention(db, keep, state_dir, clock())
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.exception("personal_data_retention_failed")

    return run


