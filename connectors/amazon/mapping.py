"""Translation only: Amazon's returns reports (tab-separated flat files) and Orders v0 JSON to the unified model,
and a refund decision to a line of the order-adjustment flat-file feed.

No requests here. Amazon publishes no enum for the report columns (NOTES.md): every status, reason and
resolution is kept verbatim beside the unified value. A report row is keyed by the report's natural keys, so the
overlapping windows of two reports give the same return ids and revisions:

- MFN (`GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE`): one row per returned item; the rows of one `Amazon RMA ID`
  are one return (without an RMA id: the order id and the return request date), a line per `Merchant SKU`
  (else `ASIN`). There is no order item id in the report: the line names the SKU, and the order's items give the
  `OrderItemId` a refund needs.
- FBA (`GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA`): one row per returned unit batch, keyed by order id and
  license plate number (else SKU and return date); Amazon decides those returns itself, so they are stored
  decided by the channel and never pushed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.payload import EARLIEST, OutOfRange, count, decimal, items, minor_units, obj, text, when

MFN_REPORT = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
FBA_REPORT = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
ADJUSTMENT_FEED = "POST_FLAT_FILE_PAYMENT_ADJUSTMENT_DATA"

MFN_COLUMNS = (
    "Order ID", "Order date", "Return request date", "Return request status", "Amazon RMA ID", "Merchant RMA ID",
    "Label type", "Label cost", "Currency code", "Return carrier", "Tracking ID", "Label to be paid by",
    "A-to-Z Claim", "Is prime", "ASIN", "Merchant SKU", "Item Name", "Return quantity", "Return Reason",
    "In policy", "Return type", "Resolution", "Invoice number", "Return delivery date", "Order Amount",
    "Order quantity", "SafeT Action reason", "SafeT claim id", "SafeT claim state", "SafeT claim creation time",
    "SafeT claim reimbursement amount", "Refunded Amount")
"""The MFN returns report's header row, exact strings (NOTES.md, from Amazon's returns-reports-attributes)."""
FBA_COLUMNS = ("return-date", "order-id", "sku", "asin", "fnsku", "product-name", "quantity",
               "fulfillment-center-id", "detailed-disposition", "reason", "status", "license-plate-number",
               "customer-comments")
"""The FBA customer returns report's header row (NOTES.md)."""
ADJUSTMENT_COLUMNS = ("order-id", "order-item-id", "adjustment-reason-code", "currency", "item-price-adj",
                      "item-tax-adj", "shipping-price-adj", "shipping-tax-adj", "gift-wrap-price-adj",
                      "gift-wrap-tax-adj", "item-promotion-adj", "item-promotion-id", "ship-promotion-adj",
                      "ship-promotion-id", "quantity-cancelled")
"""The order-adjustment flat file's columns (NOTES.md, "Write-back through Feeds")."""

ROW_LIMIT = 200_000
"""Rows read from one report: more is no seller's returns in one window; the report is refused (BadPayload)."""
CELL_LIMIT = 2_000
"""Characters kept of one cell (an item name, a buyer's comment)."""

