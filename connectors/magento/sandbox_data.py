"""The Magento sandbox's seeded half: orders, RMAs and credit memos as the Admin REST API 2.4.9 answers them
(`sales-data-order-interface`, `rma-data-rma-interface`, `sales-data-creditmemo-interface`).

Built on `retsync.kit.sandbox.SeededData`: every record draws from its own random stream, dates count back from
today's midnight. Every third order holds a configurable product (a `configurable` parent line carrying the price
and a `simple` child line with `parent_item_id`, as Magento stores them); RMAs name the child (the product that
was shipped). RMAs come in every status; their status is derived from their items' statuses (`rma_status`, NOTES.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from retsync.kit.sandbox import SeededData

PRODUCTS = (("MH01", "Chaz Kangeroo Hoodie", 52.00, True), ("MJ02", "Montana Wind Jacket", 49.00, True),
            ("24-MB01", "Joust Duffle Bag", 34.00, False), ("24-WG02", "Didi Sport Watch", 92.00, False),
            ("WS03", "Breathe-Easy Tank", 34.00, True), ("24-UG01", "Quest Lumaflex Band", 19.00, False))
SIZES = ("XS", "S", "M", "L", "XL")
BUYERS = (("Veronica", "Costello", "49628-7978", "(555) 229-3326"), ("Anna", "Meyer", "10115", "+49 30 1234567"),
          ("Ben", "Jansen", "3511 AB", "+31 6 12345678"), ("Chloé", "Dubois", "69001", "+33 4 78 00 00 00"),
          ("Jonas", "Peeters", "9000", "+32 9 123 45 67"))
REASONS = {"7": "Wrong Color", "8": "Wrong Size", "9": "Out of Service", "10": "Other"}
CONDITIONS = {"11": "Unopened", "12": "Opened", "13": "Damaged"}
RESOLUTIONS = {"4": "Exchange", "5": "Refund", "6": "Store Credit", "21": "Repair"}
"""The EAV options of the RMA item attributes (`/V1/returnsAttributeMetadata/{code}`); ids as strings."""
ITEM_MIXES = ((("pending",), 30), (("authorized",), 15), (("received",), 15), (("approved",), 12),
              (("rejected",), 6), (("denied",), 6), (("approved", "denied"), 4), (("received", "pending"), 6),
              (("closed_by_admin",), 6))
"""The item statuses seeded per RMA (weights): about two thirds of the RMAs are open."""
CARRIERS = (("ups", "United Parcel Service"), ("dhl", "DHL"), ("custom", "PostNL"))
CURRENCY = "EUR"
ORDER_BASE = 1000
RMA_BASE = 100
HOLD_ORDER_ID = 999
"""The order the sandbox's merchant named for the back-office flow: marketplace returns are held on it as RMAs."""
SEEDED_DAYS = 80


