"""Recording a return by hand: the paper form in the parcel, the e-mail, the phone call.

`returns add` names the channel (a `manual` one), the order (stored on any channel: the shop the customer bought
in) and the items; the order's own lines give each item's SKU, EAN, title and price, so what a person types is
the least that identifies it. A return may also stand alone (no order given: the buyer's order is not in any
channel retsync reads). The external id is the one given, or one made up once (`M-<date>-<5 letters>`) and
never changed. `returns edit` and `returns set-status` record what a person learns later (the parcel arrived);
only a person may move a status back, and every change leaves a line in the return's history with `cli` as
its source.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from retsync.intake.records import (
    IntakeError,
    IntakeWriter,
    StoredOrder,
    Written,
    entered_by_people,
    find_orders,
    match_line,
    order_lines,
    stored_return,
)
from retsync.kit.model import Customer, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.reasons import reason_from_words
from retsync.kit.settings import ChannelSettings
from retsync.store.models import Channel, Order
from retsync.store.models import Return as ReturnRow

_ID_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I: an id a person reads off a screen and types into a form."""


def new_external_id(now: datetime) -> str:
    return f"M-{now:%Y%m%d}-{''.join(secrets.choice(_ID_LETTERS) for _ in range(5))}"


def parse_line(text: str) -> tuple[str, int]:
    """`SKU_OR_EAN:QTY` (QTY defaults to 1), as `--line` takes it."""
    identifier, sep, quantity = text.rpartition(":")
    if not sep:
        identifier, quantity = text, "1"
    identifier = identifier.strip()
    if not identifier:
        raise IntakeError(f"--line {text!r}: give the item's SKU or EAN before the colon (e.g. --line ABC-1:2)")
    try:
        count = int(quantity)
    except ValueError:
        raise IntakeError(f"--line {text!r}: {quantity!r} is not a whole number of units") from None
    if count < 1:
        raise IntakeError(f"--line {text!r}: the quantity must be at least 1")
    return identifier, count


def looks_like_ean(identifier: str) -> bool:
    return identifier.isdigit() and len(identifier) in (8, 12, 13, 14)


@dataclass(frozen=True)
class Entry:
    """A return as a person gives it on the command line."""

    lines: Sequence[tuple[str, int]]
    order: str | None = None
    order_channel: str | None = None
    external_id: str | None = None
    reason: str | None = None
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    postcode: str | None = None
    tracking: str | None = None
    carrier: str | None = None
    created_at: datetime | None = None


def pick_order(engine: Engine, order: str, order_channel: str | None, orders_from: Sequence[str]) -> StoredOrder:
    """The one stored order this number names, or a refusal that says what to do."""
    channels = [order_channel] if order_channel else list(orders_from)
    with engine.connect() as conn:
        found = find_orders(conn, order, channels)
    where = f"on {', '.join(channels)}" if channels else "on any channel"
    if not found:
        raise IntakeError(f"no order {order!r} is stored {where}: check the number (the shop's order number, as "
                          f"`retsync returns list` shows it), pull the shop first (`retsync sync`), or leave --order "
                          f"out to record the return on its own")
    if len(found) > 1:
        raise IntakeError(f"order {order!r} is stored on {', '.join(o.channel for o in found)}: add --order-channel "
                          f"to say which")
    return found[0]


