"""The Shoper sandbox's seeded data: a shop's orders, their products, payments and refunds.

The same seed gives the same shop: every record comes from one random stream, drawn in order id order, so a
change here that draws one number more or less reshuffles every order after it (the tests pin the seed-7 and
seed-11 shops they decide on). Records are kept as Shoper serves them: every id and number a string, dates
`YYYY-MM-DD HH:MM:SS` in the shop's time. What clients change (statuses, notes, refunds) and the routes that
serve all of it live in `emulator.py`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from retsync.kit.sandbox import regular_for

ZONE = ZoneInfo("Europe/Warsaw")
ORDER_BASE = 1000
PRODUCT_BASE = 5000
TRANSACTION_BASE = 300
REFUND_BASE = 70
REASON_FIELD = "3"

# (status_id, type, name): Shoper's stock statuses, then the merchant's own
STATUSES: tuple[tuple[str, str, str], ...] = (
    ("1", "1", "Złożone"), ("2", "2", "Oczekuje na płatność"), ("3", "2", "W realizacji"), ("4", "3", "Wysłane"),
    ("5", "3", "Zrealizowane"), ("6", "4", "Anulowane"), ("7", "4", "Nieodebrane"),
    ("14", "2", "Zwrot zgłoszony"), ("15", "2", "Zwrot dostarczony"), ("16", "3", "Zwrot przyjęty"),
    ("17", "3", "Zwrot odrzucony"), ("18", "2", "Reklamacja: naprawa"), ("19", "2", "Wymiana"),
    ("20", "2", "Zwrot z marketplace"), ("21", "2", "Do wyjaśnienia z kurierem"),
)
REQUESTED, RECEIVED, ACCEPTED, REJECTED, REPAIR, EXCHANGE, HOLD = "14", "15", "16", "17", "18", "19", "20"
RETURN_STATUSES = (REQUESTED, RECEIVED, ACCEPTED, REJECTED)
STATUS_WEIGHTS = (("5", 40), ("4", 10), ("3", 8), ("1", 4), ("2", 3), ("6", 4), ("7", 2), (REQUESTED, 14),
                  (RECEIVED, 5), (ACCEPTED, 5), (REJECTED, 3), (REPAIR, 1), (EXCHANGE, 1), ("21", 2))

CURRENCIES = ({"currency_id": "1", "name": "PLN", "rate": "1.0000", "default": "1", "active": "1"},
              {"currency_id": "2", "name": "EUR", "rate": "4.2800", "default": "0", "active": "1"})
FIRST_NAMES = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Michał", "Agnieszka", "Paweł", "Zofia", "Jan")
LAST_NAMES = ("Nowak", "Kowalska", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zielińska", "Szymański")
CITIES = (("Warszawa", "00-001"), ("Kraków", "30-001"), ("Gdańsk", "80-001"), ("Poznań", "60-001"),
          ("Wrocław", "50-001"), ("Łódź", "90-001"))
PRODUCTS = (("Kurtka przeciwdeszczowa", "KURT-01", "349.00"), ("Koszula lniana", "KOSZ-02", "159.00"),
            ("Czapka wełniana", "CZAP-03", "59.90"), ("Kubek ceramiczny", "KUB-04", "39.00"),
            ("Skarpety trekkingowe", "SKAR-05", "49.99"), ("Plecak miejski", "PLEC-06", "229.00"),
            ("Szalik", "SZAL-07", "89.00"), ("Pasek skórzany", "PAS-08", "119.00"))
REASONS = ("Za mały rozmiar", "Produkt uszkodzony w transporcie", "Kolor inny niż na zdjęciu",
           "Rozmyśliłam się", "Nie działa zamek", "")


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def local(moment: datetime) -> str:
    """A moment as Shoper writes dates: the shop's local time, to the second, without an offset."""
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def status_table() -> dict[str, dict[str, Any]]:
    """`/statuses` as the shop holds them: the stock ones, then the merchant's own return statuses."""
    return {sid: {"status_id": sid, "active": "1", "default": "1" if sid == "1" else "0",
                  "color": "#%06x" % (int(sid) * 1234567 % 0xFFFFFF), "type": kind,
                  "order": str(n), "email_change": "0",
                  "translations": {"pl_PL": {"name": name, "message": ""}}}
            for n, (sid, kind, name) in enumerate(STATUSES, start=1)}


