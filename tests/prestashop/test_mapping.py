"""PrestaShop webservice JSON -> unified model: states, returned quantities, slips, dates, money, odd values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync_connectors.prestashop.mapping import (
    STOCK_RETURN_STATES,
    Lookups,
    StateTable,
    decision_record,
    held_key,
    hold_question,
    is_held_return,
    is_hold_order,
    map_order,
    map_order_as_return,
    map_order_return,
    merchant_note,
    minor_units,
    parse_date,
    plain_text,
    reason_for,
    recorded_decisions,
    recorded_keys,
)

STATES = StateTable(STOCK_RETURN_STATES)


def order(**overrides: Any) -> dict[str, Any]:
    return {"id": 7, "id_customer": 3, "id_currency": 1, "current_state": 5, "date_add": "2026-10-01 10:00:00",
            "date_upd": "2026-10-04 09:00:00", "delivery_date": "2026-10-03 15:30:00", "total_paid_tax_incl":
            "61.490000", "module": "ps_checkpayment", "note": "",
            "associations": {"order_rows": [
                {"id": 70, "product_id": 11, "product_quantity": "2", "product_name": "Linen shirt",
                 "product_reference": "demo_2", "product_ean13": "4001234500019", "unit_price_tax_incl": "24.600000",
                 "product_price": "20.500000"},
                {"id": 71, "product_id": 12, "product_quantity": "1", "product_name": "Mug", "product_reference": "",
                 "product_ean13": "", "unit_price_tax_incl": "11.880000"}]}, **overrides}


def detail(detail_id: int, returned: int = 0, refunded: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"id": detail_id, "id_order": 7, "product_name": f"Item {detail_id}", "product_quantity": 2,
            "product_quantity_return": str(returned), "product_quantity_refunded": str(refunded),
            "unit_price_tax_incl": "24.600000", "product_reference": f"REF{detail_id}", **overrides}


def slip(slip_id: int = 1, when: str = "2026-10-10 12:00:00", **overrides: Any) -> dict[str, Any]:
    return {"id": slip_id, "id_order": 7, "amount": "24.600000", "date_add": when, "date_upd": when,
            "associations": {"order_slip_details": [{"id": 70, "id_order_detail": "70", "product_quantity": "1",
                                                     "amount_tax_incl": "24.600000"}]}, **overrides}


def lookups(**overrides: Any) -> Lookups:
    return Lookups(**{"currencies": {"1": "EUR"}, "customers": {"3": {"email": "eva@example.com",
                                                                      "firstname": "Eva", "lastname": "Rossi"}},
                      "orders": {"7": order()}, "details": {"7": [detail(70, returned=1), detail(71)]},
                      "slips": {}, **overrides})


def order_return(state: Any = 1, **overrides: Any) -> dict[str, Any]:
    return {"id": 12, "id_customer": 3, "id_order": 7, "question": "<p>Too <b>small</b></p>", "state": state,
            "date_add": "2026-10-06 08:00:00", "date_upd": "2026-10-07 08:00:00", **overrides}


@pytest.mark.parametrize("state, status, decision", [
    (1, ReturnStatus.REQUESTED, None), (2, ReturnStatus.IN_TRANSIT, None), (3, ReturnStatus.RECEIVED, None),
    (4, ReturnStatus.DECIDED, DecisionKind.REJECT), (5, ReturnStatus.CLOSED, None),
    (6, ReturnStatus.REQUESTED, None), ("17", ReturnStatus.REQUESTED, None), (None, ReturnStatus.REQUESTED, None),
])
def test_stock_states_and_unknown_ones(state: Any, status: ReturnStatus, decision: DecisionKind | None) -> None:
    mapped = map_order_return(order_return(state), STATES, lookups())
    assert mapped.status is status and mapped.lines[0].channel_decision is decision
    assert mapped.channel_status == (None if state is None else str(state)), "the state id is kept verbatim"


def test_a_merchandise_return_takes_its_lines_from_the_returned_quantities() -> None:
    mapped = map_order_return(order_return(), STATES, lookups())
    assert mapped.external_id == "12" and mapped.order_external_id == "7"
    [line] = mapped.lines
    assert (line.external_id, line.order_line_external_id, line.quantity, line.sku) == ("70", "70", 1, "REF70")
    assert line.unit_price == 2460 and line.currency == "EUR"
    assert mapped.channel_reason == "Too small" and mapped.reason is ReturnReason.WRONG_SIZE
    assert mapped.customer.email == "eva@example.com" and mapped.customer.name == "Eva Rossi"
    assert mapped.created_at == datetime(2026, 10, 6, 8, tzinfo=timezone.utc)


def test_without_returned_quantities_or_slips_the_lines_are_unknown_not_the_whole_order() -> None:
    """PrestaShop 9 hides `order_return_detail`: with nothing on the order saying what came back, no line is
    guessed (a guess would refund items still with the customer); the return says so."""
    mapped = map_order_return(order_return(), STATES, lookups(details={}))
    assert mapped.lines == () and "does not say which items came back" in mapped.extra["lines_unknown"]
    later = map_order_return(order_return(), STATES, lookups())
    assert [line.external_id for line in later.lines] == ["70"] and "lines_unknown" not in later.extra
    assert later.revision != mapped.revision, "the lines arriving later is an update of the stored return"


def test_with_several_returns_on_one_order_the_orders_quantities_are_not_shared_out() -> None:
    """Returned quantities and slips are the order's: with two merchandise returns, neither is given them."""
    mapped = map_order_return(order_return(), STATES, lookups(returns_on_order={"7": 2}))
    assert mapped.lines == () and "order 7 has several merchandise returns" in mapped.extra["lines_unknown"]
    alone = map_order_return(order_return(), STATES, lookups(returns_on_order={"7": 1}))
    assert [line.external_id for line in alone.lines] == ["70"]


