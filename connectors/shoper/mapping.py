"""Shoper REST (webapi/rest) JSON <-> the unified model, as pure functions.

Shoper's REST API has no returns resource (the panel's returns feature is not
exposed), so a return is an *order*: one the merchant moved into one of the
order statuses they configured for returns (`requested_statuses`, ...), one
with an order refund (`/order-refunds`), or one retsync decided. One order is
at most one return, under the order's id; whole orders come back, because
Shoper records neither returned lines nor refunded lines (a refund is an
amount against a payment transaction).

Every id and number arrives as a string; dates arrive as `YYYY-MM-DD
HH:MM:SS` in the shop's time zone, without an offset. Status ids are the
merchant's own (a dynamic enum): they are stored verbatim and only the
configured ones carry meaning; nothing here raises on an unknown value.

Shoper has no return request date either. `created_at` is the earliest
refund, else the `status_date` of the order (when it entered its current
status): a return that moves from "requested" to "received" therefore moves
its `created_at` once, to the later moment.

What retsync writes into a shop is marked so it can be recognised on a retry
and read back as itself: one `[retsync:<key>] <kind> <quantity> x <line>, ...`
line per decision act (every line it decided) in the order's private notes
(`notes_priv`) and refund comments, and
`[retsync-hold:<channel>/<id>]` in the private notes of an order that holds
another channel's return (the back-office flow).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, decimal, minor_units, when
from retsync.kit.payload import obj as _obj
from retsync.kit.payload import objs as _objs
from retsync.kit.payload import text as _text
from retsync.kit.reasons import reason_from_words

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
REFUND_PENDING, REFUND_CANCELED, REFUND_FINISHED, REFUND_FAILED = "1", "2", "3", "4"
COMMENT_LIMIT = 256
"""Shoper's limit on an order refund's `comment`."""

_DECISION = re.compile(r"\[retsync:(?P<key>[^\]\s]+)\] (?P<kind>[a-z]+)"
                       r"(?P<lines> \d+ x [^\s,]+(?:, \d+ x [^\s,]+)*)?")
_LINE = re.compile(r"(?P<quantity>\d+) x (?P<line>[^\s,]+)")
_HOLD = re.compile(r"\[retsync-hold:(?P<key>[^\]\s]+)\]")


@dataclass(frozen=True)
class ReturnRules:
    """The merchant's words for returns in their shop: which order statuses (ids) mean what."""

    requested_statuses: Collection[str] = ()
    received_statuses: Collection[str] = ()
    accepted_statuses: Collection[str] = ()
    rejected_statuses: Collection[str] = ()
    reason_field_id: str = ""

    @property
    def return_statuses(self) -> frozenset[str]:
        return frozenset((*self.requested_statuses, *self.received_statuses, *self.accepted_statuses,
                          *self.rejected_statuses))


# --- small readers that never raise on a missing or odd field -----------------------------


def _decimal(value: Any) -> Decimal | None:
    return decimal(value, decimal_comma=True)


def _count(value: Any) -> int:
    return count(value, decimal_comma=True)


def to_minor_units(value: Any) -> int | None:
    """A Shoper money string ("123.45", "123,45") to grosze/cents (12345)."""
    return minor_units(value, decimal_comma=True)


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_local(value: Any, zone: tzinfo) -> datetime | None:
    """A Shoper date (`2024-01-15 12:34:56`, the shop's local time) as aware UTC; anything unreadable is None."""
    raw = _text(value)
    if raw is None or raw.startswith("0000-00-00"):
        return None
    return when(raw, zone)


def local_text(moment: datetime, zone: tzinfo) -> str:
    """The form Shoper's filters compare dates in: the shop's local time, to the second."""
    return moment.astimezone(zone).strftime(DATE_FORMAT)


def id_of(entry: Mapping[str, Any], field: str, what: str) -> str:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise BadPayload(f"{what}: an entry without {field}")
    return str(value).strip()


def status_id(order: Mapping[str, Any]) -> str | None:
    return _text(order.get("status_id")) or _text(_obj(order.get("status")).get("status_id"))


