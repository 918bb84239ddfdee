"""The Amazon sandbox's seeded half: orders (Orders v0 `Order` and `OrderItem` objects) and the rows of the two
returns reports, as NOTES.md and the model files describe them. The routes are in emulator.py.

Every fifth return is an FBA customer return (Amazon's own); the others are MFN returns, every fourth of them of
every item of its order (several report rows under one RMA id: the whole-return act). About two thirds of the
MFN returns are open (requested, label in transit, delivered back).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from retsync.kit.sandbox import SeededData

MFN_REPORT = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
FBA_REPORT = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
ADJUSTMENT_FEED = "POST_FLAT_FILE_PAYMENT_ADJUSTMENT_DATA"
MFN_HEADER = (
    "Order ID", "Order date", "Return request date", "Return request status", "Amazon RMA ID", "Merchant RMA ID",
    "Label type", "Label cost", "Currency code", "Return carrier", "Tracking ID", "Label to be paid by",
    "A-to-Z Claim", "Is prime", "ASIN", "Merchant SKU", "Item Name", "Return quantity", "Return Reason",
    "In policy", "Return type", "Resolution", "Invoice number", "Return delivery date", "Order Amount",
    "Order quantity", "SafeT Action reason", "SafeT claim id", "SafeT claim state", "SafeT claim creation time",
    "SafeT claim reimbursement amount", "Refunded Amount")
"""The sandbox's own copy of NOTES.md's header rows (tests/amazon/test_emulator_spec.py checks them against it)."""
FBA_HEADER = ("return-date", "order-id", "sku", "asin", "fnsku", "product-name", "quantity", "fulfillment-center-id",
              "detailed-disposition", "reason", "status", "license-plate-number", "customer-comments")
MARKETPLACE = "A1PA6795UKMFR9"
"""amazon.de, the sandbox's one marketplace."""
CURRENCY = "EUR"
PRODUCTS = (("TS-100", "B0TSHIRT01", "Organic cotton T-shirt", "19.95"),
            ("JN-220", "B0JEANS220", "Slim jeans", "59.95"),
            ("SW-310", "B0SWEAT310", "Merino sweater", "74.50"), ("SK-050", "B0SOCKS050", "Trail socks", "12.99"),
            ("CP-700", "B0RAINCAP7", "Rain cap", "24.90"), ("BG-900", "B0BACKPK90", "Canvas backpack", "89.00"))
MFN_REASONS = ("AMZ-PG-APP-TOO-SMALL", "AMZ-PG-APP-TOO-LARGE", "CR-DEFECTIVE", "CR-DAMAGED_BY_CARRIER",
               "AMZ-PG-BAD-DESC", "CR-UNWANTED_ITEM", "CR-ORDERED_WRONG_ITEM", "CR-FOUND_BETTER_PRICE")
FBA_REASONS = ("DEFECTIVE", "NOT_AS_DESCRIBED", "QUALITY_UNACCEPTABLE", "UNWANTED_ITEM", "APPAREL_TOO_SMALL")
DISPOSITIONS = ("SELLABLE", "DAMAGED", "CUSTOMER_DAMAGED", "DEFECTIVE", "CARRIER_DAMAGED")
FBA_STATUSES = ("Unit returned to inventory", "Reimbursed")
MFN_STAGES = (("requested", 30), ("in_transit", 22), ("received", 14), ("refunded", 20), ("closed", 14))
CARRIERS = ("DHL", "DPD", "Hermes")
SEEDED_DAYS = 80
TAX_RATE = Decimal("0.19")


def tsv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    """Rows as Amazon's flat files write them: a header row, tab-separated, no quoting."""
    return "".join("\t".join(row.get(name, "") for name in columns) + "\n" for row in [dict(zip(columns, columns)),
                                                                                     *rows])


def untsv(content: str) -> list[dict[str, str]]:
    """A flat file's data rows by its header row."""
    lines = [line for line in content.splitlines() if line.strip()]
    header = lines[0].split("\t") if lines else []
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def stamp(moment: datetime) -> str:
    """A time as SP-API writes it: ISO 8601 in UTC, whole seconds, a trailing Z."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def report_stamp(moment: datetime) -> str:
    """A time as the returns reports write it: ISO 8601 with its offset."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def order_id(rng: random.Random) -> str:
    """Amazon's 3-7-7 order id."""
    return f"{rng.randint(302, 306)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}"


