"""Allegro JSON -> the unified model: every status and reason, unknown values, missing optional fields."""

from __future__ import annotations

from typing import Any

import pytest

from retsync.kit.http import BadPayload
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync_connectors.allegro.mapping import map_order, map_return, minor_units, revision_of

FORM: dict[str, Any] = {
    "id": "29738e61-7f6a-11e8-ac45-09db60ede9d6",
    "buyer": {"id": "23123123", "email": "kasia@allegromail.pl", "login": "kasia_88", "firstName": "Kasia",
              "lastName": "Nowak", "guest": False, "phoneNumber": "500600700",
              "address": {"street": "Jasna 1", "city": "Warszawa", "postCode": "00-950", "countryCode": "PL"}},
    "payment": {"id": "0f8f1d13-7e9e-11e8-9b00-c5b0dfb78ea6", "type": "ONLINE"},
    "status": "READY_FOR_PROCESSING",
    "lineItems": [
        {"id": "62ae358b-8f65-4fc4-9c77-bedf604a2e2b", "offer": {"id": "7600001234", "name": "Kurtka zimowa",
                                                                 "external": {"id": "KURTKA-M"}},
         "quantity": 2, "originalPrice": {"amount": "389.90", "currency": "PLN"},
         "price": {"amount": "389.90", "currency": "PLN"}, "boughtAt": "2026-10-02T10:00:00.000Z"},
        {"id": "72ae358b-8f65-4fc4-9c77-bedf604a2e2c", "offer": {"id": "7600005678", "name": "Plecak 25 l"},
         "quantity": 1, "originalPrice": {"amount": "129.00", "currency": "PLN"},
         "price": {"amount": "129.00", "currency": "PLN"}, "boughtAt": "2026-10-02T10:00:00.000Z"},
    ],
    "surcharges": [],
    "summary": {"totalToPay": {"amount": "908.80", "currency": "PLN"}},
}


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a3405c27-b01c-4357-9bea-e13925708b46", "isFulfillment": False,
        "createdAt": "2026-10-11T09:36:57.00Z", "referenceNumber": "1234/Z04A", "orderId": FORM["id"],
        "buyer": {"email": "kasia@allegromail.pl", "login": "kasia_88"},
        "items": [{"offerId": "7600001234", "quantity": 1, "name": "Kurtka zimowa",
                   "price": {"amount": "389.90", "currency": "PLN"},
                   "reason": {"type": "TOO_SMALL", "userComment": "Za mała."}}],
        "parcels": [{"createdAt": "2026-10-12T09:00:00.000Z", "waybill": "AD00R28X72", "transportingWaybill": None,
                     "carrierId": "ALLEGRO", "transportingCarrierId": None, "sender": {"phoneNumber": "333444555"}}],
        "marketplaceId": "allegro-pl", "status": "DELIVERED",
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(("status", "unified"), [
    ("CREATED", ReturnStatus.REQUESTED), ("DISPATCHED", ReturnStatus.IN_TRANSIT),
    ("IN_TRANSIT", ReturnStatus.IN_TRANSIT), ("DELIVERED", ReturnStatus.RECEIVED),
    ("WAREHOUSE_DELIVERED", ReturnStatus.RECEIVED), ("WAREHOUSE_VERIFICATION", ReturnStatus.RECEIVED),
    ("FINISHED", ReturnStatus.REFUNDED), ("FINISHED_APT", ReturnStatus.REFUNDED),
    ("COMMISSION_REFUND_CLAIMED", ReturnStatus.REFUNDED), ("COMMISSION_REFUNDED", ReturnStatus.REFUNDED),
    ("REJECTED", ReturnStatus.DECIDED),
])
def test_every_status_has_a_unified_word_and_is_kept_verbatim(status: str, unified: ReturnStatus) -> None:
    mapped = map_return(entry(status=status), FORM)
    assert mapped.status is unified
    assert mapped.channel_status == status and mapped.lines[0].channel_status == status


def test_an_unknown_status_is_kept_and_stays_open_so_it_is_watched() -> None:
    mapped = map_return(entry(status="PARTIALLY_REFUNDED_BY_MARS"))
    assert mapped.status is ReturnStatus.REQUESTED
    assert mapped.channel_status == "PARTIALLY_REFUNDED_BY_MARS"
    assert mapped.lines[0].channel_decision is None


def test_a_return_with_everything() -> None:
    mapped = map_return(entry(), FORM)
    line = mapped.lines[0]
    assert (mapped.external_id, mapped.order_external_id) == ("a3405c27-b01c-4357-9bea-e13925708b46", FORM["id"])
    assert (line.external_id, line.order_line_external_id) == ("7600001234", "62ae358b-8f65-4fc4-9c77-bedf604a2e2b")
    assert (line.unit_price, line.currency, line.sku, line.quantity) == (38990, "PLN", "KURTKA-M", 1)
    assert (line.reason, line.channel_reason, line.customer_comment) == (ReturnReason.WRONG_SIZE, "TOO_SMALL",
                                                                         "Za mała.")
    assert (mapped.tracking_number, mapped.carrier) == ("AD00R28X72", "ALLEGRO")
    assert mapped.customer.email == "kasia@allegromail.pl" and mapped.customer.phone == "333444555"
    assert mapped.extra["referenceNumber"] == "1234/Z04A"
    assert mapped.extra["parcels"] == [{"waybill": "AD00R28X72", "carrierId": "ALLEGRO",
                                        "createdAt": "2026-10-12T09:00:00.000Z"}]
    assert not mapped.handled_by_channel and mapped.revision == revision_of(entry())


