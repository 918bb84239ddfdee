"""Translation only: Channable's returns and orders to retsync's unified model, and decisions back.

A Channable return (`EfferentReturn`) holds ONE item (`data.item`: id, gtin, title, quantity, reason, comment),
so it becomes a return of one line, linked to its order's product line (`data.item.id` is the order's
`data.products[].id`; the gtin is the product's `ean` for the linker where the id does not match). The order is
the Channable order (`data.meta.platform_order_id`: for a Channable-API order connection, Channable's order id).
The marketplace behind each return (`channel_name`: bol, amazon, fruugo, ...) is the return's `marketplace`; its own
ids (`channel_return_id`, `channel_order_id`) are kept in the return's `extra`, with the test and demo marks
(`is_test_return`, `is_demo_return`); either mark makes it `is_test` (stored and shown, counted in no figure).
Every value is read through `retsync.kit.payload`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retsync.kit.contract import DecisionAct
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import count, items, minor_units, obj, text, when
from retsync.kit.reasons import REASON_WORDS, reason_from_words

STATUSES = {
    "new": ReturnStatus.REQUESTED, "manual": ReturnStatus.REQUESTED, "processing": ReturnStatus.RECEIVED,
    "accepted": ReturnStatus.DECIDED, "rejected": ReturnStatus.DECIDED, "repaired": ReturnStatus.DECIDED,
    "keeps": ReturnStatus.DECIDED, "exchanged": ReturnStatus.DECIDED, "cancelled": ReturnStatus.CANCELLED,
}
"""`ChannableReturnsStatus`, one to one: new / manual (handed to the merchant) are open, processing is being
handled, the rest are decisions. `manual` and `processing` cannot be written back."""
UNKNOWN_STATUS = ReturnStatus.REQUESTED
"""A status Channable adds later: shown as open, so the merchant looks at it rather than missing it."""
DECIDED = {"accepted": DecisionKind.ACCEPT, "rejected": DecisionKind.REJECT, "repaired": DecisionKind.REPAIR,
           "keeps": DecisionKind.KEEP, "exchanged": DecisionKind.EXCHANGE, "cancelled": DecisionKind.CANCEL}
"""A return that arrives in one of these was decided at the marketplace (or in Channable): the decision is
stored as the channel's (history, never pushed)."""
STATUS_WORDS = {kind: word for word, kind in DECIDED.items()}
"""How each decision is written: `ChannableApiReturnsStatus` in `POST .../returns/{id}/status`."""


MARKETPLACE_WORDS = ((("not as pictured", "not as shown", "different from the picture", "looks different"),
                      ReturnReason.NOT_AS_EXPECTED),) + tuple(REASON_WORDS)
"""The kit's words, and the phrases marketplaces pass through Channable as their reason ("Not as pictured")."""


MARKETPLACE_LENGTH = 100
"""The store's `marketplace` column: a longer `channel_name` is cut there rather than failing its page."""


def required(record: Mapping[str, Any], key: str) -> str:
    value = text(record.get(key))
    if value is None:
        raise KeyError(key)
    return value


def _name(who: Mapping[str, Any]) -> str | None:
    return " ".join(part for part in (text(who.get("first_name")), text(who.get("last_name"))) if part) or None


def customer(data: Mapping[str, Any]) -> Customer:
    """The buyer from `data.customer`, else the return address (marketplaces pass on different parts)."""
    buyer, place = obj(data.get("customer")), obj(data.get("address"))
    return Customer(email=text(buyer.get("email")) or text(place.get("email")),
                    name=_name(buyer) or _name(place),
                    phone=text(buyer.get("phone")) or text(place.get("phone")),
                    postcode=text(place.get("zip_code")))


def reason(words: str | None, comment: str | None) -> ReturnReason:
    """Marketplaces pass their reason on as text ("Not as pictured"): read from those words, else the comment."""
    found = reason_from_words(words, table=MARKETPLACE_WORDS) if words else ReturnReason.UNKNOWN
    if found in (ReturnReason.UNKNOWN, ReturnReason.OTHER) and comment:
        by_comment = reason_from_words(comment, table=MARKETPLACE_WORDS)
        return by_comment if by_comment is not ReturnReason.OTHER or not words else found
    return found