@dataclass
class AmazonData(SeededData):
    channel: str = "amazon"
    size: int = 16
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mfn_rows: list[dict[str, str]] = field(default_factory=list)
    fba_rows: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n in range(self.size):
            fba = n % 5 == 4
            rng = self.rng("order", n)
            order = self.add_order(rng, fulfilled_by_amazon=fba, lines=2 if n % 4 == 0 else 1)
            if fba:
                self.fba_rows.append(self._fba_row(self.rng("return", n), order))
            else:
                self.mfn_rows += self._mfn_rows(self.rng("return", n), n, order, whole=n % 4 == 0)

    def add_order(self, rng: random.Random, *, fulfilled_by_amazon: bool = False, lines: int = 1,
                  placed: datetime | None = None) -> dict[str, Any]:
        placed = placed or self.midnight - timedelta(days=rng.uniform(8, SEEDED_DAYS))
        identifier = order_id(rng)
        entries = []
        total = Decimal(0)
        for sku, asin, title, price in rng.sample(PRODUCTS, lines):
            quantity = rng.choice((1, 1, 2))
            line_price = Decimal(price) * quantity
            total += line_price
            entries.append({
                "ASIN": asin, "SellerSKU": sku, "OrderItemId": str(rng.randint(10**13, 10**14 - 1)), "Title": title,
                "QuantityOrdered": quantity, "QuantityShipped": quantity,
                "ItemPrice": {"CurrencyCode": CURRENCY, "Amount": amount(line_price)},
                "ItemTax": {"CurrencyCode": CURRENCY, "Amount": amount(line_price * TAX_RATE / (1 + TAX_RATE))},
                "ConditionId": "New", "IsGift": "false"})
        order = {
            "AmazonOrderId": identifier, "PurchaseDate": stamp(placed),
            "LastUpdateDate": stamp(placed + timedelta(days=2)), "OrderStatus": "Shipped",
            "FulfillmentChannel": "AFN" if fulfilled_by_amazon else "MFN", "SalesChannel": "Amazon.de",
            "OrderTotal": {"CurrencyCode": CURRENCY, "Amount": amount(total)},
            "NumberOfItemsShipped": sum(e["QuantityOrdered"] for e in entries), "NumberOfItemsUnshipped": 0,
            "MarketplaceId": MARKETPLACE, "OrderType": "StandardOrder", "IsPrime": rng.random() < 0.4,
            "IsBusinessOrder": False, "IsReplacementOrder": False,
            "BuyerInfo": {"BuyerEmail": f"{identifier.replace('-', '')}@marketplace.amazon.de"},
            "ShippingAddress": {"PostalCode": rng.choice(("10115", "80331", "50667", "20095")), "CountryCode": "DE",
                                "City": "Berlin"}}
        self.orders[identifier] = order
        self.order_items[identifier] = entries
        return order

    def _mfn_rows(self, rng: random.Random, n: int, order: dict[str, Any], whole: bool) -> list[dict[str, str]]:
        placed = datetime.fromisoformat(order["PurchaseDate"].replace("Z", "+00:00"))
        requested = min(placed + timedelta(days=rng.uniform(2, 7)), self.midnight - timedelta(hours=2))
        stage = rng.choices([s for s, _ in MFN_STAGES], [w for _, w in MFN_STAGES])[0]
        chosen = self.order_items[order["AmazonOrderId"]] if whole else self.order_items[order["AmazonOrderId"]][:1]
        reason = rng.choice(MFN_REASONS)
        tracking = f"00340434{rng.randint(10**9, 10**10 - 1)}" if stage != "requested" else ""
        delivered = requested + timedelta(days=rng.uniform(2, 5)) if stage in ("received", "refunded", "closed") \
            else None
        rma = f"D{rng.randint(10**8, 10**9 - 1)}{chr(65 + n % 26)}"
        return [self.mfn_row(order, item, rma=rma,
                             requested=requested, status="Closed" if stage == "closed" else "Approved",
                             reason=reason, quantity=rng.randint(1, item["QuantityOrdered"]), tracking=tracking,
                             carrier=rng.choice(CARRIERS) if tracking else "",
                             delivered=report_stamp(delivered) if delivered else "",
                             refunded=stage == "refunded")
                for item in chosen]

    def mfn_row(self, order: dict[str, Any], item: dict[str, Any], *, rma: str, requested: datetime, status: str,
                reason: str, quantity: int, tracking: str = "", carrier: str = "", delivered: str = "",
                refunded: bool = False) -> dict[str, str]:
        price = Decimal(item["ItemPrice"]["Amount"])
        return {
            "Order ID": order["AmazonOrderId"], "Order date": report_stamp(
                datetime.fromisoformat(order["PurchaseDate"].replace("Z", "+00:00"))),
            "Return request date": report_stamp(requested), "Return request status": status,
            "Amazon RMA ID": rma, "Merchant RMA ID": "", "Label type": "AmazonPrePaidLabel" if tracking else "",
            "Label cost": "4.50" if tracking else "", "Currency code": CURRENCY, "Return carrier": carrier,
            "Tracking ID": tracking, "Label to be paid by": "Seller" if tracking else "", "A-to-Z Claim": "N",
            "Is prime": "Y" if order.get("IsPrime") else "N", "ASIN": item["ASIN"], "Merchant SKU": item["SellerSKU"],
            "Item Name": item["Title"], "Return quantity": str(quantity), "Return Reason": reason, "In policy": "Y",
            "Return type": "C-Returns", "Resolution": "StandardRefund", "Invoice number": "",
            "Return delivery date": delivered, "Order Amount": item["ItemPrice"]["Amount"],
            "Order quantity": str(item["QuantityOrdered"]), "SafeT Action reason": "", "SafeT claim id": "",
            "SafeT claim state": "", "SafeT claim creation time": "", "SafeT claim reimbursement amount": "",
            "Refunded Amount": amount(price / item["QuantityOrdered"] * quantity) if refunded else ""}

    def _fba_row(self, rng: random.Random, order: dict[str, Any]) -> dict[str, str]:
        placed = datetime.fromisoformat(order["PurchaseDate"].replace("Z", "+00:00"))
        returned = min(placed + timedelta(days=rng.uniform(4, 12)), self.midnight - timedelta(hours=3))
        item = self.order_items[order["AmazonOrderId"]][0]
        return {"return-date": report_stamp(returned), "order-id": order["AmazonOrderId"], "sku": item["SellerSKU"],
                "asin": item["ASIN"], "fnsku": "X00" + item["ASIN"][3:], "product-name": item["Title"],
                "quantity": "1", "fulfillment-center-id": rng.choice(("LEJ1", "DUS2", "FRA7")),
                "detailed-disposition": rng.choice(DISPOSITIONS), "reason": rng.choice(FBA_REASONS),
                "status": rng.choice(FBA_STATUSES), "license-plate-number": f"LPN{rng.randint(10**9, 10**10 - 1)}",
                "customer-comments": rng.choice(("", "Too small", "Arrived scratched"))}
