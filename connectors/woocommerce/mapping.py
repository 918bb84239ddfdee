"""WooCommerce wc/v3 JSON <-> the unified model, as pure functions.

WooCommerce has no returns object. A return is an *order* that a returns
plugin moved into a return status (WP Swings: `return-requested`,
`return-approved`, `return-cancelled`), that carries the plugin's request in
its meta (`wps_rma_return_product`), or that was refunded in the shop. So one
order is at most one return, under the order's id, and the order's
`date_modified_gmt` plus its refund ids are the return's revision.

Order statuses are a dynamic enum (any plugin can add one), so statuses are
stored verbatim and only the configured ones carry meaning; nothing here
raises on an unknown value. Only an order without an id is unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, decimal, minor_units, when
from retsync.kit.payload import items as payload_items
from retsync.kit.payload import obj as _obj
from retsync.kit.payload import objs as _objs
from retsync.kit.payload import text as _text
from retsync.kit.reasons import reason_from_words

DECISION_META_PREFIX = "retsync_decision_"
"""Order meta written with every status decision: `retsync_decision_<idempotency key>` -> what was applied."""

REFUND_KEY_META = "retsync_idempotency_key"
REFUND_DECISION_META = "retsync_decision"
REFUND_LINE_META = "retsync_line"
RETURN_SOURCE_META = "retsync_source_return"
"""Set on a shop order that holds a marketplace return (the back-office flow): its value is the hold key
(`<channel>/<return id>`). Such an order is neither a sale nor a return of the shop's own."""
HELD_LINE_META = "retsync_source_line"


@dataclass(frozen=True)
class ReturnRules:
    """The merchant's words for returns in their shop: which statuses mean what, and where the request is kept."""

    requested_statuses: Collection[str] = ("return-requested",)
    approved_statuses: Collection[str] = ("return-approved",)
    cancelled_statuses: Collection[str] = ("return-cancelled",)
    rma_meta_keys: Sequence[str] = ("wps_rma_return_product",)
    line_state_meta_keys: Sequence[str] = ("wps_rma_request_made",)

    @property
    def return_statuses(self) -> frozenset[str]:
        return frozenset((*self.requested_statuses, *self.approved_statuses, *self.cancelled_statuses))


# --- small readers that never raise on a missing or odd field -----------------------------


_decimal = decimal
_count = count
to_minor_units = minor_units
"""A WooCommerce money string ("12.99", refunds "-12.99") to cents (1299)."""


def money(value: Decimal) -> str:
    """Cents-exact money string the way WooCommerce writes it."""
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_gmt(value: Any) -> datetime | None:
    """`*_gmt` fields come without an offset and are UTC; anything unreadable is None."""
    return when(value)


def gmt_text(value: datetime) -> str:
    """The form WooCommerce accepts in `modified_after` with `dates_are_gmt=true`."""
    return value.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()


def order_id_of(order: Mapping[str, Any], what: str) -> str:
    value = order.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise BadPayload(f"{what}: an order without id")
    return str(value).strip()


def meta_value(meta_data: Any, key: str) -> Any:
    """The last value stored under `key` (WordPress keeps the newest last); None when absent."""
    found = None
    for entry in _objs(meta_data):
        if entry.get("key") == key:
            found = entry.get("value")
    return found


