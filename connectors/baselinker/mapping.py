"""Translation only: BaseLinker's returns and orders (NOTES.md, "Return object") to the unified model.

No requests here. Return statuses are the account's own (ids and names from `getOrderReturnStatusList`): the
merchant's `statuses` map says what each id means in retsync's words, the status's name is kept verbatim as
`channel_status`, and an id the map does not name is read from the fixed `fulfillment_status` (0 active,
5 accepted, 1 done, 2 canceled). Times are unix seconds; every value is read through `retsync.kit.payload`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import EARLIEST, count, decimal, items, minor_units, obj, text
from retsync.kit.reasons import reason_from_words

FULFILMENT = {"0": ReturnStatus.REQUESTED, "5": ReturnStatus.DECIDED, "1": ReturnStatus.CLOSED,
              "2": ReturnStatus.CANCELLED}
"""`fulfillment_status`, the one fixed enum of a return: what a status id the merchant did not map stands for."""
UNKNOWN_STATUS = ReturnStatus.REQUESTED
"""Neither mapped nor a known fulfillment_status: shown as open, so the merchant looks at it."""
LATEST = datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp()


def unix(value: Any) -> datetime | None:
    """Unix seconds (a number or its text) as aware UTC; None when unreadable or before `EARLIEST`."""
    seconds = decimal(value)
    if seconds is None or not EARLIEST.timestamp() <= seconds <= LATEST:
        return None
    return datetime.fromtimestamp(int(seconds), timezone.utc)


ID_DIGITS = 18
"""BaseLinker's ids are unsigned 64-bit at most; a longer run of digits is no id (and no cursor follows it)."""


def numeric_id(value: Any) -> int | None:
    """An id as a number, for paging and cursors (`id_from`, `last_log_id`); None for anything else."""
    found = text(value)
    return int(found) if found is not None and found.isdigit() and len(found) <= ID_DIGITS else None


def required(record: Mapping[str, Any], key: str) -> str:
    value = text(record.get(key))
    if value is None:
        raise KeyError(key)
    return value


def revision(raw: Mapping[str, Any]) -> str:
    """BaseLinker keeps no "updated at" on a return: a hash of the record changes whenever anything in it does."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:32]


def source(raw: Any) -> str | None:
    """Where BaseLinker got the return from (`order_return_source`, e.g. a marketplace it mirrors), lower case."""
    found = text(obj(raw).get("order_return_source"))
    return found.lower() if found else None


OWN_SOURCES = frozenset({"shop", "personal", "manual", "baselinker", "base"})
"""`order_return_source` values that are the merchant's own (a shop, the panel), not a marketplace behind it."""


def marketplace(raw: Any) -> str | None:
    """The marketplace BaseLinker got the return from (`allegro`), as `Return.marketplace`; None for own sources."""
    found = source(raw)
    return found if found is not None and found not in OWN_SOURCES else None


def return_status(raw: Mapping[str, Any], statuses: Mapping[str, ReturnStatus]) -> ReturnStatus:
    status_id = text(raw.get("status_id"))
    if status_id is not None and status_id in statuses:
        return statuses[status_id]
    fulfilment = text(raw.get("fulfillment_status"))
    if fulfilment == "0" and _truthy(raw.get("refunded")):
        return ReturnStatus.REFUNDED
    return FULFILMENT.get(fulfilment or "", UNKNOWN_STATUS)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    amount = decimal(value)
    return amount is not None and amount != 0


def decided_by_status(decision_statuses: Mapping[DecisionKind, int]) -> dict[str, DecisionKind]:
    """The merchant's `decision_statuses` read backwards: a return put into one of these statuses in BaseLinker's
    panel was decided there. A status two decisions share says nothing about which one was taken, so it is left
    out rather than guessed."""
    kinds: dict[str, list[DecisionKind]] = {}
    for kind, status_id in decision_statuses.items():
        kinds.setdefault(str(status_id), []).append(kind)
    return {status_id: found[0] for status_id, found in kinds.items() if len(found) == 1}