def test_a_slip_after_the_request_refunds_it_one_before_does_not() -> None:
    refunded = map_order_return(order_return(5), STATES, lookups(slips={"7": [slip()]}))
    assert refunded.status is ReturnStatus.REFUNDED and refunded.refund_amount == 2460
    assert refunded.refunded_at == datetime(2026, 10, 10, 12, tzinfo=timezone.utc)
    assert refunded.lines[0].channel_decision is DecisionKind.ACCEPT
    earlier = map_order_return(order_return(5), STATES, lookups(slips={"7": [slip(when="2026-10-02 00:00:00")]}))
    assert earlier.status is ReturnStatus.CLOSED and earlier.refund_amount is None


def test_the_revision_moves_with_state_and_slips_only() -> None:
    first = map_order_return(order_return(1), STATES, lookups())
    assert map_order_return(order_return(1), STATES, lookups()).revision == first.revision
    assert map_order_return(order_return(2), STATES, lookups()).revision != first.revision
    assert map_order_return(order_return(1), STATES, lookups(slips={"7": [slip()]})).revision != first.revision


def test_a_return_without_date_add_is_unreadable_and_says_so() -> None:
    with pytest.raises(BadPayload, match="order_return 12: no date_add"):
        map_order_return(order_return(date_add="0000-00-00 00:00:00"), STATES, lookups())


def test_an_order_on_8_is_a_return_when_goods_came_back_or_a_slip_exists() -> None:
    assert map_order_as_return(order(), lookups(details={"7": [detail(70)]})) is None
    returned = map_order_as_return(order(), lookups())
    assert returned is not None and returned.external_id == "order-7" and returned.status is ReturnStatus.RECEIVED
    assert returned.created_at == datetime(2026, 10, 3, 15, 30, tzinfo=timezone.utc), "from delivery, not date_upd"
    assert map_order_as_return(order(date_upd="2026-11-30 00:00:00"), lookups()) == returned
    refunded = map_order_as_return(order(), lookups(details={"7": [detail(70, refunded=1)]}, slips={"7": [slip()]}))
    assert refunded is not None and refunded.status is ReturnStatus.REFUNDED and refunded.refund_amount == 2460
    assert refunded.lines[0].channel_decision is DecisionKind.ACCEPT
    assert refunded.created_at == refunded.refunded_at == datetime(2026, 10, 10, 12, tzinfo=timezone.utc)


def test_orders_carry_delivery_date_money_and_rows() -> None:
    mapped = map_order(order(), lookups())
    assert mapped.delivered_at == datetime(2026, 10, 3, 15, 30, tzinfo=timezone.utc)
    assert mapped.total_amount == 6149 and mapped.currency == "EUR" and mapped.channel_status == "5"
    assert [(line.external_id, line.ean, line.unit_price) for line in mapped.lines] == \
        [("70", "4001234500019", 2460), ("71", None, 1188)]
    assert map_order(order(delivery_date="0000-00-00 00:00:00"), lookups()).delivered_at is None


def test_odd_values_are_not_known_instead_of_a_crash() -> None:
    mapped = map_order(order(total_paid_tax_incl="n/a", id_currency=99, associations=[], date_add="yesterday"),
                       lookups(customers={}))
    assert mapped.total_amount is None and mapped.currency is None and mapped.lines == ()
    assert mapped.placed_at is None and mapped.customer.email is None


