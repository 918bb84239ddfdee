"""Translation only: Magento's JSON (Admin REST 2.4.9) to retsync's unified model, and decisions back.

No requests here. RMA item `reason` / `condition` / `resolution` are EAV option ids; the connector hands in the
labels it read from `/V1/returnsAttributeMetadata/{code}` (an id it has no label for is kept verbatim). An RMA
names the order item that was shipped: for a configurable product that is the `simple` child, so an order's line
is keyed by the child's `item_id` and priced from its `configurable` parent (one line per product bought).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retsync.kit.contract import DecisionAct, HeldDecision, HoldRequest
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, items, minor_units, obj, objs, text, when
from retsync.kit.reasons import reason_from_words

Labels = Mapping[str, Mapping[str, str]]
"""attribute code (reason, condition, resolution) → option id → label."""

STATUSES = {
    "pending": ReturnStatus.REQUESTED, "authorized": ReturnStatus.IN_TRANSIT,
    "partially_authorized": ReturnStatus.IN_TRANSIT, "received": ReturnStatus.RECEIVED,
    "received_on_item": ReturnStatus.RECEIVED, "approved_on_item": ReturnStatus.RECEIVED,
    "rejected_on_item": ReturnStatus.RECEIVED, "approved": ReturnStatus.DECIDED, "rejected": ReturnStatus.DECIDED,
    "denied": ReturnStatus.DECIDED, "closed": ReturnStatus.CLOSED, "processed_closed": ReturnStatus.CLOSED,
}
UNKNOWN_STATUS = ReturnStatus.REQUESTED
"""A status a module added: shown as open, so the merchant looks at it rather than missing it."""
CLOSED = ("closed", "processed_closed")
"""RMAs Magento no longer lets anyone edit: decided already."""
CREDIT_MEMO_PREFIX = "creditmemo-"
"""Open Source returns are credit memos; their ids are kept apart from RMA ids."""


def required(record: Mapping[str, Any], key: str) -> str:
    value = text(record.get(key))
    if value is None:
        raise KeyError(key)
    return value


def marker(key: str) -> str:
    """What retsync writes into a comment of everything it does for an act, so a retry finds it."""
    return f"[retsync {key}]"


def label(labels: Labels, code: str, value: Any) -> str | None:
    raw = text(value)
    return labels.get(code, {}).get(raw, raw) if raw else None


def rma_revision(raw: Mapping[str, Any]) -> str:
    """RMAs have no updated_at: what changes when anyone acts on one (status, item statuses, comments, tracks)."""
    statuses = ",".join(f"{text(i.get('entity_id'))}:{text(i.get('status'))}" for i in items(raw.get("items")))
    return f"{text(raw.get('status'))}|{statuses}|{len(objs(raw.get('comments')))}|{len(objs(raw.get('tracks')))}"


RECEIVED_STATUSES = ("received", "received_on_item", "approved_on_item", "rejected_on_item", "processed_closed")
"""RMA statuses that only follow the parcel's receipt (Magento approves or rejects an item once received)."""
REFUNDED_STATE = "2"
"""A credit memo's `state`: 1 open (an online refund not settled yet), 2 refunded, 3 cancelled."""
MARK = re.compile(r"\[retsync ([^\]\s]{1,200})\]")


def received_at(raw: Mapping[str, Any]) -> datetime | None:
    """When the RMA's items were received, as far as the schema tells. `rma-data-item-interface` has no dates,
    tracks (`rma-data-track-interface`) have none, and there is no item status history in the Admin REST API; the
    only dated record is the RMA's status history (`comments`: `created_at` with the RMA's `status` at that
    moment). So: the first comment written while the RMA stood in a status that only follows receipt. Never
    earlier than the receipt (refund_overdue counts from it); None where no comment says so (the engine then
    counts from when retsync first saw the RMA received)."""
    found = [when(c.get("created_at")) for c in objs(raw.get("comments"))
             if text(c.get("status")) in RECEIVED_STATUSES]
    return min((moment for moment in found if moment is not None), default=None)


def refunded(memo: Mapping[str, Any]) -> bool:
    state = text(memo.get("state"))
    return state is None or state == REFUNDED_STATE