def build(engine: Engine, entry: Entry, settings: ChannelSettings, now: datetime) -> tuple[Return, dict[str, int]]:
    """The unified return of a person's entry, its lines taken from the order's where there is one."""
    if not entry.lines:
        raise IntakeError("name at least one item: --line SKU_OR_EAN:QTY")
    seen = [identifier.casefold() for identifier, _ in entry.lines]
    twice = sorted({i for i in seen if seen.count(i) > 1})
    if twice:
        raise IntakeError(f"--line names {', '.join(twice)} twice: give each item once with its quantity")
    external_id = entry.external_id or new_external_id(now)
    order = None
    lines: list[ReturnLine] = []
    currency = None
    customer = Customer(email=entry.email, name=entry.name, phone=entry.phone, postcode=entry.postcode)
    if entry.order:
        order = pick_order(engine, entry.order, entry.order_channel, getattr(settings, "orders_from", ()))
        with engine.connect() as conn:
            available = order_lines(conn, order.id)
            buyer = conn.execute(select(Order.customer_email, Order.customer_name, Order.customer_phone,
                                        Order.customer_postcode).where(Order.id == order.id)).one()
        customer = Customer(email=entry.email or buyer.customer_email, name=entry.name or buyer.customer_name,
                            phone=entry.phone or buyer.customer_phone,
                            postcode=entry.postcode or buyer.customer_postcode)
        for number, (identifier, quantity) in enumerate(entry.lines, start=1):
            match = match_line(available, identifier)
            if match is None:
                known = "; ".join(f"{line.sku or '-'} / {line.ean or '-'} ({line.title or 'no title'})"
                                  for line in available) or "none stored"
                raise IntakeError(f"order {order.channel}/{order.external_id} has no item with SKU or EAN "
                                  f"{identifier!r}; its items (SKU / EAN): {known}")
            line = match[0]
            currency = currency or line.currency
            lines.append(ReturnLine(external_id=str(number), order_line_external_id=line.external_id, sku=line.sku,
                                    ean=line.ean, title=line.title, quantity=quantity, unit_price=line.unit_price,
                                    currency=line.currency))
    else:
        for number, (identifier, quantity) in enumerate(entry.lines, start=1):
            ean = identifier if looks_like_ean(identifier) else None
            lines.append(ReturnLine(external_id=str(number), sku=None if ean else identifier, ean=ean,
                                    quantity=quantity))
    reason = reason_from_words(entry.reason) if entry.reason else ReturnReason.UNKNOWN
    status = ReturnStatus.REQUESTED
    record = Return(
        external_id=external_id, order_external_id=order.external_id if order else None, status=status,
        channel_status="entered by hand", reason=reason, channel_reason=entry.reason,
        created_at=entry.created_at or now, currency=currency, customer=customer,
        tracking_number=entry.tracking, carrier=(entry.carrier or getattr(settings, "tracking_carrier", None))
        if entry.tracking else None,
        lines=tuple(line.model_copy(update={"reason": reason, "channel_reason": entry.reason}) for line in lines),
    )
    return record, ({external_id: order.id} if order else {})


@dataclass(frozen=True)
class ManualReturn:
    id: int
    channel: str
    external_id: str
    connector: str


def find_manual(engine: Engine, ref: str) -> ManualReturn:
    """RETURN as `retsync decide` takes it (id or channel/external_id), refused unless it is a manual channel's:
    the other channels' returns are the channel's to change."""
    query = select(ReturnRow.id, Channel.name, ReturnRow.external_id, Channel.connector).join(
        Channel, Channel.id == ReturnRow.channel_id)
    if ref.isdigit() and int(ref) < 2**63:
        query = query.where(ReturnRow.id == int(ref))
    elif "/" in ref:
        channel, external_id = ref.split("/", 1)
        query = query.where(Channel.name == channel, ReturnRow.external_id == external_id)
    else:
        raise IntakeError(f"{ref!r} is not a return: give its id or channel/external_id (see `retsync returns list`)")
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise IntakeError(f"no return {ref!r} in the database (see `retsync returns list`)")
    if not entered_by_people(row.connector):
        raise IntakeError(f"return {row.name}/{row.external_id} comes from the {row.connector} channel {row.name}: "
                          f"change it there; only returns of manual channels are edited here")
    return ManualReturn(int(row.id), row.name, row.external_id, row.connector)


def add(engine: Engine, channel: str, settings: ChannelSettings, entry: Entry, now: datetime,
        note: str | None = None) -> tuple[str, Written]:
    """Record a new return; an id given that is already taken is refused rather than overwritten."""
    record, orders = build(engine, entry, settings, now)
    writer = IntakeWriter(engine, channel, settings, source="cli", orders_from=getattr(settings, "orders_from", ()))
    channel_id = writer.channel_id(now)
    with engine.connect() as conn:
        if stored_return(conn, channel_id, record.external_id) is not None:
            raise IntakeError(f"{channel}/{record.external_id} is already recorded: change it with `retsync returns "
                              f"edit {channel}/{record.external_id}`, or give another --id")
    written = writer.write([record], now, order_ids=orders)
    if note:
        _note(engine, writer, channel, record.external_id, now, note)
    return record.external_id, written