def status_name(order: Mapping[str, Any]) -> str | None:
    """The status's name in the first language Shoper lists (the panel's names are per language)."""
    status = _obj(order.get("status"))
    for translation in _obj(status.get("translations")).values():
        name = _text(_obj(translation).get("name"))
        if name:
            return name
    return _text(status.get("name"))


# --- markers retsync leaves in the shop ---------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A decision act retsync applied, read back from a private note or a refund comment."""

    key: str
    kind: DecisionKind | None
    lines: Mapping[str, int]
    """Line (order product) id -> units decided; one entry per line of the act."""


def decision_marker(key: str, kind: DecisionKind, lines: Iterable[tuple[str, int]]) -> str:
    """`[retsync:<key>] <kind> 1 x 5001, 2 x 5002`: the act's key and every line it decided. A one-line act
    reads as the markers written before acts had several lines, so those are read back the same way."""
    decided = ", ".join(f"{quantity} x {line}" for line, quantity in lines)
    return f"[retsync:{key}] {kind.value}" + (f" {decided}" if decided else "")


def refund_comment(key: str, kind: DecisionKind, lines: Sequence[tuple[str, int]], words: str) -> str:
    """An order refund's comment (at most COMMENT_LIMIT characters): the marker, then the words. Lines that do
    not fit are left out whole, never cut inside an id, so the key (what a retry looks for) always stays."""
    kept = list(lines)
    while kept and len(decision_marker(key, kind, kept)) > COMMENT_LIMIT:
        kept.pop()
    return f"{decision_marker(key, kind, kept)} {words}"[:COMMENT_LIMIT]


def recorded_decisions(notes: Any) -> dict[str, Recorded]:
    """Decision acts retsync wrote into a note or comment, by idempotency key."""
    found: dict[str, Recorded] = {}
    text = notes if isinstance(notes, str) else ""
    for match in _DECISION.finditer(text):
        try:
            kind: DecisionKind | None = DecisionKind(match["kind"])
        except ValueError:
            kind = None
        lines = {line["line"]: int(line["quantity"]) for line in _LINE.finditer(match["lines"] or "")}
        found[match["key"]] = Recorded(match["key"], kind, lines)
    return found


def hold_marker(key: str) -> str:
    return f"[retsync-hold:{key}]"


def held_key(order: Mapping[str, Any]) -> str | None:
    """The hold key of an order that holds another channel's return (the back-office flow), else None."""
    notes = order.get("notes_priv")
    match = _HOLD.search(notes) if isinstance(notes, str) else None
    return match["key"] if match else None


def merchant_words(notes: Any) -> str | None:
    """A note without retsync's own marker lines: what a person wrote."""
    if not isinstance(notes, str):
        return None
    kept = [line.strip() for line in notes.splitlines()
            if line.strip() and not _DECISION.search(line) and not _HOLD.search(line)]
    return "\n".join(kept) or None


def with_line(notes: Any, line: str) -> str:
    """A note with one more line at the end (Shoper keeps each note as one text)."""
    existing = notes.rstrip() if isinstance(notes, str) else ""
    return f"{existing}\n{line}" if existing else line


# --- orders --------------------------------------------------------------------------------


def customer_of(order: Mapping[str, Any]) -> Customer:
    billing, delivery = _obj(order.get("billing_address")), _obj(order.get("delivery_address"))
    address = billing if any(_text(billing.get(k)) for k in ("firstname", "lastname", "company")) else delivery
    name = " ".join(p for p in (_text(address.get("firstname")), _text(address.get("lastname"))) if p)
    return Customer(
        email=_text(order.get("email")),
        name=name or _text(address.get("company")),
        phone=_text(billing.get("phone")) or _text(delivery.get("phone")),
        postcode=_text(billing.get("postcode")) or _text(delivery.get("postcode")),
    )


def unit_price(product: Mapping[str, Any]) -> int | None:
    """What the customer paid for one unit (Shoper's product price is gross), less the line's discount."""
    price = _decimal(product.get("price"))
    if price is None:
        return None
    discount = _decimal(product.get("discount_perc")) or Decimal(0)
    return to_minor_units(price * (Decimal(100) - discount) / 100)