def test_dates_are_in_the_shops_time_zone() -> None:
    assert parse_date("2026-07-01 12:00:00", ZoneInfo("Europe/Warsaw")) == datetime(2026, 7, 1, 10,
                                                                                     tzinfo=timezone.utc)
    assert parse_date("0000-00-00 00:00:00") is None and parse_date(None) is None and parse_date("soon") is None


def test_a_date_no_shop_can_have_is_not_known() -> None:
    """Year 9999 in a zone behind UTC is past the last date Python has (it raised OverflowError and failed the
    page); a date before any shop existed is as good as none."""
    assert parse_date("9999-12-31 23:59:59", ZoneInfo("America/New_York")) is None
    assert parse_date("1900-01-01 00:00:00") is None
    assert parse_date("9999-12-31 23:59:59") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def test_money_and_html() -> None:
    assert minor_units("24.595000") == 2460 and minor_units("") is None and minor_units("x") is None
    assert plain_text("<p>Colour &amp; size <br/>wrong</p>") == "Colour & size wrong"


def test_a_held_return_carries_its_key_and_the_items_in_its_question() -> None:
    ret = Return(external_id="123", order_external_id="BOL-9", status=ReturnStatus.REQUESTED,
                 channel_reason="Too small", created_at=datetime(2026, 10, 1, tzinfo=timezone.utc),
                 customer=Customer(name="Jan Jansen"),
                 lines=(ReturnLine(external_id="L1", sku="SKU-1", ean="8712345678901", title="Linen shirt",
                                   quantity=2, channel_reason="Too small"),))
    question = hold_question(ret, "bol/123", "Bol.com")
    assert question.splitlines() == ["Bol.com return 123 (order BOL-9): Too small",
                                     "2 x Linen shirt (SKU SKU-1, EAN 8712345678901)", "buyer: Jan Jansen",
                                     "(retsync hold bol/123)"]
    held = {"id": 40, "id_order": 1, "question": question}
    assert held_key(held) == "bol/123" and is_held_return(held, "1") and is_held_return(held, None)
    assert is_held_return({"id": 41, "id_order": 1, "question": "Too small"}, "1"), "anything on the hold order"
    assert not is_held_return({"id": 42, "id_order": 7, "question": "(retsync hold)"}, "1")
    assert is_hold_order(order(id=1), "1") and not is_hold_order(order(), "1") and not is_hold_order(order(), None)


def test_the_merchants_note_is_the_newest_staff_reply_on_the_thread() -> None:
    thread = [{"id": 5, "id_employee": "0", "message": "Merchandise return 40: ... (retsync hold bol/123)"},
              {"id": 6, "id_employee": "1", "message": "Worn, sorry"},
              {"id": 7, "id_employee": "0", "message": "Why not?"},
              {"id": 8, "id_employee": "2", "message": "Washed and worn; not returnable"},
              {"id": 9, "id_employee": "1", "message": "[retsync] decision reject × 1 on line 3 (return 1, key k)"}]
    assert merchant_note(thread) == "Washed and worn; not returnable"
    assert merchant_note(thread[:1]) is None and merchant_note([]) is None


def test_one_record_per_act_names_every_line_and_records_before_acts_still_read() -> None:
    several = decision_record(DecisionKind.ACCEPT, [("31", 2), ("32", 1)], "order-7", "act-9")
    assert several == "[retsync] decision accept × 3 on lines 31 × 2, 32 × 1 (return order-7, key act-9)"
    one = decision_record(DecisionKind.REJECT, [("33", 1)], "order-7", "act-10")
    assert one == "[retsync] decision reject × 1 on line 33 (return order-7, key act-10)", "as records were before"
    thread = [{"id": 1, "message": one}, {"id": 2, "message": several},
              {"id": 3, "message": "[retsync] decision keep × 1 on line 34 (return 12, key old-key)"}]
    assert recorded_keys(thread) == {"act-9", "act-10", "old-key"}
    assert recorded_decisions(thread) == {"31": DecisionKind.ACCEPT, "32": DecisionKind.ACCEPT,
                                          "33": DecisionKind.REJECT, "34": DecisionKind.KEEP}


@pytest.mark.parametrize("words, reason", [
    ("Too small, I need one size up", ReturnReason.WRONG_SIZE), ("La taille ne va pas", ReturnReason.WRONG_SIZE),
    ("Produit défectueux", ReturnReason.DEFECTIVE), ("Colis abîmé", ReturnReason.DAMAGED),
    ("Gift & not needed", ReturnReason.NO_LONGER_NEEDED), ("te klein, verkeerde maat", ReturnReason.WRONG_SIZE),
    ("Whatever", ReturnReason.OTHER), (None, ReturnReason.UNKNOWN),
])
def test_reasons_are_the_kits_words_and_the_shops_customers_own(words: str | None, reason: ReturnReason) -> None:
    assert reason_for(words) is reason
