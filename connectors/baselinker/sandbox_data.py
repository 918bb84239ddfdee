"""The sandbox's seeded half: a BaseLinker account's return statuses, reasons, orders, returns and journal,
in the shapes of shared/specs/baselinker/NOTES.md ("Return object", the methods table).

Each record draws from its own random stream (`retsync.kit.sandbox.SeededData`), so the same seed gives the same
account all day. About two thirds of the returns are open; every fourth is a whole order of two or three
products (the whole-return act); every tenth was registered in the last two days (the journal keeps three); every seventh came from Allegro (`order_return_source` "allegro"), as
BaseLinker mirrors marketplace returns, so `skip_sources` has something to skip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from retsync.kit.sandbox import SeededData, ean13

STATUSES = (
    (1001, "Nowy zwrot", "New return", "#3b82f6"),
    (1002, "W drodze", "On its way", "#6366f1"),
    (1003, "Otrzymany", "Received", "#0ea5e9"),
    (1004, "Zaakceptowany", "Accepted", "#22c55e"),
    (1005, "Odrzucony", "Rejected", "#ef4444"),
    (1006, "Zwrócono środki", "Refunded", "#16a34a"),
    (1007, "Zakończony", "Completed", "#64748b"),
    (1008, "Anulowany", "Canceled", "#94a3b8"),
    (1009, "Naprawa", "In repair", "#f59e0b"),
    (1010, "Wymiana", "Exchange", "#a855f7"),
    (1011, "Bez odsyłki", "Kept by the customer", "#14b8a6"),
)
"""The sandbox account's return statuses: `getOrderReturnStatusList` (id, name, name_for_customer, color)."""
FULFILMENT = {1001: 0, 1002: 0, 1003: 0, 1004: 5, 1005: 2, 1006: 1, 1007: 1, 1008: 2, 1009: 5, 1010: 5, 1011: 1}
"""The fixed `fulfillment_status` BaseLinker keeps beside each status: 0 active, 5 accepted, 1 done, 2 canceled."""
SEEDED = ((1001, 30), (1002, 20), (1003, 15), (1006, 15), (1005, 8), (1007, 7), (1008, 5))
REASONS = ((1, "Zły rozmiar / wrong size"), (2, "Produkt uszkodzony / damaged"), (3, "Niezgodny z opisem"),
           (4, "Rozmyślił się / changed my mind"), (5, "Inny powód"))
"""`getOrderReturnReasonsList` (return_reason_id, name)."""
PRODUCTS = (("KB-10", "Kubek ceramiczny", "24.99"), ("KOC-2", "Koc wełniany", "149.00"),
            ("LMP-7", "Lampka nocna", "89.90"), ("PL-33", "Plecak miejski", "199.00"),
            ("SZ-12", "Szalik", "59.00"), ("RK-4", "Rękawiczki", "39.50"))
BUYERS = (("Anna Nowak", "00-001", "Warszawa"), ("Piotr Zieliński", "30-001", "Kraków"),
          ("Katarzyna Wójcik", "80-001", "Gdańsk"), ("Tomasz Lewandowski", "60-001", "Poznań"))
ORDER_BASE = 7_000_000
RETURN_BASE = 40_000
PRODUCT_BASE = 900_000
SEEDED_DAYS = 80


