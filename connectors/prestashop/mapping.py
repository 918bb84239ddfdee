"""PrestaShop webservice JSON <-> the unified model, as pure functions.

Two shapes of "a return" exist, depending on the shop's version:

- PrestaShop 9 lists merchandise returns (`order_returns`: `id, id_order, id_customer, question, state,
  date_add, date_upd`). Their lines (`order_return_detail`) are not exposed, so the order's details tell what
  came back (`product_quantity_return` once set, else `product_quantity_refunded`, else the credit slips'
  lines). Where none of them says, or the order has several merchandise returns (the quantities are the
  order's, not one return's), the return is stored without lines (`extra["lines_unknown"]`, flagged
  `lines_unknown`) rather than as the whole order: a guess would refund items that never came back.
- PrestaShop 1.7/8 has no returns resource in core. There a return is an *order* whose details show returned
  or refunded quantities, or that has credit slips (`order_slip`); it is stored under `order-<id>`.

Credit slips are the refunds in both. State ids mean what the merchant's state table says (stock: 1 waiting for
confirmation … 5 return completed); an id the table does not know is stored verbatim and left open.
Dates come without an offset in the shop's own time zone; `0000-00-00 00:00:00` means "never".
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, decimal, items, minor_units, obj, text, when
from retsync.kit.reasons import REASON_WORDS as KIT_REASON_WORDS
from retsync.kit.reasons import reason_from_words

STOCK_RETURN_STATES: dict[str, str] = {
    "1": "requested", "2": "in_transit", "3": "received", "4": "rejected", "5": "completed",
}
"""The installed merchandise-return states (install-dev/data/xml/order_return_state.xml, in id order) and
what each means to retsync."""
STOCK_STATE_NAMES = {"1": "Waiting for confirmation", "2": "Waiting for package", "3": "Package received",
                     "4": "Return denied", "5": "Return completed"}
STATE_MEANINGS = ("requested", "in_transit", "received", "rejected", "completed", "cancelled", "repair",
                  "exchange", "refunded")
"""The words a merchant may use in `return_states` for a state id."""

SLIP_RETURN_PREFIX = "order-"
"""PrestaShop 1.7/8: a return is an order; its id is kept apart from PS 9 merchandise-return ids."""
HOLD_MARK = "[retsync] "
"""Private customer messages retsync writes (its record of a pushed decision) start with this."""
_HOLD = re.compile(r"\(retsync hold ([^()\s]+)\)")
"""The back-office flow (PrestaShop 9): a marketplace return is held as a merchandise return of the order named
by `hold_order_id`; its `question`, and the private message opening its thread, end in `(retsync hold <key>)`."""

NO_DATE = "0000-00-00 00:00:00"
LINES_UNKNOWN = ("the shop does not say which items came back: its webservice hides a merchandise return's lines; "
                 "they appear once the returned quantities are set on the order (Return products) or a credit "
                 "slip is made")
LINES_SHARED = ("order {order} has several merchandise returns and the shop does not say which items belong to "
                "which: its returned quantities and credit slips are the order's, not one return's")


# --- small readers ------------------------------------------------------------------------


# decimal, count, minor_units (PrestaShop writes money with six decimals, "24.790000"), when and items come from
# retsync.kit.payload: they bound what a record may claim (a quantity of 1e30, 100,000 lines) for every connector.


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def parse_date(value: Any, zone: tzinfo = timezone.utc) -> datetime | None:
    """A shop-time `YYYY-MM-DD HH:MM:SS` as UTC; the zero date, a date before any shop and anything unreadable
    (year 9999 in a zone behind UTC overflows) are None."""
    raw = text(value)
    if raw is None or raw.startswith("0000-00-00"):
        return None
    return when(raw, zone)


def date_text(moment: datetime, zone: tzinfo = timezone.utc) -> str:
    """The form the webservice's date filters take, in the shop's time zone."""
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


def record_id(record: Mapping[str, Any], what: str) -> str:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise BadPayload(f"{what}: an entry without id")
    return str(value).strip()


def plain_text(value: Any) -> str | None:
    """`question` is HTML the customer's browser wrote; the words without the tags."""
    raw = text(value)
    if raw is None:
        return None
    words = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))
    return text(re.sub(r" ([,.;:!?])", r"\1", words))