def _title(product: Mapping[str, Any]) -> str | None:
    name, option = _text(product.get("name")), _text(product.get("option"))
    return f"{name} ({option})" if name and option else name


def _order_line(product: Mapping[str, Any], currency: str | None) -> OrderLine | None:
    line_id = _text(product.get("id"))
    if line_id is None:
        return None
    return OrderLine(external_id=line_id, sku=_text(product.get("code")), ean=_text(product.get("ean")),
                     title=_title(product), quantity=_count(product.get("quantity")), unit_price=unit_price(product),
                     currency=currency)


def currency_of(order: Mapping[str, Any], currencies: Mapping[str, str]) -> str | None:
    """The ISO code of the order's currency (`currency_id` names an entry of `/currencies`)."""
    return currencies.get(_text(order.get("currency_id")) or "")


def map_order(order: Mapping[str, Any], products: Iterable[Mapping[str, Any]], currencies: Mapping[str, str],
              zone: tzinfo) -> Order:
    currency = currency_of(order, currencies)
    lines = (_order_line(product, currency) for product in products)
    return Order(
        external_id=id_of(order, "order_id", "order"),
        placed_at=parse_local(order.get("date"), zone),
        channel_status=status_id(order),
        currency=currency,
        total_amount=to_minor_units(order.get("sum")),
        customer=customer_of(order),
        lines=tuple(line for line in lines if line is not None),
    )


# --- refunds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundFacts:
    refund_id: str
    status: str | None
    amount: int
    created_at: datetime | None
    words: str | None
    recorded: Recorded | None

    @property
    def finished(self) -> bool:
        return self.status == REFUND_FINISHED

    @property
    def pending(self) -> bool:
        return self.status == REFUND_PENDING

    @property
    def counts(self) -> bool:
        """Canceled and failed refunds gave nothing back."""
        return self.status not in (REFUND_CANCELED, REFUND_FAILED)


def refund_facts(refund: Mapping[str, Any], zone: tzinfo) -> RefundFacts | None:
    refund_id = _text(refund.get("refund_id")) or _text(refund.get("id"))
    if refund_id is None:
        return None
    comment = refund.get("comment")
    recorded = next(iter(recorded_decisions(comment).values()), None)
    words = merchant_words(comment) or _text(refund.get("status_description"))
    return RefundFacts(refund_id=refund_id, status=_text(refund.get("status")),
                       amount=abs(to_minor_units(refund.get("currency_value")) or 0),
                       created_at=parse_local(refund.get("date"), zone), words=words, recorded=recorded)


