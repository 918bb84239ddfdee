"""The seeded shop behind the WooCommerce sandbox: customers, orders, WP Swings return requests and shop refunds.

Kept apart from the routes in emulator.py, so what the shop holds and how the API answers can be read (and
changed) one at a time. The same seed gives the same shop: every choice comes from one `random.Random`, drawn in
a fixed order, and order item ids come from the emulator's one counter (refunds take ids from it too, so
`seeded_orders` is a generator the emulator applies order by order).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ORDER_BASE = 1000
ITEM_BASE = 5000
TAX_RATE_ID = 1
CURRENCY = "EUR"

STATUS_WEIGHTS = (
    ("completed", 46), ("processing", 9), ("on-hold", 3), ("pending", 3), ("cancelled", 4), ("failed", 2),
    ("refunded", 4), ("return-requested", 14), ("return-approved", 5), ("return-cancelled", 4),
    ("exchange-request", 2), ("partially-shipped", 2), ("checkout-draft", 1), ("trash", 1),
)
UNPAID = ("pending", "failed", "on-hold", "checkout-draft", "cancelled")
"""Orders that never reached payment_complete(): WooCommerce leaves their `date_paid` null."""
REQUEST_STATE = {"return-requested": "pending", "return-approved": "complete", "return-cancelled": "cancel",
                 "exchange-request": "pending"}
"""The WP Swings request state behind each status an order of the seeded shop can have for a return."""

FIRST_NAMES = ("Anna", "Ben", "Chloé", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Klara", "Lena")
LAST_NAMES = ("Meyer", "Jansen", "Kowalska", "Dubois", "Rossi", "Novak", "Schmidt", "Peeters", "Larsen", "Silva")
CITIES = (("Berlin", "10115", "DE"), ("Utrecht", "3511 AB", "NL"), ("Lyon", "69001", "FR"), ("Gent", "9000", "BE"),
          ("Wien", "1010", "AT"), ("Kraków", "30-001", "PL"))
PRODUCTS = (("Merino beanie", "12.40"), ("Linen shirt", "41.32"), ("Canvas tote", "15.70"),
            ("Ceramic mug", "9.92"), ("Trail socks (3 pairs)", "13.22"), ("Rain jacket", "98.35"),
            ("Wool scarf", "28.93"), ("Leather belt", "33.06"), ("Desk lamp", "45.45"), ("Yoga mat", "24.79"))
REASONS = (("Wrong size", "Too small, I need one size up"), ("Damaged", "The box was crushed and it is damaged"),
           ("Not as described", "The colour is different from the photos"), ("Changed my mind", ""),
           ("Defective", "It does not work"), ("Other", "Gift, not needed"))
GATEWAYS = (("stripe", "Credit card (Stripe)"), ("ppcp-gateway", "PayPal"), ("mollie_wc_gateway_ideal", "iDEAL"))


# --- money and dates as WooCommerce writes them ------------------------------------------------


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def cents(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def from_cents(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def cents_tax(amount: int) -> int:
    """21 % VAT, rounded half up to the cent like WooCommerce's default rounding."""
    return (amount * 21 + 50) // 100