REASON_KEYWORDS: Sequence[tuple[tuple[str, ...], ReturnReason]] = (
    (("TOO_SMALL", "TOO_LARGE", "TOO_BIG", "SIZE", "FIT"), ReturnReason.WRONG_SIZE),
    (("DAMAGED", "DAMAGE"), ReturnReason.DAMAGED),
    (("DEFECT", "MISSING_PARTS", "NOT_WORKING", "QUALITY", "FAULTY"), ReturnReason.DEFECTIVE),
    (("ORDERED_WRONG", "MISTAKE", "UNAUTHORIZED", "ACCIDENTAL"), ReturnReason.ORDERED_BY_MISTAKE),
    (("SWITCHEROO", "WRONG_ITEM", "EXTRA_ITEM", "DIFFERENT"), ReturnReason.WRONG_ITEM),
    (("BETTER_PRICE", "PRICE"), ReturnReason.BETTER_PRICE),
    (("DELIVERY", "LATE", "NEVER_ARRIVED", "UNDELIVERABLE"), ReturnReason.DELIVERY_PROBLEM),
    (("UNWANTED", "NO_LONGER", "NOT_NEEDED", "CHANGED_MIND"), ReturnReason.NO_LONGER_NEEDED),
    (("NOT_AS_DESCRIBED", "BAD_DESC", "NOT_COMPATIBLE", "INCOMPATIBLE", "NOT_AS_EXPECTED"),
     ReturnReason.NOT_AS_EXPECTED),
)
"""Amazon's reason codes (`CR-DEFECTIVE`, `AMZ-PG-APP-TOO-SMALL`, `NOT_AS_DESCRIBED`, …) read by the words in
them, first match wins; Amazon publishes no closed list, so a code naming none of them is OTHER, kept verbatim."""
CLOSED_WORDS = ("closed", "completed", "complete")
CANCELLED_WORDS = ("cancelled", "canceled", "withdrawn")
REJECTED_WORDS = ("rejected", "denied", "declined")


# --- flat files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlatFile:
    """A tab-separated report: its header row and its data lines, kept as text (a report of 15,000 returns is a
    few MB as lines, several times that as dicts) and read a page at a time with `row`."""

    header: tuple[str, ...]
    lines: list[str] = field(default_factory=list)

    def row(self, line: str) -> dict[str, str | None]:
        """One data line by the header: a missing cell is None, an extra one is dropped."""
        cells = line.split("\t")
        return {name: (cells[i].strip()[:CELL_LIMIT] or None) if i < len(cells) else None
                for i, name in enumerate(self.header)}

    @property
    def rows(self) -> list[dict[str, str | None]]:
        return [self.row(line) for line in self.lines]


