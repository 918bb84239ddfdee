"""Amounts per currency: minor units in, readable text out, and never a sum across currencies.

The store keeps money as integer minor units beside an ISO currency; the report adds amounts only inside one
currency, so a merchant selling in EUR and PLN sees two totals, never a meaningless mixed one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict

# ISO 4217 currencies whose minor unit is not the cent; everything else has two decimals.
_EXPONENTS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                               "VND", "VUV", "XAF", "XOF", "XPF"), 0),
              **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}



class Money(TypedDict):
    """An amount in minor units and its ISO currency, as the JSON report writes it."""

    currency: str
    amount: int


UNKNOWN_CURRENCY = "???"
"""Stands in for a missing currency, so such amounts stay apart from every real one."""


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """A configured amount in major units (`return_cost = "4.50"`) as minor units, rounded half up."""
    return int((amount * (Decimal(10) ** exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount: int, currency: str) -> str:
    """`350000, "EUR"` → `3,500.00 EUR`."""
    digits = exponent(currency)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10 ** digits)
    return f"{sign}{major:,}{'.' + str(minor).zfill(digits) if digits else ''} {currency}"


def totals(amounts: Iterable[tuple[str | None, int]]) -> list[Money]:
    """Sum (currency, minor units) pairs per currency: `[{"currency": "EUR", "amount": 3500}, …]` by currency."""
    sums: dict[str, int] = defaultdict(int)
    for currency, amount in amounts:
        sums[currency or UNKNOWN_CURRENCY] += amount
    return [Money(currency=currency, amount=sums[currency]) for currency in sorted(sums)]


def format_totals(amounts: Iterable[Money]) -> str:
    return ", ".join(format_money(m["amount"], m["currency"]) for m in amounts) or "-"
