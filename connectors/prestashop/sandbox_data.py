"""The PrestaShop sandbox's seeded data: customers, orders with their details, merchandise returns and credit
slips, the same for the same seed. The webservice that serves and changes them is `emulator.py`; this module only
fills the tables (and makes the slips and orders both the seeding and the emulator's writes need).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RESOURCES_9 = ("addresses", "carriers", "carts", "currencies", "customers", "customer_messages", "customer_threads",
               "order_details", "order_histories", "order_returns", "order_slip", "order_states", "orders",
               "products")
ORDER_STATES = {1: "Awaiting check payment", 2: "Payment accepted", 3: "Processing in progress", 4: "Shipped",
                5: "Delivered", 6: "Canceled", 7: "Refunded", 8: "Payment error", 9: "On backorder (paid)",
                10: "Awaiting bank wire payment", 11: "Remote payment accepted", 12: "On backorder (not paid)",
                13: "Awaiting Cash On Delivery validation"}
HOLD_ORDER_ID = 1
"""The order the merchant made once for held marketplace returns (`hold_order_id`), for customer HOLD_CUSTOMER_ID."""
HOLD_CUSTOMER_ID = 41
PAYMENT_MODULES = ("ps_checkpayment", "ps_wirepayment", "stripe_official")
"""Installed payment modules: an order POST runs through one of them (validateOrder) with a real cart."""
PRODUCTS = (("Merino beanie", "demo_1", "12.500000"), ("Linen shirt", "demo_2", "41.000000"),
            ("Canvas tote", "demo_3", "15.750000"), ("Ceramic mug", "", "9.900000"),
            ("Trail socks", "demo_5", "13.200000"), ("Rain jacket", "demo_6", "98.000000"),
            ("Wool scarf", "demo_7", "28.900000"), ("Desk lamp", "demo_8", "45.450000"))
QUESTIONS = ("<p>Too small, I need one size up</p>", "The parcel arrived damaged", "<p>Colour is not as described"
             "</p>", "Changed my mind", "It does not work at all", "Gift &amp; not needed")
FIRST = ("Anna", "Ben", "Chloé", "David", "Eva", "Felix", "Greta", "Hugo")
LAST = ("Meyer", "Jansen", "Dubois", "Rossi", "Novak", "Peeters")
VAT = Decimal("1.2")


def _m(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def shop_time(moment: datetime) -> str:
    """A moment as the shop writes it: `YYYY-MM-DD HH:MM:SS`, no offset."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


