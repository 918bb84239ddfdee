"""Bol Retailer API v10 JSON <-> the unified model, as pure functions.

Bol's words always travel beside the unified values (`channel_status`,
`channel_reason`, `extra`), so a handling result or reason bol invents
tomorrow is stored verbatim instead of stopping a sync. Only the fields
without which a record cannot be stored at all (ids, registration date)
raise `BadPayload`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, minor_units, when
from retsync.kit.payload import items as payload_items
from retsync.kit.payload import obj as _obj
from retsync.kit.payload import objs as _objs
from retsync.kit.payload import text as _text

FULFILLED_BY_BOL = "FBB"
CURRENCY = "EUR"
"""bol.com sells in euros only (NL and BE)."""

MIXED = "mixed"
"""The return's channel_status when its lines are in different states."""

# --- handling results ----------------------------------------------------------------------

HANDLING_TO_DECISION: Mapping[str, DecisionKind] = {
    "RETURN_RECEIVED": DecisionKind.ACCEPT,
    "STILL_APPROVED": DecisionKind.ACCEPT,
    "EXCHANGE_PRODUCT": DecisionKind.EXCHANGE,
    "RETURN_DOES_NOT_MEET_CONDITIONS": DecisionKind.REJECT,
    "REPAIR_PRODUCT": DecisionKind.REPAIR,
    "CUSTOMER_KEEPS_PRODUCT_PAID": DecisionKind.KEEP,
    "CUSTOMER_KEEPS_PRODUCT_FREE_OF_CHARGE": DecisionKind.KEEP,
    "CANCELLED_BY_CUSTOMER": DecisionKind.CANCEL,
}

DECISION_TO_HANDLING: Mapping[DecisionKind, str] = {
    DecisionKind.ACCEPT: "RETURN_RECEIVED",
    DecisionKind.REJECT: "RETURN_DOES_NOT_MEET_CONDITIONS",
    DecisionKind.REPAIR: "REPAIR_PRODUCT",
    DecisionKind.EXCHANGE: "EXCHANGE_PRODUCT",
    DecisionKind.KEEP: "CUSTOMER_KEEPS_PRODUCT_PAID",
}
"""What we send for each decision; `cancel` has no handling result on bol."""

REFUNDING_HANDLING = frozenset({"RETURN_RECEIVED", "STILL_APPROVED", "CUSTOMER_KEEPS_PRODUCT_PAID"})
"""Handling results after which bol refunds the customer, once bol has ACCEPTED them."""

CANCELLING_RESULTS = frozenset({"CANCELLED", "CANCELLED_BY_CUSTOMER"})

_CLOSED = frozenset({ReturnStatus.DECIDED, ReturnStatus.REFUNDED, ReturnStatus.CANCELLED})


def decision_for_handling(handling_result: str | None) -> DecisionKind | None:
    """The merchant's decision a handling result stands for; None for results we have no word for."""
    if not handling_result:
        return None
    return HANDLING_TO_DECISION.get(handling_result.strip().upper())


def handling_for_decision(kind: DecisionKind) -> str | None:
    return DECISION_TO_HANDLING.get(kind)


# --- reasons -------------------------------------------------------------------------------

_MAIN_REASONS: Mapping[str, ReturnReason] = {
    "verkeerde maat of afmeting": ReturnReason.WRONG_SIZE,
    "verkeerd besteld": ReturnReason.ORDERED_BY_MISTAKE,
    "artikel werkt niet": ReturnReason.DEFECTIVE,
    "klacht over artikel": ReturnReason.NOT_AS_EXPECTED,
    "niet naar verwachting": ReturnReason.NOT_AS_EXPECTED,
    "klacht over de bezorging": ReturnReason.DELIVERY_PROBLEM,
    "elders goedkoper": ReturnReason.BETTER_PRICE,
    "ander artikel ontvangen dan besteld": ReturnReason.WRONG_ITEM,
    "anders": ReturnReason.OTHER,
}