def map_return(raw: Mapping[str, Any], statuses: Mapping[str, ReturnStatus], status_names: Mapping[str, str],
               reason_names: Mapping[str, str], decided: Mapping[str, DecisionKind] | None = None) -> Return:
    """One return; `statuses` is the merchant's map (status id → unified status), `status_names` and
    `reason_names` the account's lists (id → name), `decided` the statuses that mean a decision
    (`decided_by_status`): a return in one is reported decided by the channel on every line, which retsync keeps
    as history (a `synced` decision) and never pushes back."""
    external_id = required(raw, "return_id")
    created = unix(raw.get("date_add"))
    if created is None:
        raise ValueError("date_add is not a time")
    status_id = text(raw.get("status_id"))
    order_id = text(raw.get("order_id"))
    currency = text(raw.get("currency"))
    decision = (decided or {}).get(status_id or "")
    lines = tuple(_line(line, n, order_id, currency, reason_names, decision) for n, line in
                  enumerate(items(raw.get("products")), start=1))
    known = [line for line in lines if line.channel_reason]
    status = return_status(raw, statuses)
    in_status = unix(raw.get("date_in_status"))
    return Return(
        external_id=external_id, order_external_id=order_id, status=status,
        channel_status=status_names.get(status_id or "", status_id),
        reason=known[0].reason if known else ReturnReason.UNKNOWN,
        channel_reason=known[0].channel_reason if known else None,
        created_at=created,
        decided_at=in_status if status is ReturnStatus.DECIDED else None,
        refunded_at=in_status if status is ReturnStatus.REFUNDED else None,
        currency=currency,
        customer=Customer(email=text(raw.get("email")), name=text(raw.get("delivery_fullname")),
                          phone=text(raw.get("phone")), postcode=text(raw.get("delivery_postcode"))),
        tracking_number=text(raw.get("delivery_package_nr")), carrier=text(raw.get("delivery_package_module")),
        marketplace=marketplace(raw), lines=lines, revision=revision(raw),
        extra={key: value for key, value in {
            "status_id": status_id, "fulfillment_status": text(raw.get("fulfillment_status")),
            "source": text(raw.get("order_return_source")), "source_id": text(raw.get("order_return_source_id")),
            "reference_number": text(raw.get("reference_number")),
            "external_order_id": text(raw.get("external_order_id")),
        }.items() if value is not None},
    )


def _line(raw: Mapping[str, Any], position: int, order_id: str | None, currency: str | None,
          reason_names: Mapping[str, str], decision: DecisionKind | None) -> ReturnLine:
    """A returned product; its own id where BaseLinker gives one (`order_return_product_id`), else the order
    line it comes from (`order_product_id`, what links it to the order), else its place in the return."""
    order_line = text(raw.get("order_product_id"))
    reason_id = text(raw.get("return_reason_id"))
    reason_name = reason_names.get(reason_id or "") if reason_id else None
    return ReturnLine(
        external_id=text(raw.get("order_return_product_id")) or order_line or str(position),
        order_external_id=order_id, order_line_external_id=order_line, sku=text(raw.get("sku")),
        ean=text(raw.get("ean")), title=text(raw.get("name")), quantity=count(raw.get("quantity")),
        reason=reason_from_words(reason_name) if reason_name else (ReturnReason.OTHER if reason_id
                                                                   else ReturnReason.UNKNOWN),
        channel_reason=reason_name or reason_id, channel_status=text(raw.get("status_id")),
        unit_price=minor_units(raw.get("price_brutto")), currency=currency, channel_decision=decision,
    )


def map_order(raw: Mapping[str, Any]) -> Order:
    currency = text(raw.get("currency"))
    lines = tuple(OrderLine(external_id=required(line, "order_product_id"), sku=text(line.get("sku")),
                            ean=text(line.get("ean")), title=text(line.get("name")),
                            quantity=count(line.get("quantity")), unit_price=minor_units(line.get("price_brutto")),
                            currency=currency)
                  for line in items(raw.get("products")))
    prices = [line.unit_price * line.quantity for line in lines if line.unit_price is not None]
    delivery = minor_units(raw.get("delivery_price"))
    return Order(
        external_id=required(raw, "order_id"), placed_at=unix(raw.get("date_add")),
        channel_status=text(raw.get("order_status_id")), currency=currency,
        total_amount=sum(prices) + (delivery or 0) if prices and len(prices) == len(lines) else None,
        customer=Customer(email=text(raw.get("email")), name=text(raw.get("delivery_fullname")),
                          phone=text(raw.get("phone")), postcode=text(raw.get("delivery_postcode"))),
        lines=lines,
    )


def refund_amount(raw: Mapping[str, Any], decided: Mapping[str, int]) -> float:
    """What the decided lines are worth (`price_brutto` × units), for `setOrderReturnRefund`'s absolute amount;
    `decided` maps a line's external id (as `map_return` names it) to its units."""
    cents = 0
    for position, line in enumerate(items(raw.get("products")), start=1):
        line_id = text(line.get("order_return_product_id")) or text(line.get("order_product_id")) or str(position)
        if line_id in decided:
            cents += (minor_units(line.get("price_brutto")) or 0) * decided[line_id]
    return cents / 100
