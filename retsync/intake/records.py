"""Writing returns that arrive without a channel API into the store, whoever brings them.

A person (`retsync returns add/edit/set-status`), an import (a file or `import_dir`), the webhook and the parcel
tracker all end here, so a manual return is stored like a pulled one (`PageWriter`: one row per natural key,
every status change in the history with its source) and reconciled like one (customer group, flags). Three
things differ from a pull, and are settled here once:

- A return arriving again (an overlapping export, a webhook retried) is merged with what is stored: what it
  does not say is kept, and its status never moves the stored one backwards (a parcel already received is not
  "requested" again because an older export says so). Only a person (`set-status`) may move a status back.
- Its order may be in any channel (a paper form in the parcel of a shop order): it is linked across channels
  here (`orders_from` narrows where to look), by the order's number, and its lines by the order's line id, EAN
  or SKU, so `v_returns` shows the order and its customer.
- Nothing is written when `dry_run` is asked: the same merge answers what would change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from retsync import registry
from retsync.kit.model import Customer, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.settings import ChannelSettings
from retsync.reconcile.customers import group_customers
from retsync.reconcile.flags import recompute
from retsync.store.channels import ensure_channel
from retsync.store.models import Channel, ReturnEvent
from retsync.store.models import Order as OrderRow
from retsync.store.models import OrderLine as OrderLineRow
from retsync.store.models import Return as ReturnRow
from retsync.store.models import ReturnLine as ReturnLineRow
from retsync.store.pages import PageWriter, refusal

STATUS_RANK = {ReturnStatus.REQUESTED: 0, ReturnStatus.IN_TRANSIT: 1, ReturnStatus.RECEIVED: 2,
               ReturnStatus.DECIDED: 3, ReturnStatus.REFUNDED: 4, ReturnStatus.CLOSED: 5,
               ReturnStatus.CANCELLED: 5}
"""How far along a status is: an import, a webhook or a parcel never moves a return to a lower rank."""


class IntakeError(ValueError):
    """A return that cannot be recorded as given; the message says which and what to do."""


def forward(stored: ReturnStatus, new: ReturnStatus) -> ReturnStatus:
    """The status a return takes when `new` arrives from a source that may be behind: never backwards."""
    return new if STATUS_RANK[new] >= STATUS_RANK[stored] and new is not stored else stored


@dataclass(frozen=True)
class StoredOrder:
    id: int
    channel: str
    external_id: str


def find_orders(conn: Connection, external_id: str, channels: Sequence[str] = ()) -> list[StoredOrder]:
    """The stored orders of any channel (or of `channels`) with this number."""
    query = (select(OrderRow.id, Channel.name, OrderRow.external_id).join(Channel, Channel.id == OrderRow.channel_id)
             .where(OrderRow.external_id == external_id).order_by(OrderRow.id))
    if channels:
        query = query.where(Channel.name.in_(list(channels)))
    return [StoredOrder(int(row.id), row.name, row.external_id) for row in conn.execute(query)]


def order_lines(conn: Connection, order_id: int) -> list[Any]:
    return list(conn.execute(
        select(OrderLineRow.id, OrderLineRow.external_id, OrderLineRow.sku, OrderLineRow.ean, OrderLineRow.title,
               OrderLineRow.quantity, OrderLineRow.unit_price, OrderLineRow.currency)
        .where(OrderLineRow.order_id == order_id).order_by(OrderLineRow.id)))


def match_line(lines: Sequence[Any], identifier: str) -> tuple[Any, str] | None:
    """The order line a person or a file names by the order's line id, EAN or SKU (in that order of trust)."""
    wanted = identifier.strip()
    for column, method in (("external_id", "channel_key"), ("ean", "ean"), ("sku", "sku")):
        for line in lines:
            value = getattr(line, column)
            if value is not None and value.strip().casefold() == wanted.casefold():
                return line, method
    return None


