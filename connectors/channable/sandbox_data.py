"""The sandbox's seeded half: Channable orders and returns as the order-connection API answers them.

Shapes follow the contract in `shared/specs/channable/` (the returns part of Channable's OpenAPI file, and NOTES.md
for the orders part): a return is `EfferentReturn` (one item per return, `data.item` / `data.customer` /
`data.address` / `data.meta`), an order is `ChannableAPIOrder` (`data.products[]`). The returns come from several
marketplaces behind Channable (bol, amazon, fruugo, zalando, miravia, tobedressed, walmart), as a merchant's
feed-platform project holds them; some orders have two products, each returned on a return of its own, and a few
returns are Channable's test or demo returns (`data.meta.is_test_return` / `is_demo_return`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from retsync.kit.sandbox import SeededData, ean13

COMPANY_ID = 4711
PROJECT_ID = 10_001
PRODUCTS = (("TS-100", "Organic cotton T-shirt", 19.95), ("JN-220", "Slim jeans", 59.95),
            ("SW-310", "Merino sweater", 74.50), ("SK-050", "Trail socks", 12.99), ("CP-700", "Rain cap", 24.90),
            ("BG-900", "Canvas backpack", 89.00))
BUYERS = (("Anna", "Meyer", "female", "10115", "Berlin", "DE"), ("Ben", "Jansen", "male", "3511 AB", "Utrecht", "NL"),
          ("Chloé", "Dubois", "female", "69001", "Lyon", "FR"), ("Jonas", "Peeters", "male", "9000", "Gent", "BE"),
          ("Lucía", "García", "female", "28001", "Madrid", "ES"), ("Hugo", "Rossi", "male", "20121", "Milano", "IT"))
MARKETPLACES = ("bol", "amazon", "fruugo", "zalando", "miravia", "tobedressed", "walmart")
REASONS = (("Too small", "One size up please"), ("Too large", None), ("Defective", "The zip came off"),
           ("Damaged", "Arrived torn"), ("Wrong item", None), ("Not as pictured", "Colour is not as on the photo"),
           ("No longer needed", None), (None, "Ordered it twice by mistake"), (None, None))
STATUSES = (("new", 34), ("processing", 8), ("manual", 5), ("accepted", 16), ("rejected", 8), ("keeps", 5),
            ("repaired", 3), ("exchanged", 4), ("cancelled", 5))
"""How often each `ChannableReturnsStatus` is seeded: about half are open (new, processing, manual)."""
ORDER_BASE = 500_000
RETURN_BASE = 700_000
SEEDED_DAYS = 80
"""Seeded returns lie within the last 80 days: inside a channel's default backfill of 90."""


