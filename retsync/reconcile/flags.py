"""Anomaly flags: what about a return a person should look at before money goes out, or because it is late.

Each rule is one set-based query that answers which returns (or return lines)
the rule holds for right now, with a detail for the merchant. `recompute`
compares that with the flags stored as open: new ones are inserted, ones that
no longer hold get `resolved_at`, and one that holds again later is a new row,
so `return_flags` is both today's list and the history of every time a rule
held. Running it twice changes nothing: it is safe after every pull.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text, update

from retsync.kit.settings import ChannelSettings
from retsync.reconcile import bulk
from retsync.store.lease import serialized
from retsync.store.models import ReturnFlag, UTCDateTime


class FlagCode(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    QUANTITY_EXCEEDS_ORDERED = "quantity_exceeds_ordered"
    DOUBLE_REFUND = "double_refund"
    REFUND_AMOUNT_MISMATCH = "refund_amount_mismatch"
    PAST_RETURN_WINDOW = "past_return_window"
    REFUND_OVERDUE = "refund_overdue"
    NOT_SHIPPED_BY_CUSTOMER = "not_shipped_by_customer"
    DECISION_PUSH_FAILED = "decision_push_failed"
    LINES_UNKNOWN = "lines_unknown"
    PARCEL_PROBLEM = "parcel_problem"


BLOCKING = {FlagCode.DOUBLE_REFUND, FlagCode.QUANTITY_EXCEEDS_ORDERED}
"""Flags on which `retsync decide` refuses an accept or keep without --force: a refund there may be paid twice."""

REFUND_DECISIONS = ("accept", "keep")
NO_REFUND_DECISIONS = ("reject", "repair", "exchange", "cancel")
IN_FORCE = ("pending", "sending", "pushed", "synced")
"""Decision states that stand: failed and unsupported decisions never reached the channel."""


@dataclass
class FlagChanges:
    raised: int = 0
    resolved: int = 0
    open: int = 0


def _days(dialect: str, start: str, end: str) -> str:
    """Days from `start` to `end` as a number; the two databases spell time arithmetic differently."""
    if dialect == "sqlite":
        return f"(julianday({end}) - julianday({start}))"
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"


def _money(minor: int, currency: str | None) -> str:
    return f"{Decimal(minor) / 100:.2f} {currency or ''}".strip()


def _in_force(alias: str, kinds: Iterable[str]) -> str:
    kind_list = ", ".join(f"'{k}'" for k in kinds)
    states = ", ".join(f"'{s}'" for s in IN_FORCE)
    return f"{alias}.kind IN ({kind_list}) AND {alias}.state IN ({states})"


class _Rules:
    """The rules over one channel's returns; each method yields (return id, line id, detail)."""

    def __init__(self, conn: Connection, channel_id: int, settings: ChannelSettings, now: datetime) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.channel_id = channel_id
        self.settings = settings
        self.now = now

    def _rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        query = text(sql)
        for name, value in params.items():
            if isinstance(value, datetime):
                query = query.bindparams(bindparam(name, type_=UTCDateTime()))
        return [tuple(row) for row in self.conn.execute(query, {"channel_id": self.channel_id, **params})]

    def order_not_found(self) -> Iterable[tuple[int, int | None, str]]:
        for return_id, order in self._rows("""
            SELECT r.id, r.order_external_id FROM returns r
            WHERE r.channel_id = :channel_id AND r.order_id IS NULL AND r.status <> 'cancelled'"""):
            yield int(return_id), None, (f"order {order} is not in the database and the channel did not return it"
                                         if order else "the return names no order")

    def quantity_exceeds_ordered(self) -> Iterable[tuple[int, int | None, str]]:
        for return_id, line_id, order, order_line, returned, bought in self._rows("""
            SELECT rl.return_id, rl.id, o.external_id, ol.external_id, t.returned, ol.quantity
            FROM return_lines rl
            JOIN returns r ON r.id = rl.return_id
            JOIN order_lines ol ON ol.id = rl.order_line_id
            JOIN orders o ON o.id = ol.order_id
            JOIN (SELECT x.order_line_id AS order_line_id, SUM(x.quantity) AS returned
                  FROM return_lines x JOIN returns xr ON xr.id = x.return_id
                  WHERE xr.status <> 'cancelled' AND x.order_line_id IS NOT NULL
                  GROUP BY x.order_line_id) t ON t.order_line_id = rl.order_line_id
            WHERE r.channel_id = :channel_id AND r.status <> 'cancelled' AND t.returned > ol.quantity"""):
            yield int(return_id), int(line_id), (
                f"returns of order {order} line {order_line} add up to {returned} units; {bought} were bought")

    def double_refund(self) -> Iterable[tuple[int, int | None, str]]:
        # More refunded than the order was paid, over all its returns (one currency).
        for return_id, order, refunded, paid, currency in self._rows("""
            SELECT r.id, o.external_id, t.refunded, o.total_amount, o.currency
            FROM returns r JOIN orders o ON o.id = r.order_id
            JOIN (SELECT order_id, SUM(refund_amount) AS refunded FROM returns
                  WHERE order_id IS NOT NULL AND refund_amount IS NOT NULL GROUP BY order_id) t ON t.order_id = o.id
            WHERE r.channel_id = :channel_id AND r.refund_amount IS NOT NULL AND o.total_amount IS NOT NULL
              AND t.refunded > o.total_amount
              AND NOT EXISTS (SELECT 1 FROM returns c WHERE c.order_id = o.id AND c.refund_amount IS NOT NULL
                              AND COALESCE(c.currency, o.currency) <> o.currency)"""):
            yield int(return_id), None, (
                f"refunds on order {order} add up to {_money(refunded, currency)}; "
                f"the order was paid {_money(paid, currency)}")
        # More refunded on one return than its items were paid, with the order's shipping and fees on top.
        # Per refunded return, with indexed sub-queries: one aggregate over every order line would make the
        # planner join it row by row with the returns.
        for return_id, order, refunded, total, currency, paid, unpriced, items, items_unpriced in self._rows("""
            SELECT r.id, o.external_id, r.refund_amount, o.total_amount, COALESCE(r.currency, o.currency),
                   (SELECT SUM(ol.unit_price * ol.quantity) FROM return_lines rl
                    JOIN order_lines ol ON ol.id = rl.order_line_id WHERE rl.return_id = r.id),
                   (SELECT COUNT(*) FROM return_lines rl LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
                    WHERE rl.return_id = r.id AND ol.unit_price IS NULL),
                   (SELECT SUM(unit_price * quantity) FROM order_lines WHERE order_id = o.id),
                   (SELECT COUNT(*) FROM order_lines WHERE order_id = o.id AND unit_price IS NULL)
            FROM returns r JOIN orders o ON o.id = r.order_id
            WHERE r.channel_id = :channel_id AND r.refund_amount IS NOT NULL AND o.total_amount IS NOT NULL"""):
            if paid is None or unpriced or items is None or items_unpriced:
                continue
            allowed = int(paid) + max(int(total) - int(items), 0)
            if int(refunded) > allowed:
                yield int(return_id), None, (
                    f"refunded {_money(refunded, currency)}; the returned items were paid "
                    f"{_money(allowed, currency)} with the order's shipping and fees")
        # More units refunded on an order line than were bought, over its refunded returns.
        for return_id, line_id, order, order_line, refunded_units, bought in self._rows("""
            SELECT rl.return_id, rl.id, o.external_id, ol.external_id, t.units, ol.quantity
            FROM return_lines rl JOIN returns r ON r.id = rl.return_id
            JOIN order_lines ol ON ol.id = rl.order_line_id JOIN orders o ON o.id = ol.order_id
            JOIN (SELECT x.order_line_id AS order_line_id, SUM(x.quantity) AS units, COUNT(DISTINCT x.return_id) AS n
                  FROM return_lines x JOIN returns xr ON xr.id = x.return_id
                  WHERE x.order_line_id IS NOT NULL AND (xr.refund_amount IS NOT NULL OR xr.refunded_at IS NOT NULL)
                  GROUP BY x.order_line_id) t ON t.order_line_id = rl.order_line_id
            WHERE r.channel_id = :channel_id AND (r.refund_amount IS NOT NULL OR r.refunded_at IS NOT NULL)
              AND t.n > 1 AND t.units > ol.quantity"""):
            yield int(return_id), int(line_id), (
                f"{refunded_units} units of order {order} line {order_line} were refunded on several returns; "
                f"{bought} were bought")
        # Two refunds recorded for one return line.
        for return_id, line_id, refunds in self._rows("""
            SELECT rl.return_id, rl.id, COUNT(*) FROM return_lines rl JOIN returns r ON r.id = rl.return_id
            JOIN decisions d ON d.return_line_id = rl.id
            WHERE r.channel_id = :channel_id AND d.kind IN ('accept', 'keep') AND d.state IN ('pushed', 'synced')
            GROUP BY rl.return_id, rl.id HAVING COUNT(*) > 1"""):
            yield int(return_id), int(line_id), f"{refunds} refunds were recorded for this line"

    def refund_amount_mismatch(self) -> Iterable[tuple[int, int | None, str]]:
        """Only where every line has a price and a quantity: an amount-only refund has nothing to compare with."""
        deduction = int((self.settings.return_shipping_deduction * 100).to_integral_value())
        for return_id, refunded, expected, currency in self._rows("""
            SELECT r.id, r.refund_amount, SUM(COALESCE(rl.unit_price, ol.unit_price) * rl.quantity),
                   MAX(r.currency)
            FROM returns r JOIN return_lines rl ON rl.return_id = r.id
            LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
            WHERE r.channel_id = :channel_id AND r.refund_amount IS NOT NULL
            GROUP BY r.id, r.refund_amount
            HAVING COUNT(*) = COUNT(COALESCE(rl.unit_price, ol.unit_price)) AND MIN(rl.quantity) > 0
               AND COUNT(DISTINCT COALESCE(rl.currency, ol.currency, r.currency)) <= 1"""):
            due = int(expected) - deduction
            if int(refunded) != due:
                after = f" after the {_money(deduction, currency)} return-shipping deduction" if deduction else ""
                yield int(return_id), None, (
                    f"refunded {_money(refunded, currency)}; price × quantity{after} is "
                    f"{_money(due, currency)}")

    def past_return_window(self) -> Iterable[tuple[int, int | None, str]]:
        window = self.settings.return_window_days
        base = "COALESCE(o.delivered_at, o.placed_at)"
        for return_id, order, days, delivered in self._rows(f"""
            SELECT r.id, o.external_id, {_days(self.dialect, base, 'r.created_at')}, o.delivered_at
            FROM returns r JOIN orders o ON o.id = r.order_id
            WHERE r.channel_id = :channel_id AND r.status <> 'cancelled' AND {base} IS NOT NULL
              AND {_days(self.dialect, base, 'r.created_at')} > {window}"""):
            since = "delivery" if delivered is not None else "the order"
            yield int(return_id), None, (
                f"registered {float(days):.0f} days after {since} of order {order}; "
                f"the return window is {window} days")

    def refund_overdue(self) -> Iterable[tuple[int, int | None, str]]:
        """Counted from when the channel says the parcel arrived, else from when retsync first saw it received:
        never earlier than it really arrived, so a refund is never called late too soon."""
        due_days = self.settings.refund_due_days
        received = ("COALESCE(r.received_at, (SELECT MIN(e.at) FROM return_events e WHERE e.return_id = r.id "
                    "AND e.kind = 'status' AND e.new_value = 'received'))")
        for return_id, when in self._rows(f"""
            SELECT r.id, {received} FROM returns r
            WHERE r.channel_id = :channel_id AND r.handled_by_channel = :no
              AND {received} < :deadline
              AND r.refunded_at IS NULL AND r.refund_amount IS NULL
              AND r.status NOT IN ('refunded', 'closed', 'cancelled')
              AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.return_id = r.id
                              AND {_in_force('d', NO_REFUND_DECISIONS)})""",
                                          no=False, deadline=self.now - timedelta(days=due_days)):
            yield int(return_id), None, f"received {str(when)[:10]} and not refunded within {due_days} days"

    def not_shipped_by_customer(self) -> Iterable[tuple[int, int | None, str]]:
        days = self.settings.ship_reminder_days
        for return_id, created in self._rows("""
            SELECT r.id, r.created_at FROM returns r
            WHERE r.channel_id = :channel_id AND r.handled_by_channel = :no AND r.status = 'requested'
              AND r.received_at IS NULL AND r.created_at < :deadline
              AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.return_id = r.id
                              AND d.state IN ('pending', 'sending', 'pushed', 'synced'))""",
                                         no=False, deadline=self.now - timedelta(days=days)):
            yield int(return_id), None, (
                f"registered {str(created)[:10]}; no parcel movement after {days} days")

    def lines_unknown(self) -> Iterable[tuple[int, int | None, str]]:
        """A return stored without lines: the channel did not say which items came back (PrestaShop 9 hides a
        merchandise return's lines), and nothing here guesses them; resolved when the lines arrive."""
        for (return_id,) in self._rows("""
            SELECT r.id FROM returns r
            WHERE r.channel_id = :channel_id AND r.status <> 'cancelled'
              AND NOT EXISTS (SELECT 1 FROM return_lines rl WHERE rl.return_id = r.id)"""):
            yield int(return_id), None, ("the channel does not say which items came back: check the return in "
                                         "the shop before deciding")

    def parcel_problem(self) -> Iterable[tuple[int, int | None, str]]:
        """The carrier says the return parcel was cancelled, lost or sent back (`parcels`, kept by the tracking
        job); resolved when it moves on or the return is settled."""
        for return_id, carrier, number, status in self._rows("""
            SELECT p.return_id, p.carrier, p.tracking_number, p.problem FROM parcels p
            JOIN returns r ON r.id = p.return_id
            WHERE r.channel_id = :channel_id AND p.problem IS NOT NULL
              AND r.status NOT IN ('received', 'refunded', 'closed', 'cancelled')"""):
            yield int(return_id), None, f"{carrier} parcel {number}: {status}"

    def decision_push_failed(self) -> Iterable[tuple[int, int | None, str]]:
        for return_id, line_id, kind, error in self._rows("""
            SELECT d.return_id, d.return_line_id, d.kind, d.last_error FROM decisions d
            JOIN returns r ON r.id = d.return_id
            WHERE r.channel_id = :channel_id AND d.state = 'failed'
              AND d.id = (SELECT MAX(x.id) FROM decisions x WHERE x.return_line_id = d.return_line_id)"""):
            yield int(return_id), int(line_id), (
                f"{kind} could not be pushed: {error or 'refused by the channel'}")