def rows(record: Mapping[str, Any], association: str) -> list[Mapping[str, Any]]:
    """An association's rows (an order's lines, a slip's lines); more than a parcel holds refuse the record."""
    return items(obj(record.get("associations")).get(association))


def order_details(lookups: Lookups, order_id: str) -> list[Mapping[str, Any]]:
    """The order's `order_details` the page fetched: its lines, bounded like any record's lines."""
    return items(list((lookups.details or {}).get(order_id, ())))


# --- reasons -------------------------------------------------------------------------------

SHOP_WORDS: Mapping[ReturnReason, tuple[str, ...]] = {
    ReturnReason.WRONG_SIZE: ("taille", "talla"), ReturnReason.DEFECTIVE: ("défectueux", "kaputt"),
    ReturnReason.DAMAGED: ("abîmé",),
}
"""French, Spanish and German words PrestaShop's customers write that the kit's table does not have yet."""
REASON_WORDS: Sequence[tuple[tuple[str, ...], ReturnReason]] = tuple(
    (keys + SHOP_WORDS.get(reason, ()), reason) for keys, reason in KIT_REASON_WORDS)


def reason_for(words: str | None) -> ReturnReason:
    """The customer types the reason freely (`question`): a few common words give the coarse reason."""
    return reason_from_words(words, table=REASON_WORDS)


# --- lookups a page brings along -------------------------------------------------------------


@dataclass(frozen=True)
class Lookups:
    """What the mapping needs beside the record itself, fetched once per page."""

    zone: tzinfo = timezone.utc
    currencies: Mapping[str, str] | None = None
    customers: Mapping[str, Mapping[str, Any]] | None = None
    orders: Mapping[str, Mapping[str, Any]] | None = None
    details: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
    """order id -> its `order_details`."""
    slips: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
    """order id -> its credit slips."""
    recorded: Mapping[str, Mapping[str, DecisionKind]] | None = None
    """order id -> order detail id -> the decision retsync recorded on the order's thread."""
    hold_order: str | None = None
    """`hold_order_id`: the order held marketplace returns are filed under."""
    returns_on_order: Mapping[str, int] | None = None
    """order id -> how many merchandise returns it has (PrestaShop 9): with more than one, the order's returned
    quantities cannot be told apart between them."""

    def currency(self, order: Mapping[str, Any]) -> str | None:
        return (self.currencies or {}).get(str(order.get("id_currency")))

    def customer(self, customer_id: Any) -> Customer:
        found = (self.customers or {}).get(str(customer_id), {})
        name = " ".join(part for part in (text(found.get("firstname")), text(found.get("lastname"))) if part)
        return Customer(email=text(found.get("email")), name=name or None)


# --- retsync's own record of a decision it pushed (a private customer message) -------------------

_RECORD = re.compile(r"^\[retsync\] decision (\w+) × (\d+) on (?:line (\S+)|lines ((?:\S+ × \d+, )*\S+ × \d+)) "
                     r"\(return (\S+), key (\S+)\)$")
"""One record per act: `on line 31` for one line (as every record before decision acts reads), `on lines
31 × 2, 32 × 1` for several."""


def decision_record(kind: DecisionKind, lines: Sequence[tuple[str, int]], return_id: str, key: str) -> str:
    """retsync's private record of one act on the order's thread: its kind, the order details and quantities it
    covered, and its key, so a retry after a lost answer finds it and the next pull reads each line back."""
    total = sum(quantity for _, quantity in lines)
    where = f"line {lines[0][0]}" if len(lines) == 1 else "lines " + ", ".join(f"{line} × {quantity}"
                                                                               for line, quantity in lines)
    return f"{HOLD_MARK}decision {kind.value} × {total} on {where} (return {return_id}, key {key})"


