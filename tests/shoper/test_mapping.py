"""Shoper JSON -> unified model: configured statuses, refunds, markers, money, local dates, odd and missing values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync_connectors.shoper.client import bucket_wait, error_detail
from retsync_connectors.shoper.mapping import (
    COMMENT_LIMIT,
    ReturnRules,
    decision_marker,
    held_key,
    held_order,
    held_products,
    is_return,
    local_text,
    map_order,
    map_return,
    merchant_words,
    parse_local,
    recorded_decisions,
    refund_comment,
    revision_of,
    to_minor_units,
)

WARSAW = ZoneInfo("Europe/Warsaw")
RULES = ReturnRules(requested_statuses=("14",), received_statuses=("15",), accepted_statuses=("16",),
                    rejected_statuses=("17",), reason_field_id="3")
CURRENCIES = {"1": "PLN", "2": "EUR"}


def product(line_id: str = "5001", **overrides: Any) -> dict[str, Any]:
    return {"id": line_id, "order_id": "1234", "product_id": "101", "price": "100.00", "discount_perc": "0.00",
            "quantity": "2", "name": "Koszula lniana", "code": "KOSZ-02", "option": "rozmiar: M", **overrides}


def order(sid: str = "14", **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": "1234", "date": "2026-07-01 10:00:00", "status_date": "2026-07-10 12:00:00",
        "status_id": sid, "status": {"status_id": sid, "type": "2",
                                        "translations": {"pl_PL": {"name": "Zwrot zgłoszony"}}},
        "sum": "214.99", "currency_id": "1", "email": "anna@example.pl",
        "billing_address": {"firstname": "Anna", "lastname": "Nowak", "postcode": "00-001", "phone": "+48 600"},
        "delivery_address": {"firstname": "Anna", "lastname": "Nowak", "postcode": "00-950"},
        "notes_priv": "", "notes_pub": "", "additional_fields": [], **overrides,
    }


def refund(refund_id: str = "71", status: str = "3", value: str = "50.00", **overrides: Any) -> dict[str, Any]:
    return {"refund_id": refund_id, "order_id": "1234", "transaction_id": "301", "date": "2026-07-12 09:30:00",
            "currency_id": "1", "currency_value": value, "status": status, "status_description": "",
            "comment": "", **overrides}


def mapped(raw: dict[str, Any], refunds: list[dict[str, Any]] | None = None, products: list | None = None,
           **options: Any) -> Return:
    result = map_return(raw, [product()] if products is None else products, refunds or [], RULES, CURRENCIES,
                        WARSAW, **options)
    assert result is not None
    return result


# --- readers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, cents", [("12.99", 1299), ("7", 700), ("0,50", 50), ("", None), (None, None),
                                          ("abc", None), (True, None), ("0.005", 1)])
def test_money(value: Any, cents: int | None) -> None:
    assert to_minor_units(value) == cents


def test_dates_are_the_shops_local_time_both_ways() -> None:
    assert parse_local("2026-07-10 12:00:00", WARSAW) == datetime(2026, 7, 10, 10, tzinfo=timezone.utc)  # CEST
    assert parse_local("2026-01-10 12:00:00", WARSAW) == datetime(2026, 1, 10, 11, tzinfo=timezone.utc)  # CET
    assert parse_local("0000-00-00 00:00:00", WARSAW) is None and parse_local("wczoraj", WARSAW) is None
    assert local_text(datetime(2026, 7, 10, 10, tzinfo=timezone.utc), WARSAW) == "2026-07-10 12:00:00"


# --- orders ------------------------------------------------------------------------------------


def test_an_order_maps_customer_lines_and_money() -> None:
    result = map_order(order("5"), [product(), product("5002", price="59.90", discount_perc="10", quantity="1",
                                                       option="")], CURRENCIES, WARSAW)
    assert result.external_id == "1234" and result.channel_status == "5" and result.currency == "PLN"
    assert result.total_amount == 21499 and result.placed_at == datetime(2026, 7, 1, 8, tzinfo=timezone.utc)
    assert result.customer == Customer(email="anna@example.pl", name="Anna Nowak", phone="+48 600",
                                       postcode="00-001")
    shirt, cap = result.lines
    assert (shirt.title, shirt.sku, shirt.quantity, shirt.unit_price) == ("Koszula lniana (rozmiar: M)", "KOSZ-02",
                                                                           2, 10000)
    assert cap.unit_price == 5391, "the line's discount comes off"


def test_the_products_ean_travels_with_order_and_return_lines() -> None:
    """Shoper's order product carries `ean` (empty when not linked to stock); EAN is how a return line finds its
    order line when the ids differ, so it must not be dropped."""
    linked, unlinked = product(ean="5901234123457"), product("5002", ean="")
    order_lines = map_order(order("5"), [linked, unlinked], CURRENCIES, WARSAW).lines
    assert [line.ean for line in order_lines] == ["5901234123457", None]
    assert [line.ean for line in mapped(order(), products=[linked, unlinked]).lines] == ["5901234123457", None]


def test_an_order_with_almost_nothing_still_maps() -> None:
    result = map_order({"order_id": 7, "billing_address": None, "currency_id": "99"},
                       [{"id": "1", "quantity": "x"}, {"name": "no id"}], CURRENCIES, WARSAW)
    assert result.external_id == "7" and result.customer.email is None and result.currency is None
    assert result.lines[0].quantity == 0 and result.lines[0].unit_price is None and len(result.lines) == 1


def test_an_order_without_id_is_unreadable() -> None:
    with pytest.raises(BadPayload, match="without order_id"):
        map_order({"status_id": "5"}, [], CURRENCIES, WARSAW)


# --- returns -----------------------------------------------------------------------------------


def test_a_plain_order_is_no_return() -> None:
    assert not is_return(order("5"), [], RULES)
    assert map_return(order("5"), [product()], [], RULES, CURRENCIES, WARSAW) is None


@pytest.mark.parametrize("status, unified, decision", [
    ("14", ReturnStatus.REQUESTED, None), ("15", ReturnStatus.RECEIVED, None),
    ("16", ReturnStatus.DECIDED, DecisionKind.ACCEPT), ("17", ReturnStatus.DECIDED, DecisionKind.REJECT),
])
def test_configured_statuses_carry_their_meaning(status: str, unified: ReturnStatus,
                                                 decision: DecisionKind | None) -> None:
    result = mapped(order(status))
    assert result.status is unified and result.channel_status == status
    assert result.lines[0].channel_decision is decision
    assert (result.received_at is not None) == (status == "15")
    assert result.extra["status_name"] == "Zwrot zgłoszony"


def test_the_reason_comes_from_the_configured_additional_field() -> None:
    result = mapped(order(additional_fields=[{"field_id": "3", "value": "Za mały rozmiar"}]))
    assert result.reason is ReturnReason.WRONG_SIZE and result.channel_reason == "Za mały rozmiar"
    reasons = {text: mapped(order(additional_fields=[{"field_id": "3", "value": text}])).reason
               for text in ("Produkt uszkodzony w transporcie", "Rozmyśliłam się", "cokolwiek")}
    assert reasons == {"Produkt uszkodzony w transporcie": ReturnReason.DAMAGED,
                       "Rozmyśliłam się": ReturnReason.NO_LONGER_NEEDED, "cokolwiek": ReturnReason.OTHER}
    assert mapped(order(additional_fields=[])).reason is ReturnReason.UNKNOWN


def test_a_finished_refund_made_in_the_panel_refunds_the_return() -> None:
    result = mapped(order("5"), [refund(comment="Zwrot środków")])
    assert result.status is ReturnStatus.REFUNDED and result.refund_amount == 5000
    assert result.refunded_at == datetime(2026, 7, 12, 7, 30, tzinfo=timezone.utc)
    assert result.created_at == result.refunded_at, "no request date in Shoper: the first refund"
    assert result.lines[0].channel_decision is DecisionKind.ACCEPT
    assert result.reason is ReturnReason.UNKNOWN and result.channel_reason == "Zwrot środków", "staff words"


def test_canceled_and_failed_refunds_give_nothing_back() -> None:
    result = mapped(order("5"), [refund("71", "2"), refund("72", "4")], was_return=True)
    assert result.status is ReturnStatus.CLOSED and result.refund_amount is None
    assert result.lines[0].channel_decision is None


def test_a_pending_refund_is_a_decision_taken() -> None:
    result = mapped(order("15"), [refund(status="1")])
    assert result.status is ReturnStatus.DECIDED and result.lines[0].channel_decision is DecisionKind.ACCEPT


def test_an_unknown_refund_status_and_order_status_are_kept_verbatim() -> None:
    result = mapped(order("42", status={"status_id": "42", "type": "9"}), [refund(status="7")])
    assert result.status is ReturnStatus.REQUESTED and result.channel_status == "42"
    assert result.extra["refund_statuses"] == {"71": "7"} and result.extra["status_type"] == "9"
    assert result.lines[0].channel_decision is None


def test_retsyncs_own_records_are_read_back_as_themselves() -> None:
    notes = "Klientka dzwoniła.\n" + decision_marker("k-1", DecisionKind.REPAIR, [("5001", 2)])
    result = mapped(order("5", notes_priv=notes), products=[product(), product("5002")])
    assert result.status is ReturnStatus.DECIDED
    assert [line.channel_decision for line in result.lines] == [DecisionKind.REPAIR, None]
    keep = refund(comment=decision_marker("k-2", DecisionKind.KEEP, [("5002", 1)]) + " Klient zatrzymuje")
    result = mapped(order("5"), [keep], products=[product(), product("5002")])
    assert [line.channel_decision for line in result.lines] == [None, DecisionKind.KEEP]
    cancelled = mapped(order("5", notes_priv=decision_marker("k-3", DecisionKind.CANCEL, [("5001", 2)])))
    assert cancelled.status is ReturnStatus.CANCELLED


def test_a_stored_return_moved_out_of_every_return_status_is_closed() -> None:
    assert map_return(order("5"), [product()], [], RULES, CURRENCIES, WARSAW) is None
    assert mapped(order("5"), was_return=True).status is ReturnStatus.CLOSED


def test_an_order_without_products_keeps_its_refunds_as_lines() -> None:
    result = mapped(order("5"), [refund()], products=[])
    assert [(line.external_id, line.quantity, line.unit_price) for line in result.lines] == [("refund-71", 0, 5000)]


def test_the_revision_moves_with_status_refunds_and_records() -> None:
    base = revision_of(order(), [])
    assert revision_of(order(), []) == base
    assert revision_of(order(status_date="2026-07-11 08:00:00"), []) != base
    assert revision_of(order(), [refund()]) != revision_of(order(), [refund(status="1")])
    assert revision_of(order(notes_priv=decision_marker("k", DecisionKind.REJECT, [("1", 1)])), []) != base


def test_markers_parse_and_merchant_words_leave_them_out() -> None:
    notes = "[retsync-hold:bol/123] Bol.com return 123\n[retsync:abc] reject 1 x 77\nZa późno, odrzucam"
    assert held_key({"notes_priv": notes}) == "bol/123" and held_key({"notes_priv": None}) is None
    recorded = recorded_decisions(notes)
    assert recorded["abc"].kind is DecisionKind.REJECT and recorded["abc"].lines == {"77": 1}
    assert recorded_decisions("[retsync:x] nonsense 1 x 2")["x"].kind is None, "an unknown kind is no crash"
    assert merchant_words(notes) == "Za późno, odrzucam" and merchant_words(None) is None


def test_an_act_of_several_lines_is_one_marker_read_back_on_every_line() -> None:
    marker = decision_marker("k-9", DecisionKind.ACCEPT, [("5001", 1), ("5002", 3)])
    assert marker == "[retsync:k-9] accept 1 x 5001, 3 x 5002"
    assert recorded_decisions(f"{marker} Zwrot przyjęty, 2 x taniej")["k-9"].lines == {"5001": 1, "5002": 3}
    result = mapped(order("5", notes_priv=marker), products=[product(), product("5002"), product("5003")])
    assert [line.channel_decision for line in result.lines] == [DecisionKind.ACCEPT, DecisionKind.ACCEPT, None]
    assert recorded_decisions("[retsync:old] reject 1 x 77 Za późno")["old"].lines == {"77": 1}, "older markers"


def test_a_refund_comment_keeps_its_key_and_whole_lines_within_256_characters() -> None:
    lines = [(str(6000 + n), 1) for n in range(40)]
    comment = refund_comment("0b7c0001-4f5e-4d4a-9c1e-8a2b3c4d5e6f", DecisionKind.ACCEPT, lines, "Zwrot przyjęty")
    assert len(comment) <= COMMENT_LIMIT
    recorded = recorded_decisions(comment)["0b7c0001-4f5e-4d4a-9c1e-8a2b3c4d5e6f"]
    assert recorded.kind is DecisionKind.ACCEPT and 10 < len(recorded.lines) < 40
    assert set(recorded.lines) <= {line for line, _ in lines}, "no id cut short"
    assert refund_comment("k", DecisionKind.KEEP, [("5001", 2)], "Klient zatrzymuje") == \
        "[retsync:k] keep 2 x 5001 Klient zatrzymuje"


def test_a_held_order_is_neither_a_sale_nor_a_return() -> None:
    raw = order("14", notes_priv="[retsync-hold:bol/1] Bol.com return 1")
    assert not is_return(raw, [refund()], RULES)
    assert map_return(raw, [product()], [refund()], RULES, CURRENCIES, WARSAW) is None


def test_the_held_order_and_its_products() -> None:
    ret = Return(external_id="R1", order_external_id="A-1", status=ReturnStatus.REQUESTED,
                 created_at=datetime(2026, 7, 1, tzinfo=timezone.utc), reason=ReturnReason.DEFECTIVE,
                 customer=Customer(name="Jan Maria Kowalski", email="jan@example.pl"),
                 lines=(ReturnLine(external_id="L1", ean="5901234123457", quantity=1, unit_price=1999),))
    body = held_order(ret, "allegro/R1", "Allegro", status="20", payment_id="1", shipping_id="2", currency_id="1")
    assert body["status_id"] == "20" and body["payment_id"] == "1" and body["shipping_id"] == "2"
    assert body["billing_address"]["firstname"] == "Jan" and body["billing_address"]["lastname"] == "Maria Kowalski"
    assert body["notes_priv"] == "[retsync-hold:allegro/R1] Allegro return R1 (order A-1): defective"
    assert held_products(ret, "900") == [{"order_id": "900", "product_id": "0", "stock_id": "0",
                                          "name": "Item L1", "code": "5901234123457", "pkwiu": "",
                                          "price": "19.99", "quantity": "1"}]


# --- the client's readers ----------------------------------------------------------------------


def _response(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def test_the_bucket_headers_say_how_long_to_hold() -> None:
    assert bucket_wait(_response(**{"X-Shop-Api-Limit": "10", "X-Shop-Api-Bandwidth": "2",
                                    "X-Shop-Api-Calls": "3"})) is None
    assert bucket_wait(_response(**{"X-Shop-Api-Limit": "10", "X-Shop-Api-Bandwidth": "2",
                                    "X-Shop-Api-Calls": "9"})) == 0.5
    assert bucket_wait(_response(**{"X-Shop-Api-Limit": "10", "X-Shop-Api-Bandwidth": "2",
                                    "X-Shop-Api-Calls": "10"})) == 1.0
    assert bucket_wait(_response()) is None
    assert bucket_wait(_response(**{"X-Shop-Api-Limit": "x", "X-Shop-Api-Bandwidth": "2",
                                    "X-Shop-Api-Calls": "1"})) is None


def test_error_bodies_surface_in_shopers_words() -> None:
    body = {"error": "object_readonly", "error_description": "This order cannot be modified"}
    assert error_detail(_response(400, body)) == "This order cannot be modified (object_readonly)"
    assert error_detail(_response(400, {"error": "server_error"})) == "server_error"
    assert error_detail(httpx.Response(502, text="<html>Bad gateway</html>")) == "<html>Bad gateway</html>"
    assert error_detail(_response(400, ["not", "an", "object"])) == "['not', 'an', 'object']"
    assert error_detail(_response(400, {"code": 7})) == "{'code': 7}"