def stamp(moment: datetime) -> str:
    """A time as Magento writes it: UTC, "YYYY-MM-DD HH:MM:SS"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def rma_status(statuses: list[str]) -> str:
    """Status::getStatusByItems: the RMA's status from the set of its items' statuses (NOTES.md)."""
    found = set(statuses)
    if not found or found == {"pending"} or found == {"pending", "denied"}:
        return "pending"
    if found == {"denied"}:
        return "closed"
    if found == {"authorized"}:
        return "authorized"
    if found <= {"pending", "authorized", "denied"}:
        return "partially_authorized"
    if found == {"received"}:
        return "received"
    if found <= {"approved", "denied"}:
        return "processed_closed"
    if found <= {"rejected", "denied"}:
        return "closed"
    if found <= {"approved", "rejected", "denied"}:
        return "processed_closed"
    if "received" in found:
        return "received_on_item"
    if "approved" in found:
        return "approved_on_item"
    if "rejected" in found:
        return "rejected_on_item"
    return "pending"


@dataclass
class MagentoData(SeededData):
    """`size` RMAs on orders of their own, plus credit memos for the RMAs refunded and a few without an RMA."""

    channel: str = "magento"
    size: int = 60
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    rmas: dict[int, dict[str, Any]] = field(default_factory=dict)
    creditmemos: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=lambda: {"item": 5000, "rma_item": 9000, "comment": 300,
                                                         "track": 700, "creditmemo": 40, "cm_item": 600})

    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def __post_init__(self) -> None:
        hold = self._order(self.rng("hold"), HOLD_ORDER_ID, lines=1, configurable=False)
        hold["items"][0].update(sku="MARKETPLACE-RETURN", name="Marketplace return (held for a decision)",
                                qty_ordered=10_000, qty_invoiced=0, qty_shipped=0, price=0.0, base_price=0.0,
                                row_total=0.0)
        hold.update(grand_total=0.0, base_grand_total=0.0, subtotal=0.0, shipping_amount=0.0, status="holded",
                    state="holded", customer_email="marketplace-returns@example.com")
        self.orders[HOLD_ORDER_ID] = hold
        for n in range(self.size):
            order = self._order(self.rng("order", n), ORDER_BASE + n, lines=2 if n % 4 == 0 else 1,
                                configurable=n % 3 == 0)
            self.orders[order["entity_id"]] = order
            rma = self._rma(self.rng("rma", n), RMA_BASE + n, order)
            self.rmas[rma["entity_id"]] = rma
        for n in range(max(3, self.size // 10)):  # refunds without an RMA (Open Source stores have only these)
            order = self._order(self.rng("order", "cm", n), ORDER_BASE + self.size + n, lines=1,
                                configurable=n % 2 == 0)
            self.orders[order["entity_id"]] = order
            rng = self.rng("creditmemo", n)
            self.refund(order, {bought(order)[0]["item_id"]: 1}, stamp(parse(order["created_at"])
                                                                        + timedelta(days=rng.uniform(3, 6))),
                        "Refunded in the shop")

    def _order(self, rng: random.Random, number: int, lines: int, configurable: bool) -> dict[str, Any]:
        placed = self.midnight - timedelta(days=rng.uniform(10, SEEDED_DAYS))
        first, last, postcode, phone = rng.choice(BUYERS)
        email = f"{first}.{last}@example.com".lower().replace("é", "e")
        items: list[dict[str, Any]] = []
        for sku, name, price, has_sizes in rng.sample(PRODUCTS, lines):
            qty = rng.choice((1, 1, 2))
            item = {"item_id": self.next_id("item"), "order_id": number, "sku": sku, "name": name,
                    "product_type": "simple", "qty_ordered": qty, "qty_invoiced": qty, "qty_shipped": qty,
                    "qty_refunded": 0, "qty_returned": 0, "qty_canceled": 0, "price": price, "base_price": price,
                    "row_total": price * qty, "created_at": stamp(placed), "updated_at": stamp(placed)}
            items.append(item)
            if configurable and has_sizes:
                size = rng.choice(SIZES)
                item.update(product_type="configurable", sku=f"{sku}-{size}")
                items.append({**item, "item_id": self.next_id("item"), "product_type": "simple",
                              "parent_item_id": item["item_id"], "name": f"{name}-{size}", "price": 0.0,
                              "base_price": 0.0, "row_total": 0.0})
        total = sum(i["row_total"] for i in items) + 5.0
        return {
            "entity_id": number, "increment_id": f"{number:09d}", "state": "complete", "status": "complete",
            "created_at": stamp(placed), "updated_at": stamp(placed + timedelta(days=2)),
            "customer_email": email, "customer_firstname": first, "customer_lastname": last, "customer_is_guest": 1,
            "grand_total": total, "base_grand_total": total, "subtotal": total - 5.0, "shipping_amount": 5.0,
            "total_refunded": 0.0, "total_offline_refunded": 0.0, "order_currency_code": CURRENCY,
            "base_currency_code": CURRENCY, "store_id": 1, "items": items,
            "billing_address": {"address_type": "billing", "city": "Calder", "country_id": "NL", "email": email,
                                "firstname": first, "lastname": last, "postcode": postcode, "telephone": phone,
                                "street": ["6146 Honey Bluff Parkway"], "parent_id": number},
            "status_histories": [],
        }

    def _rma(self, rng: random.Random, number: int, order: dict[str, Any]) -> dict[str, Any]:
        mix = rng.choices([m for m, _ in ITEM_MIXES], [w for _, w in ITEM_MIXES])[0]
        placed = parse(order["created_at"])
        requested = min(placed + timedelta(days=rng.uniform(3, 8)), self.midnight - timedelta(hours=2))
        chosen = bought(order)
        reason = rng.choice(list(REASONS))
        items = []
        for index, line in enumerate(chosen):
            status = mix[min(index, len(mix) - 1)]
            closed = status == "closed_by_admin"
            status = "denied" if closed else status
            qty = rng.randint(1, int(line["qty_ordered"]))
            items.append({
                "entity_id": self.next_id("rma_item"), "rma_entity_id": number, "order_item_id": line["item_id"],
                "qty_requested": qty, "qty_authorized": qty if status not in ("pending", "denied") else 0,
                "qty_approved": qty if status == "approved" else 0,
                "qty_returned": qty if status in ("received", "approved", "rejected") else 0,
                "reason": reason, "condition": rng.choice(list(CONDITIONS)), "resolution": "5", "status": status})
        tracks = []
        if any(i["status"] != "pending" for i in items):
            code, title = rng.choice(CARRIERS)
            tracks.append({"entity_id": self.next_id("track"), "rma_entity_id": number,
                           "track_number": f"1Z{rng.randint(10**9, 10**10 - 1)}", "carrier_title": title,
                           "carrier_code": code})
        comments = [{"comment": rng.choice(("Too small for me", "Colour differs from the photo", "")),
                     "rma_entity_id": number, "created_at": stamp(requested), "entity_id": self.next_id("comment"),
                     "customer_notified": False, "visible_on_front": True, "status": "pending", "admin": False}]
        if any(i["status"] in ("received", "approved", "rejected") for i in items):
            # the status history entry Magento writes when the parcel is booked in (its only dated trace)
            received = min(requested + timedelta(days=rng.uniform(0.5, 1.5)), self.midnight - timedelta(hours=1))
            comments.append({"comment": "We received your package.", "rma_entity_id": number,
                             "created_at": stamp(received), "entity_id": self.next_id("comment"),
                             "customer_notified": False, "visible_on_front": False,
                             "status": "received" if all(i["status"] != "pending" for i in items)
                             else "received_on_item", "admin": True})
        rma = {"increment_id": f"{number:09d}", "entity_id": number, "order_id": order["entity_id"],
               "order_increment_id": order["increment_id"], "store_id": 1, "customer_id": 0,
               "date_requested": stamp(requested), "customer_custom_email": order["customer_email"], "items": items,
               "status": rma_status([i["status"] for i in items]), "comments": comments, "tracks": tracks}
        if all(i["status"] in ("approved", "denied") for i in items) and any(i["status"] == "approved" for i in items):
            self.refund(order, {i["order_item_id"]: i["qty_approved"] for i in items if i["status"] == "approved"},
                        stamp(requested + timedelta(days=2)), f"RMA #{rma['increment_id']} approved")
        return rma

    def refund(self, order: dict[str, Any], quantities: dict[int, int], when: str, comment: str,
               to_stock: bool = True) -> dict[str, Any]:
        """An offline credit memo of `quantities` (order_item_id → qty) on `order`, with the order's totals."""
        by_id = {i["item_id"]: i for i in order["items"]}
        number = self.next_id("creditmemo")
        lines = []
        for item_id, qty in quantities.items():
            item = by_id[item_id]
            priced = by_id.get(item.get("parent_item_id") or 0, item)
            price = float(priced["price"])
            lines.append({"entity_id": self.next_id("cm_item"), "parent_id": number, "order_item_id": item_id,
                          "sku": item["sku"], "name": item["name"], "qty": qty, "price": price, "base_price": price,
                          "base_cost": 0.0, "row_total": price * qty})
            for changed in {item["item_id"], priced["item_id"]}:
                by_id[changed]["qty_refunded"] = by_id[changed]["qty_refunded"] + qty
                if to_stock:
                    by_id[changed]["qty_returned"] = by_id[changed]["qty_returned"] + qty
        total = sum(line["row_total"] for line in lines)
        memo = {"entity_id": number, "increment_id": f"{number:09d}", "order_id": order["entity_id"],
                "state": 2, "grand_total": total, "base_grand_total": total, "subtotal": total,
                "order_currency_code": CURRENCY, "created_at": when, "updated_at": when, "items": lines,
                "comments": [{"entity_id": self.next_id("comment"), "parent_id": number, "comment": comment,
                              "created_at": when, "is_customer_notified": 0, "is_visible_on_front": 0}]}
        self.creditmemos[number] = memo
        order["total_refunded"] = order["total_offline_refunded"] = order["total_refunded"] + total
        order["updated_at"] = when
        return memo


def bought(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines a buyer can return: simple products, the child of a configurable one rather than its parent."""
    parents = {i["parent_item_id"] for i in order["items"] if i.get("parent_item_id")}
    return [i for i in order["items"] if i["item_id"] not in parents]
