"""The seeded shop behind the Shopify sandbox: orders with their line items, and the returns buyers asked for.

Kept apart from the GraphQL endpoint (emulator.py), so what the shop holds and how its API answers can be read
one at a time. Built on `retsync.kit.sandbox.SeededData`: every record draws from its own random stream, dates
count back from today's midnight. Records are held in the shop's own terms (NOTES.md "Return object"): the ids
are the numeric tails of Shopify's global ids (`gid://shopify/Return/<n>`), statuses and reasons are Shopify's
enum values. The mix is what the suites need: open returns (REQUESTED and OPEN) to decide on, every fourth one
of several lines, and returns in every other status; every fifth order has no return at all (a plain sale).
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
REASONS = (("SIZE_TOO_SMALL", "", "One size up please"), ("SIZE_TOO_LARGE", "", None),
           ("DEFECTIVE", "", "The zip came off"), ("NOT_AS_DESCRIBED", "", "Colour is not as on the photo"),
           ("WRONG_ITEM", "", None), ("UNWANTED", "", None), ("COLOR", "", None), ("STYLE", "", None),
           ("OTHER", "Ordered it twice by mistake", None), ("OTHER", "", None))
"""(returnReason, returnReasonNote, customerNote): the note is what a buyer typed for OTHER."""
DEFINITIONS = {"SIZE_TOO_SMALL": ("too-small", "Too small"), "SIZE_TOO_LARGE": ("too-large", "Too large"),
               "DEFECTIVE": ("defective", "Defective"), "NOT_AS_DESCRIBED": ("not-as-described", "Not as described"),
               "WRONG_ITEM": ("wrong-item", "Received the wrong item"), "UNWANTED": ("changed-mind", "Changed my mind"),
               "COLOR": ("color-not-as-expected", "Color not as expected"), "STYLE": ("style", "Style"),
               "OTHER": ("other", "Other")}
"""The reason definition (handle, name) a line of each ReturnReason names from API 2026-01 on (UNKNOWN: none)."""
STATUSES = (("REQUESTED", 35), ("OPEN", 30), ("CLOSED", 20), ("DECLINED", 8), ("CANCELED", 7))
CARRIERS = ("DHL Express", "UPS", "PostNL")
CURRENCY = "EUR"
ORDER_BASE = 5_500_000_000
LINE_BASE = 13_000_000_000
RETURN_BASE = 9_000_000
RETURN_LINE_BASE = 18_000_000
FULFILLMENT_LINE_BASE = 11_000_000_000
SEEDED_DAYS = 80
"""Seeded records lie within the last 80 days: inside a channel's default backfill of 90."""


def stamp(moment: datetime) -> str:
    """A time as Shopify writes it: ISO 8601 in UTC, whole seconds, a trailing Z."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def money(cents: int) -> str:
    """A Decimal as Shopify writes it ("19.95")."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


@dataclass
class ShopifyData(SeededData):
    """`size` orders, dated within SEEDED_DAYS before today's midnight; all but every fifth with one return."""

    channel: str = "shopify"
    size: int = 75
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        eans = {sku: ean13(self.rng("product", sku)) for sku, _, _ in PRODUCTS}
        returns = 0
        for n in range(self.size):
            rng = self.rng("order", n)
            with_return = n % 5 != 4
            whole = with_return and returns % 4 == 0
            order = self.order(rng, n, eans, lines=2 if whole else 1 + rng.randint(0, 1))
            self.orders[order["id"]] = order
            if with_return:
                record = self._return(self.rng("return", n), RETURN_BASE + n, order, whole)
                self.returns[record["id"]] = record
                order["updatedAt"] = max(order["updatedAt"], record["updatedAt"])
                returns += 1

    def order(self, rng: random.Random, n: int, eans: dict[str, str], lines: int) -> dict[str, Any]:
        first, last, postcode = rng.choice(BUYERS)
        placed = self.midnight - timedelta(days=rng.uniform(8, SEEDED_DAYS))
        items = [{"id": str(LINE_BASE + n * 10 + index), "fulfillmentLineItemId": str(FULFILLMENT_LINE_BASE + n * 10 + index),
                  "sku": sku, "barcode": eans[sku], "title": title, "quantity": rng.choice((1, 1, 2, 3)),
                  "price": price}
                 for index, (sku, title, price) in enumerate(rng.sample(PRODUCTS, lines), 1)]
        return {"id": str(ORDER_BASE + n), "name": f"#{1001 + n}", "createdAt": stamp(placed),
                "processedAt": stamp(placed), "updatedAt": stamp(placed + timedelta(days=2)),
                "email": f"{first}.{last}@example.com".lower(), "phone": f"+31 6 {rng.randint(10**7, 10**8 - 1)}",
                "buyer": f"{first} {last}", "zip": postcode, "currency": CURRENCY, "note": None, "tags": [],
                "financialStatus": "PAID", "lines": items,
                "total": sum(item["price"] * item["quantity"] for item in items)}

    def _return(self, rng: random.Random, number: int, order: dict[str, Any], whole: bool) -> dict[str, Any]:
        """A return of some line items of `order` (every one where `whole`), in a status drawn from STATUSES."""
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        placed = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
        created = min(placed + timedelta(days=rng.uniform(3, 7)), self.midnight - timedelta(hours=3))
        updated = min(created + timedelta(days=rng.uniform(0, 3)), self.midnight - timedelta(hours=1))
        chosen = order["lines"] if whole else order["lines"][:1]
        lines = []
        for index, item in enumerate(chosen, 1):
            reason, reason_note, customer_note = rng.choice(REASONS)
            quantity = rng.randint(1, item["quantity"])
            done = quantity if status == "CLOSED" else 0
            lines.append({"id": str(RETURN_LINE_BASE + number * 10 + index), "lineItemId": item["id"],
                          "fulfillmentLineItemId": item["fulfillmentLineItemId"], "quantity": quantity,
                          "processed": done, "refunded": done, "restocked": done, "returnReason": reason,
                          "returnReasonNote": reason_note, "customerNote": customer_note})
        record: dict[str, Any] = {
            "id": str(number), "name": f"{order['name']}-R1", "orderId": order["id"], "status": status,
            "createdAt": stamp(created), "updatedAt": stamp(updated), "closedAt": None, "requestApprovedAt": None,
            "decline": None, "lines": lines, "tracking": None, "refunds": [],
        }
        if status in ("OPEN", "CLOSED"):
            record["requestApprovedAt"] = stamp(created + timedelta(hours=5))
            if rng.random() < 0.7:
                record["tracking"] = {"number": f"1Z{rng.randint(10**9, 10**10 - 1)}",
                                      "carrierName": rng.choice(CARRIERS)}
        if status == "CLOSED":
            record["closedAt"] = stamp(updated)
            price = {item["id"]: item["price"] for item in order["lines"]}
            amount = sum(price[line["lineItemId"]] * line["quantity"] for line in lines)
            record["refunds"].append({"id": str(number * 10 + 1), "createdAt": stamp(updated), "note": None,
                                      "amount": amount})
        if status == "DECLINED":
            record["decline"] = {"reason": rng.choice(("FINAL_SALE", "RETURN_PERIOD_ENDED", "OTHER")),
                                 "note": "Outside the return window" if rng.random() < 0.5 else None}
        return record