@dataclass
class ShopTables:
    """The shop's tables (resource -> id -> record) and what hands out their ids and finds an order's details."""

    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {name: {} for name in RESOURCES_9})
    _top_ids: dict[str, int] = field(default_factory=dict)
    _details_of: dict[int, list[int]] = field(default_factory=dict)
    """order id -> its order_details ids, in order."""

    def next_id(self, table: str) -> int:
        """One more than the highest id so far, without a pass over the table (seeding a big shop was
        quadratic): ids are handed out here in increasing order, so the newest key is the highest."""
        rows = self.tables[table]
        top = max(self._top_ids.get(table, 0), next(reversed(rows), 0) if rows else 0)
        while top + 1 in rows:
            top += 1
        self._top_ids[table] = top + 1
        return top + 1

    def new_order(self, rng: random.Random, placed: datetime, state: int, customer: int) -> dict[str, Any]:
        """An order of one to three products for `customer`, with its order details (the lines returns name)."""
        order_id = self.next_id("orders")
        rows, total = [], Decimal(0)
        for product in rng.sample(range(len(PRODUCTS)), rng.randint(1, 3)):
            name, reference, price = PRODUCTS[product]
            quantity = rng.choice((1, 1, 2, 3))
            detail_id = self.next_id("order_details")
            incl = Decimal(price) * VAT
            self._details_of.setdefault(order_id, []).append(detail_id)
            self.tables["order_details"][detail_id] = {
                "id": detail_id, "id_order": order_id, "product_id": 10 + product, "product_attribute_id": 0,
                "product_name": name, "product_quantity": quantity, "product_quantity_in_stock": quantity,
                "product_quantity_return": "0", "product_quantity_refunded": "0",
                "product_quantity_reinjected": "0", "product_price": price, "unit_price_tax_incl": _m(incl),
                "unit_price_tax_excl": price, "total_price_tax_incl": _m(incl * quantity),
                "total_price_tax_excl": _m(Decimal(price) * quantity), "total_refunded_tax_incl": "0.000000",
                "total_refunded_tax_excl": "0.000000", "product_reference": reference,
                "product_ean13": f"40012345{product:04d}{order_id % 10}" if product % 3 else "",
                "product_upc": "", "product_isbn": "", "product_mpn": "", "id_order_invoice": order_id,
                "id_warehouse": 0, "id_shop": 1, "id_customization": 0,
            }
            rows.append(detail_id)
            total += incl * quantity
        shipping = Decimal("4.950000") if rng.random() < 0.6 else Decimal(0)
        order = {
            "id": order_id, "id_address_delivery": customer, "id_address_invoice": customer, "id_cart": order_id,
            "id_currency": 1, "id_lang": 1, "id_customer": customer, "id_carrier": 2, "current_state": state,
            "module": rng.choice(PAYMENT_MODULES),
            "invoice_number": order_id, "invoice_date": shop_time(placed), "delivery_number": 0,
            "delivery_date": "0000-00-00 00:00:00", "valid": "1" if state not in (6, 8) else "0",
            "date_add": shop_time(placed), "date_upd": shop_time(placed), "shipping_number": "", "note": "",
            "id_shop_group": 1, "id_shop": 1, "secure_key": f"{order_id:032x}", "payment": "Payments by check",
            "recyclable": "0",
            "gift": "0", "gift_message": "", "mobile_theme": "0", "total_discounts": "0.000000",
            "total_paid": _m(total + shipping), "total_paid_tax_incl": _m(total + shipping),
            "total_paid_tax_excl": _m((total + shipping) / VAT), "total_paid_real": _m(total + shipping),
            "total_products": _m(total / VAT), "total_products_wt": _m(total), "total_shipping": _m(shipping),
            "carrier_tax_rate": "20.000", "conversion_rate": "1.000000", "round_mode": 2, "round_type": 2,
            "reference": f"{order_id:09X}"[-9:],
            "associations": {"order_rows": [self.order_row(self.tables["order_details"][i]) for i in rows]},
        }
        self.tables["orders"][order_id] = order
        return order

    @staticmethod
    def order_row(detail: dict[str, Any]) -> dict[str, Any]:
        """An order's `associations.order_rows` entry (`Order::$webserviceParameters`, getWsOrderRows)."""
        return {"id": detail["id"], "product_id": detail["product_id"],
                "product_attribute_id": detail["product_attribute_id"],
                "product_quantity": detail["product_quantity"], "product_name": detail["product_name"],
                "product_reference": detail["product_reference"], "product_ean13": detail["product_ean13"],
                "product_isbn": detail["product_isbn"], "product_upc": detail["product_upc"],
                "product_price": detail["product_price"], "id_customization": detail["id_customization"],
                "unit_price_tax_incl": detail["unit_price_tax_incl"],
                "unit_price_tax_excl": detail["unit_price_tax_excl"]}

    def details(self, order_id: int) -> list[dict[str, Any]]:
        """The order's details, in order, without a pass over every detail of the shop."""
        table = self.tables["order_details"]
        return [table[i] for i in self._details_of.get(order_id, ()) if i in table]

    def slip(self, order: dict[str, Any], lines: list[tuple[dict[str, Any], int]], when: datetime) -> dict[str, Any]:
        """One credit slip refunding each (order detail, quantity) at the customer's price."""
        slip_id = self.next_id("order_slip")
        details, incl, excl = [], Decimal(0), Decimal(0)
        for detail, quantity in lines:
            line_incl = Decimal(detail["unit_price_tax_incl"]) * quantity
            line_excl = Decimal(detail["unit_price_tax_excl"]) * quantity
            details.append({"id": detail["id"], "id_order_detail": detail["id"], "product_quantity": quantity,
                            "amount_tax_excl": _m(line_excl), "amount_tax_incl": _m(line_incl)})
            incl, excl = incl + line_incl, excl + line_excl
        slip = {"id": slip_id, "id_customer": order["id_customer"], "id_order": order["id"],
                "conversion_rate": "1.000000", "total_products_tax_excl": _m(excl),
                "total_products_tax_incl": _m(incl), "total_shipping_tax_excl": "0.000000",
                "total_shipping_tax_incl": "0.000000", "amount": _m(incl), "shipping_cost": "0",
                "shipping_cost_amount": "0.000000", "partial": "1", "date_add": shop_time(when),
                "date_upd": shop_time(when), "order_slip_type": "0", "associations": {"order_slip_details": details}}
        self.tables["order_slip"][slip_id] = slip
        return slip


