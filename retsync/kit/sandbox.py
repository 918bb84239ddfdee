"""The seeded half of a sandbox emulator: the channel's records, apart from the routes that serve them.

A sandbox must show the same channel to every run with the same seed (tests assert exact ids, the demo prints
the same table, benchmarks compare like with like), yet look like a real shop's history: dates relative to
today, a mix of statuses, some awkward records. `SeededData` gives each record its own random stream, named by
what it is (`rng("return", 17)`), so adding a record kind or a field never reshuffles the others, and anchors
virtual time at today's UTC midnight. The emulator (`retsync.kit.emulator`) holds the routes and the faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

POISON_QUANTITY = 1e30
"""A JSON number no INTEGER column holds: what `add_poison_return("quantity")` puts in a line."""
POISON_POSTCODE = "9" * 36
"""Longer than the postcode column on PostgreSQL: `add_poison_return("postcode")`."""
POISON_PHONE = "+31" + "6" * 61
"""Longer than the phone column on PostgreSQL: `add_poison_return("postcode")`."""


@dataclass
class SeededData:
    """Subclass per channel with the records it holds; build them in `__post_init__` from `rng(...)` streams."""

    channel: str
    seed: int = 1
    midnight: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0))
    """Virtual time starts here: a record "3 days old" is 3 days before today's midnight, in every run today."""

    def rng(self, *what: object) -> random.Random:
        """The random stream of one record (`rng("order", 4)`): the same for the same seed, whatever else exists."""
        return random.Random(":".join([self.channel, str(self.seed), *map(str, what)]))


@dataclass(frozen=True)
class Regular:
    """A customer who buys on several channels: the same person in every sandbox that uses `regular_for`."""

    first_name: str
    last_name: str
    phone: str
    """Nine national digits (PL); each sandbox writes it its channel's way (`+48 601 234 501`, `601234501`)."""
    postcode: str
    city: str


REGULARS = (
    Regular("Ewa", "Zielińska", "601234501", "00-950", "Warszawa"),
    Regular("Piotr", "Kamiński", "601234502", "30-001", "Kraków"),
    Regular("Zofia", "Wróbel", "601234503", "80-001", "Gdańsk"),
)
"""The seeds' merchants' case: shoes bought on Allegro and in the shop, returned on both. The demo and the web
console show such a customer's returns on one screen only if two sandboxes share customers, so they do."""


def regular_for(index: int, every: int = 7) -> Regular | None:
    """The regular customer behind a sandbox's record `index` (one record in `every`), else None."""
    return REGULARS[(index // every) % len(REGULARS)] if index % every == 3 else None


def ean13(rng: random.Random) -> str:
    """A valid EAN-13 (checksum included), as products carry, so EAN-based order linking can be exercised."""
    digits = [rng.randrange(10) for _ in range(12)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)
