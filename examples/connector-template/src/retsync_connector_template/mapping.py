"""Translation only: the template channel's JSON to retsync's unified model, and decisions back to its JSON.

No requests here (a failed request is the channel's problem and must fail the page; see `RecordSieve`). Every
value is read through `retsync.kit.payload`, which bounds it (a quantity of 1e30, a date in year 1, a
100,000-line return) so one hostile record is quarantined instead of stored wrong. A value the channel added
after this was written (a new status, a new reason code) is kept verbatim beside the unified one, never a crash.
A record that cannot be read at all (no id, no creation date) raises, and `RecordSieve` sets it aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retsync.kit.contract import DecisionAct, HeldDecision, HoldRequest
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, items, minor_units, obj, objs, text, when
from retsync.kit.reasons import reason_from_words

STATUSES = {
    "requested": ReturnStatus.REQUESTED, "in_transit": ReturnStatus.IN_TRANSIT, "received": ReturnStatus.RECEIVED,
    "refunded": ReturnStatus.REFUNDED, "rejected": ReturnStatus.DECIDED, "closed": ReturnStatus.CLOSED,
}
UNKNOWN_STATUS = ReturnStatus.REQUESTED
"""A status the API added later: the return is shown as open, so the merchant looks at it rather than missing it."""
REASONS = {
    "too_small": ReturnReason.WRONG_SIZE, "too_large": ReturnReason.WRONG_SIZE, "defective": ReturnReason.DEFECTIVE,
    "damaged": ReturnReason.DAMAGED, "wrong_item": ReturnReason.WRONG_ITEM,
    "not_as_described": ReturnReason.NOT_AS_EXPECTED, "changed_mind": ReturnReason.NO_LONGER_NEEDED,
}
"""Reason codes with a unified meaning; `other` (and any code added later) is read from the buyer's comment."""
DECISION_WORDS = {DecisionKind.ACCEPT: "refund", DecisionKind.KEEP: "refund_keep_item", DecisionKind.REJECT: "reject"}
"""How each decision the channel takes is named in `POST /v1/returns/{id}/decisions`."""
PANEL_DECISIONS = {"approve": DecisionKind.ACCEPT, "deny": DecisionKind.REJECT, "refund_keep": DecisionKind.KEEP,
                   "repair": DecisionKind.REPAIR, "replace": DecisionKind.EXCHANGE, "cancel": DecisionKind.CANCEL}
"""The back office's decision words (what the merchant picks in the panel) as unified decisions."""


def required(record: Mapping[str, Any], key: str) -> str:
    """A field the record cannot be stored without; raising sets the record aside."""
    value = text(record.get(key))
    if value is None:
        raise KeyError(key)
    return value


def customer(raw: Any) -> Customer:
    buyer = obj(raw)
    return Customer(email=text(buyer.get("email")), name=text(buyer.get("name")), phone=text(buyer.get("phone")),
                    postcode=text(buyer.get("postcode")))


def reason(code: str | None, comment: str | None) -> ReturnReason:
    """The code's meaning where it has one; else what the buyer's own words name (kit.reasons)."""
    if code in REASONS:
        return REASONS[code]
    return reason_from_words(comment) if comment else (ReturnReason.OTHER if code else ReturnReason.UNKNOWN)


def updated_at(raw: Any) -> datetime | None:
    """When the channel last changed this return: what the pull's cursor follows. Read leniently (a record set
    aside still moves the walk on)."""
    return when(obj(raw).get("updated_at"))


def map_return(raw: Mapping[str, Any]) -> Return:
    external_id = required(raw, "id")
    created = when(raw.get("created_at"))
    if created is None:
        raise ValueError("created_at is not a date")
    currency = text(raw.get("currency"))
    order_id = text(raw.get("order_id"))
    comment = text(raw.get("comment"))
    code = text(raw.get("reason_code"))
    status = text(raw.get("status"))
    refund = obj(raw.get("refund"))
    tracking = obj(raw.get("tracking"))
    return Return(
        external_id=external_id, order_external_id=order_id,
        status=STATUSES.get(status or "", UNKNOWN_STATUS), channel_status=status,
        reason=reason(code, comment), channel_reason=code, created_at=created,
        received_at=when(raw.get("received_at")), refunded_at=when(refund.get("refunded_at")),
        refund_amount=minor_units(refund.get("amount")), currency=currency, customer=customer(raw.get("buyer")),
        tracking_number=text(tracking.get("number")), carrier=text(tracking.get("carrier")),
        lines=tuple(_return_line(line, order_id, currency, code, comment) for line in items(raw.get("lines"))),
        revision=text(raw.get("updated_at")),
    )


def _return_line(raw: Mapping[str, Any], order_id: str | None, currency: str | None, code: str | None,
                 comment: str | None) -> ReturnLine:
    return ReturnLine(
        external_id=required(raw, "id"), order_external_id=order_id,
        order_line_external_id=text(raw.get("order_line_id")), sku=text(raw.get("sku")), title=text(raw.get("title")),
        quantity=count(raw.get("quantity")), reason=reason(code, comment), channel_reason=code,
        customer_comment=comment, channel_status=text(raw.get("decision")),
        unit_price=minor_units(raw.get("unit_price")), currency=currency,
    )


def map_order(raw: Mapping[str, Any]) -> Order:
    currency = text(raw.get("currency"))
    return Order(
        external_id=required(raw, "id"), placed_at=when(raw.get("placed_at")), channel_status=text(raw.get("status")),
        currency=currency, total_amount=minor_units(raw.get("total")), customer=customer(raw.get("buyer")),
        lines=tuple(OrderLine(external_id=required(line, "id"), sku=text(line.get("sku")), ean=text(line.get("ean")),
                              title=text(line.get("title")), quantity=count(line.get("quantity")),
                              unit_price=minor_units(line.get("unit_price")), currency=currency)
                    for line in items(raw.get("lines"))),
    )


def decision_body(act: DecisionAct) -> dict[str, Any]:
    """The one request that carries out a whole act: every line under the act's key, so a retry is recognised."""
    return {"key": act.key, "decision": DECISION_WORDS[act.kind], "note": act.note,
            "lines": [{"line_id": line.line_external_id, "quantity": line.quantity} for line in act.lines]}


def held_body(request: HoldRequest) -> dict[str, Any]:
    """Another channel's return as the back office shows it to the merchant, under the hold's key."""
    ret = request.ret
    return {"key": request.key, "source": request.source_title, "return": {
        "external_id": ret.external_id, "order_id": ret.order_external_id,
        "reason": ret.channel_reason or ret.reason.value, "buyer_name": ret.customer.name,
        "lines": [{"line_id": line.external_id, "sku": line.sku, "title": line.title, "quantity": line.quantity}
                  for line in ret.lines]}}


def held_decision(raw: Mapping[str, Any]) -> HeldDecision | None:
    """The merchant's decision on a held return; None while undecided or for a panel word this does not know."""
    decision = obj(raw.get("decision"))
    kind = PANEL_DECISIONS.get(text(decision.get("kind")) or "")
    if kind is None:
        return None
    lines = {required(line, "line_id"): count(line.get("quantity")) for line in objs(decision.get("lines"))}
    return HeldDecision(reference=required(raw, "id"), kind=kind, note=text(decision.get("note")),
                        decided_at=when(decision.get("decided_at")), lines=lines or None,
                        shop_status=text(raw.get("status")))
