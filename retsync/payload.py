"""Small readers for channel JSON that never raise on a missing or odd field.

Marketplaces add fields, drop optional ones and send `null` where a list
belongs; a mapping that reads through these turns all of that into "not
known" instead of a crashed sync. Every connector's mapping uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MONEY_LIMIT = Decimal(10) ** 15
"""No till's amount: "1E100" parses as a Decimal, and is read as unknown rather than stored as a price."""


def text(value: Any) -> str | None:
    """A non-empty, stripped string, or None for anything that is not a scalar."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    result = str(value).strip()
    return result or None


def obj(value: Any) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def objs(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects of a list; anything else in it, or a non-list, is left out."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def decimal(value: Any, *, decimal_comma: bool = False) -> Decimal | None:
    """A finite number from a JSON number or numeric string ("12.99", " 3 "), else None; with
    `decimal_comma`, "12,99" too (shops that write money the Polish way)."""
    if value is None or isinstance(value, (bool, dict, list)) or value == "":
        return None
    raw = str(value).strip()
    try:
        amount = Decimal(raw.replace(",", ".") if decimal_comma else raw)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def count(value: Any, *, decimal_comma: bool = False) -> int:
    """A quantity: the whole units of a number, never negative (refund lines carry "-1"); 0 when unreadable."""
    amount = decimal(value, decimal_comma=decimal_comma)
    return abs(int(amount)) if amount is not None else 0


def minor_units(value: Any, *, decimal_comma: bool = False) -> int | None:
    """Money as the channel writes it ("12.99", refunds "-12.99", "24.790000") in cents (1299), rounded half up
    like a till; None when unreadable or beyond MONEY_LIMIT."""
    amount = decimal(value, decimal_comma=decimal_comma)
    if amount is None or abs(amount) >= MONEY_LIMIT:
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time (as retsync writes them into cursors), a naive one read as UTC; None when unreadable."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