def read_flat_file(content: str) -> FlatFile:
    """A tab-separated report: its header row and its data lines. Blank lines are skipped; no quoting (Amazon's
    flat files have none)."""
    lines = [line for line in content.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    if not lines:
        return FlatFile(())
    if len(lines) - 1 > ROW_LIMIT:
        raise OutOfRange(f"{len(lines) - 1} rows: retsync reads at most {ROW_LIMIT} rows of one report")
    header = tuple(cell.strip().lstrip("\ufeff") for cell in lines[0].split("\t"))
    del lines[0]
    return FlatFile(header, lines)


def write_flat_file(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as a tab-separated file with a header row; tabs and line breaks in a value become spaces."""
    def cell(value: Any) -> str:
        return "" if value is None else " ".join(str(value).split())

    lines = ["\t".join(columns)] + ["\t".join(cell(row.get(name)) for name in columns) for row in rows]
    return "\n".join(lines) + "\n"


# --- values ------------------------------------------------------------------------------------

_DATE_FORMATS = ("%d-%b-%Y", "%Y-%m-%d", "%d-%b-%Y %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y")


def report_date(value: Any) -> datetime | None:
    """A report's date: ISO 8601 (`2026-11-02T10:04:11+00:00`), or a day as in Amazon's samples (`10-Jul-2025`,
    `2025-07-10`), read as UTC; None when unreadable."""
    found = when(value)
    if found is not None:
        return found
    raw = text(value)
    if raw is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(raw, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        return parsed if parsed >= EARLIEST else None
    return None


def reason(code: str | None) -> ReturnReason:
    if code is None:
        return ReturnReason.UNKNOWN
    folded = code.upper().replace("-", "_").replace(" ", "_")
    for words, meaning in REASON_KEYWORDS:
        if any(word in folded for word in words):
            return meaning
    return ReturnReason.OTHER


def required(row: Mapping[str, Any], key: str) -> str:
    value = text(row.get(key))
    if value is None:
        raise KeyError(key)
    return value


def revision_of(rows: Sequence[Mapping[str, Any]]) -> str:
    """The same rows give the same revision in every report that holds them, whatever their order."""
    dumped = sorted(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
    return hashlib.sha256("\n".join(dumped).encode()).hexdigest()[:24]


def _yes(value: Any) -> bool | None:
    raw = (text(value) or "").upper()
    return True if raw in ("Y", "YES", "TRUE") else False if raw in ("N", "NO", "FALSE") else None


# --- MFN returns -------------------------------------------------------------------------------


def mfn_key(row: Mapping[str, Any]) -> str:
    """The return a row belongs to: its Amazon RMA ID, else its order id and return request date."""
    rma = text(row.get("Amazon RMA ID"))
    if rma is not None:
        return rma
    return f"{required(row, 'Order ID')}@{required(row, 'Return request date')}"


def group_mfn_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str | None, list[Mapping[str, Any]]]:
    """Rows by the return they belong to, in report order; rows without a key fall under None."""
    groups: dict[str | None, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_key_or_none(row), []).append(row)
    return groups


def group_mfn_lines(flat: FlatFile) -> dict[str | None, list[str]]:
    """A report's data lines by the return they belong to (as `group_mfn_rows`), still as text."""
    groups: dict[str | None, list[str]] = {}
    for line in flat.lines:
        groups.setdefault(_key_or_none(flat.row(line)), []).append(line)
    return groups


def _key_or_none(row: Mapping[str, Any]) -> str | None:
    try:
        return mfn_key(row)
    except KeyError:
        return None


def mfn_status(rows: Sequence[Mapping[str, Any]]) -> ReturnStatus:
    """Where an MFN return is, from the report's facts: refunded, closed, received (a delivery date), in transit
    (a tracking id), else requested; a status word retsync does not know leaves the return open."""
    words = (text(rows[0].get("Return request status")) or "").casefold()
    if any(minor_units(row.get("Refunded Amount")) for row in rows):
        return ReturnStatus.REFUNDED
    if any(word in words for word in CANCELLED_WORDS):
        return ReturnStatus.CANCELLED
    if any(word in words for word in REJECTED_WORDS):
        return ReturnStatus.DECIDED
    if any(word in words for word in CLOSED_WORDS):
        return ReturnStatus.CLOSED
    if any(report_date(row.get("Return delivery date")) for row in rows):
        return ReturnStatus.RECEIVED
    if any(text(row.get("Tracking ID")) for row in rows):
        return ReturnStatus.IN_TRANSIT
    return ReturnStatus.REQUESTED


def map_mfn_return(rows: Sequence[Mapping[str, Any]]) -> Return:
    """The rows of one MFN return (one per returned item) as one return with a line per SKU."""
    if not rows:
        raise ValueError("a return without rows")
    first = rows[0]
    external_id = mfn_key(first)
    order_id = required(first, "Order ID")
    created = report_date(first.get("Return request date"))
    if created is None:
        raise ValueError("Return request date is not a date")
    code = text(first.get("Return Reason"))
    currency = text(first.get("Currency code"))
    refunds = [minor_units(row.get("Refunded Amount")) for row in rows]
    lines: list[ReturnLine] = []
    for row in items([dict(row) for row in rows]):
        product = text(row.get("Merchant SKU")) or required(row, "ASIN")
        line_id = f"{external_id}/{product}"
        taken = {line.external_id for line in lines}
        suffix = 2
        while line_id in taken:
            line_id, suffix = f"{external_id}/{product}#{suffix}", suffix + 1
        row_code = text(row.get("Return Reason")) or code
        lines.append(ReturnLine(
            external_id=line_id, order_external_id=order_id, sku=text(row.get("Merchant SKU")),
            title=text(row.get("Item Name")), quantity=count(row.get("Return quantity")), reason=reason(row_code),
            channel_reason=row_code, channel_status=text(row.get("Resolution")), currency=currency))
    received = [d for d in (report_date(row.get("Return delivery date")) for row in rows) if d is not None]
    extra = {key: value for key, value in {
        "report": "mfn", "asins": sorted({a for a in (text(r.get("ASIN")) for r in rows) if a}),
        "merchant_rma_id": text(first.get("Merchant RMA ID")), "a_to_z_claim": _yes(first.get("A-to-Z Claim")),
        "is_prime": _yes(first.get("Is prime")), "in_policy": _yes(first.get("In policy")),
        "return_type": text(first.get("Return type")), "label_type": text(first.get("Label type")),
        "label_to_be_paid_by": text(first.get("Label to be paid by")),
        "label_cost": text(first.get("Label cost")), "invoice_number": text(first.get("Invoice number")),
        "safet_claim_id": text(first.get("SafeT claim id")),
    }.items() if value not in (None, [])}
    return Return(
        external_id=external_id, order_external_id=order_id, status=mfn_status(rows),
        channel_status=text(first.get("Return request status")), reason=reason(code), channel_reason=code,
        created_at=created, received_at=min(received) if received else None,
        refund_amount=sum(r for r in refunds if r) or None, currency=currency,
        tracking_number=text(first.get("Tracking ID")), carrier=text(first.get("Return carrier")),
        lines=tuple(lines), revision=revision_of(rows), extra=extra)


# --- FBA returns -------------------------------------------------------------------------------


def fba_key(row: Mapping[str, Any]) -> str:
    order_id = required(row, "order-id")
    plate = text(row.get("license-plate-number"))
    if plate is not None:
        return f"FBA-{order_id}-{plate}"
    return f"FBA-{order_id}-{required(row, 'sku')}-{required(row, 'return-date')}"


def map_fba_return(row: Mapping[str, Any]) -> Return:
    """One FBA customer return row: Amazon's own, stored as decided by the channel (refunded by Amazon) and never
    pushed; the disposition (SELLABLE, DAMAGED, …) is the line's channel status."""
    external_id = fba_key(row)
    order_id = required(row, "order-id")
    returned = report_date(row.get("return-date"))
    if returned is None:
        raise ValueError("return-date is not a date")
    code = text(row.get("reason"))
    quantity = count(row.get("quantity"))
    line = ReturnLine(
        external_id=f"{external_id}/{text(row.get('sku')) or required(row, 'asin')}", order_external_id=order_id,
        sku=text(row.get("sku")), title=text(row.get("product-name")), quantity=quantity, reason=reason(code),
        channel_reason=code, customer_comment=text(row.get("customer-comments")),
        channel_status=text(row.get("detailed-disposition")), channel_decision=DecisionKind.ACCEPT,
        channel_decision_quantity=quantity)
    extra = {key: value for key, value in {
        "report": "fba", "asin": text(row.get("asin")), "fnsku": text(row.get("fnsku")),
        "fulfillment_center_id": text(row.get("fulfillment-center-id")),
        "license_plate_number": text(row.get("license-plate-number")),
    }.items() if value is not None}
    return Return(
        external_id=external_id, order_external_id=order_id, status=ReturnStatus.DECIDED,
        channel_status=text(row.get("status")), reason=reason(code), channel_reason=code, created_at=returned,
        received_at=returned, decided_at=returned, handled_by_channel=True, lines=(line,),
        revision=revision_of([row]), extra=extra)


# --- orders ------------------------------------------------------------------------------------


def money(value: Any) -> tuple[int | None, str | None]:
    """An SP-API Money object as (minor units, currency)."""
    found = obj(value)
    return minor_units(found.get("Amount")), text(found.get("CurrencyCode"))


def map_order(order: Mapping[str, Any], order_items: Sequence[Any], *, buyer_data: bool = False) -> Order:
    """getOrder's payload and its getOrderItems, one line per OrderItem (its OrderItemId, SellerSKU, unit price).

    Buyer e-mail, name and postcode are personal data Amazon fills only for an app with a Restricted Data Token;
    they are read only with `buyer_data`, else left out even where present."""
    total, currency = money(order.get("OrderTotal"))
    lines = []
    for item in items(list(order_items)):
        price, price_currency = money(item.get("ItemPrice"))
        quantity = count(item.get("QuantityOrdered"))
        lines.append(OrderLine(
            external_id=required(item, "OrderItemId"), sku=text(item.get("SellerSKU")), title=text(item.get("Title")),
            quantity=quantity, unit_price=round(price / quantity) if price is not None and quantity else price,
            currency=price_currency or currency))
    customer = Customer()
    if buyer_data:
        buyer, address = obj(order.get("BuyerInfo")), obj(order.get("ShippingAddress"))
        customer = Customer(email=text(buyer.get("BuyerEmail")), name=text(buyer.get("BuyerName")),
                            postcode=text(address.get("PostalCode")), phone=text(address.get("Phone")))
    return Order(external_id=required(order, "AmazonOrderId"), placed_at=when(order.get("PurchaseDate")),
                 channel_status=text(order.get("OrderStatus")), currency=currency, total_amount=total,
                 customer=customer, lines=tuple(lines))


def order_item_for(order_items: Sequence[Any], sku: str | None, order_item_id: str | None) -> Mapping[str, Any] | None:
    """The OrderItem a returned line came from: by its id where known, else by SellerSKU, else by ASIN."""
    entries = [obj(item) for item in order_items]
    for key, wanted in (("OrderItemId", order_item_id), ("SellerSKU", sku), ("ASIN", sku)):
        if wanted is not None:
            found = next((item for item in entries if text(item.get(key)) == wanted), None)
            if found is not None:
                return found
    return None


# --- refunds through the order-adjustment feed -------------------------------------------------


def _amount(value: Any) -> Decimal | None:
    return decimal(obj(value).get("Amount"))


def adjustment_row(order_id: str, item: Mapping[str, Any], quantity: int, reason_code: str) -> dict[str, str]:
    """One row of the adjustment flat file: `quantity` units of the item refunded at its price and tax per unit."""
    ordered = count(item.get("QuantityOrdered")) or 1
    units = Decimal(min(quantity, ordered))

    def part(value: Any) -> str | None:
        amount = _amount(value)
        if amount is None:
            return None
        return str((amount / ordered * units).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    currency = text(obj(item.get("ItemPrice")).get("CurrencyCode"))
    if currency is None or part(item.get("ItemPrice")) is None:
        raise ValueError(f"order item {text(item.get('OrderItemId'))} of {order_id} has no ItemPrice to refund")
    row = {"order-id": order_id, "order-item-id": required(item, "OrderItemId"), "adjustment-reason-code": reason_code,
           "currency": currency, "item-price-adj": part(item.get("ItemPrice")),
           "item-tax-adj": part(item.get("ItemTax"))}
    return {key: value for key, value in row.items() if value is not None}


@dataclass(frozen=True)
class ProcessingReport:
    """A flat-file feed's processing report: its summary and the messages per original record number."""

    processed: int | None
    successful: int | None
    errors: dict[int, list[str]]
    warnings: dict[int, list[str]]


def read_processing_report(content: str) -> ProcessingReport:
    """Amazon's flat-file processing report: a "Feed Processing Summary" with "Number of records processed" and
    "... successful", then a tab-separated table `original-record-number`, …, `error-code`, `error-type`
    (Error / Warning), `error-message`. Column names are matched loosely (Amazon varies them by feed)."""
    processed = successful = None
    errors: dict[int, list[str]] = {}
    warnings: dict[int, list[str]] = {}
    header: list[str] | None = None
    for raw in content.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        folded = line.casefold()
        cells = [cell.strip() for cell in raw.split("\t")]
        numbers = [cell for cell in cells if cell.isdigit()]
        if "records processed" in folded and numbers:
            processed = int(numbers[-1])
            continue
        if "records successful" in folded and numbers:
            successful = int(numbers[-1])
            continue
        if header is None and any(cell.casefold() == "original-record-number" for cell in cells):
            header = [cell.casefold() for cell in cells]
            continue
        if header is not None:
            entry = dict(zip(header, cells))
            number = entry.get("original-record-number", "")
            if not number.isdigit():
                continue
            kind = entry.get("error-type", "error").casefold()
            message = " ".join(part for part in (entry.get("error-code"), entry.get("error-message")) if part)
            (warnings if kind.startswith("warn") else errors).setdefault(int(number), []).append(message or kind)
    return ProcessingReport(processed, successful, errors, warnings)
