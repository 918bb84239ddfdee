"""WooCommerce JSON -> unified model: return statuses, the WP Swings request, refunds, money, odd and missing values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from retsync.kit.http import BadPayload
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync_connectors.woocommerce.mapping import (
    ReturnRules,
    is_return,
    map_order,
    map_return,
    parse_gmt,
    revision_of,
    to_minor_units,
)

RULES = ReturnRules()
ASKED = 1_767_000_000  # 2025-12-29T09:20:00Z


def item(item_id: int = 111, **overrides: Any) -> dict[str, Any]:
    return {"id": item_id, "name": "Linen shirt", "product_id": 201, "variation_id": 0, "quantity": 2,
            "subtotal": "82.64", "total": "82.64", "total_tax": "17.36",
            "taxes": [{"id": 1, "total": "17.36", "subtotal": "17.36"}], "sku": "SKU-201", "price": 41.32,
            **overrides}


def order(status: str = "return-requested", **overrides: Any) -> dict[str, Any]:
    return {
        "id": 1234, "number": "1234", "status": status, "currency": "EUR", "total": "100.00",
        "date_created_gmt": "2025-12-01T10:00:00", "date_modified_gmt": "2025-12-29T09:20:00",
        "billing": {"first_name": "Anna", "last_name": "Meyer", "email": "anna@example.com", "phone": "+49 30 1",
                    "postcode": "10115"},
        "shipping": {"first_name": "Anna", "last_name": "Meyer", "postcode": "10117"},
        "meta_data": [], "line_items": [item(), item(112, product_id=202, sku="", name="Mug")], "refunds": [],
        **overrides,
    }


def rma(*products: dict[str, Any], state: str = "pending", subject: str = "Wrong size",
        reason: str = "Too small") -> list[dict[str, Any]]:
    request = {"products": list(products) or [{"item_id": 111, "product_id": 201, "qty": 1, "price": 41.32}],
               "amount": "41.32", "subject": subject, "reason": reason, "status": state}
    return [{"id": 9, "key": "wps_rma_return_product", "value": {str(ASKED): request}},
            {"id": 10, "key": "wps_rma_request_made", "value": {"111": state}}]


def refund(refund_id: int = 900001, amount: str = "50.00", **overrides: Any) -> dict[str, Any]:
    return {"id": refund_id, "date_created_gmt": "2025-12-30T12:00:00", "amount": amount, "reason": "",
            "refunded_payment": True, "meta_data": [], "line_items": [], **overrides}


# --- orders ------------------------------------------------------------------------------------


def test_an_order_maps_customer_lines_and_money_in_minor_units() -> None:
    mapped = map_order(order("completed"))
    assert mapped.external_id == "1234" and mapped.channel_status == "completed"
    assert mapped.total_amount == 10000 and mapped.currency == "EUR"
    assert mapped.placed_at == datetime(2025, 12, 1, 10, tzinfo=timezone.utc)
    assert (mapped.customer.email, mapped.customer.name, mapped.customer.phone, mapped.customer.postcode) == (
        "anna@example.com", "Anna Meyer", "+49 30 1", "10115")
    shirt, mug = mapped.lines
    assert (shirt.external_id, shirt.sku, shirt.quantity, shirt.unit_price) == ("111", "SKU-201", 2, 5000)
    assert mug.sku is None, "an empty SKU is no SKU"


def test_an_order_with_almost_nothing_still_maps() -> None:
    mapped = map_order({"id": 7, "billing": None, "line_items": [{"id": 1, "quantity": "x"}, "junk"]})
    assert mapped.external_id == "7" and mapped.customer.email is None and mapped.placed_at is None
    assert mapped.lines[0].quantity == 0 and mapped.lines[0].unit_price is None


def test_an_order_without_id_is_unreadable() -> None:
    with pytest.raises(BadPayload):
        map_order({"status": "completed"})


@pytest.mark.parametrize("value, cents", [("12.99", 1299), ("-12.99", -1299), (7, 700), ("0.005", 1), ("", None),
                                          (None, None), ("abc", None), (True, None)])
def test_money(value: Any, cents: int | None) -> None:
    assert to_minor_units(value) == cents


def test_gmt_dates_without_offset_are_utc() -> None:
    assert parse_gmt("2025-12-29T09:20:00") == datetime(2025, 12, 29, 9, 20, tzinfo=timezone.utc)
    assert parse_gmt("yesterday") is None and parse_gmt(None) is None


# --- returns -----------------------------------------------------------------------------------


def test_a_plain_order_is_no_return() -> None:
    assert not is_return(order("completed"), RULES)
    assert map_return(order("completed"), [], RULES) is None


def test_a_wp_swings_request_gives_the_returned_lines_and_the_reason() -> None:
    record = map_return(order(meta_data=rma()), [], RULES)
    assert record is not None and record.status is ReturnStatus.REQUESTED
    assert record.created_at == datetime.fromtimestamp(ASKED, tz=timezone.utc)
    [line] = record.lines
    assert (line.external_id, line.order_line_external_id, line.quantity, line.sku) == ("111", "111", 1, "SKU-201")
    assert line.reason is ReturnReason.WRONG_SIZE and line.channel_reason == "Wrong size / Too small"
    assert line.channel_status == "pending" and line.channel_decision is None
    assert record.customer.email == "anna@example.com"


def test_a_request_stored_as_a_json_string_is_read_too() -> None:
    import json
    meta = [{"key": "wps_rma_return_product", "value": json.dumps(rma()[0]["value"])}]
    record = map_return(order(meta_data=meta), [], RULES)
    assert record is not None and [line.external_id for line in record.lines] == ["111"]


def test_a_return_status_without_a_request_returns_the_whole_order() -> None:
    record = map_return(order(), [], RULES)
    assert record is not None and [(l.external_id, l.quantity) for l in record.lines] == [("111", 2), ("112", 2)]


@pytest.mark.parametrize("status, expected, decision", [
    ("return-requested", ReturnStatus.REQUESTED, None),
    ("return-approved", ReturnStatus.DECIDED, DecisionKind.ACCEPT),
    ("return-cancelled", ReturnStatus.CANCELLED, DecisionKind.REJECT),
    ("exchange-request", ReturnStatus.REQUESTED, None),  # a plugin status nobody configured: kept verbatim
    ("completed", ReturnStatus.REQUESTED, None),  # the plugin still says pending
])
def test_statuses_and_the_decision_taken_in_the_shops_panel(status: str, expected: ReturnStatus,
                                                            decision: DecisionKind | None) -> None:
    record = map_return(order(status, meta_data=rma()), [], RULES)
    assert record is not None
    assert record.status is expected and record.channel_status == status
    assert record.lines[0].channel_decision is decision


def test_the_plugins_own_request_state_counts_when_the_status_says_nothing() -> None:
    done = map_return(order("completed", meta_data=rma(state="complete")), [], RULES)
    dropped = map_return(order("completed", meta_data=rma(state="cancel")), [], RULES)
    assert done is not None and done.status is ReturnStatus.DECIDED
    assert dropped is not None and dropped.status is ReturnStatus.CANCELLED


def test_configured_statuses_replace_the_defaults() -> None:
    rules = ReturnRules(requested_statuses=("retour-aangevraagd",), approved_statuses=("retour-goedgekeurd",))
    record = map_return(order("retour-goedgekeurd"), [], rules)
    assert record is not None and record.status is ReturnStatus.DECIDED
    assert map_return(order("return-cancelled"), [], rules) is not None  # still the default cancelled status
    assert not is_return(order("return-requested"), rules)
    assert not is_return(order("return-approved"), rules)


def test_a_refund_made_in_the_shop_is_a_refunded_return() -> None:
    shirt_refund = refund(amount="50.00", reason="Item damaged", line_items=[
        {"id": 555, "product_id": 201, "variation_id": 0, "quantity": -1, "total": "-41.32", "total_tax": "-8.68"}])
    record = map_return(order("completed", refunds=[{"id": 900001, "reason": "", "total": "-50.00"}]),
                        [shirt_refund], RULES)
    assert record is not None and record.status is ReturnStatus.REFUNDED
    assert record.refund_amount == 5000 and record.refunded_at == datetime(2025, 12, 30, 12, tzinfo=timezone.utc)
    [line] = record.lines
    assert (line.external_id, line.quantity, line.channel_decision) == ("111", 1, DecisionKind.ACCEPT)
    assert record.reason is ReturnReason.DAMAGED and record.extra["refund_ids"] == ["900001"]


def test_a_refund_of_an_amount_only_still_has_a_line() -> None:
    record = map_return(order("completed", refunds=[{"id": 900002, "total": "-5.00"}]),
                        [refund(900002, "5.00", reason="Goodwill")], RULES)
    assert record is not None and record.status is ReturnStatus.REFUNDED
    [line] = record.lines
    assert line.external_id == "refund-900002" and line.quantity == 0 and line.unit_price == 500


def test_retsyncs_own_refund_is_read_back_as_the_decision_it_was() -> None:
    keep = refund(meta_data=[{"key": "retsync_decision", "value": "keep"}, {"key": "retsync_line", "value": "111"}],
                  line_items=[{"id": 556, "product_id": 201, "quantity": -1}])
    record = map_return(order(meta_data=rma(), refunds=[{"id": 900001}]), [keep], RULES)
    assert record is not None and record.lines[0].channel_decision is DecisionKind.KEEP


def test_one_refund_for_a_whole_return_is_read_back_on_every_line() -> None:
    both = rma({"item_id": 111, "product_id": 201, "qty": 1, "price": 41.32},
               {"item_id": 112, "product_id": 202, "qty": 1, "price": 41.32})
    keep = refund(meta_data=[{"key": "retsync_decision", "value": "keep"}, {"key": "retsync_line", "value": "111,112"}])
    record = map_return(order(meta_data=both, refunds=[{"id": 900001}]), [keep], RULES)
    assert record is not None and [line.channel_decision for line in record.lines] == [DecisionKind.KEEP] * 2


@pytest.mark.parametrize("recorded, decided", [
    ({"kind": "repair", "lines": {"111": 1, "112": 1}, "return": "1234"}, [DecisionKind.REPAIR, DecisionKind.REPAIR]),
    ({"kind": "repair", "line": "112", "quantity": 1, "return": "1234"}, [None, DecisionKind.REPAIR]),
])
def test_retsyncs_status_decision_is_read_back_on_the_lines_it_was_for(
        recorded: dict[str, Any], decided: list[DecisionKind | None]) -> None:
    """One record per act names every line since an act covers a whole return; records of one line each, as
    written before, still read back."""
    meta = [{"id": 11, "key": "retsync_decision_act-1", "value": recorded}]
    record = map_return(order("processing", meta_data=meta), [], RULES)
    assert record is not None and record.status is ReturnStatus.DECIDED
    assert [line.channel_decision for line in record.lines] == decided


def test_an_order_moved_out_of_every_return_status_is_closed_not_left_open() -> None:
    record = map_return(order("completed"), [], RULES, was_return=True)
    assert record is not None and record.status is ReturnStatus.CLOSED and len(record.lines) == 2


def test_the_revision_changes_with_the_order_and_with_a_refund() -> None:
    base = order()
    assert revision_of(base) == revision_of(dict(base))
    assert revision_of(base) != revision_of({**base, "date_modified_gmt": "2025-12-29T09:20:01"})
    assert revision_of(base) != revision_of({**base, "refunds": [{"id": 1}]})


def test_odd_meta_never_crashes() -> None:
    meta = [{"key": "wps_rma_return_product", "value": "a:1:{i:0;s:3:\"php\";}"},
            {"key": "wps_rma_return_product", "value": {"x": "not a request"}}, "junk", {"key": None}]
    record = map_return(order(meta_data=meta), [], RULES)
    assert record is not None and len(record.lines) == 2


@pytest.mark.parametrize("text, reason", [("Too small", ReturnReason.WRONG_SIZE), ("It arrived broken",
                                          ReturnReason.DEFECTIVE), ("Changed my mind", ReturnReason.NO_LONGER_NEEDED),
                                          ("Nie działa", ReturnReason.DEFECTIVE), ("Meh", ReturnReason.OTHER),
                                          (None, ReturnReason.UNKNOWN)])
def test_free_text_reasons(text: str | None, reason: ReturnReason) -> None:
    record = map_return(order(meta_data=rma(subject=text or "", reason="")), [], RULES)
    assert record is not None and record.reason is reason and record.lines[0].reason is reason


def test_an_earlier_goodwill_refund_does_not_settle_a_later_request() -> None:
    old = refund(amount="5.00", reason="Goodwill", date_created_gmt="2025-12-10T08:00:00")
    record = map_return(order(meta_data=rma(), refunds=[{"id": 900001}]), [old], RULES)
    assert record is not None and record.status is ReturnStatus.REQUESTED and record.refund_amount is None
    later = refund(900003, "41.32", date_created_gmt="2026-01-05T08:00:00")
    settled = map_return(order(meta_data=rma(), refunds=[{"id": 900001}, {"id": 900003}]), [old, later], RULES)
    assert settled is not None and settled.status is ReturnStatus.REFUNDED and settled.refund_amount == 4132


def test_a_status_only_return_keeps_its_date_when_the_order_changes() -> None:
    first = map_return(order(), [], RULES)
    again = map_return(order(date_modified_gmt="2026-01-02T00:00:00"), [], RULES)
    assert first is not None and again is not None and first.created_at == again.created_at
    assert first.revision != again.revision
