"""Translation only: Shopify's GraphQL nodes to retsync's unified model, and decisions back to mutation inputs.

No requests here. Every value is read through `retsync.kit.payload`, so a hostile node (a quantity of 1e30, a date
in year 1, a thousand lines) quarantines its record instead of being stored wrong. Ids are kept as the numeric
tail of Shopify's global ids (`gid://shopify/Return/123` is stored as `123`; `gid()` builds it back), so what a
merchant types in `retsync decide` is what the Shopify admin shows in its URLs; an id that is no global id is
kept whole. A status or reason code this does not know is kept verbatim beside the unified one.

Statuses (ReturnStatus): REQUESTED is requested; OPEN (approved) is in transit until Shopify shows items
processed (received) or refunded (refunded); DECLINED is decided; CLOSED is refunded where it has a refund, else
closed; CANCELED is cancelled.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from retsync.kit.contract import DecisionAct, HeldDecision, HoldRequest
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, items, minor_units, obj, objs, text, when
from retsync.kit.reasons import reason_from_words

REASONS = {
    "COLOR": ReturnReason.NOT_AS_EXPECTED, "DEFECTIVE": ReturnReason.DEFECTIVE,
    "NOT_AS_DESCRIBED": ReturnReason.NOT_AS_EXPECTED, "SIZE_TOO_LARGE": ReturnReason.WRONG_SIZE,
    "SIZE_TOO_SMALL": ReturnReason.WRONG_SIZE, "STYLE": ReturnReason.NOT_AS_EXPECTED,
    "UNWANTED": ReturnReason.NO_LONGER_NEEDED, "WRONG_ITEM": ReturnReason.WRONG_ITEM,
}
"""ReturnReason values with a unified meaning; OTHER, UNKNOWN and any value added later are read from the
buyer's words (returnReasonNote, customerNote)."""
HANDLES = {
    "too-small": ReturnReason.WRONG_SIZE, "too-large": ReturnReason.WRONG_SIZE, "size-too-small": ReturnReason.WRONG_SIZE,
    "size-too-large": ReturnReason.WRONG_SIZE, "defective": ReturnReason.DEFECTIVE, "damaged": ReturnReason.DAMAGED,
    "wrong-item": ReturnReason.WRONG_ITEM, "not-as-described": ReturnReason.NOT_AS_EXPECTED,
    "changed-mind": ReturnReason.NO_LONGER_NEEDED, "unwanted": ReturnReason.NO_LONGER_NEEDED,
    "color-not-as-expected": ReturnReason.NOT_AS_EXPECTED, "style": ReturnReason.NOT_AS_EXPECTED,
}
"""Reason definition handles (API 2026-01+) with a unified meaning; any other is read from its name's words,
then the buyer's."""
UNKNOWN_STATUS = ReturnStatus.REQUESTED
"""A ReturnStatus Shopify adds later: shown as open, so the merchant looks at it rather than missing it."""
HOLD_KEY_ATTRIBUTE = "retsync_key"
NOTE_MARKER = "Your note for the marketplace (below this line):"
"""The line of a held draft order's note below which the merchant writes the note that goes with the decision."""
HOLD_TAG = "retsync-hold"
_GID = re.compile(r"gid://shopify/([A-Za-z]+)/(\d+)")


def tail(value: Any) -> str | None:
    """The numeric tail of a global id; other ids kept whole; None for none."""
    raw = text(value)
    if raw is None:
        return None
    match = _GID.fullmatch(raw)
    return match.group(2) if match else raw


def gid(kind: str, external_id: str) -> str:
    """The global id of a stored id (`Return`, "123" → gid://shopify/Return/123); a whole global id is kept."""
    return f"gid://shopify/{kind}/{external_id}" if external_id.isdigit() else external_id


def required_id(node: Mapping[str, Any]) -> str:
    found = tail(node.get("id"))
    if found is None:
        raise KeyError("id")
    return found


def _quantity(node: Mapping[str, Any], key: str) -> int:
    return count(node.get(key))


def _money(node: Any) -> tuple[int | None, str | None]:
    shop = obj(obj(node).get("shopMoney"))
    return minor_units(shop.get("amount")), text(shop.get("currencyCode"))