def _records(messages: Iterable[Mapping[str, Any]]) -> Iterator[re.Match[str]]:
    for message in sorted(messages, key=lambda m: count(m.get("id"))):
        found = _RECORD.match(str(message.get("message") or "").strip())
        if found:
            yield found


def _recorded_lines(record: re.Match[str]) -> list[str]:
    if record.group(3):
        return [record.group(3)]
    return [part.rpartition(" × ")[0] for part in record.group(4).split(", ")]


def recorded_keys(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    return {found.group(6) for found in _records(messages)}


def recorded_decisions(messages: Iterable[Mapping[str, Any]]) -> dict[str, DecisionKind]:
    """The newest decision retsync recorded per order detail, so a pushed decision is read back as itself."""
    found: dict[str, DecisionKind] = {}
    for record in _records(messages):
        try:
            kind = DecisionKind(record.group(1))
        except ValueError:
            continue
        for line in _recorded_lines(record):
            found[line] = kind
    return found


# --- orders --------------------------------------------------------------------------------


def hold_mark(key: str) -> str:
    return f"(retsync hold {key})"


def held_key(record: Mapping[str, Any]) -> str | None:
    """The hold key in a merchandise return's `question` or a customer message's text; None when there is none."""
    found = _HOLD.search(str(record.get("question") or record.get("message") or ""))
    return found.group(1) if found else None


def is_hold_order(order: Mapping[str, Any], hold_order_id: str | None) -> bool:
    """The order the held returns are filed under: not a sale of this shop."""
    return hold_order_id is not None and text(order.get("id")) == hold_order_id


def is_held_return(record: Mapping[str, Any], hold_order_id: str | None) -> bool:
    """A merchandise return standing for another channel's return: not a return of this shop."""
    return held_key(record) is not None or (hold_order_id is not None and text(record.get("id_order")) == hold_order_id)


def merchant_note(messages: Iterable[Mapping[str, Any]]) -> str | None:
    """The newest message a member of staff wrote on a held return's thread (retsync's own are left out)."""
    for message in sorted(messages, key=lambda m: count(m.get("id")), reverse=True):
        words = text(message.get("message"))
        if words and count(message.get("id_employee")) and held_key(message) is None \
                and not words.startswith(HOLD_MARK):
            return words
    return None


def unit_price(row: Mapping[str, Any]) -> int | None:
    return minor_units(row.get("unit_price_tax_incl") if row.get("unit_price_tax_incl") not in (None, "")
                       else row.get("product_price"))


def map_order(order: Mapping[str, Any], lookups: Lookups) -> Order:
    order_id = record_id(order, "order")
    currency = lookups.currency(order)
    lines = []
    for row in rows(order, "order_rows"):
        row_id = text(row.get("id"))
        if row_id is None:
            continue
        lines.append(OrderLine(external_id=row_id, sku=text(row.get("product_reference")),
                               ean=text(row.get("product_ean13")), title=text(row.get("product_name")),
                               quantity=count(row.get("product_quantity")), unit_price=unit_price(row),
                               currency=currency))
    return Order(
        external_id=order_id,
        placed_at=parse_date(order.get("date_add"), lookups.zone),
        delivered_at=parse_date(order.get("delivery_date"), lookups.zone),
        channel_status=text(order.get("current_state")),
        currency=currency,
        total_amount=minor_units(order.get("total_paid_tax_incl") or order.get("total_paid")),
        customer=lookups.customer(order.get("id_customer")),
        lines=tuple(lines),
    )


# --- credit slips --------------------------------------------------------------------------


@dataclass(frozen=True)
class SlipFacts:
    slip_id: str
    created_at: datetime | None
    amount: int
    quantities: Mapping[str, int]
    """id_order_detail -> quantity refunded on this slip."""


def slip_facts(slip: Mapping[str, Any], zone: tzinfo) -> SlipFacts | None:
    slip_id = text(slip.get("id"))
    if slip_id is None:
        return None
    quantities: dict[str, int] = {}
    amount = Decimal(0)
    for detail in rows(slip, "order_slip_details"):
        key = text(detail.get("id_order_detail"))
        if key is not None:
            quantities[key] = quantities.get(key, 0) + count(detail.get("product_quantity"))
        amount += decimal(detail.get("amount_tax_incl")) or Decimal(0)
    total = decimal(slip.get("amount"))
    if total is None or total == 0:
        total = amount + (decimal(slip.get("shipping_cost_amount")) or Decimal(0))
    return SlipFacts(slip_id=slip_id, created_at=parse_date(slip.get("date_add"), zone),
                     amount=abs(minor_units(total) or 0), quantities=quantities)


# --- returns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateTable:
    """The merchant's merchandise-return states: id -> meaning (one of STATE_MEANINGS)."""

    meanings: Mapping[str, str]

    def meaning(self, state: str | None) -> str | None:
        return self.meanings.get(state or "")


_STATUS = {"requested": ReturnStatus.REQUESTED, "in_transit": ReturnStatus.IN_TRANSIT,
           "received": ReturnStatus.RECEIVED, "rejected": ReturnStatus.DECIDED, "repair": ReturnStatus.DECIDED,
           "exchange": ReturnStatus.DECIDED, "completed": ReturnStatus.CLOSED, "cancelled": ReturnStatus.CANCELLED,
           "refunded": ReturnStatus.REFUNDED}
_DECISION = {"rejected": DecisionKind.REJECT, "repair": DecisionKind.REPAIR, "exchange": DecisionKind.EXCHANGE,
             "cancelled": DecisionKind.CANCEL}


def _returned(details: Sequence[Mapping[str, Any]], slips: Sequence[SlipFacts]) -> dict[str, int]:
    """Which order details came back, and how many: returned quantities, else refunded, else the slips."""
    found = {str(d["id"]): count(d.get("product_quantity_return")) for d in details
             if text(d.get("id")) and count(d.get("product_quantity_return"))}
    if found:
        return found
    found = {str(d["id"]): count(d.get("product_quantity_refunded")) for d in details
             if text(d.get("id")) and count(d.get("product_quantity_refunded"))}
    if found:
        return found
    for slip in slips:
        for key, quantity in slip.quantities.items():
            found[key] = found.get(key, 0) + quantity
    return found


def _lines(order_id: str, order: Mapping[str, Any], details: Sequence[Mapping[str, Any]],
           slips: Sequence[SlipFacts], currency: str | None, reason: str | None, status: str | None,
           decision: DecisionKind | None, recorded: Mapping[str, DecisionKind]) -> tuple[ReturnLine, ...]:
    by_id = {str(d.get("id")): d for d in details}
    for row in rows(order, "order_rows"):  # the order's own rows, where details were not fetched
        by_id.setdefault(str(row.get("id")), {**row, "product_quantity": row.get("product_quantity")})
    wanted = _returned(details, slips)
    refunded = {key for slip in slips for key in slip.quantities}
    lines = []
    for key, quantity in wanted.items():
        detail = by_id.get(key, {})
        line_decision = recorded.get(key) or decision or (DecisionKind.ACCEPT if key in refunded else None)
        lines.append(ReturnLine(
            external_id=key, order_external_id=order_id, order_line_external_id=key if detail else None,
            sku=text(detail.get("product_reference")), ean=text(detail.get("product_ean13")),
            title=text(detail.get("product_name")), quantity=quantity, reason=reason_for(reason),
            channel_reason=reason, channel_status=status, unit_price=unit_price(detail) if detail else None,
            currency=currency, channel_decision=line_decision,
            channel_decision_quantity=quantity if line_decision else None,
        ))
    return tuple(lines)


def _revision(*parts: Any) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:20]


