"""Reading a return reason the customer typed in their own words (shops' return forms, order notes).

Marketplaces send a reason code, which a connector maps with a table of its own; shops mostly get free text, in
the customer's language. A few words per reason, in the languages retsync's merchants sell in (English, Dutch,
German, Polish), give the coarse reason the reports group by; the text itself is kept as the channel's reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from retsync.kit.model import ReturnReason

REASON_WORDS: Sequence[tuple[tuple[str, ...], ReturnReason]] = (
    (("size", "fit", "too small", "too big", "maat", "größe", "rozmiar", "za mał", "za duż"), ReturnReason.WRONG_SIZE),
    (("defect", "broken", "not working", "doesn't work", "does not work", "faulty", "kapot", "defekt", "wadliw",
      "zepsut", "nie działa", "usterk"), ReturnReason.DEFECTIVE),
    (("damaged", "damage", "beschadigd", "beschädigt", "uszkodz"), ReturnReason.DAMAGED),
    (("wrong item", "wrong product", "different item", "not what i ordered", "inny produkt", "zły produkt",
      "pomyłka w zamówieniu"), ReturnReason.WRONG_ITEM),
    (("by mistake", "ordered twice", "duplicate", "mistake", "przez pomyłkę", "omyłkowo"),
     ReturnReason.ORDERED_BY_MISTAKE),
    (("cheaper", "better price", "price", "taniej", "cena"), ReturnReason.BETTER_PRICE),
    (("late", "delivery", "shipping", "never arrived", "dostaw", "opóźn"), ReturnReason.DELIVERY_PROBLEM),
    (("changed my mind", "no longer", "not needed", "don't need", "do not need", "rozmyśli", "niepotrzebn",
      "nie potrzebuj"), ReturnReason.NO_LONGER_NEEDED),
    (("not as described", "not as expected", "quality", "colour", "color", "kolor", "jakość", "niezgodn"),
     ReturnReason.NOT_AS_EXPECTED),
)
"""Checked in this order, first match wins: "damaged in delivery" is damage, not a delivery problem."""


def reason_from_words(words: str | None, fallback: ReturnReason = ReturnReason.OTHER,
                      table: Sequence[tuple[tuple[str, ...], ReturnReason]] = REASON_WORDS) -> ReturnReason:
    """The coarse reason `words` name (UNKNOWN for no words, `fallback` for words naming none of them)."""
    if not words:
        return ReturnReason.UNKNOWN
    folded = words.casefold()
    for keys, reason in table:
        if any(key in folded for key in keys):
            return reason
    return fallback