def reason(code: str | None, words: str | None) -> ReturnReason:
    if code in REASONS:
        return REASONS[code]
    if words:
        return reason_from_words(words)
    return ReturnReason.OTHER if code and code != "UNKNOWN" else ReturnReason.UNKNOWN


def reason_of_definition(handle: str, name: str | None, words: str | None) -> ReturnReason:
    """A reason definition's unified reason: its handle where known, else its name's words, else the buyer's."""
    if handle.lower() in HANDLES:
        return HANDLES[handle.lower()]
    found = reason_from_words(name or handle.replace("-", " "), fallback=ReturnReason.OTHER)
    return reason_from_words(words) if found is ReturnReason.OTHER and words else found


def customer(order: Mapping[str, Any]) -> Customer:
    address = obj(order.get("shippingAddress"))
    return Customer(email=text(order.get("email")),
                    name=text(obj(order.get("customer")).get("displayName")) or text(address.get("name")),
                    phone=text(order.get("phone")) or text(address.get("phone")), postcode=text(address.get("zip")))


def return_lines(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return items(obj(raw.get("returnLineItems")).get("nodes"))


def refunds(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return objs(obj(raw.get("refunds")).get("nodes"))


def status_of(raw: Mapping[str, Any]) -> ReturnStatus:
    status = text(raw.get("status"))
    lines = return_lines(raw)
    if status == "REQUESTED":
        return ReturnStatus.REQUESTED
    if status == "OPEN":
        if any(_quantity(line, "refundedQuantity") for line in lines) or refunds(raw):
            return ReturnStatus.REFUNDED
        if any(_quantity(line, "processedQuantity") for line in lines):
            return ReturnStatus.RECEIVED
        return ReturnStatus.IN_TRANSIT
    if status == "DECLINED":
        return ReturnStatus.DECIDED
    if status == "CLOSED":
        return ReturnStatus.REFUNDED if refunds(raw) else ReturnStatus.CLOSED
    if status == "CANCELED":
        return ReturnStatus.CANCELLED
    return UNKNOWN_STATUS


def revision(raw: Mapping[str, Any]) -> str:
    """Changes whenever anything retsync reads of the return changes (Shopify's Return has no updatedAt)."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _tracking(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    for rfo in objs(obj(raw.get("reverseFulfillmentOrders")).get("nodes")):
        for delivery in objs(obj(rfo.get("reverseDeliveries")).get("nodes")):
            tracking = obj(obj(delivery.get("deliverable")).get("tracking"))
            if text(tracking.get("number")):
                return tracking
    return {}


def map_return(raw: Mapping[str, Any], order: Mapping[str, Any], prices: Mapping[str, int | None]) -> Return:
    """A return node with the order it came with; `prices` are the order's line item prices (minor units) by
    line item id, for the lines' unit prices."""
    external_id = required_id(raw)
    created = when(raw.get("createdAt"))
    if created is None:
        raise ValueError("createdAt is not a date")
    order_id = tail(order.get("id"))
    currency = text(order.get("currencyCode"))
    lines = tuple(_return_line(line, order_id, currency, prices) for line in return_lines(raw))
    found = refunds(raw)
    amounts = [_money(r.get("totalRefundedSet")) for r in found]
    refunded = [when(r.get("createdAt")) for r in found]
    decline = obj(raw.get("decline"))
    tracking = _tracking(raw)
    first = lines[0] if lines else None
    status = text(raw.get("status"))
    return Return(
        external_id=external_id, order_external_id=order_id, status=status_of(raw), channel_status=status,
        reason=first.reason if first else ReturnReason.UNKNOWN, channel_reason=first.channel_reason if first else None,
        created_at=created, decided_at=when(raw.get("requestApprovedAt")) if status != "REQUESTED" else None,
        refunded_at=max((r for r in refunded if r is not None), default=None),
        refund_amount=sum(a for a, _ in amounts if a is not None) if amounts else None,
        currency=currency or next((c for _, c in amounts if c), None), customer=customer(order),
        tracking_number=text(tracking.get("number")), carrier=text(tracking.get("carrierName")), lines=lines,
        revision=revision(raw),
        extra={key: value for key, value in (
            ("name", text(raw.get("name"))), ("order_name", text(order.get("name"))),
            ("decline_reason", text(decline.get("reason"))), ("decline_note", text(decline.get("note"))),
            ("closed_at", text(raw.get("closedAt")))) if value},
    )


def _return_line(raw: Mapping[str, Any], order_id: str | None, currency: str | None,
                 prices: Mapping[str, int | None]) -> ReturnLine:
    item = obj(obj(raw.get("fulfillmentLineItem")).get("lineItem"))
    line_item = tail(item.get("id"))
    definition = obj(raw.get("returnReasonDefinition"))
    handle = text(definition.get("handle"))
    code = handle or text(raw.get("returnReason"))
    note, words = text(raw.get("customerNote")), text(raw.get("returnReasonNote"))
    processed, refunded = _quantity(raw, "processedQuantity"), _quantity(raw, "refundedQuantity")
    return ReturnLine(
        external_id=required_id(raw), order_external_id=order_id, order_line_external_id=line_item,
        sku=text(item.get("sku")), title=text(item.get("title")), quantity=_quantity(raw, "quantity"),
        reason=reason_of_definition(handle, text(definition.get("name")), words or note) if handle
        else reason(code, words or note), channel_reason=code, customer_comment=note or words,
        channel_status=f"processed {processed}, refunded {refunded}" if processed or refunded else None,
        unit_price=prices.get(line_item) if line_item else None, currency=currency,
    )


def line_prices(lines: list[Mapping[str, Any]]) -> dict[str, int | None]:
    prices: dict[str, int | None] = {}
    for line in lines:
        found = tail(line.get("id"))
        if found is not None:
            prices[found] = _money(line.get("originalUnitPriceSet"))[0]
    return prices


def map_order(raw: Mapping[str, Any], lines: list[Mapping[str, Any]]) -> Order:
    currency = text(raw.get("currencyCode"))
    return Order(
        external_id=required_id(raw), placed_at=when(raw.get("processedAt")) or when(raw.get("createdAt")),
        channel_status=text(raw.get("displayFinancialStatus")), currency=currency,
        total_amount=_money(raw.get("totalPriceSet"))[0], customer=customer(raw),
        lines=tuple(OrderLine(external_id=required_id(line), sku=text(line.get("sku")), title=text(line.get("title")),
                              quantity=_quantity(line, "quantity"), unit_price=_money(line.get("originalUnitPriceSet"))[0],
                              currency=currency)
                    for line in items(lines)),
    )


def updated_at(raw: Any) -> datetime | None:
    return when(obj(raw).get("updatedAt"))


def search_since(moment: datetime) -> str:
    """The orders search for "updated at or after": Shopify's syntax, the time in UTC with a Z."""
    utc = moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"updated_at:>='{utc}'"


# --- decisions ---------------------------------------------------------------------------------------

def act_marker(act: DecisionAct) -> str:
    """What retsync writes into a refund's or an order's note for an act, so a retry recognises its work."""
    return f"[retsync {act.key}]"


def act_note(act: DecisionAct, what: str) -> str:
    words = f"{act_marker(act)} {what}"
    return f"{words}: {act.note}" if act.note else words


def lines_left(act: DecisionAct, state: Mapping[str, Any], done_key: str) -> list[tuple[str, int]]:
    """The act's lines as (return line id, units) still to do: its units, less what Shopify shows done."""
    by_id = {tail(line.get("id")): line for line in objs(obj(state.get("returnLineItems")).get("nodes"))}
    left = []
    for line in act.lines:
        node = by_id.get(line.line_external_id)
        if node is None:
            continue
        room = _quantity(node, "quantity") - _quantity(node, done_key)
        units = min(line.quantity, room)
        if units > 0:
            left.append((gid("ReturnLineItem", line.line_external_id), units))
    return left


def all_done(state: Mapping[str, Any], done_key: str) -> bool:
    lines = objs(obj(state.get("returnLineItems")).get("nodes"))
    return bool(lines) and all(_quantity(line, done_key) >= _quantity(line, "quantity") for line in lines)


def process_input(return_gid: str, lines: list[tuple[str, int]], disposition: str, refund: bool,
                  notify: bool, note: str, location: str | None) -> dict[str, Any]:
    """`returnProcess` (2025-07+): the items confirmed with their disposition, refunded where `refund`."""
    def dispose(units: int) -> dict[str, Any]:
        found = {"quantity": units, "dispositionType": disposition}
        return {**found, "locationId": location} if disposition == "RESTOCKED" and location else found

    body: dict[str, Any] = {"returnId": return_gid, "notifyCustomer": notify, "note": note[:500],
                            "returnLineItems": [{"id": line, "quantity": units, "dispositions": [dispose(units)]}
                                                for line, units in lines]}
    if refund:
        body["financialTransfer"] = {"issueRefund": {"allowOverRefunding": False}}
    return body


def refund_input(return_gid: str, lines: list[tuple[str, int]], notify: bool) -> dict[str, Any]:
    """`returnRefund`, the path before 2025-07: the returned quantities refunded (Shopify restocks nothing)."""
    return {"returnId": return_gid, "notifyCustomer": notify,
            "returnRefundLineItems": [{"returnLineItemId": line, "quantity": units} for line, units in lines]}


# --- the back office -------------------------------------------------------------------------------------

def hold_tag(key: str) -> str:
    """The tag that finds the draft order of one held return again (Shopify tags hold 40 characters; a key may
    be longer, so the tag carries its digest and the key itself is in a custom attribute)."""
    return f"retsync-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def draft_input(request: HoldRequest, decision_tags: Mapping[str, DecisionKind]) -> dict[str, Any]:
    """A draft order holding another channel's return: its items as custom lines (no product, no stock
    reserved), the key and the marketplace's return in custom attributes, what to do in the note."""
    ret = request.ret
    tags = ", ".join(f"{tag} ({kind.value})" for tag, kind in decision_tags.items())
    reason_words = ret.channel_reason or ret.reason.value
    note = (f"Return {ret.external_id} from {request.source_title} (order {ret.order_external_id or 'unknown'}), "
            f"reason: {reason_words}.\nDecide it by adding one tag: {tags}.\n{NOTE_MARKER}\n")
    lines = [{"title": (line.title or line.sku or f"Returned item {line.external_id}")[:255], "sku": line.sku,
              "quantity": max(1, line.quantity), "requiresShipping": False, "taxable": False,
              **({"originalUnitPrice": f"{line.unit_price / 100:.2f}"} if line.unit_price is not None else {})}
             for line in ret.lines] or [{"title": f"Return {ret.external_id}", "quantity": 1,
                                         "requiresShipping": False, "taxable": False}]
    attributes = [{"key": HOLD_KEY_ATTRIBUTE, "value": request.key},
                  {"key": "marketplace", "value": request.source_title},
                  {"key": "marketplace_return", "value": ret.external_id}]
    return {"note": note, "tags": [HOLD_TAG, hold_tag(request.key)], "customAttributes": attributes,
            "lineItems": lines, **({"email": ret.customer.email} if ret.customer.email else {})}


def held_key(draft: Mapping[str, Any]) -> str | None:
    for attribute in objs(draft.get("customAttributes")):
        if text(attribute.get("key")) == HOLD_KEY_ATTRIBUTE:
            return text(attribute.get("value"))
    return None


def held_decision(draft: Mapping[str, Any], decision_tags: Mapping[str, DecisionKind]) -> HeldDecision | None:
    """The merchant's decision on a held draft order: the first decision tag on it, the note below the marker."""
    reference = text(draft.get("id"))
    if reference is None or held_key(draft) is None:
        return None
    tags = [text(tag) for tag in draft.get("tags") or [] if isinstance(tag, str)]
    chosen = next((tag for tag in tags if tag and tag.lower() in decision_tags), None)
    if chosen is None:
        return None
    note_text = text(draft.get("note2")) or ""
    _, marker, after = note_text.partition(NOTE_MARKER)
    note = text(after) if marker else None
    return HeldDecision(reference=reference, kind=decision_tags[chosen.lower()], note=note[:2000] if note else None,
                        decided_at=when(draft.get("updatedAt")), shop_status=f"tag {chosen}")