@dataclass
class ShopData:
    """A shop's records by id: orders, each order's products, payment transactions and order refunds.

    `latest` is the newest `status_date` given out, so a status change made later can be stamped strictly after
    it (a "changed since" listing then always sees it, however fast a test acts).
    """

    now: datetime
    days: int
    statuses: dict[str, dict[str, Any]] = field(default_factory=status_table)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    transactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[int, dict[str, Any]] = field(default_factory=dict)
    latest: str = ""
    _next: dict[str, int] = field(default_factory=lambda: {"product": PRODUCT_BASE, "transaction": TRANSACTION_BASE,
                                                           "refund": REFUND_BASE})

    @classmethod
    def seeded(cls, seed: int, n_orders: int, days: int) -> ShopData:
        """`n_orders` orders placed over the last `days` days; about a third of them in a return status or
        refunded."""
        data = cls(now=datetime.now(timezone.utc).replace(microsecond=0), days=days)
        data.latest = local(data.now - timedelta(days=days + 1))
        rng = random.Random(seed)
        for n in range(n_orders):
            data._seed_order(rng, ORDER_BASE + n)
        return data

    def next_id(self, kind: str) -> int:
        """The next id of a product, transaction or refund (orders take the next after the highest)."""
        self._next[kind] += 1
        return self._next[kind]

    def _seed_order(self, rng: random.Random, order_id: int) -> None:
        placed = self.now - timedelta(seconds=rng.uniform(3600, self.days * 86400))
        status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
        changed = min(placed + timedelta(seconds=rng.uniform(600, 12 * 86400)), self.now - timedelta(seconds=120))
        order = self.new_order(rng, order_id, placed, status)
        regular = regular_for(order_id) if status in RETURN_STATUSES else None
        if regular is not None:  # a customer who also buys on Allegro's sandbox (kit.sandbox.REGULARS)
            for address in (order["billing_address"], order["delivery_address"]):
                address.update(firstname=regular.first_name, lastname=regular.last_name, city=regular.city,
                               postcode=regular.postcode, phone=f"+48 {regular.phone[:3]} {regular.phone[3:6]} "
                                                                f"{regular.phone[6:]}")
        order["status_date"] = local(changed)
        self.latest = max(self.latest, order["status_date"])
        self.orders[order_id] = order
        self.products[order_id] = [self._product(rng, order_id, p) for p in
                                   rng.sample(range(len(PRODUCTS)), rng.randint(1, 3))]
        self.total(order)
        if status in RETURN_STATUSES and rng.random() < 0.7:
            order["additional_fields"] = [{"field_id": REASON_FIELD, "type": "1", "locate": "2", "req": "0",
                                           "value": rng.choice(REASONS)}]
        if status not in ("1", "2", "6"):
            self._pay(rng, order, status, changed)

    def _pay(self, rng: random.Random, order: dict[str, Any], status: str, changed: datetime) -> None:
        """A paid order's transaction, and now and then a refund against it (half of the accepted returns)."""
        order["paid"], order["is_paid"] = order["sum"], True
        tid = self.next_id("transaction")
        self.transactions[tid] = {"transaction_id": str(tid), "order_id": order["order_id"],
                                  "payment_id": order["payment_id"], "currency_id": order["currency_id"],
                                  "currency_value": order["sum"], "status": "3", "date": order["date"]}
        refund_chance = {ACCEPTED: 0.5, "5": 0.06, RECEIVED: 0.1}.get(status, 0.0)
        if rng.random() < refund_chance:
            full = status == ACCEPTED and rng.random() < 0.6
            amount = Decimal(order["sum"]) if full else (Decimal(order["sum"]) * Decimal("0.2"))
            state = rng.choice(("3", "3", "3", "1", "2"))
            self.add_refund(tid, amount, state, when=min(changed + timedelta(hours=rng.uniform(1, 48)),
                                                         self.now - timedelta(seconds=60)),
                            comment=rng.choice(("", "Zwrot środków", "Rabat za opóźnienie")))

    def new_order(self, rng: random.Random, order_id: int, placed: datetime, status: str) -> dict[str, Any]:
        """An order as `GET /orders/{id}` shows it, its buyer drawn from `rng`; no products, sum 0 yet."""
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, postcode = rng.choice(CITIES)
        address = {"address_id": str(order_id * 2), "order_id": str(order_id), "type": "1", "firstname": first,
                   "lastname": last, "company": "", "tax_id": "", "pesel": "", "city": city, "postcode": postcode,
                   "street1": f"ul. Długa {order_id % 90 + 1}", "street2": "", "state": "", "country": "Polska",
                   "phone": f"+48 600 {order_id:06d}" if rng.random() < 0.8 else "", "country_code": "PL"}
        currency = "2" if rng.random() < 0.1 else "1"
        return {
            "order_id": str(order_id), "user_id": str(order_id % 300 + 1), "date": local(placed),
            "status_date": local(placed), "confirm_date": local(placed), "delivery_date": "",
            "status_id": status, "status": self.statuses[status], "sum": "0.00", "paid": "0.00", "is_paid": False,
            "shipping_tax_id": "1", "lang_id": "1",
            "is_underpayment": False, "is_overpayment": False, "is_cash_on_delivery": False, "payment_id": "1",
            "shipping_id": "1", "shipping_cost": "14.99" if rng.random() < 0.6 else "0.00",
            "email": f"{first.lower()}.{last.lower()}{order_id % 97}@example.pl" if rng.random() < 0.97 else "",
            "billing_address": address, "delivery_address": {**address, "type": "2"}, "pickup_point": "",
            "notes": "", "notes_priv": "", "notes_pub": "", "origin": "0", "currency_id": currency,
            "currency_rate": "1.0000" if currency == "1" else "4.2800", "code": f"{order_id:x}", "promo_code": "",
            "total_products": 0, "total_parcels": 1, "additional_fields": [],
        }

    def _product(self, rng: random.Random, order_id: int, index: int) -> dict[str, Any]:
        name, code, price = PRODUCTS[index]
        pid = self.next_id("product")
        return {"id": str(pid), "order_id": str(order_id), "product_id": str(100 + index), "stock_id": str(200 + index),
                "price": price, "discount_perc": "10.00" if rng.random() < 0.15 else "0.00",
                "quantity": str(rng.choice((1, 1, 1, 2, 3))), "delivery_time": "1", "name": name,
                "ean": f"590{order_id % 1000:04d}{index:06d}" if index % 4 else "",
                "code": code, "pkwiu": "", "tax": "23%", "tax_value": "23.00", "unit": "szt.",
                "option": "rozmiar: M" if index in (0, 1) else "", "unit_fp": "0", "weight": "0.50"}

    def total(self, order: dict[str, Any]) -> None:
        """The order's sum and product count, after its products changed."""
        items = sum((Decimal(p["price"]) * (100 - Decimal(p["discount_perc"])) / 100 * Decimal(p["quantity"])
                     for p in self.products.get(int(order["order_id"]), [])), Decimal(0))
        order["sum"] = money(items + Decimal(order.get("shipping_cost") or 0))
        order["total_products"] = len(self.products.get(int(order["order_id"]), []))

    def add_refund(self, transaction_id: int, amount: Decimal, status: str, *, when: datetime | None = None,
                   comment: str = "", description: str = "") -> dict[str, Any]:
        """An order refund against a transaction, as `GET /order-refunds` lists it."""
        transaction = self.transactions[transaction_id]
        rid = self.next_id("refund")
        refund = {"refund_id": str(rid), "order_id": transaction["order_id"], "transaction_id": str(transaction_id),
                  "date": local(when or datetime.now(timezone.utc)), "currency_id": transaction.get("currency_id"),
                  "currency_value": money(amount), "status": status, "status_description": description,
                  "comment": comment}
        self.refunds[rid] = refund
        return refund