def map_order_return(record: Mapping[str, Any], states: StateTable, lookups: Lookups) -> Return:
    """A PrestaShop 9 merchandise return, with its order's details and credit slips (refunds)."""
    return_id = record_id(record, "order_return")
    order_id = text(record.get("id_order"))
    created = parse_date(record.get("date_add"), lookups.zone)
    if created is None:
        raise BadPayload(f"order_return {return_id}: no date_add")
    order = (lookups.orders or {}).get(order_id or "", {})
    details = order_details(lookups, order_id or "")
    slips = [s for s in (slip_facts(x, lookups.zone) for x in (lookups.slips or {}).get(order_id or "", ()))
             if s is not None and (s.created_at is None or s.created_at >= created)]
    state = text(record.get("state"))
    meaning = states.meaning(state)
    status = _STATUS.get(meaning or "", ReturnStatus.REQUESTED)
    if slips and any(s.amount for s in slips) and status is not ReturnStatus.CANCELLED:
        status = ReturnStatus.REFUNDED
    reason = plain_text(record.get("question"))
    currency = lookups.currency(order) if order else None
    decision = _DECISION.get(meaning or "")
    if meaning == "completed" and not slips:
        decision = None
    recorded = (lookups.recorded or {}).get(order_id or "", {})
    shared = (lookups.returns_on_order or {}).get(order_id or "", 1) > 1
    lines = () if shared else _lines(order_id or return_id, order, details, slips, currency, reason, state,
                                     decision, recorded)
    updated = parse_date(record.get("date_upd"), lookups.zone)
    refunded = [s.created_at for s in slips if s.created_at is not None]
    extra: dict[str, Any] = {"state": state, "state_name": STOCK_STATE_NAMES.get(state or "") if meaning else None}
    if slips:
        extra["slip_ids"] = [s.slip_id for s in slips]
    if not lines:
        extra["lines_unknown"] = LINES_SHARED.format(order=order_id) if shared else LINES_UNKNOWN
    return Return(
        external_id=return_id, order_external_id=order_id, status=status, channel_status=state,
        reason=reason_for(reason), channel_reason=reason, created_at=created,
        received_at=updated if meaning == "received" else None,
        decided_at=updated if status is ReturnStatus.DECIDED else None,
        refunded_at=max(refunded) if refunded else None,
        refund_amount=sum(s.amount for s in slips) if slips else None, currency=currency,
        customer=lookups.customer(record.get("id_customer") or order.get("id_customer")),
        lines=lines, revision=_revision(record.get("date_upd"), state, *(f"{s.slip_id}:{s.amount}" for s in slips),
                                        *(f"{line.external_id}:{line.quantity}:{line.channel_decision}"
                                          for line in lines)),
        extra=extra,
    )


