"""The sandbox's seeded half: orders and returns as the template channel's API answers them (README.md, "The API").

Kept apart from the routes (emulator.py) so what the channel holds and how its API answers can be read and changed
one at a time. Built on `retsync.kit.sandbox.SeededData`: every record draws from its own random stream
(`rng("return", n)`), so the same seed gives the same records on the same day, and adding a field or a record kind
never reshuffles the others. The mix is what the suites need: enough open returns to decide on (every fourth one
a whole order of two or three lines, for the whole-return act), and returns in every other status.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from retsync.kit.sandbox import SeededData, ean13

PRODUCTS = (("TS-100", "Organic cotton T-shirt", 1995), ("JN-220", "Slim jeans", 5995),
            ("SW-310", "Merino sweater", 7450), ("SK-050", "Trail socks", 1299), ("CP-700", "Rain cap", 2490),
            ("BG-900", "Canvas backpack", 8900))
BUYERS = (("Anna", "Meyer", "10115"), ("Ben", "Jansen", "3511 AB"), ("Chloé", "Dubois", "69001"),
          ("Jonas", "Peeters", "9000"), ("Klara", "Kowalska", "30-001"), ("Hugo", "Rossi", "1010"))
REASONS = (("too_small", "One size up please"), ("too_large", None), ("defective", "The zip came off"),
           ("damaged", "Arrived torn"), ("wrong_item", None), ("not_as_described", "Colour is not as on the photo"),
           ("changed_mind", None), ("other", "Ordered it twice by mistake"), ("other", None))
STATUSES = (("requested", 30), ("in_transit", 20), ("received", 15), ("refunded", 20), ("rejected", 8),
            ("closed", 7))
"""How often each return status is seeded: about two thirds are open (requested, in transit, received)."""
CARRIERS = ("PostNL", "DHL", "DPD")
CURRENCY = "EUR"
ORDER_BASE = 10_000
RETURN_BASE = 20_000
SEEDED_DAYS = 80
"""Seeded returns lie within the last 80 days: inside a channel's default backfill of 90."""


def stamp(moment: datetime) -> str:
    """A time as the API writes it: UTC, whole seconds, a trailing Z."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def money(cents: int) -> str:
    """An amount as the API writes it: a string with two decimals ("19.95")."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def cents(amount: str | None) -> int:
    return int(amount.replace(".", "")) if amount else 0


def buyer(rng: random.Random) -> dict[str, Any]:
    first, last, postcode = rng.choice(BUYERS)
    return {"name": f"{first} {last}", "email": f"{first}.{last}@example.com".lower(),
            "phone": f"+31 6 {rng.randint(10_000_000, 99_999_999)}", "postcode": postcode}


@dataclass
class TemplateData(SeededData):
    """`size` returns, each on an order of its own, dated within SEEDED_DAYS before today's midnight."""

    channel: str = "template"
    size: int = 60
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        eans = {sku: ean13(self.rng("product", sku)) for sku, _, _ in PRODUCTS}
        for n in range(self.size):
            whole = n % 4 == 0
            order = self._order(self.rng("order", n), ORDER_BASE + n, eans, lines=2 if whole else 1)
            record = self._return(self.rng("return", n), RETURN_BASE + n, order, whole)
            self.orders[order["id"]], self.returns[record["id"]] = order, record

    def _order(self, rng: random.Random, number: int, eans: dict[str, str], lines: int) -> dict[str, Any]:
        placed = self.midnight - timedelta(days=rng.uniform(8, SEEDED_DAYS))
        items = [{"id": f"OL-{number}-{index}", "sku": sku, "ean": eans[sku], "title": title,
                  "quantity": rng.choice((1, 1, 2)), "unit_price": money(price)}
                 for index, (sku, title, price) in enumerate(rng.sample(PRODUCTS, lines + rng.randint(0, 1)), 1)]
        total = sum(cents(item["unit_price"]) * item["quantity"] for item in items)
        return {"id": f"O-{number}", "placed_at": stamp(placed), "status": "delivered", "currency": CURRENCY,
                "total": money(total), "buyer": buyer(rng), "lines": items}

    def _return(self, rng: random.Random, number: int, order: dict[str, Any], whole: bool) -> dict[str, Any]:
        """A return of some lines of `order` (every line where `whole`), in a status drawn from STATUSES."""
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        reason, comment = rng.choice(REASONS)
        placed = datetime.fromisoformat(order["placed_at"].replace("Z", "+00:00"))
        created = min(placed + timedelta(days=rng.uniform(2, 7)), self.midnight - timedelta(hours=2))
        updated = min(created + timedelta(days=rng.uniform(0, 3)), self.midnight - timedelta(hours=1))
        chosen = order["lines"] if whole else order["lines"][:1]
        word = {"refunded": "refund", "rejected": "reject"}.get(status)
        lines = [{"id": f"RL-{number}-{index}", "order_line_id": item["id"], "sku": item["sku"],
                  "title": item["title"], "quantity": rng.randint(1, item["quantity"]),
                  "unit_price": item["unit_price"], "decision": word}
                 for index, item in enumerate(chosen, start=1)]
        record: dict[str, Any] = {
            "id": f"R-{number}", "order_id": order["id"], "status": status, "reason_code": reason,
            "comment": comment, "currency": CURRENCY, "created_at": stamp(created), "updated_at": stamp(updated),
            "received_at": None, "refund": None, "buyer": dict(order["buyer"]), "tracking": None, "lines": lines,
        }
        if status != "requested":
            record["tracking"] = {"carrier": rng.choice(CARRIERS), "number": f"3S{rng.randint(10**9, 10**10 - 1)}"}
        if status in ("received", "refunded", "rejected", "closed"):
            record["received_at"] = stamp(created + (updated - created) / 2)
        if status == "refunded":
            refund = sum(cents(line["unit_price"]) * line["quantity"] for line in lines)
            record["refund"] = {"amount": money(refund), "refunded_at": record["updated_at"]}
        return record