def recompute(db: Engine, channel_id: int, settings: ChannelSettings, now: datetime,
              codes: Collection[FlagCode] = tuple(FlagCode)) -> FlagChanges:
    """Bring one channel's open flags of these codes in line with what holds now.

    One code at a time, in one transaction: a long history holds one rule's flags in memory, not all of them.
    """
    flags_t = ReturnFlag.__table__
    changes = FlagChanges()
    with db.begin() as conn:
        serialized(conn, f"flags:{channel_id}")  # a pull and another instance's push pass both recompute
        bulk.no_jit(conn)
        rules = _Rules(conn, channel_id, settings, now)
        stamp = bulk.stamp(conn, now)
        for code in codes:
            holding: dict[tuple[int, int | None], str] = {}
            for return_id, line_id, detail in getattr(rules, code.value)():
                holding.setdefault((return_id, line_id), detail)
            stored = {(int(return_id), None if line_id is None else int(line_id)): (int(flag_id), detail)
                      for flag_id, return_id, line_id, detail in bulk.rows(conn, """
                          SELECT f.id, f.return_id, f.return_line_id, f.detail FROM return_flags f
                          JOIN returns r ON r.id = f.return_id
                          WHERE r.channel_id = ? AND f.resolved_at IS NULL AND f.code = ?""", [channel_id, code.value])}
            gone = [flag_id for key, (flag_id, _) in stored.items() if key not in holding]
            for start in range(0, len(gone), 5000):
                conn.execute(update(flags_t).where(flags_t.c.id.in_(gone[start:start + 5000]))
                             .values(resolved_at=now, updated_at=now))
            changed = [{"_id": stored[key][0], "detail": detail, "updated_at": now}
                       for key, detail in holding.items() if key in stored and stored[key][1] != detail]
            if changed:
                conn.execute(update(flags_t).where(flags_t.c.id == bindparam("_id"))
                             .values(detail=bindparam("detail"), updated_at=bindparam("updated_at")), changed)
            new = [(*key, code.value, detail, stamp, stamp) for key, detail in holding.items() if key not in stored]
            bulk.insert(conn, "return_flags", ("return_id", "return_line_id", "code", "detail", "flagged_at",
                                               "updated_at"), new)  # a first pass raises most of these at once
            changes.raised += len(new)
            changes.resolved += len(gone)
            changes.open += len(holding)
    return changes


def open_flags(conn: Connection, return_id: int) -> list[dict[str, object]]:
    """The open flags of one return, for `retsync returns show` and `retsync decide`."""
    rows = conn.execute(
        select(ReturnFlag.id, ReturnFlag.code, ReturnFlag.return_line_id, ReturnFlag.detail, ReturnFlag.flagged_at)
        .where(ReturnFlag.return_id == return_id, ReturnFlag.resolved_at.is_(None)).order_by(ReturnFlag.id)
    )
    return [dict(row._mapping) for row in rows]


def blocking_flags(conn: Connection, return_id: int, kind: str) -> list[Mapping[str, object]]:
    """Open flags that make an accept or keep on this return a likely second refund."""
    if kind not in REFUND_DECISIONS:
        return []
    return [flag for flag in open_flags(conn, return_id) if flag["code"] in {c.value for c in BLOCKING}]