@dataclass
class Seeding:
    """One pass of the seeded random walk that fills `shop`: orders placed over `days` up to `now`, about a fifth
    of the delivered ones with a merchandise return (some refunded) or a slip made in the back office."""

    shop: ShopTables
    now: datetime
    days: int

    def order(self, rng: random.Random) -> None:
        """One order, and maybe its merchandise return or a refund made in the back office."""
        placed = self.now - timedelta(seconds=rng.uniform(16 * 86400, self.days * 86400))
        state = rng.choices([5, 4, 2, 3, 6, 10, 9, 12], [55, 10, 8, 6, 5, 6, 3, 2])[0]
        order = self.shop.new_order(rng, placed, state, customer=rng.randint(1, 40))
        delivered = placed + timedelta(days=rng.uniform(1, 4))
        updated = placed + timedelta(hours=rng.uniform(1, 48))
        if state == 5:
            order["delivery_date"] = shop_time(delivered)
            updated = delivered
        order["date_upd"] = shop_time(min(updated, self.now - timedelta(minutes=5)))
        if state == 5 and rng.random() < 0.3:
            asked = min(delivered + timedelta(days=rng.uniform(1, 10)), self.now - timedelta(minutes=4))
            return_state = rng.choices([1, 2, 3, 4, 5, 6], [30, 15, 10, 8, 10, 3])[0]
            refund = return_state == 5 and rng.random() < 0.7
            self.merchandise_return(rng, order, asked, return_state, refund)
        elif state == 5 and rng.random() < 0.08:  # refunded in the back office without a merchandise return
            when = min(delivered + timedelta(days=2), self.now - timedelta(minutes=3))
            detail = self.shop.details(order["id"])[0]
            detail["product_quantity_refunded"] = "1"
            self.shop.slip(order, [(detail, 1)], when)

    def merchandise_return(self, rng: random.Random, order: dict[str, Any], asked: datetime, state: int,
                           refund: bool) -> int:
        """A return of some of the order's lines (their returned quantities set), refunded by a slip if `refund`."""
        details = self.shop.details(order["id"])
        picked = rng.sample(details, rng.randint(1, len(details)))
        return_id = self.shop.next_id("order_returns")
        self.shop.tables["order_returns"][return_id] = {
            "id": return_id, "id_customer": order["id_customer"], "id_order": order["id"],
            "question": rng.choice(QUESTIONS), "state": state, "date_add": shop_time(asked),
            "date_upd": shop_time(asked)}
        for detail in picked:
            detail["product_quantity_return"] = str(rng.randint(1, int(detail["product_quantity"])))
        if refund:
            when = min(asked + timedelta(days=3), self.now - timedelta(minutes=2))
            self.shop.tables["order_returns"][return_id]["date_upd"] = shop_time(when)
            self.shop.slip(order, [(d, int(d["product_quantity_return"])) for d in picked], when)
        return return_id


def seeded_shop(seed: int, n_orders: int, days: int, now: datetime) -> ShopTables:
    """The shop for `seed`: 40 customers, the hold order of the "Marketplace Returns" customer, `n_orders` orders."""
    shop = ShopTables()
    shop.tables["currencies"] = {1: {"id": 1, "name": "Euro", "iso_code": "EUR", "conversion_rate": "1.000000"}}
    shop.tables["order_states"] = {i: {"id": i, "name": n} for i, n in ORDER_STATES.items()}
    opened = now - timedelta(days=days)
    rng = random.Random(seed)
    for n in range(1, 41):
        shop.tables["customers"][n] = {"id": n, "firstname": rng.choice(FIRST), "lastname": rng.choice(LAST),
                                       "email": f"customer{n}@example.com", "id_lang": 1, "active": "1",
                                       "date_add": shop_time(opened), "date_upd": shop_time(opened)}
    shop.tables["customers"][HOLD_CUSTOMER_ID] = {
        "id": HOLD_CUSTOMER_ID, "firstname": "Marketplace", "lastname": "Returns",
        "email": "marketplace-returns@shop.example.com", "id_lang": 1, "active": "1",
        "date_add": shop_time(opened), "date_upd": shop_time(opened)}
    holder = shop.new_order(random.Random(0), opened, 6, customer=HOLD_CUSTOMER_ID)
    assert holder["id"] == HOLD_ORDER_ID
    seeding = Seeding(shop, now, days)
    for _ in range(n_orders):
        seeding.order(rng)
    return shop