def test_a_bare_return_with_only_id_and_date() -> None:
    mapped = map_return({"id": "r-1", "createdAt": "2026-10-11T09:36:57Z"})
    assert mapped.status is ReturnStatus.REQUESTED and mapped.lines == () and mapped.extra == {}
    assert mapped.order_external_id is None and mapped.tracking_number is None


def test_an_item_without_reason_price_or_form_still_maps() -> None:
    mapped = map_return(entry(items=[{"offerId": "999", "quantity": 2}], parcels=[], buyer=None))
    line = mapped.lines[0]
    assert (line.external_id, line.quantity, line.reason, line.unit_price) == ("999", 2, ReturnReason.UNKNOWN, None)
    assert line.order_line_external_id is None and mapped.customer.email is None


def test_an_unknown_reason_is_kept_verbatim() -> None:
    line = map_return(entry(items=[{"offerId": "1", "quantity": 1, "reason": {"type": "ALIENS"}}])).lines[0]
    assert (line.reason, line.channel_reason) == (ReturnReason.UNKNOWN, "ALIENS")


@pytest.mark.parametrize(("reason", "unified"), [("MISTAKE", ReturnReason.ORDERED_BY_MISTAKE),
                                                 ("DAMAGED", ReturnReason.DAMAGED),
                                                 ("DIFFERENT", ReturnReason.WRONG_ITEM),
                                                 ("HIDDEN_FLAW", ReturnReason.DEFECTIVE),
                                                 ("TOO_LARGE", ReturnReason.WRONG_SIZE),
                                                 ("DONT_LIKE_IT", ReturnReason.NOT_AS_EXPECTED),
                                                 ("OVERDUE_DELIVERY", ReturnReason.DELIVERY_PROBLEM)])
def test_reasons(reason: str, unified: ReturnReason) -> None:
    items = [{"offerId": "1", "quantity": 1, "reason": {"type": reason}}]
    assert map_return(entry(items=items)).reason is unified


def test_the_same_offer_twice_gets_two_lines() -> None:
    items = [{"offerId": "7600001234", "quantity": 1}, {"offerId": "7600001234", "quantity": 1}]
    mapped = map_return(entry(items=items), FORM)
    assert [line.external_id for line in mapped.lines] == ["7600001234", "7600001234#2"]
    assert {line.order_line_external_id for line in mapped.lines} == {"62ae358b-8f65-4fc4-9c77-bedf604a2e2b"}


@pytest.mark.parametrize(("status", "rejection", "decision"), [
    ("FINISHED", None, DecisionKind.ACCEPT), ("REJECTED", {"code": "REFUND_REJECTED"}, DecisionKind.REJECT),
    ("REJECTED", {"code": "ITEM_FIXED"}, DecisionKind.REPAIR), ("REJECTED", {"code": "NEW_ITEM_SENT"},
                                                                DecisionKind.EXCHANGE),
    ("REJECTED", {"code": "SOMETHING_NEW"}, DecisionKind.REJECT), ("DELIVERED", None, None),
])
def test_what_allegro_reports_as_decided(status: str, rejection: dict[str, str] | None,
                                         decision: DecisionKind | None) -> None:
    fields: dict[str, Any] = {"status": status}
    if rejection:
        fields["rejection"] = {**rejection, "reason": "x", "createdAt": "2026-10-20T10:00:00.000+02:00"}
    mapped = map_return(entry(**fields), FORM)
    assert mapped.lines[0].channel_decision is decision
    if rejection:
        assert mapped.extra["rejection"]["code"] == rejection["code"] and mapped.decided_at is not None


def test_one_fulfillment_returns_are_handled_by_allegro() -> None:
    mapped = map_return(entry(isFulfillment=True, status="WAREHOUSE_VERIFICATION"), FORM)
    assert mapped.handled_by_channel and mapped.extra["isFulfillment"] is True


def test_a_refunded_return_carries_its_amount() -> None:
    mapped = map_return(entry(status="FINISHED"), FORM)
    assert (mapped.refund_amount, mapped.currency) == (38990, "PLN")


@pytest.mark.parametrize("broken", [{"id": None}, {"createdAt": "yesterday"}, {"items": [{"quantity": 1}]}])
def test_what_a_return_cannot_be_stored_without(broken: dict[str, Any]) -> None:
    with pytest.raises(BadPayload):
        map_return(entry(**broken))


def test_an_order() -> None:
    order = map_order(FORM)
    assert order.external_id == FORM["id"] and order.channel_status == "READY_FOR_PROCESSING"
    assert (order.total_amount, order.currency) == (90880, "PLN")
    assert order.customer.name == "Kasia Nowak" and order.customer.postcode == "00-950"
    assert [(line.external_id, line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("62ae358b-8f65-4fc4-9c77-bedf604a2e2b", "KURTKA-M", 2, 38990),
        ("72ae358b-8f65-4fc4-9c77-bedf604a2e2c", None, 1, 12900)]
    assert order.placed_at is not None


@pytest.mark.parametrize(("price", "expected"), [({"amount": "12.345", "currency": "PLN"}, (1235, "PLN")),
                                                 ({"amount": "0", "currency": "EUR"}, (0, "EUR")),
                                                 ({"amount": "abc", "currency": "PLN"}, (None, None)),
                                                 ({}, (None, None)), (None, (None, None))])
def test_prices_in_minor_units(price: Any, expected: tuple[int | None, str | None]) -> None:
    assert minor_units(price) == expected