def gmt(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()


def local(moment: datetime) -> str:
    """The shop's own time (Europe, +1h), as WooCommerce shows it beside the _gmt field."""
    return (moment.astimezone(timezone.utc) + timedelta(hours=1)).replace(tzinfo=None, microsecond=0).isoformat()


def set_meta(order: dict[str, Any], key: str, value: Any) -> None:
    """WordPress `update_meta_data`: replace the value under `key`, or add it with a fresh id."""
    for entry in order["meta_data"]:
        if entry["key"] == key:
            entry["value"] = value
            return
    order["meta_data"].append({"id": order["id"] * 100 + len(order["meta_data"]) + 1, "key": key, "value": value})


# --- orders ------------------------------------------------------------------------------------


def new_order(rng: random.Random, order_id: int, created: datetime, status: str,
              next_item: Callable[[], int]) -> dict[str, Any]:
    """A checkout order of one to three products, shipping and 21 % VAT, paid unless its status says not."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, postcode, country = rng.choice(CITIES)
    gateway, gateway_title = rng.choice(GATEWAYS)
    items = [line_item(rng, product, next_item()) for product in rng.sample(range(len(PRODUCTS)), rng.randint(1, 3))]
    shipping = 495 if rng.random() < 0.6 else 0  # cents: summing strings as Decimals is what made 20k slow
    shipping_tax = cents_tax(shipping)
    items_tax = sum(cents(i["total_tax"]) for i in items)
    total = sum(cents(i["total"]) for i in items) + shipping + items_tax + shipping_tax
    email = f"{first.lower()}.{last.lower().replace(' ', '')}{order_id % 97}@example.com"
    address = {"first_name": first, "last_name": last, "company": "", "address_1": f"Hauptstraße {order_id % 80}",
               "address_2": "", "city": city, "state": "", "postcode": postcode, "country": country}
    billing = {**address, "email": email if rng.random() < 0.97 else "",
               "phone": f"+49 30 {order_id:07d}" if rng.random() < 0.7 else ""}
    created_local, created_gmt = local(created), gmt(created)
    return {
        "id": order_id, "parent_id": 0, "number": str(order_id), "order_key": f"wc_order_{order_id:x}",
        "created_via": "checkout", "version": "9.4.2", "status": status, "currency": CURRENCY,
        "date_created": created_local, "date_created_gmt": created_gmt,
        "date_modified": created_local, "date_modified_gmt": created_gmt,
        "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": from_cents(shipping),
        "shipping_tax": from_cents(shipping_tax), "cart_tax": from_cents(items_tax),
        "total": from_cents(total), "total_tax": from_cents(items_tax + shipping_tax),
        "prices_include_tax": False, "customer_id": rng.choice((0, order_id % 400 + 2)),
        "customer_ip_address": "203.0.113.7", "customer_user_agent": "Mozilla/5.0", "customer_note": "",
        "billing": billing, "shipping": {**address, "phone": ""}, "payment_method": gateway,
        "payment_method_title": gateway_title, "transaction_id": f"tx_{order_id}",
        "date_paid": created_local if status not in UNPAID else None,
        "date_paid_gmt": created_gmt if status not in UNPAID else None, "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "", "meta_data": [], "line_items": items,
        "tax_lines": [{"id": order_id * 10, "rate_code": "VAT-21", "rate_id": TAX_RATE_ID, "label": "VAT",
                       "compound": False, "tax_total": from_cents(items_tax),
                       "shipping_tax_total": from_cents(shipping_tax), "rate_percent": 21, "meta_data": []}],
        "shipping_lines": [], "fee_lines": [], "coupon_lines": [], "refunds": [],
    }


def line_item(rng: random.Random, product: int, item_id: int) -> dict[str, Any]:
    """One to three units of a product; the ceramic mug has no SKU, as some shops' products have none."""
    name, price = PRODUCTS[product]
    quantity = rng.choice((1, 1, 1, 2, 3))
    total = cents(price) * quantity
    tax = from_cents(cents_tax(total))
    return {
        "id": item_id, "name": name, "product_id": 200 + product, "variation_id": 0,
        "quantity": quantity, "tax_class": "", "subtotal": from_cents(total), "subtotal_tax": tax,
        "total": from_cents(total), "total_tax": tax,
        "taxes": [{"id": TAX_RATE_ID, "total": tax, "subtotal": tax}], "meta_data": [],
        "sku": f"SKU-{200 + product}" if product != 3 else "", "price": float(price),
    }


def add_request(rng: random.Random, order: dict[str, Any], asked: datetime, state: str) -> None:
    """A WP Swings return request on some of the order's items, in its meta as the plugin stores it."""
    subject, reason = rng.choice(REASONS)
    items = rng.sample(order["line_items"], rng.randint(1, len(order["line_items"])))
    products = [{"item_id": item["id"], "product_id": item["product_id"], "variation_id": item["variation_id"],
                 "qty": rng.randint(1, item["quantity"]), "price": item["price"]} for item in items]
    amount = sum(Decimal(str(p["price"])) * p["qty"] for p in products)
    request = {"products": products, "amount": money(amount), "subject": subject, "reason": reason,
               "status": state, "auto_amount": "no"}
    set_meta(order, "wps_rma_return_product", {str(int(asked.timestamp())): request})
    line_state = "completed" if state == "complete" else state
    set_meta(order, "wps_rma_request_made", {str(p["item_id"]): line_state for p in products})


def shop_refund_body(rng: random.Random, order: dict[str, Any], full: bool) -> dict[str, Any]:
    """A refund the shop made itself: the whole order, a goodwill amount, or one unit of one item."""
    if full:
        return {"amount": order["total"], "reason": "Refunded in the shop", "line_items": []}
    if rng.random() < 0.3:  # a goodwill refund of an amount only
        return {"amount": money(Decimal(order["total"]) * Decimal("0.1")), "reason": "Goodwill", "line_items": []}
    item = rng.choice(order["line_items"])
    tax = Decimal(item["total_tax"]) / item["quantity"]
    unit = Decimal(item["total"]) / item["quantity"]
    return {"amount": money(unit + tax), "reason": rng.choice(("Returned", "", "Item damaged")),
            "line_items": [{"id": item["id"], "quantity": 1, "refund_total": float(money(unit)),
                            "refund_tax": [{"id": TAX_RATE_ID, "refund_total": float(money(tax))}]}]}


# --- the whole shop ----------------------------------------------------------------------------


@dataclass
class SeededOrder:
    """One order of the seeded shop and what the emulator still has to do to it: make the shop's refund (with
    core's own rules) and stamp its last change."""

    order: dict[str, Any]
    refund: dict[str, Any] | None
    refunded_at: datetime | None
    modified: datetime


def seeded_orders(rng: random.Random, now: datetime, n_orders: int, days: int,
                  next_item: Callable[[], int]) -> Iterator[SeededOrder]:
    """`n_orders` orders created within `days` before `now`, about a quarter of them returns of some kind.

    Lazy on purpose: the emulator makes each order's refund before the next order is drawn, so item ids stay
    in the order they were always handed out."""
    for n in range(n_orders):
        yield _seeded_order(rng, now, ORDER_BASE + n, days, next_item)


def _seeded_order(rng: random.Random, now: datetime, order_id: int, days: int,
                  next_item: Callable[[], int]) -> SeededOrder:
    created = now - timedelta(seconds=rng.uniform(600, days * 86400))
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    order = new_order(rng, order_id, created, "completed" if status in REQUEST_STATE else status, next_item)
    modified = created + timedelta(seconds=rng.uniform(60, 3 * 86400))
    if order["status"] == "completed":  # set by WC_Order::status_transition when an order is completed
        order["date_completed"], order["date_completed_gmt"] = local(modified), gmt(modified)
    if status in REQUEST_STATE and rng.random() < 0.9:
        asked = min(modified + timedelta(days=rng.uniform(1, 12)), now - timedelta(seconds=120))
        add_request(rng, order, asked, REQUEST_STATE[status])
        modified = asked
    order["status"] = status
    refund = when = None
    if status in ("refunded", "return-approved") or (status == "completed" and rng.random() < 0.08):
        when = min(modified + timedelta(days=rng.uniform(0.5, 5)), now - timedelta(seconds=60))
        if not (status == "return-approved" and rng.random() < 0.5):  # else approved, goods still on their way
            refund = shop_refund_body(rng, order, status == "refunded")
            modified = when
    return SeededOrder(order, refund, when if refund is not None else None, min(modified, now - timedelta(seconds=60)))