def stored_return(conn: Connection, channel_id: int, external_id: str) -> Return | None:
    """A stored return as the unified record it was written from, so an edit or a merge starts from it."""
    row = conn.execute(select(ReturnRow.__table__).where(ReturnRow.channel_id == channel_id,
                                                         ReturnRow.external_id == external_id)).first()
    if row is None:
        return None
    lines = conn.execute(select(ReturnLineRow.__table__).where(ReturnLineRow.return_id == row.id)
                         .order_by(ReturnLineRow.id)).all()
    return Return(
        external_id=row.external_id, order_external_id=row.order_external_id, status=ReturnStatus(row.status),
        channel_status=row.channel_status, reason=ReturnReason(row.reason or "unknown"),
        channel_reason=row.channel_reason, created_at=row.created_at, received_at=row.received_at,
        decided_at=row.decided_at, refunded_at=row.refunded_at, refund_amount=row.refund_amount,
        currency=row.currency,
        customer=Customer(email=row.customer_email, name=row.customer_name, phone=row.customer_phone,
                          postcode=row.customer_postcode),
        tracking_number=row.tracking_number, carrier=row.carrier, extra=dict(row.extra or {}),
        lines=tuple(ReturnLine(
            external_id=line.external_id, order_external_id=line.order_external_id,
            order_line_external_id=line.order_line_external_id, sku=line.sku, ean=line.ean, title=line.title,
            quantity=line.quantity, reason=ReturnReason(line.reason or "unknown"), channel_reason=line.channel_reason,
            customer_comment=line.customer_comment, channel_status=line.channel_status, unit_price=line.unit_price,
            currency=line.currency) for line in lines),
    )


def _kept(new: Any, old: Any) -> Any:
    return old if new is None else new


def merge(stored: Return, arriving: Return, *, status_backwards: bool = False) -> Return:
    """`arriving` over `stored`: what it leaves out is kept, lines are added or updated by id (never dropped),
    and its status only moves forward and its registration time stays, unless a person says otherwise
    (`status_backwards`: an edit or a step reported by hand, taken as given)."""
    lines = {line.external_id: line for line in stored.lines}
    for line in arriving.lines:
        before = lines.get(line.external_id)
        if before is None:
            lines[line.external_id] = line
            continue
        lines[line.external_id] = before.model_copy(update={
            name: _kept(getattr(line, name), getattr(before, name))
            for name in ("order_external_id", "order_line_external_id", "sku", "ean", "title", "channel_reason",
                         "customer_comment", "channel_status", "unit_price", "currency")
        } | {"quantity": line.quantity,
             "reason": line.reason if line.reason is not ReturnReason.UNKNOWN else before.reason})
    status = arriving.status if status_backwards else forward(stored.status, arriving.status)
    customer = Customer(**{name: _kept(getattr(arriving.customer, name), getattr(stored.customer, name))
                           for name in ("email", "name", "phone", "postcode")})
    return stored.model_copy(update={
        "order_external_id": _kept(arriving.order_external_id, stored.order_external_id),
        "status": status,
        "channel_status": arriving.channel_status if status is arriving.status else stored.channel_status,
        "reason": arriving.reason if arriving.reason is not ReturnReason.UNKNOWN else stored.reason,
        "channel_reason": _kept(arriving.channel_reason, stored.channel_reason),
        "received_at": _kept(stored.received_at, arriving.received_at)
        if not status_backwards else arriving.received_at,
        "created_at": arriving.created_at if status_backwards else stored.created_at,
        "decided_at": _kept(arriving.decided_at, stored.decided_at),
        "refunded_at": _kept(arriving.refunded_at, stored.refunded_at),
        "refund_amount": _kept(arriving.refund_amount, stored.refund_amount),
        "currency": _kept(arriving.currency, stored.currency),
        "customer": customer,
        "tracking_number": _kept(arriving.tracking_number, stored.tracking_number),
        "carrier": _kept(arriving.carrier, stored.carrier),
        "extra": {**stored.extra, **arriving.extra},
        "lines": tuple(lines.values()),
    })


