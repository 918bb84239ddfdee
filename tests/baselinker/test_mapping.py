"""BaseLinker's records to the unified model: statuses by the merchant's map, the fixed fulfillment_status
behind it, unix times, product lines linked to their order lines, and a property over returns drawn from the
documented shape (tests/baselinker/shapes.py, checked against the contract in test_shapes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.payload import OutOfRange
from retsync.kit.records import RECORD_ERRORS
from retsync.testing.specs import PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema
from retsync_connectors.baselinker.mapping import decided_by_status, map_order, map_return, refund_amount, unix
from tests.baselinker.shapes import ORDER, RETURN

STATUSES = {"1001": ReturnStatus.REQUESTED, "1004": ReturnStatus.DECIDED}
NAMES = {"1001": "Nowy zwrot", "1004": "Zaakceptowany"}
REASONS = {"1": "Zły rozmiar / wrong size", "2": "Produkt uszkodzony / damaged"}


def raw_return(**changes: Any) -> dict[str, Any]:
    return {"return_id": 40123, "order_id": 7000001, "status_id": 1001, "date_add": 1_767_225_600,
            "date_in_status": 1_767_229_200, "fulfillment_status": 0, "currency": "PLN", "refunded": False,
            "email": "anna@example.pl", "delivery_fullname": "Anna Nowak", "delivery_postcode": "00-001",
            "delivery_package_module": "inpost", "delivery_package_nr": "6001",
            "order_return_source": "allegro", "order_return_source_id": 11,
            "products": [{"order_return_product_id": 5, "order_product_id": 901, "name": "Kubek", "sku": "KB-10",
                          "quantity": 2, "price_brutto": 24.99, "return_reason_id": 1},
                         {"order_product_id": 902, "name": "Koc", "quantity": 1, "price_brutto": "149.00",
                          "return_reason_id": 2}],
            **changes}


def test_a_return_in_unified_words_with_the_channels_beside_them() -> None:
    mapped = map_return(raw_return(), STATUSES, NAMES, REASONS)
    assert (mapped.external_id, mapped.order_external_id) == ("40123", "7000001")
    assert (mapped.status, mapped.channel_status) == (ReturnStatus.REQUESTED, "Nowy zwrot")
    assert mapped.created_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert [line.external_id for line in mapped.lines] == ["5", "902"], "its own id, else the order line's"
    assert [line.order_line_external_id for line in mapped.lines] == ["901", "902"]
    assert [line.unit_price for line in mapped.lines] == [2499, 14900]
    assert mapped.lines[0].reason is ReturnReason.WRONG_SIZE and mapped.lines[1].reason is ReturnReason.DAMAGED
    assert mapped.lines[0].channel_reason == "Zły rozmiar / wrong size"
    assert (mapped.tracking_number, mapped.carrier) == ("6001", "inpost")
    assert mapped.extra["source"] == "allegro" and mapped.extra["status_id"] == "1001"
    assert mapped.marketplace == "allegro", "Allegro via BaseLinker, told apart in reports"
    assert map_return(raw_return(order_return_source="shop"), STATUSES, NAMES, REASONS).marketplace is None


@pytest.mark.parametrize("status_id, fulfilment, refunded, expected", [
    (1004, 5, False, ReturnStatus.DECIDED),      # mapped by the merchant
    (2000, 0, False, ReturnStatus.REQUESTED),    # not mapped: fulfillment_status 0 active
    (2000, 0, True, ReturnStatus.REFUNDED),
    (2000, 5, False, ReturnStatus.DECIDED),
    (2000, 1, False, ReturnStatus.CLOSED),
    (2000, 2, False, ReturnStatus.CANCELLED),
    (2000, 9, False, ReturnStatus.REQUESTED),    # a fulfillment_status BaseLinker may add: shown as open
])
def test_the_status_map_then_fulfillment_status(status_id: int, fulfilment: int, refunded: bool,
                                                expected: ReturnStatus) -> None:
    mapped = map_return(raw_return(status_id=status_id, fulfillment_status=fulfilment, refunded=refunded),
                        STATUSES, NAMES, REASONS)
    assert mapped.status is expected
    assert mapped.channel_status == NAMES.get(str(status_id), str(status_id)), "kept verbatim"


def test_a_decided_return_is_dated_by_its_time_in_status() -> None:
    mapped = map_return(raw_return(status_id=1004), STATUSES, NAMES, REASONS)
    assert mapped.decided_at is not None and mapped.decided_at.isoformat() == "2026-01-01T01:00:00+00:00"


@pytest.mark.parametrize("value, readable", [(1_767_225_600, True), ("1767225600", True), (0, False),
                                             (-5, False), ("yesterday", False), (10**30, False), (None, False)])
def test_unix_times_are_bounded(value: Any, readable: bool) -> None:
    assert (unix(value) is not None) is readable


@pytest.mark.parametrize("change, problem", [({"date_add": None}, ValueError), ({"return_id": None}, KeyError)])
def test_a_return_without_id_or_date_cannot_be_stored(change: dict[str, Any], problem: type) -> None:
    with pytest.raises(problem):
        map_return(raw_return(**change), STATUSES, NAMES, REASONS)


def test_a_quantity_no_line_holds_sets_the_return_aside() -> None:
    raw = raw_return()
    raw["products"][0]["quantity"] = 1e30
    with pytest.raises(OutOfRange):
        map_return(raw, STATUSES, NAMES, REASONS)


def test_the_refund_is_the_decided_lines_worth() -> None:
    assert refund_amount(raw_return(), {"5": 2, "902": 1}) == pytest.approx(2 * 24.99 + 149.0)
    assert refund_amount(raw_return(), {"5": 1}) == pytest.approx(24.99)


def test_an_order_with_its_product_lines() -> None:
    mapped = map_order({"order_id": 7000001, "date_add": 1_767_225_600, "currency": "PLN", "delivery_price": 14.99,
                        "order_status_id": 5501, "products": [{"order_product_id": 901, "quantity": 2,
                                                               "price_brutto": 24.99, "sku": "KB-10"}]})
    assert mapped.lines[0].external_id == "901" and mapped.total_amount == 2 * 2499 + 1499
    assert mapped.channel_status == "5501"


@PROPERTY_SETTINGS
@given(from_schema(RETURN, RETURN))
def test_any_documented_return_maps_or_is_set_aside(raw: dict[str, Any]) -> None:
    try:
        mapped = map_return(raw, STATUSES, NAMES, REASONS)
    except RECORD_ERRORS:
        return
    check_mapped_return(mapped, str(raw["return_id"]), len(raw["products"]))
    assert mapped.revision == map_return(dict(raw), STATUSES, NAMES, REASONS).revision


@PROPERTY_SETTINGS
@given(from_schema(ORDER, ORDER))
def test_any_documented_order_maps_or_is_set_aside(raw: dict[str, Any]) -> None:
    try:
        mapped = map_order(raw)
    except RECORD_ERRORS:
        return
    check_mapped_order(mapped, str(raw["order_id"]))


def test_a_status_mapped_to_one_decision_reads_back_as_that_decision_on_every_line() -> None:
    decided = decided_by_status({DecisionKind.ACCEPT: 1004, DecisionKind.REJECT: 1005, DecisionKind.KEEP: 1006,
                                 DecisionKind.REPAIR: 1006})
    assert decided == {"1004": DecisionKind.ACCEPT, "1005": DecisionKind.REJECT}, "1006 is shared: not guessed"
    mapped = map_return(raw_return(status_id=1005), STATUSES, NAMES, REASONS, decided)
    assert [line.channel_decision for line in mapped.lines] == [DecisionKind.REJECT, DecisionKind.REJECT]
    for status_id in (1001, 1006):
        mapped = map_return(raw_return(status_id=status_id), STATUSES, NAMES, REASONS, decided)
        assert [line.channel_decision for line in mapped.lines] == [None, None]