@dataclass
class BaseLinkerData(SeededData):
    channel: str = "baselinker"
    size: int = 30
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    returns: dict[int, dict[str, Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        eans = {sku: ean13(self.rng("product", sku)) for sku, _, _ in PRODUCTS}
        for n in range(self.size):
            rng = self.rng("return", n)
            order = self.order(self.rng("order", n), ORDER_BASE + 3 * n, eans, lines=2 if n % 4 == 0 else 1)
            record = self.return_of(rng, RETURN_BASE + n, order, whole=n % 4 == 0, allegro=n % 7 == 3,
                                    recent=n % 10 == 9)
            self.orders[order["order_id"]] = order
            self.returns[record["return_id"]] = record
            self.logs.append({"return_id": record["return_id"], "log_type": 1, "object_id": 0,
                              "date": record["date_add"]})
        self.logs.sort(key=lambda entry: entry["date"])
        for number, entry in enumerate(self.logs, start=1):
            entry["id"] = number

    def order(self, rng: random.Random, number: int, eans: dict[str, str], lines: int) -> dict[str, Any]:
        placed = self.midnight - timedelta(days=rng.uniform(5, SEEDED_DAYS))
        name, postcode, city = rng.choice(BUYERS)
        products = [{"order_product_id": PRODUCT_BASE + number * 4 + index, "storage": "db", "storage_id": 0,
                     "product_id": str(1000 + index), "variant_id": 0, "name": title, "sku": sku, "ean": eans[sku],
                     "quantity": rng.choice((1, 1, 2)), "price_brutto": float(price), "tax_rate": 23}
                    for index, (sku, title, price) in enumerate(rng.sample(PRODUCTS, lines + rng.randint(0, 1)))]
        return {"order_id": number, "shop_order_id": 0, "external_order_id": "", "order_source": "shop",
                "order_status_id": 5501, "date_add": int(placed.timestamp()),
                "date_confirmed": int(placed.timestamp()), "currency": "PLN", "email": _email(name),
                "phone": f"+48 5{rng.randint(10_000_000, 99_999_999)}", "delivery_fullname": name,
                "delivery_postcode": postcode, "delivery_city": city, "delivery_country_code": "PL",
                "delivery_price": 14.99, "products": products}

    def return_of(self, rng: random.Random, number: int, order: dict[str, Any], *, whole: bool,
                  allegro: bool, recent: bool = False) -> dict[str, Any]:
        """A return of `order`'s first product (every product where `whole`); a `recent` one was registered in
        the last two days, so the journal (three days) holds it."""
        status = rng.choices([s for s, _ in SEEDED], [w for _, w in SEEDED])[0]
        created = min(order["date_add"] + int(rng.uniform(2, 6) * 86400),
                      int((self.midnight - timedelta(hours=3)).timestamp()))
        if recent:
            created = max(order["date_add"] + 3600, int((self.midnight - timedelta(hours=rng.uniform(3, 40))).timestamp()))
        chosen = order["products"] if whole else order["products"][:1]
        reason = rng.choice(REASONS)[0]
        products = [{"order_return_product_id": PRODUCT_BASE * 10 + number * 4 + index,
                     "order_product_id": item["order_product_id"], "storage": item["storage"],
                     "storage_id": item["storage_id"], "product_id": item["product_id"],
                     "variant_id": item["variant_id"], "name": item["name"], "sku": item["sku"], "ean": item["ean"],
                     "location": "", "warehouse_id": 0, "attributes": "", "price_brutto": item["price_brutto"],
                     "tax_rate": item["tax_rate"], "quantity": rng.randint(1, item["quantity"]), "weight": 0.5,
                     "status_id": 0, "return_reason_id": reason}
                    for index, item in enumerate(chosen)]
        return {
            "return_id": number, "order_id": order["order_id"], "shop_order_id": 0,
            "external_order_id": f"A-{rng.randint(10**9, 10**10 - 1)}" if allegro else "",
            "reference_number": f"ZW/{number}/2026", "order_return_source": "allegro" if allegro else "shop",
            "order_return_source_id": 11 if allegro else 0, "status_id": status, "date_add": created,
            "date_in_status": created + 3600, "user_login": "", "currency": "PLN",
            "refunded": status == 1006, "email": order["email"], "phone": order["phone"], "delivery_price": 0,
            "delivery_fullname": order["delivery_fullname"], "delivery_company": "",
            "delivery_address": "ul. Długa 1", "delivery_postcode": order["delivery_postcode"],
            "delivery_city": order["delivery_city"], "delivery_state": "", "delivery_country": "Polska",
            "delivery_country_code": "PL", "extra_field_1": "", "extra_field_2": "", "custom_extra_fields": {},
            "admin_comments": "", "delivery_package_module": "inpost" if status != 1001 else "",
            "delivery_package_nr": f"6{rng.randint(10**20, 10**21 - 1)}" if status != 1001 else "",
            "order_return_account_number": "", "order_return_iban": "", "order_return_swift": "",
            "fulfillment_status": FULFILMENT[status], "products": products,
        }


def _email(name: str) -> str:
    return name.lower().replace(" ", ".").translate(str.maketrans("ńłóśźżąęć", "nloszzaec")) \
        + "@example.pl"