def refund_signature(refunds: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(f"{_text(r.get('refund_id')) or _text(r.get('id'))}:{_text(r.get('status'))}:"
                  f"{_text(r.get('currency_value'))}" for r in refunds)


# --- reasons -------------------------------------------------------------------------------


def additional_field(order: Mapping[str, Any], field_id: str) -> str | None:
    """The value of one of the order's additional fields (e.g. a returns form's "reason"), by its field id."""
    if not field_id:
        return None
    for field in _objs(order.get("additional_fields")):
        if _text(field.get("field_id")) == field_id:
            return _text(field.get("value"))
    return None


# --- returns -------------------------------------------------------------------------------


def is_return(order: Mapping[str, Any], refunds: Collection[Mapping[str, Any]], rules: ReturnRules) -> bool:
    """An order stands for a return of this shop: a configured return status, an order refund, or a decision
    retsync applied to it. An order holding another channel's return is not: that return is stored under
    its own channel."""
    if held_key(order):
        return False
    return status_id(order) in rules.return_statuses or bool(refunds) \
        or bool(recorded_decisions(order.get("notes_priv")))


def revision_of(order: Mapping[str, Any], refunds: Iterable[Mapping[str, Any]]) -> str:
    """Changes whenever the shop changes the order's status, its refunds, or what retsync recorded on it."""
    markers = sorted(recorded_decisions(order.get("notes_priv")))
    return "|".join([str(order.get("status_date") or ""), str(status_id(order) or ""), *refund_signature(refunds),
                     str(len(markers))])


def _status_decision(status: str | None, rules: ReturnRules) -> DecisionKind | None:
    if status in rules.accepted_statuses:
        return DecisionKind.ACCEPT
    if status in rules.rejected_statuses:
        return DecisionKind.REJECT
    return None


def _unified_status(status: str | None, rules: ReturnRules, refunds: list[RefundFacts],
                    recorded: Mapping[str, Recorded], was_return: bool) -> ReturnStatus:
    """Refunds say most, then what retsync applied, then the configured statuses."""
    if any(refund.finished and refund.amount for refund in refunds):
        return ReturnStatus.REFUNDED
    if recorded:
        kinds = {r.kind for r in recorded.values()}
        return ReturnStatus.CANCELLED if kinds == {DecisionKind.CANCEL} else ReturnStatus.DECIDED
    if _status_decision(status, rules) is not None or any(refund.pending for refund in refunds):
        return ReturnStatus.DECIDED  # a refund under way is a decision taken, whatever the status still says
    if status in rules.received_statuses:
        return ReturnStatus.RECEIVED
    if status in rules.requested_statuses:
        return ReturnStatus.REQUESTED
    if any(refund.counts and not refund.finished for refund in refunds) and not was_return:
        return ReturnStatus.REQUESTED  # a refund in a state Shoper never documented: still open, look at it
    return ReturnStatus.CLOSED  # moved out of every return status, nothing we can name


def _line_decision(line_id: str, status: DecisionKind | None, refunds: list[RefundFacts],
                   recorded: Mapping[str, Recorded]) -> DecisionKind | None:
    """retsync's own record first, so a pushed decision is read back as itself; then its refund; then the
    status the merchant set in the panel; then a refund made in the panel (Shoper refunds name no lines)."""
    for record in recorded.values():
        if line_id in record.lines and record.kind is not None:
            return record.kind
    for refund in refunds:
        if refund.recorded and line_id in refund.recorded.lines and refund.recorded.kind is not None:
            return refund.recorded.kind
    if status is not None:
        return status
    if any(refund.counts and refund.amount and refund.recorded is None and refund.status in
           (REFUND_PENDING, REFUND_FINISHED) for refund in refunds):
        return DecisionKind.ACCEPT
    return None


def map_return(
    order: Mapping[str, Any],
    products: Iterable[Mapping[str, Any]],
    refunds: Iterable[Mapping[str, Any]],
    rules: ReturnRules,
    currencies: Mapping[str, str],
    zone: tzinfo,
    *,
    was_return: bool = False,
) -> Return | None:
    """The return an order stands for, with its refunds; None when the order is not a return at all.

    `was_return`: the order is stored as a return, so it stays one (closed) after the shop moved it out of
    every return status, instead of being left open in retsync forever.
    """
    refunds = list(refunds)
    if held_key(order) or not (was_return or is_return(order, refunds, rules)):
        return None
    order_id = id_of(order, "order_id", "order")
    currency = currency_of(order, currencies)
    facts = [fact for fact in (refund_facts(refund, zone) for refund in refunds) if fact is not None]
    recorded = recorded_decisions(order.get("notes_priv"))
    status = status_id(order)
    shop_decision = _status_decision(status, rules)
    lines = []
    for product in products:
        line_id = _text(product.get("id"))
        if line_id is None:
            continue
        decision = _line_decision(line_id, shop_decision, facts, recorded)
        quantity = _count(product.get("quantity"))
        lines.append(ReturnLine(
            external_id=line_id, order_external_id=order_id, order_line_external_id=line_id,
            sku=_text(product.get("code")), ean=_text(product.get("ean")), title=_title(product), quantity=quantity,
            channel_status=status,
            unit_price=unit_price(product), currency=currency,
            channel_decision=decision, channel_decision_quantity=quantity if decision else None,
        ))
    if not lines:  # an order without products (deleted from it): the refunds are still the merchant's to see
        for fact in facts:
            decision = fact.recorded.kind if fact.recorded and fact.recorded.kind else DecisionKind.ACCEPT
            lines.append(ReturnLine(
                external_id=f"refund-{fact.refund_id}", order_external_id=order_id, title=fact.words, quantity=0,
                channel_reason=fact.words, channel_status=fact.status, unit_price=fact.amount, currency=currency,
                channel_decision=decision if fact.counts else None, channel_decision_quantity=0 if fact.counts
                else None,
            ))
    if not lines:
        return None
    status_date = parse_local(order.get("status_date"), zone)
    refund_dates = [fact.created_at for fact in facts if fact.created_at is not None]
    created = min(refund_dates, default=None) or status_date or parse_local(order.get("date"), zone)
    if created is None:
        raise BadPayload(f"order {order_id}: a return without any date (no status_date, no date)")
    unified = _unified_status(status, rules, facts, recorded, was_return)
    finished = [fact for fact in facts if fact.finished]
    finished_dates = [fact.created_at for fact in finished if fact.created_at is not None]
    reason = additional_field(order, rules.reason_field_id)
    coarse = reason_from_words(reason)
    if reason is None:  # the staff's words on a refund are not the customer's: no coarse reason from them
        reason = next((fact.words for fact in facts if fact.words), None)
        coarse = reason_from_words(reason, fallback=ReturnReason.UNKNOWN)
    extra: dict[str, Any] = {}
    if status_name(order):
        extra["status_name"] = status_name(order)
    if _text(_obj(order.get("status")).get("type")):
        extra["status_type"] = _text(_obj(order.get("status")).get("type"))
    if facts:
        extra["refund_ids"] = [fact.refund_id for fact in facts]
        extra["refund_statuses"] = {fact.refund_id: fact.status for fact in facts}
    return Return(
        external_id=order_id,
        order_external_id=order_id,
        status=unified,
        channel_status=status,
        reason=coarse,
        channel_reason=reason,
        created_at=created,
        received_at=status_date if status in rules.received_statuses else None,
        decided_at=status_date if unified is ReturnStatus.DECIDED else None,
        refunded_at=max(finished_dates) if finished_dates else None,
        refund_amount=sum(fact.amount for fact in finished) if finished else None,
        currency=currency,
        customer=customer_of(order),
        lines=tuple(lines),
        revision=revision_of(order, refunds),
        extra=extra,
    )


# --- the back-office flow: another channel's return held as an order of this shop ----------


def held_order(ret: Return, key: str, source_title: str, *, status: str, payment_id: str, shipping_id: str,
               currency_id: str | None) -> dict[str, Any]:
    """The order (`POST /orders`) that holds a marketplace return in the shop, so the merchant decides it in
    the usual panel: in `status`, the marketplace's buyer as billing contact, the hold key in the private
    notes (how a retry recognises it and the pull leaves it out), the return's reason in the public ones."""
    first, _, last = (ret.customer.name or "").strip().partition(" ")
    address = {"firstname": first or "-", "lastname": last or "-", "postcode": ret.customer.postcode or "",
               "phone": ret.customer.phone or "", "city": "", "street1": "", "country_code": ""}
    reason = ret.channel_reason or (ret.reason.value.replace("_", " ") if ret.reason else "")
    order_part = f" (order {ret.order_external_id})" if ret.order_external_id else ""
    about = f"{source_title} return {ret.external_id}{order_part}" + (f": {reason}" if reason else "")
    body: dict[str, Any] = {
        "status_id": status, "payment_id": payment_id, "shipping_id": shipping_id,
        "email": ret.customer.email or "", "billing_address": address, "delivery_address": dict(address),
        "notes_priv": f"{hold_marker(key)} {about}", "notes": about,
    }
    if currency_id:
        body["currency_id"] = currency_id
    return body


def held_products(ret: Return, order_id: str) -> list[dict[str, Any]]:
    """The returned items as order products (`POST /order-products`), not linked to the catalogue."""
    products = []
    for line in ret.lines:
        price = Decimal(line.unit_price) / 100 if line.unit_price is not None else Decimal(0)
        products.append({"order_id": order_id, "product_id": "0", "stock_id": "0",
                         "name": line.title or line.sku or f"Item {line.external_id}",
                         "code": line.sku or line.ean or line.external_id, "pkwiu": "",
                         "price": money(price), "quantity": str(line.quantity)})
    return products