def has_returned_goods(details: Iterable[Mapping[str, Any]]) -> bool:
    return any(count(d.get("product_quantity_return")) or count(d.get("product_quantity_refunded")) for d in details)


def map_order_as_return(order: Mapping[str, Any], lookups: Lookups) -> Return | None:
    """PrestaShop 1.7/8: the return an order stands for (returned/refunded quantities, credit slips); None if none."""
    order_id = record_id(order, "order")
    if is_hold_order(order, lookups.hold_order):
        return None
    details = order_details(lookups, order_id)
    slips = [s for s in (slip_facts(x, lookups.zone) for x in (lookups.slips or {}).get(order_id, ()))
             if s is not None]
    if not slips and not has_returned_goods(details):
        return None
    currency = lookups.currency(order)
    refunded = [s.created_at for s in slips if s.created_at is not None]
    status = ReturnStatus.REFUNDED if any(s.amount for s in slips) else ReturnStatus.RECEIVED
    state = text(order.get("current_state"))
    lines = _lines(order_id, order, details, slips, currency, None, state, None,
                   (lookups.recorded or {}).get(order_id, {}))
    # the webservice does not say when goods came back: the first refund, else delivery, else the order, all of
    # which stay put when the order is touched again (date_upd would move the return's creation every time)
    created = min(refunded, default=None) or parse_date(order.get("delivery_date"), lookups.zone) \
        or parse_date(order.get("date_add"), lookups.zone)
    if created is None:
        raise BadPayload(f"order {order_id}: a return without any date")
    return Return(
        external_id=SLIP_RETURN_PREFIX + order_id, order_external_id=order_id, status=status, channel_status=state,
        created_at=created, refunded_at=max(refunded) if refunded else None,
        refund_amount=sum(s.amount for s in slips) if slips else None, currency=currency,
        customer=lookups.customer(order.get("id_customer")), lines=lines,
        revision=_revision(*(f"{s.slip_id}:{s.amount}" for s in slips),
                           *(f"{line.external_id}:{line.quantity}:{line.channel_decision}" for line in lines), state),
        extra={**({"slip_ids": [s.slip_id for s in slips]} if slips else {}),
               **({} if lines else {"lines_unknown": LINES_UNKNOWN})},
    )


