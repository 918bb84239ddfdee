"""Allegro JSON <-> the unified model, as pure functions.

Allegro's own words travel beside the unified values (`channel_status`,
`channel_reason`, `extra`), so a status Allegro invents tomorrow is stored
verbatim and watched until it becomes one we know. Only what a record cannot
be stored without (ids, createdAt) raises `BadPayload`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count as payload_count
from retsync.kit.payload import items as payload_items
from retsync.kit.payload import minor_units as payload_minor_units
from retsync.kit.payload import obj, objs, text, when

"""Amounts from this size up are unreadable, not money: quantizing them would overflow Decimal's precision."""

STATUS_MAP: Mapping[str, ReturnStatus] = {
    "CREATED": ReturnStatus.REQUESTED,
    "DISPATCHED": ReturnStatus.IN_TRANSIT,
    "IN_TRANSIT": ReturnStatus.IN_TRANSIT,
    "DELIVERED": ReturnStatus.RECEIVED,
    "WAREHOUSE_DELIVERED": ReturnStatus.RECEIVED,
    "WAREHOUSE_VERIFICATION": ReturnStatus.RECEIVED,
    "FINISHED": ReturnStatus.REFUNDED,
    "FINISHED_APT": ReturnStatus.REFUNDED,
    "COMMISSION_REFUND_CLAIMED": ReturnStatus.REFUNDED,
    "COMMISSION_REFUNDED": ReturnStatus.REFUNDED,
    "REJECTED": ReturnStatus.DECIDED,
}
"""Allegro's return timeline in unified words; anything else stays open so the next passes keep watching it."""

FINAL_STATUSES = frozenset({"FINISHED", "FINISHED_APT", "COMMISSION_REFUND_CLAIMED", "COMMISSION_REFUNDED", "REJECTED"})
REFUNDED_STATUSES = frozenset({"FINISHED", "FINISHED_APT", "COMMISSION_REFUND_CLAIMED", "COMMISSION_REFUNDED"})

REASON_MAP: Mapping[str, ReturnReason] = {
    "NONE": ReturnReason.NO_LONGER_NEEDED,
    "MISTAKE": ReturnReason.ORDERED_BY_MISTAKE,
    "TRANSPORT": ReturnReason.DELIVERY_PROBLEM,
    "DAMAGED": ReturnReason.DAMAGED,
    "NOT_AS_DESCRIBED": ReturnReason.NOT_AS_EXPECTED,
    "DONT_LIKE_IT": ReturnReason.NOT_AS_EXPECTED,
    "OVERDUE_DELIVERY": ReturnReason.DELIVERY_PROBLEM,
    "INCOMPLETE": ReturnReason.WRONG_ITEM,
    "HIDDEN_FLAW": ReturnReason.DEFECTIVE,
    "OTHER_FLAW": ReturnReason.DEFECTIVE,
    "DIFFERENT": ReturnReason.WRONG_ITEM,
    "COUNTERFEIT": ReturnReason.NOT_AS_EXPECTED,
    "NOT_NEW": ReturnReason.NOT_AS_EXPECTED,
    "TOO_LARGE": ReturnReason.WRONG_SIZE,
    "TOO_SMALL": ReturnReason.WRONG_SIZE,
    "NOT_AS_EXPECTED": ReturnReason.NOT_AS_EXPECTED,
    "ORDERED_FOR_COMPARISON": ReturnReason.NO_LONGER_NEEDED,
}
"""`reason.type` (CustomerReturnItemReason) to the coarse reason reports compare across channels."""

REJECTION_TO_DECISION: Mapping[str, DecisionKind] = {
    "REFUND_REJECTED": DecisionKind.REJECT,
    "NEW_ITEM_SENT": DecisionKind.EXCHANGE,
    "ITEM_FIXED": DecisionKind.REPAIR,
    "MISSING_PART_SENT": DecisionKind.REPAIR,
    "ITEM_MISMATCH": DecisionKind.REJECT,
    "BUSINESS_PURCHASE": DecisionKind.REJECT,
    "NO_RETURN_RIGHT": DecisionKind.REJECT,
}

DECISION_TO_REJECTION: Mapping[DecisionKind, str] = {
    DecisionKind.REJECT: "REFUND_REJECTED",
    DecisionKind.REPAIR: "ITEM_FIXED",
    DecisionKind.EXCHANGE: "NEW_ITEM_SENT",
}
"""Decisions Allegro records as a refund rejection with this code; accept and keep are refunds instead."""


