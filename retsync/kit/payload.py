"""Small readers for channel JSON that never raise on a missing or odd field, and bound what they read.

Marketplaces add fields, drop optional ones and send `null` where a list
belongs; a mapping that reads through these turns all of that into "not
known" instead of a crashed sync. Every connector's mapping uses them.

They are also the edge where input nobody here wrote is bounded, so every
connector gets the same limits: a number's text is checked before `Decimal`
does any arithmetic with it ("1e300000" would cost seconds of CPU), a
quantity is whole units in a sane range, money is finite and below
MONEY_LIMIT, and a date before any channel existed is not a date. A value
that is a quantity but cannot be one (1e30 units) raises `OutOfRange`: the
record is then quarantined (see `retsync.kit.contract.RecordSieve`) rather than
stored with a made-up number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MONEY_LIMIT = Decimal(10) ** 15
"""No till's amount: "1E100" parses as a Decimal, and is read as unknown rather than stored as a price."""
QUANTITY_LIMIT = 100_000
"""More units than any one order line holds; a quantity beyond it quarantines its record (`OutOfRange`)."""
NUMBER_TEXT_LIMIT = 40
"""Characters in a number's text: longer is no amount or quantity, and is not handed to `Decimal`."""
EXPONENT_LIMIT = 20
"""The largest exponent read ("1e20"); "1e300000" is refused before `Decimal` or `int` work on it."""
LINE_LIMIT = 1000
"""Lines of one return or order: more is no parcel; the record is quarantined (`items`, `store.pages`)."""
EARLIEST = datetime(1995, 1, 1, tzinfo=timezone.utc)
"""Before any channel retsync speaks to existed: a date earlier than this is read as unknown."""

_EXPONENT = re.compile(r"[eE]\s*([+-]?\d+)")


class OutOfRange(ValueError):
    """A value that is there but cannot be what it claims (a quantity of 1e30): its record is quarantined."""


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


def items(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list that become a record's lines; more than LINE_LIMIT raise `OutOfRange` before
    any of them is mapped (a 100,000-line return took 639 MB on its way to the store)."""
    found = objs(value)
    if len(found) > LINE_LIMIT:
        raise OutOfRange(f"{len(found)} lines: retsync reads at most {LINE_LIMIT} lines per return or order")
    return found


def _number_text(value: Any, decimal_comma: bool) -> str | None:
    if value is None or isinstance(value, (bool, dict, list)) or value == "":
        return None
    raw = str(value).strip()
    return raw.replace(",", ".") if decimal_comma else raw


def _refusal(raw: str) -> str | None:
    """Why this number's text is not read at all, decided on the text alone (no big-number work yet)."""
    if len(raw) > NUMBER_TEXT_LIMIT:
        return f"{len(raw)} characters long"
    exponent = _EXPONENT.search(raw)
    if exponent is not None and (len(exponent.group(1)) > 6 or abs(int(exponent.group(1))) > EXPONENT_LIMIT):
        return f"its exponent is beyond {EXPONENT_LIMIT}"
    return None


def _finite(raw: str) -> Decimal | None:
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def decimal(value: Any, *, decimal_comma: bool = False) -> Decimal | None:
    """A finite number from a JSON number or numeric string ("12.99", " 3 "), else None; with
    `decimal_comma`, "12,99" too (shops that write money the Polish way). Text too long or with an exponent
    beyond EXPONENT_LIMIT is None before `Decimal` sees it."""
    raw = _number_text(value, decimal_comma)
    if raw is None or _refusal(raw) is not None:
        return None
    return _finite(raw)


def count(value: Any, *, decimal_comma: bool = False) -> int:
    """A quantity: the whole units of a number (2.7 → 2), never negative (refund lines carry "-1", read as 1);
    0 when missing or not a number. A number that cannot be a quantity (beyond QUANTITY_LIMIT, or an
    exponent like "1e300000") raises `OutOfRange`, so its record is quarantined instead of stored wrong."""
    raw = _number_text(value, decimal_comma)
    if raw is None:
        return 0
    refusal = _refusal(raw)
    if refusal is not None:
        raise OutOfRange(f"quantity {raw[:NUMBER_TEXT_LIMIT]!r} is not a quantity: {refusal}")
    amount = _finite(raw)
    if amount is None:
        return 0
    if abs(amount) > QUANTITY_LIMIT:
        raise OutOfRange(f"quantity {raw[:NUMBER_TEXT_LIMIT]} is beyond {QUANTITY_LIMIT} units")
    return abs(int(amount))


def minor_units(value: Any, *, decimal_comma: bool = False) -> int | None:
    """Money as the channel writes it ("12.99", refunds "-12.99", "24.790000") in cents (1299), rounded half up
    like a till; None when unreadable or beyond MONEY_LIMIT."""
    amount = decimal(value, decimal_comma=decimal_comma)
    if amount is None or abs(amount) >= MONEY_LIMIT:
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def when(value: Any, zone: tzinfo = timezone.utc) -> datetime | None:
    """A channel's ISO 8601 time ("…Z", "+01:00", or none: read in `zone`) as aware UTC; None when unreadable
    or before EARLIEST. A far-future time is kept as the channel wrote it (it is what the channel says); a
    cursor never follows it past the pull's start (`not_after`)."""
    raw = text(value)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed >= EARLIEST else None


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time (as retsync writes them into cursors), a naive one read as UTC; None when unreadable."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


CURSOR_MARGIN = timedelta(0)
"""How far past the pull's start a cursor may move: none. A channel's record dated in year 9999 would
otherwise move a "changed since" cursor there and every later return would be skipped; held at the pull's
start, the next pull reads from then on (less the overlap), so nothing that happens later is missed."""


def not_after(value: datetime, now: datetime | None = None) -> datetime:
    """`value`, or the pull's start (`now`, else the clock) when it lies beyond it: what a cursor may keep."""
    limit = (now or datetime.now(timezone.utc)) + CURSOR_MARGIN
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return limit if aware > limit else value