@dataclass
class Written:
    """What a write did (or, dry, would do), by external id."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    linked: dict[str, str] = field(default_factory=dict)
    """External id -> `channel/order` it was linked to."""
    unlinked: dict[str, str] = field(default_factory=dict)
    """External id -> why its order could not be linked (not stored yet, or stored on several channels)."""


def entered_by_people(connector: str) -> bool:
    """Whether returns may be written into a channel of this connector by hand, from a file or by the webhook
    (its capabilities say so: the bundled `manual` connector), rather than only pulled from its API."""
    cls = registry.get(connector)
    return cls is not None and cls.capabilities.entered_by_people


class IntakeWriter:
    """Stores returns of one manual channel (or, for the parcel tracker, of any channel) and reconciles them."""

    def __init__(self, db: Engine, channel: str, settings: ChannelSettings, *, source: str,
                 orders_from: Sequence[str] = ()) -> None:
        self.db = db
        self.channel = channel
        self.settings = settings
        self.source = source
        self.orders_from = tuple(orders_from)

    def channel_id(self, now: datetime) -> int:
        return ensure_channel(self.db, self.channel, self.settings.connector, now)

    def write(self, returns: Sequence[Return], now: datetime, *, dry_run: bool = False,
              status_backwards: bool = False, conn_hook: Callable[[Connection], None] | None = None,
              order_ids: Mapping[str, int] | None = None) -> Written:
        """Merge each return with the stored one, store what changed in one transaction, link and reconcile.

        `conn_hook(conn)` runs inside the transaction before anything is stored (the webhook records its
        delivery id there, so a delivery and its return are written together or not at all). `order_ids` names
        the order a return belongs to where the caller found it already (a person chose among several).
        """
        for record in returns:
            problem = refusal(record)
            if problem:
                raise IntakeError(f"return {record.external_id[:60]}: {problem}")
        channel_id = self.existing_channel_id() if dry_run else self.channel_id(now)
        written = Written()
        merged: list[Return] = []
        with self.db.connect() as conn:
            trans = conn.begin()
            try:
                if conn_hook is not None:
                    conn_hook(conn)
                for record in returns:
                    before = stored_return(conn, channel_id, record.external_id) if channel_id is not None else None
                    after = record if before is None else merge(before, record, status_backwards=status_backwards)
                    if before is None:
                        written.new.append(record.external_id)
                    elif after == before:
                        written.unchanged.append(record.external_id)
                        continue
                    else:
                        written.updated.append(record.external_id)
                    merged.append(after)
                if dry_run or channel_id is None:
                    trans.rollback()
                    return written
                PageWriter(channel_id, source=self.source).store(conn, (), merged, now)
                self._link(conn, channel_id, [r.external_id for r in merged], written, order_ids or {})
                trans.commit()
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise
        if merged:
            self.reconcile(channel_id, now)
        return written

    def link_pending(self, now: datetime) -> Written:
        """Link the channel's returns whose order was not stored when they arrived (an export imported before
        the shop's next pull): the daemon runs it at the channel's poll interval."""
        written = Written()
        channel_id = self.existing_channel_id()
        if channel_id is None:
            return written
        with self.db.begin() as conn:
            waiting = list(conn.execute(select(ReturnRow.external_id).where(
                ReturnRow.channel_id == channel_id, ReturnRow.order_id.is_(None),
                ReturnRow.order_external_id.is_not(None))).scalars())
            if waiting:
                self._link(conn, channel_id, waiting, written, {})
        if written.linked:
            self.reconcile(channel_id, now)
        return written

    def existing_channel_id(self) -> int | None:
        with self.db.connect() as conn:
            return conn.execute(select(Channel.id).where(Channel.name == self.channel)).scalar()

    def reconcile(self, channel_id: int, now: datetime) -> None:
        """The customer group and the flags of what was written, as after a pull."""
        group_customers(self.db, now, channel_id)
        recompute(self.db, channel_id, self.settings, now)

    def _link(self, conn: Connection, channel_id: int, external_ids: Iterable[str], written: Written,
              order_ids: Mapping[str, int]) -> None:
        """Link each return still without its order to the one stored order of that number, in any channel (or
        in `orders_from`), and its lines to that order's lines; a return naming no customer takes the order's."""
        rows = conn.execute(select(ReturnRow.id, ReturnRow.external_id, ReturnRow.order_external_id, ReturnRow.order_id)
                            .where(ReturnRow.channel_id == channel_id, ReturnRow.external_id.in_(list(external_ids)),
                                   ReturnRow.order_external_id.is_not(None))).all()
        for row in rows:
            order_id = row.order_id
            if order_id is None:
                found = [order for order in find_orders(conn, row.order_external_id, self.orders_from)
                         if row.external_id not in order_ids or order.id == order_ids[row.external_id]]
                if len(found) != 1:
                    written.unlinked[row.external_id] = (
                        f"order {row.order_external_id} is not stored yet" if not found else
                        f"order {row.order_external_id} is stored on {', '.join(o.channel for o in found)}: set "
                        f"orders_from in [channels.{self.channel}] to say which")
                    continue
                order_id = found[0].id
                conn.execute(update(ReturnRow).where(ReturnRow.id == row.id).values(order_id=order_id))
                written.linked[row.external_id] = f"{found[0].channel}/{found[0].external_id}"
                self._customer_from_order(conn, row.id, order_id)
            lines = order_lines(conn, order_id)
            for line in conn.execute(select(ReturnLineRow.__table__).where(
                    ReturnLineRow.return_id == row.id, ReturnLineRow.order_line_id.is_(None))).all():
                match = None
                for identifier in (line.order_line_external_id, line.ean, line.sku):
                    if identifier:
                        match = match_line(lines, identifier)
                        if match:
                            break
                if match is not None:
                    conn.execute(update(ReturnLineRow).where(ReturnLineRow.id == line.id)
                                 .values(order_line_id=match[0].id, link_method=match[1]))

    @staticmethod
    def _customer_from_order(conn: Connection, return_id: int, order_id: int) -> None:
        """The customer e-mails (and the customer group) need the buyer on the return itself: a paper form names
        the order, the order names the buyer."""
        order = conn.execute(select(OrderRow.customer_email, OrderRow.customer_name, OrderRow.customer_phone,
                                    OrderRow.customer_postcode).where(OrderRow.id == order_id)).one()
        ret = conn.execute(select(ReturnRow.customer_email, ReturnRow.customer_name, ReturnRow.customer_phone,
                                  ReturnRow.customer_postcode).where(ReturnRow.id == return_id)).one()
        fill = {f"customer_{name}": getattr(order, f"customer_{name}") for name in ("email", "name", "phone", "postcode")
                if getattr(ret, f"customer_{name}") is None and getattr(order, f"customer_{name}") is not None}
        if fill:
            conn.execute(update(ReturnRow).where(ReturnRow.id == return_id).values(**fill))

    def note(self, conn: Connection, return_id: int, now: datetime, kind: str, detail: str | None,
             old: str | None = None, new: str | None = None) -> None:
        """One line of the return's history that is not a stored field (a person's note, a parcel milestone)."""
        conn.execute(ReturnEvent.__table__.insert().values(
            return_id=return_id, return_line_id=None, at=now, kind=kind, old_value=old, new_value=new,
            source=self.source, detail=detail))


def return_id_of(conn: Connection, channel: str, external_id: str) -> int | None:
    return conn.execute(select(ReturnRow.id).join(Channel, Channel.id == ReturnRow.channel_id)
                        .where(Channel.name == channel, ReturnRow.external_id == external_id)).scalar()