def _decoded(value: Any) -> Any:
    """Meta arrays arrive as JSON; some hosts hand them over as a JSON string instead."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


# --- orders --------------------------------------------------------------------------------


def customer_of(order: Mapping[str, Any]) -> Customer:
    billing, shipping = _obj(order.get("billing")), _obj(order.get("shipping"))
    names = [_text(billing.get("first_name")), _text(billing.get("last_name"))]
    if not any(names):
        names = [_text(shipping.get("first_name")), _text(shipping.get("last_name"))]
    name = " ".join(part for part in names if part) or _text(billing.get("company"))
    return Customer(
        email=_text(billing.get("email")),
        name=name,
        phone=_text(billing.get("phone")) or _text(shipping.get("phone")),
        postcode=_text(billing.get("postcode")) or _text(shipping.get("postcode")),
    )


def unit_price(item: Mapping[str, Any]) -> int | None:
    """What the customer paid for one unit, discounts and tax included: what a refund gives back."""
    quantity = _count(item.get("quantity"))
    total, tax = _decimal(item.get("total")), _decimal(item.get("total_tax")) or Decimal(0)
    if quantity and total is not None:
        return to_minor_units((total + tax) / quantity)
    return to_minor_units(item.get("price"))


def _order_line(item: Mapping[str, Any], currency: str | None) -> OrderLine | None:
    item_id = _text(item.get("id"))
    if item_id is None:
        return None
    return OrderLine(
        external_id=item_id,
        sku=_text(item.get("sku")),
        title=_text(item.get("name")),
        quantity=_count(item.get("quantity")),
        unit_price=unit_price(item),
        currency=currency,
    )


def map_order(order: Mapping[str, Any]) -> Order:
    currency = _text(order.get("currency"))
    lines = (_order_line(item, currency) for item in payload_items(order.get("line_items")))
    return Order(
        external_id=order_id_of(order, "order"),
        placed_at=parse_gmt(order.get("date_created_gmt")),
        channel_status=_text(order.get("status")),
        currency=currency,
        total_amount=to_minor_units(order.get("total")),
        customer=customer_of(order),
        lines=tuple(line for line in lines if line is not None),
    )


# --- the returns plugin's request ----------------------------------------------------------


@dataclass
class _RequestedLine:
    item_id: str
    quantity: int = 0
    states: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class RmaRequest:
    """The WP Swings request(s) of one order, merged: requests are keyed by time, lines by order item."""

    created_at: datetime | None = None
    states: list[str] = field(default_factory=list)
    reason: str | None = None
    lines: dict[str, _RequestedLine] = field(default_factory=dict)


def _epoch(key: Any, request: Mapping[str, Any]) -> datetime | None:
    for value in (key, request.get("date"), request.get("time")):
        amount = _decimal(value)
        if amount is not None and amount > 0:
            try:
                return datetime.fromtimestamp(float(amount), tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                continue
    return None


def _request_entries(value: Any) -> list[tuple[Any, Mapping[str, Any]]]:
    decoded = _decoded(value)
    if isinstance(decoded, Mapping):
        if "products" in decoded:  # a single request stored without the time key
            return [(None, decoded)]
        return [(key, entry) for key, entry in decoded.items() if isinstance(entry, Mapping)]
    return [(None, entry) for entry in _objs(decoded)]


def rma_request(meta_data: Any, rules: ReturnRules) -> RmaRequest | None:
    """The returned lines and their state from the plugin's order meta; None when the order has no request."""
    entries = [entry for key in rules.rma_meta_keys for entry in _request_entries(meta_value(meta_data, key))]
    if not entries:
        return None
    request = RmaRequest()
    for key, entry in entries:
        created = _epoch(key, entry)
        if created is not None and (request.created_at is None or created < request.created_at):
            request.created_at = created
        state = _text(entry.get("status"))
        if state:
            request.states.append(state)
        reason = " / ".join(t for t in (_text(entry.get("subject")), _text(entry.get("reason"))) if t)
        request.reason = request.reason or reason or None
        for product in _objs(entry.get("products")):
            item_id = _text(product.get("item_id"))
            if item_id is None:
                continue
            line = request.lines.setdefault(item_id, _RequestedLine(item_id))
            line.quantity += _count(product.get("qty"))
            if state:
                line.states.append(state)
            if reason:
                line.reasons.append(reason)
    line_states = {}
    for key in rules.line_state_meta_keys:
        line_states.update({str(k): _text(v) for k, v in _obj(_decoded(meta_value(meta_data, key))).items()})
    for item_id, state in line_states.items():
        if state and item_id in request.lines:
            request.lines[item_id].states.append(state)
    return request


# --- refunds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundFacts:
    refund_id: str
    created_at: datetime | None
    amount: int
    reason: str | None
    decision: DecisionKind | None
    lines: frozenset[str]
    """The order items retsync's refund was for (its `retsync_line` meta: one item id, or several joined by
    commas since one refund carries a whole return)."""
    quantities: Mapping[str, int]