def _note(engine: Engine, writer: IntakeWriter, channel: str, external_id: str, now: datetime, note: str) -> None:
    with engine.begin() as conn:
        return_id = conn.execute(select(ReturnRow.id).join(Channel, Channel.id == ReturnRow.channel_id).where(
            Channel.name == channel, ReturnRow.external_id == external_id)).scalar_one()
        writer.note(conn, return_id, now, "note", note)


def edit(engine: Engine, ref: str, settings_for: dict[str, ChannelSettings], now: datetime, *,
         entry: Entry, note: str | None = None) -> tuple[ManualReturn, Written]:
    """Change what a person got wrong or learnt later: reason, customer, parcel, items (by the same ids)."""
    target = find_manual(engine, ref)
    settings = _settings(settings_for, target.channel)
    writer = IntakeWriter(engine, target.channel, settings, source="cli",
                          orders_from=getattr(settings, "orders_from", ()))
    with engine.connect() as conn:
        stored = stored_return(conn, writer.channel_id(now), target.external_id)
    assert stored is not None
    changes: dict[str, object] = {}
    if entry.reason is not None:
        changes |= {"channel_reason": entry.reason, "reason": reason_from_words(entry.reason)}
    customer = stored.customer.model_copy(update={k: v for k, v in (
        ("email", entry.email), ("name", entry.name), ("phone", entry.phone), ("postcode", entry.postcode))
        if v is not None})
    changes["customer"] = customer
    if entry.tracking is not None:
        changes |= {"tracking_number": entry.tracking,
                    "carrier": entry.carrier or stored.carrier or getattr(settings, "tracking_carrier", None)}
    elif entry.carrier is not None:
        changes["carrier"] = entry.carrier
    if entry.lines:
        by_id = {line.sku: line for line in stored.lines} | {line.ean: line for line in stored.lines if line.ean}
        updated = {line.external_id: line for line in stored.lines}
        for identifier, quantity in entry.lines:
            line = by_id.get(identifier) or next((x for x in stored.lines if x.external_id == identifier), None)
            if line is None:
                raise IntakeError(f"{target.channel}/{target.external_id} has no item {identifier!r} (its items: "
                                  f"{', '.join(x.sku or x.ean or x.external_id for x in stored.lines)}); a new item "
                                  f"is a new return")
            updated[line.external_id] = line.model_copy(update={"quantity": quantity})
        changes["lines"] = tuple(updated.values())
    if entry.created_at is not None:
        changes["created_at"] = entry.created_at
    written = writer.write([stored.model_copy(update=changes)], now, status_backwards=True)
    if note:
        _note(engine, writer, target.channel, target.external_id, now, note)
    return target, written


def set_status(engine: Engine, ref: str, settings_for: dict[str, ChannelSettings], status: ReturnStatus,
               now: datetime, *, at: datetime | None = None, note: str | None = None) -> tuple[ManualReturn, Written]:
    """A step a person reports: the parcel came (`received`, with when), it is on its way, it was called off."""
    target = find_manual(engine, ref)
    settings = _settings(settings_for, target.channel)
    writer = IntakeWriter(engine, target.channel, settings, source="cli")
    with engine.connect() as conn:
        stored = stored_return(conn, writer.channel_id(now), target.external_id)
    assert stored is not None
    if stored.status is status and at is None:  # said again: when it happened stays as first said
        return target, Written(unchanged=[target.external_id])
    moment = at or now
    changes: dict[str, object] = {"status": status, "channel_status": f"set by hand: {status.value}"}
    if status is ReturnStatus.RECEIVED:
        changes["received_at"] = moment
    elif status in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT):
        changes["received_at"] = None
    if status is ReturnStatus.REFUNDED:
        changes["refunded_at"] = moment
    written = writer.write([stored.model_copy(update=changes)], now, status_backwards=True)
    if note:
        _note(engine, writer, target.channel, target.external_id, now, note)
    return target, written


def _settings(settings_for: dict[str, ChannelSettings], channel: str) -> ChannelSettings:
    settings = settings_for.get(channel)
    if settings is None:
        raise IntakeError(f"channel {channel} is not in the config any more: add its [channels.{channel}] table "
                          f"(connector = \"manual\") to change its returns")
    return settings