_DETAILED_REASONS: Mapping[tuple[str, str], ReturnReason] = {
    ("klacht over artikel", "artikel is beschadigd"): ReturnReason.DAMAGED,
    ("klacht over artikel", "artikel werkt niet"): ReturnReason.DEFECTIVE,
    ("klacht over de bezorging", "artikel is beschadigd"): ReturnReason.DAMAGED,
    ("klacht over de bezorging", "ander artikel ontvangen dan besteld"): ReturnReason.WRONG_ITEM,
    ("anders", "ik heb me bedacht"): ReturnReason.NO_LONGER_NEEDED,
    ("anders", "artikel had ik toch niet nodig"): ReturnReason.NO_LONGER_NEEDED,
    ("anders", "artikel cadeau ontvangen"): ReturnReason.NO_LONGER_NEEDED,
    ("anders", "dubbel besteld"): ReturnReason.ORDERED_BY_MISTAKE,
    ("anders", "kwaliteit valt tegen"): ReturnReason.NOT_AS_EXPECTED,
    ("anders", "andere kleur dan gedacht"): ReturnReason.NOT_AS_EXPECTED,
}
"""Sub-reasons (from the spec's ReturnReason table) that say more than their main reason."""


def _key(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def reason_for(main_reason: str | None, detailed_reason: str | None = None) -> ReturnReason:
    """The coarse reason for bol's Dutch reason pair, so reports can compare channels."""
    main = _key(main_reason)
    refined = _DETAILED_REASONS.get((main, _key(detailed_reason)))
    if refined is not None:
        return refined
    return _MAIN_REASONS.get(main, ReturnReason.UNKNOWN)


def channel_reason_text(main_reason: str | None, detailed_reason: str | None) -> str | None:
    main = _text(main_reason)
    detail = _text(detailed_reason)
    if main and detail and detail != main:
        return f"{main} / {detail}"
    return main or detail


# --- small readers that never raise on a missing or odd field -----------------------------


def _count(value: Any, default: int = 0) -> int:
    """Whole units; a negative or missing one is `default`; beyond QUANTITY_LIMIT raises (`payload.count`)."""
    raw = _text(value)
    if isinstance(value, bool) or raw is None or raw.startswith("-"):
        return default
    return count(value)


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 with an offset, as bol writes it (`2016-11-14T11:06:48.423+01:00`); None when unreadable or
    implausible (`retsync.kit.payload.when`)."""
    return when(value)


to_minor_units = minor_units
"""Euros as bol sends them (12.99) to cents (1299)."""


def revision_of(entry: Mapping[str, Any]) -> str:
    """A short hash of the list entry: equal hashes mean bol reports nothing new about the return."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


REDUCED_ITEM_FIELDS = ("rmaId", "orderId", "ean", "expectedQuantity", "returnReason", "handled", "processingResults")


def reduced_from_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The list entry (`ReducedReturn`) a detail (`Return`) corresponds to, for the same revision either way."""
    reduced = {key: detail[key] for key in ("returnId", "registrationDateTime", "fulfilmentMethod") if key in detail}
    reduced["returnItems"] = [
        {key: item[key] for key in REDUCED_ITEM_FIELDS if key in item} for item in _objs(detail.get("returnItems"))
    ]
    return reduced


# --- customers and orders ------------------------------------------------------------------


def _person_name(details: Mapping[str, Any]) -> str | None:
    parts = [_text(details.get("firstName")), _text(details.get("surname"))]
    name = " ".join(part for part in parts if part)
    return name or None


def customer_from_details(details: Mapping[str, Any]) -> Customer:
    """A customer from any of bol's address blocks (customerDetails, billingDetails, shipmentDetails)."""
    return Customer(
        email=_text(details.get("email")),
        name=_person_name(details),
        phone=_text(details.get("deliveryPhoneNumber")),
        postcode=_text(details.get("zipCode")),
    )


def merge_customers(first: Customer, fallback: Customer) -> Customer:
    """Each field from `first` when it has one, else from `fallback`."""
    return Customer(
        email=first.email or fallback.email,
        name=first.name or fallback.name,
        phone=first.phone or fallback.phone,
        postcode=first.postcode or fallback.postcode,
    )


def _order_line(item: Mapping[str, Any], index: int, order_id: str) -> OrderLine:
    product = _obj(item.get("product"))
    offer = _obj(item.get("offer"))
    item_id = _text(item.get("orderItemId"))
    if item_id is None:
        raise BadPayload(f"order {order_id}: order item #{index + 1} has no orderItemId")
    return OrderLine(
        external_id=item_id,
        sku=_text(offer.get("reference")),
        ean=_text(product.get("ean")) or _text(item.get("ean")),
        title=_text(product.get("title")),
        quantity=_count(item.get("quantity")),
        unit_price=to_minor_units(item.get("unitPrice")),
        currency=CURRENCY,
    )


def map_order(order: Mapping[str, Any]) -> Order:
    """bol's `Order` (GET /retailer/orders/{order-id}) as a unified Order."""
    order_id = _text(order.get("orderId"))
    if order_id is None:
        raise BadPayload("an order without orderId")
    items = payload_items(order.get("orderItems"))
    totals = [to_minor_units(item.get("totalPrice")) for item in items]
    billing = customer_from_details(_obj(order.get("billingDetails")))
    shipment = customer_from_details(_obj(order.get("shipmentDetails")))
    return Order(
        external_id=order_id,
        placed_at=parse_datetime(order.get("orderPlacedDateTime")),
        currency=CURRENCY,
        total_amount=sum(t for t in totals if t is not None) if totals and None not in totals else None,
        customer=merge_customers(billing, shipment),
        lines=tuple(_order_line(item, index, order_id) for index, item in enumerate(items)),
    )


def _order_line_for(order: Order | None, ean: str | None) -> OrderLine | None:
    if order is None or ean is None:
        return None
    return next((line for line in order.lines if line.ean == ean), None)


# --- processing results and status ---------------------------------------------------------


def latest_processing_result(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The newest entry of processingResults (by processingDateTime; list order breaks ties)."""
    results = _objs(item.get("processingResults"))
    if not results:
        return None
    dated = [(parse_datetime(result.get("processingDateTime")), index, result) for index, result in enumerate(results)]
    if all(when is not None for when, _, _ in dated):
        return max(dated, key=lambda entry: (entry[0], entry[1]))[2]
    return results[-1]


def line_channel_status(item: Mapping[str, Any]) -> str:
    """`handled:RETURN_RECEIVED:ACCEPTED`, `unhandled`, ...: bol's own state of one return item, verbatim."""
    state = "handled" if item.get("handled") is True else "unhandled"
    latest = latest_processing_result(item)
    if latest is None:
        return state
    handling = _text(latest.get("handlingResult")) or "?"
    processing = _text(latest.get("processingResult")) or "?"
    return f"{state}:{handling}:{processing}"


def line_status(item: Mapping[str, Any], *, has_tracking: bool) -> ReturnStatus:
    """Where one return item is in its life; an unknown result counts as decided, never as open."""
    latest = latest_processing_result(item)
    if latest is None:
        if item.get("handled") is True:
            return ReturnStatus.DECIDED
        return ReturnStatus.IN_TRANSIT if has_tracking else ReturnStatus.REQUESTED
    handling = (_text(latest.get("handlingResult")) or "").upper()
    processing = (_text(latest.get("processingResult")) or "").upper()
    if processing in CANCELLING_RESULTS or handling == "CANCELLED_BY_CUSTOMER":
        return ReturnStatus.CANCELLED
    if processing == "ACCEPTED" and handling in REFUNDING_HANDLING:
        return ReturnStatus.REFUNDED
    return ReturnStatus.DECIDED


def return_status(line_statuses: Sequence[ReturnStatus]) -> ReturnStatus:
    """A return is open while any line is open; closed, it is cancelled only when every line is."""
    if not line_statuses:
        return ReturnStatus.REQUESTED
    open_lines = [s for s in line_statuses if s in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT)]
    if open_lines:
        return ReturnStatus.IN_TRANSIT if ReturnStatus.IN_TRANSIT in open_lines else ReturnStatus.REQUESTED
    live = [s for s in line_statuses if s is not ReturnStatus.CANCELLED]
    if not live:
        return ReturnStatus.CANCELLED
    if all(s is ReturnStatus.REFUNDED for s in live):
        return ReturnStatus.REFUNDED
    return ReturnStatus.DECIDED


def _summary(values: Iterable[str]) -> str | None:
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else MIXED


def _channel_decision(item: Mapping[str, Any]) -> tuple[DecisionKind | None, int | None]:
    """What bol reports as already decided on an item, and for how many pieces."""
    latest = latest_processing_result(item)
    if latest is None:
        return None, None
    handling = _text(latest.get("handlingResult"))
    kind = decision_for_handling(handling)
    if kind is None:
        return None, None
    quantity = sum(
        _count(result.get("quantity"))
        for result in _objs(item.get("processingResults"))
        if _text(result.get("handlingResult")) == handling
    )
    return kind, quantity


def _processing_times(items: Iterable[Mapping[str, Any]], handling: frozenset[str] | None = None) -> list[datetime]:
    times = []
    for item in items:
        for result in _objs(item.get("processingResults")):
            if handling is not None and (_text(result.get("handlingResult")) or "") not in handling:
                continue
            when = parse_datetime(result.get("processingDateTime"))
            if when is not None:
                times.append(when)
    return times


# --- returns -------------------------------------------------------------------------------


def _return_line(
    item: Mapping[str, Any],
    detail_item: Mapping[str, Any],
    orders: Mapping[str, Order],
    return_id: str,
) -> tuple[ReturnLine, ReturnStatus]:
    rma_id = _text(item.get("rmaId"))
    if rma_id is None:
        raise BadPayload(f"return {return_id}: a return item without rmaId")
    order_id = _text(item.get("orderId"))
    ean = _text(item.get("ean"))
    reason = _obj(item.get("returnReason"))
    main_reason, detailed_reason = _text(reason.get("mainReason")), _text(reason.get("detailedReason"))
    order_line = _order_line_for(orders.get(order_id) if order_id else None, ean)
    decision, decision_quantity = _channel_decision(item)
    line = ReturnLine(
        external_id=rma_id,
        order_external_id=order_id,
        order_line_external_id=order_line.external_id if order_line else None,
        sku=order_line.sku if order_line else None,
        ean=ean,
        title=_text(detail_item.get("title")) or (order_line.title if order_line else None),
        quantity=_count(item.get("expectedQuantity")),
        reason=reason_for(main_reason, detailed_reason),
        channel_reason=channel_reason_text(main_reason, detailed_reason),
        customer_comment=_text(reason.get("customerComments")),
        channel_status=line_channel_status(item),
        unit_price=order_line.unit_price if order_line else None,
        currency=order_line.currency if order_line and order_line.unit_price is not None else None,
        channel_decision=decision,
        channel_decision_quantity=decision_quantity,
    )
    return line, line_status(item, has_tracking=_text(detail_item.get("trackAndTrace")) is not None)


def map_return(
    entry: Mapping[str, Any],
    detail: Mapping[str, Any] | None = None,
    orders: Mapping[str, Order] | None = None,
) -> Return:
    """One bol return as a unified Return.

    `entry` is the list entry (ReducedReturn) and decides the state and the
    revision; `detail` (the Return from GET /retailer/returns/{id}) adds
    title, tracking and customer; `orders` add order line ids and prices.
    """
    return_id = _text(entry.get("returnId"))
    if return_id is None:
        raise BadPayload("a return without returnId")
    registered = parse_datetime(entry.get("registrationDateTime"))
    if registered is None:
        raise BadPayload(f"return {return_id}: registrationDateTime {entry.get('registrationDateTime')!r} "
                         "is not an ISO 8601 date-time")
    orders = orders or {}
    detail_items = {
        _text(item.get("rmaId")): item for item in _objs((detail or {}).get("returnItems")) if item.get("rmaId")
    }
    items = payload_items(entry.get("returnItems"))
    mapped = [_return_line(item, detail_items.get(_text(item.get("rmaId")), {}), orders, return_id) for item in items]
    lines = tuple(line for line, _ in mapped)
    statuses = [status for _, status in mapped]
    status = return_status(statuses)
    tracked = next((d for d in detail_items.values() if _text(d.get("trackAndTrace"))), {})
    customer_block = next(
        (_obj(d.get("customerDetails")) for d in detail_items.values() if d.get("customerDetails")), {}
    )
    order_ids = list(dict.fromkeys(line.order_external_id for line in lines if line.order_external_id))
    order_customer = orders[order_ids[0]].customer if order_ids and order_ids[0] in orders else Customer()
    decided_times = _processing_times(items)
    received_times = _processing_times(items, frozenset({"RETURN_RECEIVED"}))
    fulfilment = _text(entry.get("fulfilmentMethod"))
    first = lines[0] if lines else None
    return Return(
        external_id=return_id,
        order_external_id=order_ids[0] if len(order_ids) == 1 else None,
        status=status,
        channel_status=_summary(line.channel_status or "" for line in lines),
        reason=first.reason if first else ReturnReason.UNKNOWN,
        channel_reason=first.channel_reason if first else None,
        created_at=registered,
        received_at=min(received_times) if received_times else None,
        decided_at=max(decided_times) if decided_times and status in _CLOSED else None,
        refunded_at=max(decided_times) if decided_times and status is ReturnStatus.REFUNDED else None,
        currency=CURRENCY if any(line.unit_price is not None for line in lines) else None,
        customer=merge_customers(customer_from_details(customer_block), order_customer),
        handled_by_channel=(fulfilment or "").upper() == FULFILLED_BY_BOL,
        tracking_number=_text(tracked.get("trackAndTrace")),
        carrier=_text(tracked.get("transporterName")),
        lines=lines,
        revision=revision_of(entry),
        extra={"fulfilmentMethod": fulfilment} if fulfilment else {},
    )