def stamp(moment: datetime) -> str:
    """A time as Channable writes it: UTC with an explicit offset ("2017-02-09T12:39:48+00:00")."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def person(rng: random.Random) -> dict[str, str]:
    first, last, gender, postcode, city, country = rng.choice(BUYERS)
    return {"first_name": first, "last_name": last, "gender": gender, "zip_code": postcode, "city": city,
            "country_code": country, "email": f"{first}.{last}@marketplace-relay.example".lower()}


def address(who: dict[str, str], rng: random.Random) -> dict[str, Any]:
    number = str(rng.randint(1, 200))
    return {"first_name": who["first_name"], "last_name": who["last_name"], "company": "", "street": "Marktstraat",
            "house_number": number, "house_number_ext": "", "address1": f"Marktstraat {number}",
            "address_supplement": "", "zip_code": who["zip_code"], "city": who["city"], "region_code": "",
            "country_code": who["country_code"], "email": who["email"]}


@dataclass
class ChannableData(SeededData):
    """`size` returns over about `size * 3 / 4` orders, dated within SEEDED_DAYS before today's midnight."""

    channel: str = "channable"
    size: int = 120
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    returns: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        eans = {sku: ean13(self.rng("product", sku)) for sku, _, _ in PRODUCTS}
        n = order_number = 0
        while n < self.size:
            rng = self.rng("order", order_number)
            order = self.order(rng, ORDER_BASE + order_number, eans, products=1 + (order_number % 4 == 0))
            self.orders[order["id"]] = order
            for product in order["data"]["products"][: self.size - n]:
                record = self.return_of(self.rng("return", n), RETURN_BASE + n, order, product)
                self.returns[record["id"]] = record
                n += 1
            order_number += 1

    def order(self, rng: random.Random, number: int, eans: dict[str, str], products: int = 1,
              marketplace: str | None = None) -> dict[str, Any]:
        placed = self.midnight - timedelta(days=rng.uniform(8, SEEDED_DAYS))
        who = person(rng)
        chosen = rng.sample(PRODUCTS, products)
        lines = [{"id": f"{number}-{index}", "ean": eans[sku], "article_number": sku, "reference_code": sku,
                  "title": title, "quantity": rng.choice((1, 1, 2)), "price": price, "shipping": 0.0,
                  "channel_product_id": f"P{rng.randint(10**6, 10**7 - 1)}",
                  "channable_order_item_id": number * 10 + index}
                 for index, (sku, title, price) in enumerate(chosen, 1)]
        total = round(sum(line["price"] * line["quantity"] for line in lines), 2)
        market = marketplace or MARKETPLACES[number % len(MARKETPLACES)]
        return {"id": number, "channel_name": market, "platform_name": "api", "project_id": PROJECT_ID,
                "order_config_id": 77, "platform_id": str(number), "channel_id": f"{market.upper()}-{number}",
                "channel_id_internal": None, "status_paid": "paid", "status_shipped": "shipped", "error": False,
                "error_reason": None, "obfuscated": False, "created": stamp(placed), "modified": stamp(placed),
                "retrieved_at": stamp(placed),
                "data": {"billing": address(who, rng), "shipping": address(who, rng),
                         "customer": {"first_name": who["first_name"], "last_name": who["last_name"],
                                      "email": who["email"], "gender": who["gender"], "phone": "",
                                      "mobile": f"+31 6 {rng.randint(10_000_000, 99_999_999)}"},
                         "price": {"currency": "EUR", "subtotal": total, "total": total, "shipping": 0.0,
                                   "payment_method": market},
                         "products": lines, "extra": {}},
                "fulfillments": [], "attachments": []}

    def return_of(self, rng: random.Random, number: int, order: dict[str, Any], product: dict[str, Any],
                  status: str | None = None, test: bool = False) -> dict[str, Any]:
        """A return of `product` of `order` (Channable returns hold one item), in a status drawn from STATUSES."""
        status = status or rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        reason, comment = rng.choice(REASONS)
        placed = datetime.fromisoformat(order["created"])
        created = min(placed + timedelta(days=rng.uniform(2, 7)), self.midnight - timedelta(hours=2))
        modified = min(created + timedelta(days=rng.uniform(0, 3)), self.midnight - timedelta(hours=1))
        billing = order["data"]["billing"]
        market = order["channel_name"]
        item = {"id": product["id"], "gtin": product["ean"], "title": product["title"],
                "quantity": rng.randint(1, product["quantity"]), "reason": reason, "comment": comment,
                "delivery_period": ""}
        record: dict[str, Any] = {
            "id": number, "project_id": PROJECT_ID, "created": stamp(created), "modified": stamp(modified),
            "retrieved_at": stamp(created), "error": False, "platform_id": None, "platform_name": "api",
            "channel_id": f"{market.upper()}-R{number}", "channel_name": market, "log": [], "status": status,
            "obfuscated": False,
            "data": {"item": item, "address": dict(billing),
                     "customer": {key: billing[key] for key in ("first_name", "last_name", "email")}
                     | {"gender": order["data"]["customer"]["gender"]},
                     "meta": {"channel_order_id": order["channel_id"], "channel_order_id_internal": "",
                              "platform_order_id": order["platform_id"], "channel_return_id": f"{market}-rma-{number}",
                              "is_test_return": test or number % 17 == 5, "is_demo_return": number % 29 == 11}},
        }
        if rng.random() < 0.2:  # not every marketplace passes the buyer's e-mail on
            del record["data"]["customer"]["email"]
        return record