def rma_memos(raw: Mapping[str, Any], memos: Sequence[Mapping[str, Any]],
              parents_of: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """The refunded credit memos of the RMA's order that are this RMA's refund.

    A credit memo names no RMA. One a retsync decision made carries the act's key in its comment, and the act
    left the same key in an RMA comment: such a memo is the RMA's whose comments carry its key, and no other's.
    One the merchant made in the admin carries no key: it is the RMA's when it was made on or after the RMA was
    requested and every item it refunds is one of the RMA's items, at most the quantity requested (a
    configurable product's parent line counts as the child the RMA names). Two RMAs of one order whose items
    both fit such a memo both claim it (the double-refund flag then shows it)."""
    keys = {key for c in objs(raw.get("comments")) for key in MARK.findall(text(c.get("comment")) or "")}
    wanted: dict[str, int] = {}
    for item in items(raw.get("items")):
        order_item = text(item.get("order_item_id"))
        if order_item:
            wanted[order_item] = wanted.get(order_item, 0) + count(item.get("qty_requested"))
    requested = when(raw.get("date_requested"))
    child_of = {parent: child for child, parent in parents_of.items()}
    mine = []
    for memo in memos:
        if not refunded(memo):
            continue
        marked = {key for c in objs(memo.get("comments")) for key in MARK.findall(text(c.get("comment")) or "")}
        if marked:
            if marked & keys:
                mine.append(memo)
            continue
        created = when(memo.get("created_at"))
        if requested is not None and created is not None and created < requested:
            continue
        quantities = _memo_quantities(memo, child_of)
        if quantities and all(q <= wanted.get(target, 0) for target, q in quantities.items()):
            mine.append(memo)
    return mine


def _memo_quantities(memo: Mapping[str, Any], child_of: Mapping[str, str]) -> dict[str, int]:
    """order item → units a credit memo refunds ({} for one that cannot be read: it is nobody's refund, and
    never a reason to set the RMA aside)."""
    quantities: dict[str, int] = {}
    try:
        for item in items(memo.get("items")):
            order_item, qty = text(item.get("order_item_id")) or "", count(item.get("qty"))
            if qty:
                target = child_of.get(order_item, order_item)
                quantities[target] = max(quantities.get(target, 0), qty)  # parent and child rows: one product
    except ValueError:
        return {}
    return quantities


def map_rma(raw: Mapping[str, Any], labels: Labels, memos: Sequence[Mapping[str, Any]] = (),
            order: Mapping[str, Any] | None = None) -> Return:
    """An RMA, with its refund from `memos` (the credit memos of its order, `rma_memos`) and `order` (for the
    configurable pairs and `total_refunded`): `refund_amount` is the memos' grand totals, or the order's own
    `total_refunded` where every refunded memo of the order is this RMA's (the order's books then speak for the
    RMA alone); `refunded_at` the newest memo's date."""
    external_id = required(raw, "entity_id")
    created = when(raw.get("date_requested"))
    if created is None:
        raise ValueError("date_requested is not a date")
    order_id = text(raw.get("order_id"))
    status = text(raw.get("status"))
    comment = next((text(c.get("comment")) for c in objs(raw.get("comments"))
                    if not c.get("admin") and text(c.get("comment"))), None)
    track = next(iter(objs(raw.get("tracks"))), {})
    lines = tuple(_rma_line(item, order_id, labels, comment) for item in items(raw.get("items")))
    first = lines[0] if lines else None
    mine = rma_memos(raw, memos, parents(order or {}))
    memo_ids = sorted((text(m.get("entity_id")) or "?" for m in mine), key=lambda i: (len(i), i))
    amount = refund_at = None
    currency = text((order or {}).get("order_currency_code"))
    if mine:
        totals = [minor_units(m.get("grand_total")) for m in mine]
        amount = sum(t for t in totals if t is not None) if any(t is not None for t in totals) else None
        books = minor_units((order or {}).get("total_refunded"))
        if books is not None and books > 0 and all(m in mine for m in memos if refunded(m)):
            amount = books
        refund_at = max((d for d in (when(m.get("created_at")) for m in mine) if d is not None), default=None)
        currency = currency or text(mine[0].get("order_currency_code"))
    return Return(
        external_id=external_id, order_external_id=order_id,
        status=STATUSES.get(status or "", UNKNOWN_STATUS), channel_status=status,
        reason=first.reason if first else ReturnReason.UNKNOWN, channel_reason=first.channel_reason if first else None,
        created_at=created, customer=Customer(email=text(raw.get("customer_custom_email"))),
        tracking_number=text(track.get("track_number")),
        carrier=text(track.get("carrier_title")) or text(track.get("carrier_code")),
        lines=lines, revision=rma_revision(raw) + (f"|cm:{','.join(memo_ids)}" if memo_ids else ""),
        received_at=received_at(raw), refunded_at=refund_at, refund_amount=amount, currency=currency,
        extra={k: v for k, v in {"increment_id": text(raw.get("increment_id")),
                                 "order_increment_id": text(raw.get("order_increment_id"))}.items() if v},
    )


def _rma_line(raw: Mapping[str, Any], order_id: str | None, labels: Labels, comment: str | None) -> ReturnLine:
    reason = label(labels, "reason", raw.get("reason"))
    condition = label(labels, "condition", raw.get("condition"))
    words = " ".join(w for w in (reason, comment) if w)
    return ReturnLine(
        external_id=required(raw, "entity_id"), order_external_id=order_id,
        order_line_external_id=text(raw.get("order_item_id")), quantity=count(raw.get("qty_requested")),
        reason=reason_from_words(words) if words else ReturnReason.UNKNOWN, channel_reason=reason,
        customer_comment=comment if not condition else f"{comment or ''} (condition: {condition})".strip(),
        channel_status=text(raw.get("status")),
    )


# --- orders ---------------------------------------------------------------------------------------

def parents(order: Mapping[str, Any]) -> dict[str, str]:
    """child item_id → parent item_id of the configurable products in `order`."""
    return {required(i, "item_id"): text(i.get("parent_item_id")) or "" for i in items(order.get("items"))
            if text(i.get("parent_item_id"))}


def customer(order: Mapping[str, Any]) -> Customer:
    billing = obj(order.get("billing_address"))
    name = " ".join(n for n in (text(billing.get("firstname")), text(billing.get("lastname"))) if n)
    return Customer(email=text(billing.get("email")) or text(order.get("customer_email")), name=name or None,
                    phone=text(billing.get("telephone")), postcode=text(billing.get("postcode")))


def map_order(raw: Mapping[str, Any]) -> Order:
    currency = text(raw.get("order_currency_code"))
    lines = items(raw.get("items"))
    by_id = {text(i.get("item_id")): i for i in lines}
    has_child = {text(i.get("parent_item_id")) for i in lines if text(i.get("parent_item_id"))}
    mapped = []
    for item in lines:
        if text(item.get("item_id")) in has_child:
            continue  # the configurable parent: its line is the child's, priced from it
        priced = by_id.get(text(item.get("parent_item_id")), item)
        mapped.append(OrderLine(external_id=required(item, "item_id"), sku=text(item.get("sku")),
                                title=text(priced.get("name")) or text(item.get("name")),
                                quantity=count(item.get("qty_ordered")), unit_price=minor_units(priced.get("price")),
                                currency=currency))
    return Order(external_id=required(raw, "entity_id"), placed_at=when(raw.get("created_at")),
                 channel_status=text(raw.get("status")), currency=currency,
                 total_amount=minor_units(raw.get("grand_total")), customer=customer(raw), lines=tuple(mapped))


def order_updated_at(raw: Any) -> datetime | None:
    return when(obj(raw).get("updated_at"))


# --- Open Source: credit memos as refunded returns ------------------------------------------------

def map_creditmemo(raw: Mapping[str, Any], order: Mapping[str, Any] | None) -> Return:
    number = required(raw, "entity_id")
    created = when(raw.get("created_at"))
    if created is None:
        raise ValueError("created_at is not a date")
    order_id = text(raw.get("order_id"))
    currency = text(raw.get("order_currency_code"))
    pairs = parents(order or {})
    child_of = {parent: child for child, parent in pairs.items()}
    memo_items = items(raw.get("items"))
    named = {text(i.get("order_item_id")) for i in memo_items}
    lines = []
    for item in memo_items:
        item_id = text(item.get("order_item_id"))
        if item_id in pairs and pairs[item_id] in named:
            continue  # the child of a configurable refunded with its parent: one line
        quantity = count(item.get("qty"))
        if quantity == 0:
            continue
        lines.append(ReturnLine(
            external_id=required(item, "entity_id"), order_external_id=order_id,
            order_line_external_id=child_of.get(item_id or "", item_id), sku=text(item.get("sku")),
            title=text(item.get("name")), quantity=quantity, unit_price=minor_units(item.get("price")),
            currency=currency, channel_status="refunded", channel_decision=DecisionKind.ACCEPT,
            channel_decision_quantity=quantity))
    comment = next((text(c.get("comment")) for c in objs(raw.get("comments")) if text(c.get("comment"))), None)
    return Return(
        external_id=CREDIT_MEMO_PREFIX + number, order_external_id=order_id, status=ReturnStatus.REFUNDED,
        channel_status="creditmemo", reason=reason_from_words(comment) if comment else ReturnReason.UNKNOWN,
        created_at=created, decided_at=created, refunded_at=created, refund_amount=minor_units(raw.get("grand_total")),
        currency=currency, customer=customer(order or {}), lines=tuple(lines),
        revision=text(raw.get("updated_at")) or text(raw.get("created_at")),
        extra={k: v for k, v in {"increment_id": text(raw.get("increment_id"))}.items() if v},
    )


# --- decisions ------------------------------------------------------------------------------------

@dataclass
class Plan:
    """What one act does to an RMA: its items' new values, and the order items to refund (with the quantities)."""

    items: list[dict[str, Any]]
    changed: bool = False
    refund: dict[str, int] = field(default_factory=dict)
    to_stock: bool = True


def plan(rma: Mapping[str, Any], act: DecisionAct, resolution: str | None, refund_on_accept: bool) -> Plan:
    """Each act line's RMA item moved to where `act.kind` puts it, the other items left as they are. Idempotent:
    planning again after the items were saved changes nothing and names the same refund."""
    wanted = {line.line_external_id: line.quantity for line in act.lines}
    result = Plan(items=[], to_stock=act.kind is not DecisionKind.KEEP)
    for raw in items(rma.get("items")):
        item = dict(raw)
        item_id = text(item.get("entity_id")) or ""
        if item_id in wanted:
            quantity = wanted[item_id] or count(item.get("qty_requested"))
            before = dict(item)
            _move(item, act.kind, quantity, resolution)
            result.changed |= item != before
            refunds = (act.kind is DecisionKind.KEEP
                       or (act.kind is DecisionKind.ACCEPT and refund_on_accept and item["status"] == "approved"))
            if refunds:
                order_item = text(item.get("order_item_id")) or ""
                result.refund[order_item] = result.refund.get(order_item, 0) + quantity
        result.items.append(item)
    return result


def _move(item: dict[str, Any], kind: DecisionKind, quantity: int, resolution: str | None) -> None:
    status = text(item.get("status")) or "pending"
    if kind is DecisionKind.ACCEPT:
        if status == "pending":
            item.update(status="authorized", qty_authorized=quantity)
        elif status in ("received", "approved"):
            item.update(status="approved", qty_approved=quantity)
    elif kind is DecisionKind.REJECT:
        item["status"] = "rejected" if status in ("received", "rejected") else "denied"
    elif kind in (DecisionKind.REPAIR, DecisionKind.EXCHANGE):
        item.update(status="approved", qty_authorized=count(item.get("qty_authorized")) or quantity,
                    qty_approved=quantity)
        if resolution:
            item["resolution"] = resolution
    else:  # keep, cancel: nothing comes back; the item is denied and the RMA closes with the last one
        item["status"] = "denied"


def refund_body(act: DecisionAct, quantities: Mapping[str, int], parents_of: Mapping[str, str], to_stock: bool,
                notify: bool) -> dict[str, Any]:
    """`POST /V1/order/{id}/refund`: the order items (a configurable child refunded through its parent), the act's
    key in the credit memo's comment, and the items back to stock unless the buyer keeps them."""
    refunded: dict[int, int] = {}
    for item, quantity in quantities.items():
        target = int(parents_of.get(item) or item)
        refunded[target] = refunded.get(target, 0) + quantity
    words = act.note or f"{act.kind.value} decided in retsync"
    return {"items": [{"order_item_id": item, "qty": qty} for item, qty in refunded.items()], "notify": notify,
            "appendComment": True, "comment": {"comment": f"{words} {marker(act.key)}", "is_visible_on_front": 0},
            "arguments": {"shipping_amount": 0, "adjustment_positive": 0, "adjustment_negative": 0,
                          "extension_attributes": {"return_to_stock_items": sorted(refunded) if to_stock else []}}}


def memo_with(memos: Sequence[Any], key: str) -> Mapping[str, Any] | None:
    """The credit memo an earlier attempt of act `key` made (its comment carries the key), if any."""
    for memo in memos:
        if any(marker(key) in (text(c.get("comment")) or "") for c in objs(obj(memo).get("comments"))):
            return obj(memo)
    return None


def comment_with(rma: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    return next((c for c in objs(rma.get("comments")) if marker(key) in (text(c.get("comment")) or "")), None)


def resolution_id(labels: Labels, wanted: str) -> str | None:
    """The resolution option named `wanted` (its id, or its label in any case)."""
    options = labels.get("resolution", {})
    if wanted in options:
        return wanted
    return next((value for value, name in options.items() if name.strip().lower() == wanted.strip().lower()), None)


# --- the back office: marketplace returns held as RMAs on the hold order --------------------------

HELD_MARK = re.compile(r"\[retsync ([^\]\s]{1,200})\]")
RESOLUTION_KINDS = {"repair": DecisionKind.REPAIR, "exchange": DecisionKind.EXCHANGE}
"""An approved held item whose resolution is labelled so is that decision; any other approval is an accept."""


def held_rma(request: HoldRequest, order: Mapping[str, Any], hold_item: str, now: str) -> dict[str, Any]:
    """`POST /V1/returns`: one RMA item per returned line, all on the hold order's placeholder item, and a comment
    naming the marketplace, its return and items, under the hold's key."""
    ret = request.ret
    lines = "; ".join(f"{line.quantity} × {line.sku or line.ean or '?'} {line.title or ''}".strip()
                      for line in ret.lines) or "no lines"
    about = (f"{request.source_title} return {ret.external_id} (order {ret.order_external_id or '?'}): {lines}. "
             f"Reason: {ret.channel_reason or ret.reason.value}. "
             f"Buyer: {ret.customer.name or ret.customer.email or '?'}. Decide by setting the items' statuses: "
             "authorized/approved = accept (resolution Repair/Exchange for those), rejected/denied = reject; your "
             "newest comment is the note.")
    return {
        "increment_id": "", "entity_id": 0, "order_id": int(required(order, "entity_id")),
        "order_increment_id": text(order.get("increment_id")) or "", "store_id": int(text(order.get("store_id")) or 1),
        "customer_id": 0, "date_requested": now, "customer_custom_email": ret.customer.email or "",
        "items": [{"entity_id": 0, "rma_entity_id": 0, "order_item_id": int(hold_item),
                   "qty_requested": max(1, line.quantity), "qty_authorized": 0, "qty_approved": 0, "qty_returned": 0,
                   "reason": "", "condition": "", "resolution": "", "status": "pending"} for line in ret.lines]
        or [{"entity_id": 0, "rma_entity_id": 0, "order_item_id": int(hold_item), "qty_requested": 1,
             "qty_authorized": 0, "qty_approved": 0, "qty_returned": 0, "reason": "", "condition": "",
             "resolution": "", "status": "pending"}],
        "status": "pending", "tracks": [],
        "comments": [{"comment": f"{about} {marker(request.key)}", "rma_entity_id": 0, "created_at": now,
                      "entity_id": 0, "customer_notified": False, "visible_on_front": False, "status": "pending",
                      "admin": True}],
    }


def held_key(rma: Mapping[str, Any]) -> str | None:
    """The hold key retsync wrote into a held RMA's comment."""
    for comment in objs(rma.get("comments")):
        found = HELD_MARK.search(text(comment.get("comment")) or "")
        if found:
            return found[1]
    return None


def held_decision(rma: Mapping[str, Any], labels: Labels) -> HeldDecision | None:
    """The merchant's decision on a held RMA: once no item is pending any more; None before."""
    statuses = [(text(i.get("status")) or "", label(labels, "resolution", i.get("resolution")) or "")
                for i in items(rma.get("items"))]
    if not statuses or any(s in ("pending", "") for s, _ in statuses):
        return None
    granted = [(s, r) for s, r in statuses if s in ("authorized", "received", "approved")]
    if granted:
        kinds = {RESOLUTION_KINDS.get(r.strip().lower(), DecisionKind.ACCEPT) for s, r in granted if s == "approved"}
        kind = kinds.pop() if len(kinds) == 1 else DecisionKind.ACCEPT
    elif all(s in ("rejected", "denied") for s, _ in statuses):
        kind = DecisionKind.REJECT
    else:
        return None
    notes = [c for c in objs(rma.get("comments")) if c.get("admin") is not False
             and text(c.get("comment")) and not HELD_MARK.search(text(c.get("comment")) or "")]
    newest = max(notes, key=lambda c: (text(c.get("created_at")) or "", text(c.get("entity_id")) or ""), default={})
    return HeldDecision(reference=required(rma, "entity_id"), kind=kind, note=text(newest.get("comment")),
                        decided_at=when(newest.get("created_at")), shop_status=text(rma.get("status")))