# --- small readers that never raise on a missing or odd field -----------------------------


def count(value: Any, default: int = 0) -> int:
    """Whole units; a negative or missing one is `default`; beyond QUANTITY_LIMIT raises (`payload.count`)."""
    raw = text(value)
    if isinstance(value, bool) or raw is None or raw.startswith("-"):
        return default
    return payload_count(value)


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 as Allegro writes it; None when unreadable or implausible (`retsync.kit.payload.when`)."""
    return when(value)


def minor_units(price: Any) -> tuple[int | None, str | None]:
    """A Price (`{"amount": "123.45", "currency": "PLN"}`) as (12345, "PLN"); (None, None) when unreadable."""
    block = obj(price)
    currency = text(block.get("currency"))
    cents = payload_minor_units(block.get("amount"))
    return (cents, currency) if cents is not None else (None, None)


def revision_of(entry: Mapping[str, Any]) -> str:
    """A short hash of the whole return: equal hashes mean Allegro reports nothing new."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def unified_status(status: str | None) -> ReturnStatus:
    return STATUS_MAP.get((status or "").strip().upper(), ReturnStatus.REQUESTED)


def reason_for(reason_type: str | None) -> ReturnReason:
    return REASON_MAP.get((reason_type or "").strip().upper(), ReturnReason.UNKNOWN)


def offer_of(line_external_id: str) -> str:
    """The offer id a return line id stands for (`7678887152` or `7678887152#2` for a repeated offer)."""
    return line_external_id.split("#", 1)[0]


# --- orders --------------------------------------------------------------------------------


def _order_line(item: Mapping[str, Any], index: int, order_id: str) -> OrderLine:
    line_id = text(item.get("id"))
    if line_id is None:
        raise BadPayload(f"checkout form {order_id}: line item #{index + 1} has no id")
    offer = obj(item.get("offer"))
    unit_price, currency = minor_units(item.get("price"))
    return OrderLine(
        external_id=line_id,
        sku=text(obj(offer.get("external")).get("id")),
        title=text(offer.get("name")),
        quantity=count(item.get("quantity")),
        unit_price=unit_price,
        currency=currency,
    )


def map_order(form: Mapping[str, Any]) -> Order:
    """A CheckoutForm (GET /order/checkout-forms/{id}) as a unified Order."""
    order_id = text(form.get("id"))
    if order_id is None:
        raise BadPayload("a checkout form without id")
    items = payload_items(form.get("lineItems"))
    buyer = obj(form.get("buyer"))
    name = " ".join(part for part in (text(buyer.get("firstName")), text(buyer.get("lastName"))) if part)
    total, currency = minor_units(obj(form.get("summary")).get("totalToPay"))
    bought = [parse_datetime(item.get("boughtAt")) for item in items]
    placed = [when for when in bought if when is not None]
    return Order(
        external_id=order_id,
        placed_at=min(placed) if placed else None,
        channel_status=text(form.get("status")),
        currency=currency,
        total_amount=total,
        customer=Customer(
            email=text(buyer.get("email")),
            name=name or text(buyer.get("companyName")) or text(buyer.get("login")),
            phone=text(buyer.get("phoneNumber")),
            postcode=text(obj(buyer.get("address")).get("postCode")),
        ),
        lines=tuple(_order_line(item, index, order_id) for index, item in enumerate(items)),
    )


def line_item_for_offer(form: Mapping[str, Any] | None, offer_id: str | None) -> Mapping[str, Any] | None:
    """The checkout form line item a returned item came from: the one whose `offer.id` is the item's `offerId`."""
    if form is None or offer_id is None:
        return None
    return next((item for item in objs(form.get("lineItems")) if text(obj(item.get("offer")).get("id")) == offer_id),
                None)


# --- returns -------------------------------------------------------------------------------


def _channel_decision(entry: Mapping[str, Any], status: str) -> DecisionKind | None:
    """What Allegro reports as already decided on the whole return (a refund or a rejection)."""
    if status in REFUNDED_STATUSES:
        return DecisionKind.ACCEPT
    if status == "REJECTED":
        code = (text(obj(entry.get("rejection")).get("code")) or "").upper()
        return REJECTION_TO_DECISION.get(code, DecisionKind.REJECT)
    return None