def modified_at(raw: Any) -> datetime | None:
    """When Channable last changed this return: what the cursor follows. Read leniently (a record set aside
    still moves the walk on)."""
    return when(obj(raw).get("modified"))


def is_test(raw: Any) -> bool:
    meta = obj(obj(obj(raw).get("data")).get("meta"))
    return meta.get("is_test_return") is True or meta.get("is_demo_return") is True


def map_return(raw: Mapping[str, Any]) -> Return:
    external_id = required(raw, "id")
    created = when(raw.get("created"))
    if created is None:
        raise ValueError("created is not a date")
    data = obj(raw.get("data"))
    item, meta = obj(data.get("item")), obj(data.get("meta"))
    status = text(raw.get("status"))
    words, comment = text(item.get("reason")), text(item.get("comment"))
    decided = DECIDED.get(status or "")
    order_id = text(meta.get("platform_order_id"))
    unified = reason(words, comment)
    marketplace = (text(raw.get("channel_name")) or "")[:MARKETPLACE_LENGTH] or None
    line = ReturnLine(
        external_id=external_id, order_external_id=order_id, order_line_external_id=text(item.get("id")),
        ean=text(item.get("gtin")), title=text(item.get("title")), quantity=count(item.get("quantity")),
        reason=unified, channel_reason=words, customer_comment=comment, channel_status=status,
        channel_decision=decided,
    )
    extra: dict[str, Any] = {
        "channel_return_id": text(meta.get("channel_return_id")) or text(raw.get("channel_id")),
        "channel_order_id": text(meta.get("channel_order_id")),
        "platform_name": text(raw.get("platform_name")),
    }
    if meta.get("is_test_return") is True:
        extra["is_test_return"] = True
    if meta.get("is_demo_return") is True:
        extra["is_demo_return"] = True
    if raw.get("error") is True:
        extra["channable_error"] = True
    if raw.get("obfuscated") is True:  # Channable has removed the buyer's data: what is left is no one's
        extra["obfuscated"] = True
    return Return(
        external_id=external_id, order_external_id=order_id,
        status=STATUSES.get(status or "", UNKNOWN_STATUS), channel_status=status,
        reason=unified, channel_reason=words, created_at=created,
        decided_at=when(raw.get("modified")) if decided else None,
        customer=Customer() if raw.get("obfuscated") is True else customer(data),
        marketplace=marketplace, is_test=is_test(raw), lines=(line,), revision=text(raw.get("modified")),
        extra={key: value for key, value in extra.items() if value is not None},
    )


def map_order(raw: Mapping[str, Any]) -> Order:
    data = obj(raw.get("data"))
    price = obj(data.get("price"))
    currency = text(price.get("currency"))
    buyer, billing = obj(data.get("customer")), obj(data.get("billing"))
    return Order(
        external_id=required(raw, "id"), placed_at=when(raw.get("created")),
        channel_status=text(raw.get("status_shipped")), currency=currency, total_amount=minor_units(price.get("total")),
        customer=Customer(email=text(buyer.get("email")) or text(billing.get("email")),
                          name=_name(buyer) or _name(billing),
                          phone=text(buyer.get("phone")) or text(buyer.get("mobile")),
                          postcode=text(billing.get("zip_code"))),
        lines=tuple(OrderLine(external_id=required(line, "id"),
                              sku=text(line.get("article_number")) or text(line.get("reference_code")),
                              ean=text(line.get("ean")), title=text(line.get("title")),
                              quantity=count(line.get("quantity")), unit_price=minor_units(line.get("price")),
                              currency=currency)
                    for line in items(data.get("products"))),
    )


def status_word(act: DecisionAct) -> str:
    """The one `ChannableApiReturnsStatus` that carries out the act (a return is one item: the act is the return)."""
    return STATUS_WORDS[act.kind]