# --- writing: the webservice takes XML --------------------------------------------------------


def slip_body(order: Mapping[str, Any], refunds: Sequence[tuple[Mapping[str, Any], int]]) -> dict[str, Any]:
    """One credit slip for every (order detail, quantity) of an act: the customer's price, tax included and
    excluded, per line and in total, so the buyer gets one document for one return."""
    slipped, incl, excl = [], Decimal(0), Decimal(0)
    for detail, quantity in refunds:
        line_incl = (decimal(detail.get("unit_price_tax_incl")) or Decimal(0)) * quantity
        line_excl = (decimal(detail.get("unit_price_tax_excl")) or Decimal(0)) * quantity
        slipped.append({"id_order_detail": detail.get("id"), "product_quantity": quantity,
                     "amount_tax_excl": money(line_excl), "amount_tax_incl": money(line_incl)})
        incl, excl = incl + line_incl, excl + line_excl
    return {
        "id_customer": order.get("id_customer"), "id_order": order.get("id"),
        "conversion_rate": order.get("conversion_rate") or "1.000000",
        "total_products_tax_excl": money(excl), "total_products_tax_incl": money(incl),
        "total_shipping_tax_excl": "0.000000", "total_shipping_tax_incl": "0.000000",
        "amount": money(incl), "shipping_cost": "0", "shipping_cost_amount": "0.000000", "partial": "1",
        "order_slip_type": "0", "associations": {"order_slip_details": slipped},
    }


def slip_quantities(slip: Mapping[str, Any]) -> dict[str, int]:
    """order detail id -> quantity a credit slip refunds: what a retry compares with its act."""
    found: dict[str, int] = {}
    for row in rows(slip, "order_slip_details"):
        key = text(row.get("id_order_detail"))
        if key is not None:
            found[key] = found.get(key, 0) + count(row.get("product_quantity"))
    return found


def hold_question(ret: Return, key: str, source_title: str) -> str:
    """What the merchant reads in Customer service > Merchandise returns: the marketplace return, what came back
    and why (the webservice cannot write a return's lines, `order_return_detail`), ending in the hold mark."""
    reason = ret.channel_reason or (ret.reason.value.replace("_", " ") if ret.reason is not ReturnReason.UNKNOWN
                                    else "")
    order_part = f" (order {ret.order_external_id})" if ret.order_external_id else ""
    parts = [f"{source_title} return {ret.external_id}{order_part}" + (f": {reason}" if reason else "")]
    for line in ret.lines:
        what = line.title or line.sku or line.ean or f"item {line.external_id}"
        codes = ", ".join(code for code in (f"SKU {line.sku}" if line.sku else "",
                                             f"EAN {line.ean}" if line.ean else "") if code)
        parts.append(f"{line.quantity} x {what}" + (f" ({codes})" if codes else "")
                     + (f": {line.channel_reason}" if line.channel_reason and line.channel_reason != reason else ""))
    buyer = ", ".join(part for part in (ret.customer.name, ret.customer.email) if part)
    if buyer:
        parts.append(f"buyer: {buyer}")
    parts.append(hold_mark(key))
    return "\n".join(parts)