def _items_by_product(order: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """Refund items name their product, not the order item they came from (that link is hidden meta)."""
    found: dict[tuple[str, str], str] = {}
    for item in _objs(order.get("line_items")):
        key = (str(item.get("product_id") or 0), str(item.get("variation_id") or 0))
        if _text(item.get("id")):
            found.setdefault(key, str(item["id"]))
    return found


def refund_facts(refund: Mapping[str, Any], items: Mapping[tuple[str, str], str] | None = None) -> RefundFacts | None:
    refund_id = _text(refund.get("id"))
    if refund_id is None:
        return None
    amount = to_minor_units(refund.get("amount"))
    if amount is None:
        amount = -(to_minor_units(refund.get("total")) or 0)
    quantities: dict[str, int] = {}
    for item in _objs(refund.get("line_items")):
        # WooCommerce stores what an item refund took back against the order item it came from
        product = (str(item.get("product_id") or 0), str(item.get("variation_id") or 0))
        source = _text(meta_value(item.get("meta_data"), "_refunded_item_id")) or (items or {}).get(product)
        if source is not None and _count(item.get("quantity")):
            quantities[source] = quantities.get(source, 0) + _count(item.get("quantity"))
    decision_text = _text(meta_value(refund.get("meta_data"), REFUND_DECISION_META))
    try:
        decision = DecisionKind(decision_text) if decision_text else None
    except ValueError:
        decision = None
    return RefundFacts(
        refund_id=refund_id,
        created_at=parse_gmt(refund.get("date_created_gmt")),
        amount=abs(amount),
        reason=_text(refund.get("reason")),
        decision=decision,
        lines=_item_ids(meta_value(refund.get("meta_data"), REFUND_LINE_META)),
        quantities=quantities,
    )


def _item_ids(value: Any) -> frozenset[str]:
    return frozenset(part.strip() for part in (_text(value) or "").split(",") if part.strip())


def refund_ids(order: Mapping[str, Any]) -> list[str]:
    """The refunds an order lists (`refunds: [{id, reason, total}]`): telling whether it is worth fetching them."""
    return [str(entry["id"]) for entry in _objs(order.get("refunds")) if _text(entry.get("id"))]


def recorded_decisions(meta_data: Any) -> dict[str, dict[str, Any]]:
    """Status decisions retsync applied, by idempotency key, read back from the order's meta."""
    found: dict[str, dict[str, Any]] = {}
    for entry in _objs(meta_data):
        key = entry.get("key")
        if isinstance(key, str) and key.startswith(DECISION_META_PREFIX):
            value = _decoded(entry.get("value"))
            found[key[len(DECISION_META_PREFIX):]] = dict(value) if isinstance(value, Mapping) else {}
    return found


# --- returns -------------------------------------------------------------------------------


def held_key(order: Mapping[str, Any]) -> str | None:
    """The hold key of an order that holds another channel's return (the back-office flow), else None."""
    return _text(meta_value(order.get("meta_data"), RETURN_SOURCE_META))


def is_return(order: Mapping[str, Any], rules: ReturnRules) -> bool:
    """Whether an order stands for a return of this shop: a return status, a returns-plugin request, or a refund.

    An order holding another channel's return is not: that return is already stored under its own channel."""
    if held_key(order):
        return False
    if _text(order.get("status")) in rules.return_statuses or refund_ids(order):
        return True
    meta = order.get("meta_data")
    if recorded_decisions(meta):
        return True
    return any(meta_value(meta, key) for key in rules.rma_meta_keys)


def revision_of(order: Mapping[str, Any]) -> str:
    """Changes whenever the shop changes the order; refunds bump `date_modified` too, their ids make sure."""
    return "|".join([str(order.get("date_modified_gmt") or ""), str(order.get("status") or ""), *refund_ids(order)])


def refunds_in_revision(revision: str | None) -> set[str]:
    """The refund ids a stored revision (`revision_of`) names: the refunds stored with that return."""
    return set(revision.split("|")[2:]) if revision else set()


def _shop_decision(status: str | None, rules: ReturnRules) -> DecisionKind | None:
    """A decision taken in the shop's panel: WP Swings approves (`return-approved`) or declines (`return-cancelled`)."""
    if status in rules.approved_statuses:
        return DecisionKind.ACCEPT
    if status in rules.cancelled_statuses:
        return DecisionKind.REJECT
    return None


def _status(
    status: str | None,
    rules: ReturnRules,
    request: RmaRequest | None,
    refunds: Sequence[RefundFacts],
    decisions: Mapping[str, Mapping[str, Any]],
) -> ReturnStatus:
    """Refunds say most, then what retsync applied, then the configured statuses, then the plugin's own state."""
    if any(refund.amount for refund in refunds) or status == "refunded":
        return ReturnStatus.REFUNDED
    if decisions:
        kinds = {str(decision.get("kind")) for decision in decisions.values()}
        return ReturnStatus.CANCELLED if kinds == {DecisionKind.CANCEL.value} else ReturnStatus.DECIDED
    if status in rules.cancelled_statuses:
        return ReturnStatus.CANCELLED
    if status in rules.approved_statuses:
        return ReturnStatus.DECIDED
    if status in rules.requested_statuses:
        return ReturnStatus.REQUESTED
    states = {state.casefold() for state in request.states} if request else set()
    if states and states <= {"cancel", "cancelled"}:
        return ReturnStatus.CANCELLED
    if states and "pending" not in states:
        return ReturnStatus.DECIDED
    if states:
        return ReturnStatus.REQUESTED
    if status == "cancelled":
        return ReturnStatus.CANCELLED
    return ReturnStatus.CLOSED  # moved out of every return status in the shop, no decision we can name


def _returned_quantities(
    order: Mapping[str, Any], rules: ReturnRules, request: RmaRequest | None, refunds: Sequence[RefundFacts],
    was_return: bool,
) -> dict[str, int]:
    """Which order items come back, and how many: the plugin's request, else the refunds, else the whole order."""
    if request is not None and request.lines:
        return {item_id: line.quantity for item_id, line in request.lines.items()}
    refunded: dict[str, int] = {}
    for refund in refunds:
        for item_id, quantity in refund.quantities.items():
            refunded[item_id] = refunded.get(item_id, 0) + quantity
    if refunded:
        return refunded
    meta, status = order.get("meta_data"), _text(order.get("status"))
    whole = (was_return and not refunds) or recorded_decisions(meta)
    if whole or status == "refunded" or status in rules.return_statuses:
        return {str(item["id"]): _count(item.get("quantity")) for item in _objs(order.get("line_items"))
                if _text(item.get("id"))}
    return {}


def _decided_items(decision: Mapping[str, Any]) -> set[str]:
    """The order items a status decision retsync recorded was for: `lines` (item id -> quantity) since one
    decision act covers a whole return, `line` in records written before."""
    lines = decision.get("lines")
    if isinstance(lines, Mapping):
        return {str(item_id) for item_id in lines}
    return {str(decision.get("line"))}


def _line_decision(
    item_id: str,
    shop: DecisionKind | None,
    refunds: Sequence[RefundFacts],
    decisions: Mapping[str, Mapping[str, Any]],
) -> DecisionKind | None:
    """What the shop says was decided on this line: retsync's own record first, so a pushed decision is not
    read back as a different one; then a refund of it; then the status the merchant set in the panel."""
    for decision in decisions.values():
        if item_id in _decided_items(decision):
            try:
                return DecisionKind(str(decision.get("kind")))
            except ValueError:
                break
    for refund in refunds:
        if item_id in refund.lines or item_id in refund.quantities:
            return refund.decision or DecisionKind.ACCEPT
    if shop is None and any(refund.amount and not refund.quantities and not refund.lines for refund in refunds):
        return DecisionKind.ACCEPT
    return shop


def _return_lines(
    order: Mapping[str, Any],
    order_id: str,
    rules: ReturnRules,
    request: RmaRequest | None,
    refunds: Sequence[RefundFacts],
    decisions: Mapping[str, Mapping[str, Any]],
    was_return: bool,
) -> tuple[ReturnLine, ...]:
    currency = _text(order.get("currency"))
    items = {str(item.get("id")): item for item in payload_items(order.get("line_items"))}
    shop = _shop_decision(_text(order.get("status")), rules)
    lines = []
    for item_id, quantity in _returned_quantities(order, rules, request, refunds, was_return).items():
        item = items.get(item_id, {})
        requested = request.lines.get(item_id) if request else None
        reason = " / ".join(dict.fromkeys(requested.reasons)) if requested and requested.reasons else None
        reason = reason or (request.reason if request else None)
        decision = _line_decision(item_id, shop, refunds, decisions)
        lines.append(ReturnLine(
            external_id=item_id,
            order_external_id=order_id,
            order_line_external_id=item_id if item else None,
            sku=_text(item.get("sku")),
            title=_text(item.get("name")),
            quantity=quantity,
            reason=reason_from_words(reason),
            channel_reason=reason,
            channel_status=(requested.states[-1] if requested and requested.states else _text(order.get("status"))),
            unit_price=unit_price(item) if item else None,
            currency=currency,
            channel_decision=decision,
            channel_decision_quantity=quantity if decision else None,
        ))
    if not lines:  # a refund of an amount only: no item came back, but the refund is the merchant's to see
        for refund in refunds:
            lines.append(ReturnLine(
                external_id=f"refund-{refund.refund_id}",
                order_external_id=order_id,
                title=refund.reason,
                quantity=0,
                channel_reason=refund.reason,
                channel_status="refunded",
                unit_price=refund.amount,
                currency=currency,
                channel_decision=refund.decision or DecisionKind.ACCEPT,
                channel_decision_quantity=0,
            ))
    return tuple(lines)


def _refunds_since(refunds: list[RefundFacts], request: RmaRequest | None) -> list[RefundFacts]:
    """A refund older than the customer's request (an earlier goodwill refund) does not settle the request."""
    asked = request.created_at if request else None
    if asked is None:
        return refunds
    return [refund for refund in refunds if refund.created_at is None or refund.created_at >= asked]


def map_return(
    order: Mapping[str, Any], refunds: Iterable[Mapping[str, Any]], rules: ReturnRules, *, was_return: bool = False
) -> Return | None:
    """The return an order stands for, with its refunds; None when the order is not a return at all.

    `was_return`: the order is stored as a return, so it stays one even after the shop moved it out of every
    return status (it is then closed), instead of being left open in retsync forever.
    """
    if held_key(order) or not (was_return or is_return(order, rules)):
        return None
    order_id = order_id_of(order, "order")
    meta = order.get("meta_data")
    items = _items_by_product(order)
    facts = [fact for fact in (refund_facts(refund, items) for refund in refunds) if fact is not None]
    request = rma_request(meta, rules)
    facts = _refunds_since(facts, request)
    decisions = recorded_decisions(meta)
    status_text = _text(order.get("status"))
    lines = _return_lines(order, order_id, rules, request, facts, decisions, was_return)
    if not lines:
        return None
    refunded_at = [fact.created_at for fact in facts if fact.created_at is not None]
    # stable across re-reads: a status alone says nothing of when it was set, and `date_modified` moves
    created = (request.created_at if request else None) or min(refunded_at, default=None) \
        or parse_gmt(order.get("date_completed_gmt")) or parse_gmt(order.get("date_created_gmt"))
    if created is None:
        raise BadPayload(f"order {order_id}: a return without any date (no date_created_gmt)")
    status = _status(status_text, rules, request, facts, decisions)
    reason = request.reason if request else None
    coarse = reason_from_words(reason)
    if reason is None:  # the shop's refund reason is the staff's words, not the customer's: no coarse reason
        reason = next((fact.reason for fact in facts if fact.reason), None)
        coarse = reason_from_words(reason, fallback=ReturnReason.UNKNOWN)
    extra: dict[str, Any] = {"order_number": _text(order.get("number")) or order_id}
    if facts:
        extra["refund_ids"] = [fact.refund_id for fact in facts]
    return Return(
        external_id=order_id,
        order_external_id=order_id,
        status=status,
        channel_status=status_text,
        reason=coarse,
        channel_reason=reason,
        created_at=created,
        decided_at=parse_gmt(order.get("date_modified_gmt")) if status is ReturnStatus.DECIDED else None,
        refunded_at=max(refunded_at) if refunded_at else None,
        refund_amount=sum(fact.amount for fact in facts) if facts else None,
        currency=_text(order.get("currency")),
        customer=customer_of(order),
        lines=lines,
        revision=revision_of(order),
        extra=extra,
    )


# --- the back-office flow: another channel's return held as an order of this shop ----------


def held_order(ret: Return, key: str, source_title: str, status: str) -> dict[str, Any]:
    """The order that holds a marketplace return in the shop, so the merchant decides it in the usual panel.

    Unpaid, in a return status, its items those returned (name, quantity, price), the marketplace's buyer as
    billing contact, and the hold key in its meta: how a retry recognises it and the pull leaves it out.
    """
    first, _, last = (ret.customer.name or "").strip().partition(" ")
    items = []
    for line in ret.lines:
        total = Decimal(line.unit_price * line.quantity) / 100 if line.unit_price is not None else Decimal(0)
        meta = [{"key": HELD_LINE_META, "value": line.external_id}]
        if line.sku:
            meta.append({"key": "SKU", "value": line.sku})
        if line.ean:
            meta.append({"key": "EAN", "value": line.ean})
        items.append({"name": line.title or line.sku or f"Item {line.external_id}", "quantity": line.quantity,
                      "subtotal": money(total), "total": money(total), "meta_data": meta})
    reason = ret.channel_reason or (ret.reason.value.replace("_", " ") if ret.reason else "")
    order_part = f" (order {ret.order_external_id})" if ret.order_external_id else ""
    note = f"{source_title} return {ret.external_id}{order_part}" + (f": {reason}" if reason else "")
    billing: dict[str, Any] = {"first_name": first, "last_name": last}
    if ret.customer.email:
        billing["email"] = ret.customer.email
    if ret.customer.postcode:
        billing["postcode"] = ret.customer.postcode
    if ret.customer.phone:
        billing["phone"] = ret.customer.phone
    body: dict[str, Any] = {
        "status": status, "set_paid": False, "billing": billing, "customer_note": note, "line_items": items,
        "meta_data": [{"key": RETURN_SOURCE_META, "value": key}],
    }
    if ret.currency:
        body["currency"] = ret.currency
    return body