def _line_ids(items: list[Mapping[str, Any]], return_id: str) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for index, item in enumerate(items):
        offer_id = text(item.get("offerId"))
        if offer_id is None:
            raise BadPayload(f"customer return {return_id}: item #{index + 1} has no offerId")
        seen[offer_id] = seen.get(offer_id, 0) + 1
        ids.append(offer_id if seen[offer_id] == 1 else f"{offer_id}#{seen[offer_id]}")
    return ids


def _return_line(
    item: Mapping[str, Any], line_id: str, order_id: str | None, form: Mapping[str, Any] | None,
    status: str, decision: DecisionKind | None,
) -> ReturnLine:
    reason = obj(item.get("reason"))
    reason_type = text(reason.get("type"))
    line_item = line_item_for_offer(form, offer_of(line_id))
    unit_price, currency = minor_units(item.get("price"))
    if unit_price is None and line_item is not None:
        unit_price, currency = minor_units(line_item.get("price"))
    quantity = count(item.get("quantity"))
    return ReturnLine(
        external_id=line_id,
        order_external_id=order_id,
        order_line_external_id=text(line_item.get("id")) if line_item else None,
        sku=text(obj(obj(line_item.get("offer")).get("external")).get("id")) if line_item else None,
        title=text(item.get("name")) or (text(obj(line_item.get("offer")).get("name")) if line_item else None),
        quantity=quantity,
        reason=reason_for(reason_type),
        channel_reason=reason_type,
        customer_comment=text(reason.get("userComment")),
        channel_status=status or None,
        unit_price=unit_price,
        currency=currency if unit_price is not None else None,
        channel_decision=decision,
        channel_decision_quantity=quantity if decision is not None else None,
    )


def _extra(entry: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key in ("referenceNumber", "marketplaceId", "isFulfillment"):
        if entry.get(key) is not None:
            extra[key] = entry[key]
    parcels = [
        {key: parcel[key] for key in ("waybill", "carrierId", "transportingWaybill", "transportingCarrierId", "createdAt")
         if parcel.get(key) is not None}
        for parcel in objs(entry.get("parcels"))
    ]
    if parcels:
        extra["parcels"] = parcels
    rejection = obj(entry.get("rejection"))
    if rejection:
        extra["rejection"] = {key: rejection[key] for key in ("code", "reason", "createdAt") if key in rejection}
    return extra


def map_return(entry: Mapping[str, Any], form: Mapping[str, Any] | None = None) -> Return:
    """One CustomerReturn as a unified Return; `form` (its checkout form) links items to order lines."""
    return_id = text(entry.get("id"))
    if return_id is None:
        raise BadPayload("a customer return without id")
    created = parse_datetime(entry.get("createdAt"))
    if created is None:
        raise BadPayload(f"customer return {return_id}: createdAt {entry.get('createdAt')!r} is not an ISO 8601 date-time")
    status = (text(entry.get("status")) or "").upper()
    order_id = text(entry.get("orderId"))
    decision = _channel_decision(entry, status)
    items = payload_items(entry.get("items"))
    lines = tuple(
        _return_line(item, line_id, order_id, form, status, decision)
        for item, line_id in zip(items, _line_ids(items, return_id))
    )
    parcels = objs(entry.get("parcels"))
    last_parcel = parcels[-1] if parcels else {}
    buyer = obj(entry.get("buyer"))
    rejection = obj(entry.get("rejection"))
    unified = unified_status(status)
    first = lines[0] if lines else None
    priced = [line for line in lines if line.unit_price is not None]
    currencies = {line.currency for line in priced}
    refund_amount = sum(line.unit_price * line.quantity for line in priced) if (  # type: ignore[operator]
        unified is ReturnStatus.REFUNDED and priced and len(priced) == len(lines)) else None
    return Return(
        external_id=return_id,
        order_external_id=order_id,
        status=unified,
        channel_status=text(entry.get("status")),
        reason=first.reason if first else ReturnReason.UNKNOWN,
        channel_reason=first.channel_reason if first else None,
        created_at=created,
        decided_at=parse_datetime(rejection.get("createdAt")) if status == "REJECTED" else None,
        refund_amount=refund_amount,
        currency=currencies.pop() if len(currencies) == 1 else None,
        customer=Customer(email=text(buyer.get("email")), name=text(buyer.get("login")),
                          phone=text(obj(last_parcel.get("sender")).get("phoneNumber"))),
        handled_by_channel=entry.get("isFulfillment") is True,
        tracking_number=text(last_parcel.get("waybill")),
        carrier=text(last_parcel.get("carrierId")),
        lines=lines,
        revision=revision_of(entry),
        extra=_extra(entry),
    )
