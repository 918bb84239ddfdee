"""The Amazon mapping: report rows and Orders v0 JSON to the unified model, the adjustment feed and its processing
report; hypothesis properties drawn from the model files' Order and OrderItem schemas and from the report header."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retsync.kit.http import BadPayload
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.records import RECORD_ERRORS
from retsync.testing.specs import PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema, load_spec
from retsync_connectors.amazon.client import Document, _gunzip, decode
from retsync_connectors.amazon.mapping import (
    MFN_COLUMNS,
    adjustment_row,
    group_mfn_rows,
    map_fba_return,
    map_mfn_return,
    map_order,
    read_flat_file,
    read_processing_report,
    reason,
    report_date,
    write_flat_file,
)


def mfn(**values: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(MFN_COLUMNS)
    row.update({"Order ID": "302-1234567-7654321", "Return request date": "2026-11-02T10:04:11+00:00",
                "Return request status": "Approved", "Amazon RMA ID": "DxYz123", "ASIN": "B0TSHIRT01",
                "Merchant SKU": "TS-100", "Item Name": "T-shirt", "Return quantity": "1",
                "Return Reason": "AMZ-PG-APP-TOO-SMALL", "Currency code": "EUR", "Resolution": "StandardRefund"})
    row.update(values)
    return row


def test_a_flat_file_is_read_by_its_header() -> None:
    flat = read_flat_file("\ufeffa\tb\tc\r\n1\t2\r\n\r\n3\t\t5\t6\n")
    assert flat.header == ("a", "b", "c")
    assert flat.rows == [{"a": "1", "b": "2", "c": None}, {"a": "3", "b": None, "c": "5"}]
    assert read_flat_file("").rows == []
    written = write_flat_file(("x", "y"), [{"x": "a\tb", "y": None}])
    assert written == "x\ty\na b\t\n"


def test_the_rows_of_one_rma_are_one_return_with_a_line_per_sku() -> None:
    rows = [mfn(), mfn(**{"Merchant SKU": "JN-220", "ASIN": "B0JEANS220", "Return quantity": "2"}),
            mfn(**{"Merchant SKU": "JN-220", "ASIN": "B0JEANS220"})]
    groups = group_mfn_rows(rows)
    assert list(groups) == ["DxYz123"]
    ret = map_mfn_return(groups["DxYz123"])
    assert ret.external_id == "DxYz123" and ret.order_external_id == "302-1234567-7654321"
    assert [line.external_id for line in ret.lines] == ["DxYz123/TS-100", "DxYz123/JN-220", "DxYz123/JN-220#2"]
    assert [line.quantity for line in ret.lines] == [1, 2, 1]
    assert ret.status is ReturnStatus.REQUESTED and ret.reason is ReturnReason.WRONG_SIZE
    assert ret.channel_reason == "AMZ-PG-APP-TOO-SMALL" and ret.currency == "EUR"
    assert ret.revision == map_mfn_return(list(reversed(groups["DxYz123"]))).revision, "row order does not matter"
    assert ret.revision != map_mfn_return([mfn(**{"Tracking ID": "1Z"})] + rows[1:]).revision


def test_without_an_rma_id_a_return_is_its_order_and_request_date() -> None:
    groups = group_mfn_rows([mfn(**{"Amazon RMA ID": None}), mfn(**{"Amazon RMA ID": None, "Order ID": None})])
    assert list(groups) == ["302-1234567-7654321@2026-11-02T10:04:11+00:00", None]


@pytest.mark.parametrize("values, status", [
    ({}, ReturnStatus.REQUESTED),
    ({"Tracking ID": "0034043"}, ReturnStatus.IN_TRANSIT),
    ({"Tracking ID": "0034043", "Return delivery date": "10-Nov-2026"}, ReturnStatus.RECEIVED),
    ({"Refunded Amount": "19.95"}, ReturnStatus.REFUNDED),
    ({"Return request status": "Closed"}, ReturnStatus.CLOSED),
    ({"Return request status": "Rejected"}, ReturnStatus.DECIDED),
    ({"Return request status": "Cancelled"}, ReturnStatus.CANCELLED),
    ({"Return request status": "SomethingNew"}, ReturnStatus.REQUESTED),
])
def test_the_status_comes_from_the_reports_facts(values: dict[str, str], status: ReturnStatus) -> None:
    ret = map_mfn_return([mfn(**values)])
    assert ret.status is status
    assert ret.channel_status == values.get("Return request status", "Approved"), "Amazon's word kept verbatim"


def test_refunds_delivery_and_label_facts_are_kept() -> None:
    ret = map_mfn_return([mfn(**{"Refunded Amount": "19.95", "Return delivery date": "10-Nov-2026",
                                 "Tracking ID": "0034", "Return carrier": "DHL", "A-to-Z Claim": "Y",
                                 "Is prime": "N"})])
    assert ret.refund_amount == 1995 and ret.tracking_number == "0034" and ret.carrier == "DHL"
    assert ret.received_at is not None and ret.received_at.day == 10
    assert ret.extra["a_to_z_claim"] is True and ret.extra["is_prime"] is False


def test_a_row_without_a_request_date_or_with_1e30_units_cannot_be_stored() -> None:
    with pytest.raises(ValueError):
        map_mfn_return([mfn(**{"Return request date": "yesterday"})])
    with pytest.raises(ValueError):
        map_mfn_return([mfn(**{"Return quantity": "1e30"})])


def test_an_fba_return_is_amazons_own_decided_by_the_channel() -> None:
    row = {"return-date": "2026-11-04T08:00:00+00:00", "order-id": "303-1111111-2222222", "sku": "SW-310",
           "asin": "B0SWEAT310", "fnsku": "X00SWEAT310", "product-name": "Sweater", "quantity": "2",
           "fulfillment-center-id": "LEJ1", "detailed-disposition": "CUSTOMER_DAMAGED", "reason": "DEFECTIVE",
           "status": "Unit returned to inventory", "license-plate-number": "LPN123", "customer-comments": "broke"}
    ret = map_fba_return(row)
    assert ret.external_id == "FBA-303-1111111-2222222-LPN123" and ret.handled_by_channel
    assert ret.status is ReturnStatus.DECIDED and ret.channel_status == "Unit returned to inventory"
    [line] = ret.lines
    assert line.channel_decision is DecisionKind.ACCEPT and line.channel_decision_quantity == 2
    assert line.channel_status == "CUSTOMER_DAMAGED" and line.customer_comment == "broke"
    assert ret.reason is ReturnReason.DEFECTIVE
    no_plate = map_fba_return({**row, "license-plate-number": None})
    assert no_plate.external_id == "FBA-303-1111111-2222222-SW-310-2026-11-04T08:00:00+00:00"


@pytest.mark.parametrize("code, meaning", [
    ("AMZ-PG-APP-TOO-LARGE", ReturnReason.WRONG_SIZE), ("CR-DEFECTIVE", ReturnReason.DEFECTIVE),
    ("CR-DAMAGED_BY_CARRIER", ReturnReason.DAMAGED), ("AMZ-PG-BAD-DESC", ReturnReason.NOT_AS_EXPECTED),
    ("CR-UNWANTED_ITEM", ReturnReason.NO_LONGER_NEEDED), ("CR-ORDERED_WRONG_ITEM", ReturnReason.ORDERED_BY_MISTAKE),
    ("CR-FOUND_BETTER_PRICE", ReturnReason.BETTER_PRICE), ("CR-MISSED_ESTIMATED_DELIVERY",
                                                            ReturnReason.DELIVERY_PROBLEM),
    ("CR-SWITCHEROO", ReturnReason.WRONG_ITEM), ("QUALITY_UNACCEPTABLE", ReturnReason.DEFECTIVE),
    ("AMZ-NEW-2031", ReturnReason.OTHER), (None, ReturnReason.UNKNOWN),
])
def test_reason_codes_are_read_by_their_words(code: str | None, meaning: ReturnReason) -> None:
    assert reason(code) is meaning


def test_report_dates_in_the_forms_amazon_writes() -> None:
    assert report_date("10-Jul-2025") is not None and report_date("10-Jul-2025").month == 7  # type: ignore[union-attr]
    assert report_date("2025-07-10T12:00:00-07:00").hour == 19  # type: ignore[union-attr]
    assert report_date("2025-07-10").day == 10  # type: ignore[union-attr]
    assert report_date("soon") is None and report_date("01-Jan-1900") is None


def test_documents_are_decoded_as_their_url_says_else_utf8_else_windows_1252() -> None:
    assert decode(Document("Größe".encode("cp1252"), "cp1252")) == "Größe"
    assert decode(Document("\ufeffGröße".encode(), None)) == "Größe"
    assert decode(Document("Größe".encode("cp1252"), None)) == "Größe"


def test_a_gzip_bomb_is_refused_before_it_is_inflated() -> None:
    assert _gunzip(gzip.compress(b"a\tb\n"), 100) == b"a\tb\n"
    with pytest.raises(BadPayload, match="max_response_size"):
        _gunzip(gzip.compress(b"0" * 10_000), 1_000)
    with pytest.raises(BadPayload, match="broken"):
        _gunzip(b"not gzip", 1_000)


def test_an_adjustment_row_refunds_the_units_at_their_price_and_tax() -> None:
    item = {"OrderItemId": "111", "QuantityOrdered": 2, "ItemPrice": {"CurrencyCode": "EUR", "Amount": "39.90"},
            "ItemTax": {"CurrencyCode": "EUR", "Amount": "6.37"}}
    assert adjustment_row("302-1", item, 1, "CustomerReturn") == {
        "order-id": "302-1", "order-item-id": "111", "adjustment-reason-code": "CustomerReturn", "currency": "EUR",
        "item-price-adj": "19.95", "item-tax-adj": "3.19"}
    assert adjustment_row("302-1", item, 5, "X")["item-price-adj"] == "39.90", "never more than was ordered"
    with pytest.raises(ValueError):
        adjustment_row("302-1", {"OrderItemId": "1", "QuantityOrdered": 1}, 1, "X")


def test_the_processing_report_names_each_refused_record() -> None:
    report = read_processing_report(
        "Feed Processing Summary:\n\tNumber of records processed\t\t3\n\tNumber of records successful\t\t1\n\n"
        "original-record-number\torder-id\terror-code\terror-type\terror-message\n"
        "2\t302-1\t18027\tError\tToo much\n3\t302-1\t5000\tWarning\tRounded\n3\t302-1\t18028\tError\tNo item\n")
    assert (report.processed, report.successful) == (3, 1)
    assert report.errors == {2: ["18027 Too much"], 3: ["18028 No item"]}
    assert report.warnings == {3: ["5000 Rounded"]}


def test_an_order_with_its_items() -> None:
    order = {"AmazonOrderId": "302-1", "PurchaseDate": "2026-10-01T10:00:00Z", "LastUpdateDate": "2026-10-02T10:00:00Z",
             "OrderStatus": "Shipped", "OrderTotal": {"CurrencyCode": "EUR", "Amount": "59.85"},
             "BuyerInfo": {"BuyerEmail": "x@marketplace.amazon.de"}, "ShippingAddress": {"PostalCode": "10115"}}
    entries = [{"ASIN": "B0", "OrderItemId": "111", "SellerSKU": "TS-100", "QuantityOrdered": 3,
                "ItemPrice": {"CurrencyCode": "EUR", "Amount": "59.85"}}]
    mapped = map_order(order, entries)
    assert mapped.total_amount == 5985 and mapped.channel_status == "Shipped"
    assert [(line.external_id, line.sku, line.quantity, line.unit_price) for line in mapped.lines] == [
        ("111", "TS-100", 3, 1995)]
    assert mapped.customer.email is None, "buyer data only where configured"
    assert map_order(order, entries, buyer_data=True).customer.postcode == "10115"


# --- properties --------------------------------------------------------------------------------

ORDERS = load_spec("amazon-sp-api", "ordersV0.json")


@PROPERTY_SETTINGS
@given(order=from_schema({"$ref": "#/definitions/Order"}, ORDERS),
       entries=st.lists(from_schema({"$ref": "#/definitions/OrderItem"}, ORDERS), max_size=3))
def test_any_order_the_model_allows_is_mapped_or_set_aside(order: dict[str, Any], entries: list[Any]) -> None:
    try:
        mapped = map_order(order, entries, buyer_data=True)
    except RECORD_ERRORS:
        return
    check_mapped_order(mapped, order["AmazonOrderId"])
    assert len(mapped.lines) == len(entries)


CELL = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["1", "2", "-1", "1e30", "10-Jul-2025",
                                                                    "2026-11-02T10:04:11Z", "19.95", "Y", "N"]))


@PROPERTY_SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({name: CELL for name in MFN_COLUMNS}), min_size=1, max_size=4))
def test_any_report_rows_are_mapped_or_set_aside(rows: list[dict[str, Any]]) -> None:
    for key, group in group_mfn_rows(rows).items():
        if key is None:
            continue
        try:
            mapped = map_mfn_return(group)
        except RECORD_ERRORS:
            continue
        check_mapped_return(mapped, key, len(group))
