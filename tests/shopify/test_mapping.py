"""The mapping reads whatever Shopify's schema allows as an answer to retsync's orders query, keeps values it does
not know, and refuses a record it cannot read (so `RecordSieve` quarantines that record, not the page)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.records import RecordSieve
from retsync.testing.specs import PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema
from retsync_connectors.shopify.client import ORDERS_QUERY
from retsync_connectors.shopify.mapping import (
    NOTE_MARKER,
    gid,
    held_decision,
    line_prices,
    map_order,
    map_return,
    search_since,
    status_of,
    tail,
)

from .shapes import answer_schema

ORDER = answer_schema(ORDERS_QUERY, ["orders", "nodes"])


def documented_order(**changes: Any) -> dict[str, Any]:
    """An order node with one return, as the orders query is answered (NOTES.md "Return object")."""
    order = {
        "id": "gid://shopify/Order/5500000017", "name": "#1018", "createdAt": "2026-11-02T09:15:00Z",
        "updatedAt": "2026-11-06T10:00:00Z", "processedAt": "2026-11-02T09:15:00Z", "email": "anna@example.com",
        "phone": None, "currencyCode": "EUR", "displayFinancialStatus": "PAID",
        "totalPriceSet": {"shopMoney": {"amount": "39.90"}}, "customer": {"displayName": "Anna Meyer"},
        "shippingAddress": {"name": "Anna Meyer", "zip": "10115", "phone": "+49 30 1234567"},
        "lineItems": {"pageInfo": {"hasNextPage": False}, "nodes": [
            {"id": "gid://shopify/LineItem/13000000171", "sku": "TS-100", "title": "Organic cotton T-shirt",
             "quantity": 2, "originalUnitPriceSet": {"shopMoney": {"amount": "19.95"}}}]},
        "returns": {"pageInfo": {"hasNextPage": False}, "nodes": [documented_return()]},
    }
    return {**order, **changes}


def documented_return(**changes: Any) -> dict[str, Any]:
    record = {
        "id": "gid://shopify/Return/9000017", "name": "#1018-R1", "status": "OPEN",
        "createdAt": "2026-11-04T16:40:12Z", "closedAt": None, "requestApprovedAt": "2026-11-04T20:00:00Z",
        "decline": None,
        "returnLineItems": {"pageInfo": {"hasNextPage": False}, "nodes": [{
            "id": "gid://shopify/ReturnLineItem/108000171", "quantity": 2, "processedQuantity": 0,
            "refundedQuantity": 0, "returnReason": "SIZE_TOO_SMALL", "returnReasonNote": "",
            "customerNote": "One size up please",
            "fulfillmentLineItem": {"id": "gid://shopify/FulfillmentLineItem/1", "lineItem": {
                "id": "gid://shopify/LineItem/13000000171", "sku": "TS-100", "title": "Organic cotton T-shirt"}}}]},
        "reverseFulfillmentOrders": {"nodes": [{"reverseDeliveries": {"nodes": [{"deliverable": {
            "tracking": {"number": "1Z999", "carrierName": "UPS"}}}]}}]},
        "refunds": {"nodes": []},
    }
    return {**record, **changes}


def mapped(order: dict[str, Any]) -> Any:
    lines = order["lineItems"]["nodes"]
    return map_return(order["returns"]["nodes"][0], order, line_prices(lines))


def test_a_documented_return_is_read_whole() -> None:
    record = mapped(documented_order())
    assert (record.external_id, record.order_external_id, record.status, record.channel_status) == (
        "9000017", "5500000017", ReturnStatus.IN_TRANSIT, "OPEN")
    assert (record.reason, record.channel_reason) == (ReturnReason.WRONG_SIZE, "SIZE_TOO_SMALL")
    assert (record.carrier, record.tracking_number, record.customer.postcode) == ("UPS", "1Z999", "10115")
    (line,) = record.lines
    assert (line.external_id, line.order_line_external_id, line.quantity, line.unit_price, line.customer_comment) == (
        "108000171", "13000000171", 2, 1995, "One size up please")
    assert record.extra["name"] == "#1018-R1" and record.revision
    order = map_order(documented_order(), documented_order()["lineItems"]["nodes"])
    assert (order.external_id, order.total_amount, order.lines[0].external_id) == ("5500000017", 3990, "13000000171")


@pytest.mark.parametrize("status, lines, refunds, unified", [
    ("REQUESTED", {}, [], ReturnStatus.REQUESTED),
    ("OPEN", {}, [], ReturnStatus.IN_TRANSIT),
    ("OPEN", {"processedQuantity": 1}, [], ReturnStatus.RECEIVED),
    ("OPEN", {"processedQuantity": 2, "refundedQuantity": 2}, [{"id": "r"}], ReturnStatus.REFUNDED),
    ("DECLINED", {}, [], ReturnStatus.DECIDED),
    ("CLOSED", {}, [{"id": "r"}], ReturnStatus.REFUNDED),
    ("CLOSED", {}, [], ReturnStatus.CLOSED),
    ("CANCELED", {}, [], ReturnStatus.CANCELLED),
    ("ARCHIVED_IN_2027", {}, [], ReturnStatus.REQUESTED),
])
def test_every_return_status_maps(status: str, lines: dict[str, int], refunds: list[dict[str, str]],
                                  unified: ReturnStatus) -> None:
    raw = documented_return(status=status, refunds={"nodes": refunds})
    raw["returnLineItems"]["nodes"][0].update(lines)
    assert status_of(raw) is unified


def test_values_shopify_adds_later_are_kept_verbatim() -> None:
    raw = documented_return(status="AWAITING_INSPECTION")
    raw["returnLineItems"]["nodes"][0].update(returnReason="ARRIVED_TOO_LATE", customerNote=None)
    record = mapped(documented_order(returns={"nodes": [raw]}))
    assert (record.status, record.channel_status) == (ReturnStatus.REQUESTED, "AWAITING_INSPECTION")
    assert (record.reason, record.channel_reason) == (ReturnReason.OTHER, "ARRIVED_TOO_LATE")


def test_reason_other_is_read_from_the_buyers_words() -> None:
    raw = documented_return()
    raw["returnLineItems"]["nodes"][0].update(returnReason="OTHER", returnReasonNote="Ordered it twice by mistake",
                                              customerNote=None)
    assert mapped(documented_order(returns={"nodes": [raw]})).reason is ReturnReason.ORDERED_BY_MISTAKE


@pytest.mark.parametrize("changes, problem", [
    ({"id": None}, "missing field 'id'"),
    ({"createdAt": None}, "createdAt is not a date"),
    ({"returnLineItems": {"nodes": [{"id": "gid://shopify/ReturnLineItem/1", "quantity": 1e30}]}}, "is beyond"),
    ({"returnLineItems": {"nodes": [{"id": f"L{n}", "quantity": 1} for n in range(1001)]}}, "1001 lines"),
], ids=["no-id", "no-date", "1e30-items", "1001-lines"])
def test_a_return_it_cannot_read_is_set_aside_with_why(changes: dict[str, Any], problem: str) -> None:
    raw = documented_return(**changes)
    sieve = RecordSieve()
    assert sieve.map("return", raw, map_return, raw, documented_order(), {}, external_id=tail(raw["id"])) is None
    (aside,) = sieve.take()
    assert problem in aside.reason and aside.payload is raw


def test_ids_are_the_numeric_tails_of_global_ids() -> None:
    assert tail("gid://shopify/Return/123") == "123" and gid("Return", "123") == "gid://shopify/Return/123"
    assert tail("weird-id") == "weird-id" and gid("Return", "weird-id") == "weird-id"
    assert search_since(__import__("datetime").datetime(2026, 1, 2, 3, 4, 5, 678,
                                                        tzinfo=__import__("datetime").timezone.utc)) == (
        "updated_at:>='2026-01-02T03:04:05Z'")


@PROPERTY_SETTINGS
@given(from_schema(ORDER, {}))
def test_any_order_node_the_schema_allows_is_mapped(raw: dict[str, Any]) -> None:
    lines = raw["lineItems"]["nodes"]
    order = map_order(raw, lines)
    check_mapped_order(order, tail(raw["id"]) or "")
    prices = line_prices(lines)
    for node in raw["returns"]["nodes"]:
        if node.get("createdAt") is None:
            with pytest.raises(ValueError):
                map_return(node, raw, prices)
            continue
        check_mapped_return(map_return(node, raw, prices), tail(node["id"]) or "", len(node["returnLineItems"]["nodes"]))


def test_a_tag_decides_a_held_draft_and_the_note_is_below_the_marker() -> None:
    tags = {"return-accept": DecisionKind.ACCEPT, "return-reject": DecisionKind.REJECT}
    draft = {"id": "gid://shopify/DraftOrder/1", "tags": ["retsync-hold", "Return-Reject"],
             "note2": f"Return 1 from Bol.com\n{NOTE_MARKER}\nWorn and washed",
             "updatedAt": "2026-11-04T16:40:12Z", "customAttributes": [{"key": "retsync_key", "value": "bol/1"}]}
    decided = held_decision(draft, tags)
    assert decided is not None and (decided.kind, decided.note) == (DecisionKind.REJECT, "Worn and washed")
    assert held_decision({**draft, "tags": ["retsync-hold", "escalate"]}, tags) is None
    assert held_decision({**draft, "customAttributes": []}, tags) is None, "a draft retsync did not make"
    assert held_decision({**draft, "note2": "no marker"}, tags).note is None  # type: ignore[union-attr]


@pytest.mark.parametrize("handle, name, unified", [
    ("too-small", "Too small", ReturnReason.WRONG_SIZE),
    ("arrived-late", "Arrived too late", ReturnReason.DELIVERY_PROBLEM),
    ("x-7f3", "Kapot aangekomen", ReturnReason.DEFECTIVE),
    ("x-9", "Something else", ReturnReason.ORDERED_BY_MISTAKE),
], ids=["known-handle", "name-words", "dutch-name", "buyers-words"])
def test_a_reason_definition_is_read_by_its_handle_then_its_words(handle: str, name: str,
                                                                  unified: ReturnReason) -> None:
    raw = documented_return()
    raw["returnLineItems"]["nodes"][0].update(returnReasonDefinition={"handle": handle, "name": name},
                                              returnReason="OTHER", customerNote="Ordered it twice by mistake")
    (line,) = mapped(documented_order(returns={"nodes": [raw]})).lines
    assert (line.channel_reason, line.reason) == (handle, unified)
