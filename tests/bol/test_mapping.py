"""Bol JSON -> unified model: statuses, decisions, reasons, money, and bodies with missing or unknown values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from retsync.kit.http import BadPayload
from retsync.kit.model import Customer, DecisionKind, ReturnReason, ReturnStatus
from retsync_connectors.bol.mapping import (
    decision_for_handling,
    handling_for_decision,
    map_order,
    map_return,
    parse_datetime,
    reason_for,
    reduced_from_detail,
    revision_of,
    to_minor_units,
)


def item(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rmaId": "31234567",
        "orderId": "4012345678",
        "ean": "9789076174082",
        "expectedQuantity": 1,
        "returnReason": {"mainReason": "Verkeerde maat of afmeting", "detailedReason": "Te klein", "customerComments": ""},
        "handled": False,
        "processingResults": [],
    }
    base.update(overrides)
    return base


def entry(*items: dict[str, Any], method: str = "FBR") -> dict[str, Any]:
    return {
        "returnId": "1",
        "registrationDateTime": "2016-11-14T11:06:48.423+01:00",
        "fulfilmentMethod": method,
        "returnItems": list(items) or [item()],
    }


def result(handling: str, processing: str = "ACCEPTED", when: str = "2018-04-17T10:55:37+02:00", quantity: int = 1) -> dict[str, Any]:
    return {"quantity": quantity, "processingResult": processing, "handlingResult": handling, "processingDateTime": when}


ORDER: dict[str, Any] = {
    "orderId": "4012345678",
    "pickupPoint": False,
    "orderPlacedDateTime": "2016-11-01T09:00:00+01:00",
    "shipmentDetails": {"firstName": "Billie", "surname": "Jansen", "zipCode": "1111ZZ", "email": "ship@verkopen.bol.com",
                        "deliveryPhoneNumber": "012123456"},
    "billingDetails": {"firstName": "Bill", "surname": "Payer", "zipCode": "2222AA", "email": "bill@verkopen.bol.com"},
    "orderItems": [
        {"orderItemId": "2012345678", "product": {"ean": "0000007740404", "title": "Other thing"}, "quantity": 1,
         "unitPrice": 5.0, "totalPrice": 5.0, "offer": {"offerId": "x"}},
        {"orderItemId": "2012345679", "product": {"ean": "9789076174082", "title": "Harry Potter"}, "quantity": 2,
         "unitPrice": 12.99, "totalPrice": 25.98, "offer": {"offerId": "y", "reference": "HP-1"}},
    ],
}


# --- dates, money, revision ----------------------------------------------------------------


def test_dates_with_offsets_and_millis_become_utc() -> None:
    mapped = map_return(entry())
    assert mapped.created_at == datetime(2016, 11, 14, 10, 6, 48, 423000, tzinfo=timezone.utc)
    assert parse_datetime("2018-04-17T10:55:37Z") == datetime(2018, 4, 17, 10, 55, 37, tzinfo=timezone.utc)
    assert parse_datetime("yesterday") is None
    assert parse_datetime(None) is None


@pytest.mark.parametrize(("euros", "cents"), [(12.99, 1299), (0.285, 29), ("118.91", 11891), (5, 500), (0.1 + 0.2, 30)])
def test_prices_become_integer_minor_units(euros: object, cents: int) -> None:
    assert to_minor_units(euros) == cents


@pytest.mark.parametrize("bad", [None, "n/a", True, float("nan"), {}])
def test_unreadable_prices_become_none(bad: object) -> None:
    assert to_minor_units(bad) is None


def test_revision_is_stable_across_key_order_and_changes_with_content() -> None:
    first = entry()
    reordered = dict(reversed(list(first.items())))
    assert revision_of(first) == revision_of(reordered)
    assert len(revision_of(first)) == 16
    handled = entry(item(handled=True, processingResults=[result("RETURN_RECEIVED")]))
    assert revision_of(handled) != revision_of(first)
    assert map_return(first).revision == revision_of(first)


def test_a_detail_reduces_to_the_list_entry_it_came_from() -> None:
    detail = entry(item(title="Harry Potter", trackAndTrace="3SBOL1", transporterName="PostNL", customerDetails={}))
    assert revision_of(reduced_from_detail(detail)) == revision_of(entry())


# --- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handling", "kind"),
    [
        ("RETURN_RECEIVED", DecisionKind.ACCEPT),
        ("STILL_APPROVED", DecisionKind.ACCEPT),
        ("EXCHANGE_PRODUCT", DecisionKind.EXCHANGE),
        ("RETURN_DOES_NOT_MEET_CONDITIONS", DecisionKind.REJECT),
        ("REPAIR_PRODUCT", DecisionKind.REPAIR),
        ("CUSTOMER_KEEPS_PRODUCT_PAID", DecisionKind.KEEP),
        ("CUSTOMER_KEEPS_PRODUCT_FREE_OF_CHARGE", DecisionKind.KEEP),
        ("CANCELLED_BY_CUSTOMER", DecisionKind.CANCEL),
        ("EXPIRED", None),
        ("SOMETHING_BOL_INVENTS_TOMORROW", None),
        ("", None),
        (None, None),
    ],
)
def test_handling_results_map_to_decisions(handling: str | None, kind: DecisionKind | None) -> None:
    assert decision_for_handling(handling) == kind


def test_every_pushable_decision_round_trips_and_cancel_has_no_handling_result() -> None:
    for kind in DecisionKind:
        handling = handling_for_decision(kind)
        if kind is DecisionKind.CANCEL:
            assert handling is None
        else:
            assert handling is not None and decision_for_handling(handling) is kind
    assert handling_for_decision(DecisionKind.KEEP) == "CUSTOMER_KEEPS_PRODUCT_PAID"


def test_what_bol_already_handled_travels_as_the_channel_decision() -> None:
    partial = item(
        handled=True,
        expectedQuantity=3,
        processingResults=[
            result("RETURN_RECEIVED", when="2018-04-17T10:00:00+02:00", quantity=1),
            result("RETURN_RECEIVED", when="2018-04-18T10:00:00+02:00", quantity=2),
        ],
    )
    line = map_return(entry(partial)).lines[0]
    assert line.channel_decision is DecisionKind.ACCEPT
    assert line.channel_decision_quantity == 3


def test_the_latest_processing_result_wins_whatever_the_list_order() -> None:
    changed_mind = item(
        handled=True,
        processingResults=[
            result("STILL_APPROVED", when="2018-04-20T10:00:00+02:00"),
            result("EXCHANGE_PRODUCT", when="2018-04-17T10:00:00+02:00"),
        ],
    )
    mapped = map_return(entry(changed_mind))
    assert mapped.lines[0].channel_decision is DecisionKind.ACCEPT
    assert mapped.lines[0].channel_status == "handled:STILL_APPROVED:ACCEPTED"
    assert mapped.status is ReturnStatus.REFUNDED
    assert mapped.decided_at == datetime(2018, 4, 20, 8, 0, tzinfo=timezone.utc)


# --- statuses ------------------------------------------------------------------------------


def test_an_open_return_is_requested_and_in_transit_once_it_has_tracking() -> None:
    open_entry = entry()
    assert map_return(open_entry).status is ReturnStatus.REQUESTED
    assert map_return(open_entry).channel_status == "unhandled"
    detail = entry(item(trackAndTrace="3SBOL0987654321", transporterName="PostNL"))
    tracked = map_return(open_entry, detail)
    assert tracked.status is ReturnStatus.IN_TRANSIT
    assert (tracked.tracking_number, tracked.carrier) == ("3SBOL0987654321", "PostNL")
    assert tracked.decided_at is None


@pytest.mark.parametrize(
    ("handling", "processing", "status"),
    [
        ("RETURN_RECEIVED", "ACCEPTED", ReturnStatus.REFUNDED),
        ("STILL_APPROVED", "ACCEPTED", ReturnStatus.REFUNDED),
        ("CUSTOMER_KEEPS_PRODUCT_PAID", "ACCEPTED", ReturnStatus.REFUNDED),
        ("RETURN_RECEIVED", "PENDING", ReturnStatus.DECIDED),
        ("RETURN_RECEIVED", "REJECTED", ReturnStatus.DECIDED),
        ("RETURN_DOES_NOT_MEET_CONDITIONS", "REJECTED", ReturnStatus.DECIDED),
        ("EXCHANGE_PRODUCT", "ACCEPTED", ReturnStatus.DECIDED),
        ("REPAIR_PRODUCT", "ACCEPTED", ReturnStatus.DECIDED),
        ("CUSTOMER_KEEPS_PRODUCT_FREE_OF_CHARGE", "ACCEPTED", ReturnStatus.DECIDED),
        ("CANCELLED_BY_CUSTOMER", "CANCELLED", ReturnStatus.CANCELLED),
        ("RETURN_RECEIVED", "CANCELLED", ReturnStatus.CANCELLED),
        ("CANCELLED_BY_CUSTOMER", "ACCEPTED", ReturnStatus.CANCELLED),
        ("FAILED_TO_COLLECT_BY_TRANSPORTER", "WHATEVER_NEW", ReturnStatus.DECIDED),
    ],
)
def test_handled_items_map_to_a_closed_status(handling: str, processing: str, status: ReturnStatus) -> None:
    mapped = map_return(entry(item(handled=True, processingResults=[result(handling, processing)])))
    assert mapped.status is status
    assert mapped.channel_status == f"handled:{handling}:{processing}"
    assert mapped.lines[0].channel_status == f"handled:{handling}:{processing}"


def test_an_unknown_handling_result_is_kept_verbatim_without_a_decision() -> None:
    mapped = map_return(entry(item(handled=True, processingResults=[result("EXCESSIVE_RETURN", "ACCEPTED")])))
    assert mapped.lines[0].channel_decision is None
    assert mapped.lines[0].channel_decision_quantity is None
    assert mapped.lines[0].channel_status == "handled:EXCESSIVE_RETURN:ACCEPTED"
    assert mapped.status is ReturnStatus.DECIDED


def test_a_return_stays_open_while_one_line_is_open_and_says_mixed() -> None:
    mapped = map_return(
        entry(item(), item(rmaId="31234568", handled=True, processingResults=[result("RETURN_RECEIVED")]))
    )
    assert mapped.status is ReturnStatus.REQUESTED
    assert mapped.channel_status == "mixed"
    assert [line.channel_status for line in mapped.lines] == ["unhandled", "handled:RETURN_RECEIVED:ACCEPTED"]


def test_a_return_is_cancelled_only_when_every_line_is() -> None:
    cancelled = item(handled=True, processingResults=[result("CANCELLED_BY_CUSTOMER", "CANCELLED")])
    refunded = item(rmaId="31234568", handled=True, processingResults=[result("RETURN_RECEIVED")])
    assert map_return(entry(cancelled, refunded)).status is ReturnStatus.REFUNDED
    assert map_return(entry(cancelled, dict(cancelled, rmaId="9"))).status is ReturnStatus.CANCELLED


def test_handled_without_processing_results_is_decided() -> None:
    assert map_return(entry(item(handled=True))).status is ReturnStatus.DECIDED


# --- reasons -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "detailed", "reason"),
    [
        ("Verkeerde maat of afmeting", None, ReturnReason.WRONG_SIZE),
        ("Verkeerd besteld", None, ReturnReason.ORDERED_BY_MISTAKE),
        ("Artikel werkt niet", None, ReturnReason.DEFECTIVE),
        ("Klacht over artikel", None, ReturnReason.NOT_AS_EXPECTED),
        ("Niet naar verwachting", None, ReturnReason.NOT_AS_EXPECTED),
        ("Klacht over de bezorging", None, ReturnReason.DELIVERY_PROBLEM),
        ("Elders goedkoper", None, ReturnReason.BETTER_PRICE),
        ("Ander artikel ontvangen dan besteld", None, ReturnReason.WRONG_ITEM),
        ("Anders", None, ReturnReason.OTHER),
        ("Klacht over artikel", "Artikel is beschadigd", ReturnReason.DAMAGED),
        ("Klacht over artikel", "Artikel werkt niet", ReturnReason.DEFECTIVE),
        ("Klacht over de bezorging", "Ander artikel ontvangen dan besteld", ReturnReason.WRONG_ITEM),
        ("Anders", "Ik heb me bedacht", ReturnReason.NO_LONGER_NEEDED),
        ("Anders", "Dubbel besteld", ReturnReason.ORDERED_BY_MISTAKE),
        ("Verkeerde maat of afmeting", "Te klein", ReturnReason.WRONG_SIZE),
        ("  verkeerde MAAT of afmeting ", None, ReturnReason.WRONG_SIZE),
        ("Iets nieuws", None, ReturnReason.UNKNOWN),
        ("", None, ReturnReason.UNKNOWN),
        (None, None, ReturnReason.UNKNOWN),
    ],
)
def test_dutch_reasons_map_to_a_coarse_reason(main: str | None, detailed: str | None, reason: ReturnReason) -> None:
    assert reason_for(main, detailed) is reason


def test_the_channel_reason_and_comment_keep_bols_words() -> None:
    mapped = map_return(
        entry(item(returnReason={"mainReason": "Klacht over artikel", "detailedReason": "Kwaliteit valt tegen",
                                 "customerComments": "Na een week kapot"}))
    )
    line = mapped.lines[0]
    assert line.channel_reason == "Klacht over artikel / Kwaliteit valt tegen"
    assert line.customer_comment == "Na een week kapot"
    assert (mapped.reason, mapped.channel_reason) == (ReturnReason.NOT_AS_EXPECTED, line.channel_reason)
    bare = map_return(entry(item(returnReason={"mainReason": "Elders goedkoper", "customerComments": ""}))).lines[0]
    assert (bare.channel_reason, bare.customer_comment) == ("Elders goedkoper", None)


# --- FBB, orders, customers ----------------------------------------------------------------


def test_fbb_returns_are_handled_by_bol_and_say_so() -> None:
    fbb = map_return(entry(method="FBB"))
    assert fbb.handled_by_channel is True
    assert fbb.extra == {"fulfilmentMethod": "FBB"}
    assert map_return(entry()).handled_by_channel is False


def test_an_order_maps_lines_prices_sku_and_customer() -> None:
    order = map_order(ORDER)
    assert order.external_id == "4012345678"
    assert order.placed_at == datetime(2016, 11, 1, 8, 0, tzinfo=timezone.utc)
    assert [(line.external_id, line.ean, line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("2012345678", "0000007740404", None, 1, 500),
        ("2012345679", "9789076174082", "HP-1", 2, 1299),
    ]
    assert order.total_amount == 3098 and order.currency == "EUR"
    assert order.customer == Customer(email="bill@verkopen.bol.com", name="Bill Payer", phone="012123456", postcode="2222AA")


def test_a_return_line_finds_its_order_line_by_ean() -> None:
    mapped = map_return(entry(), orders={"4012345678": map_order(ORDER)})
    line = mapped.lines[0]
    assert (line.order_line_external_id, line.unit_price, line.currency, line.sku) == ("2012345679", 1299, "EUR", "HP-1")
    assert line.title == "Harry Potter"
    assert mapped.order_external_id == "4012345678"
    assert mapped.customer.email == "bill@verkopen.bol.com"


def test_the_detail_customer_wins_over_the_order_and_gaps_are_filled_from_it() -> None:
    detail = entry(item(title="Harry Potter en de steen der wijzen",
                        customerDetails={"salutation": "FEMALE", "firstName": "Billie", "surname": "Jansen",
                                         "email": "billie@verkopen.bol.com"}))
    mapped = map_return(entry(), detail, {"4012345678": map_order(ORDER)})
    assert mapped.customer == Customer(email="billie@verkopen.bol.com", name="Billie Jansen", phone="012123456",
                                       postcode="2222AA")
    assert mapped.lines[0].title == "Harry Potter en de steen der wijzen"


def test_missing_optional_fields_never_crash() -> None:
    sparse = {"returnId": 7, "registrationDateTime": "2016-11-14T11:06:48Z",
              "returnItems": [{"rmaId": 9, "returnReason": "not an object", "processingResults": "nope",
                               "expectedQuantity": "many"}]}
    mapped = map_return(sparse, {"returnItems": "nope"}, {})
    line = mapped.lines[0]
    assert (mapped.external_id, line.external_id, line.quantity) == ("7", "9", 0)
    assert (line.reason, line.channel_reason, line.order_external_id, line.ean) == (ReturnReason.UNKNOWN, None, None, None)
    assert mapped.status is ReturnStatus.REQUESTED and mapped.handled_by_channel is False and mapped.extra == {}
    weird_result = item(handled=True, processingResults=[{"quantity": None}, "x", {"processingDateTime": "soon"}])
    assert map_return(entry(weird_result)).status is ReturnStatus.DECIDED
    assert map_order({"orderId": "1"}).lines == ()


def test_missing_ids_and_dates_are_a_bad_payload_not_a_crash() -> None:
    with pytest.raises(BadPayload, match="returnId"):
        map_return({"registrationDateTime": "2016-11-14T11:06:48Z", "returnItems": []})
    with pytest.raises(BadPayload, match="registrationDateTime"):
        map_return({"returnId": "1", "registrationDateTime": "last week", "returnItems": []})
    with pytest.raises(BadPayload, match="rmaId"):
        map_return(entry({"orderId": "1"}))
    with pytest.raises(BadPayload, match="orderItemId"):
        map_order({"orderId": "1", "orderItems": [{"quantity": 1}]})


def test_decided_and_refunded_times_come_from_processing() -> None:
    when = datetime(2018, 4, 17, 8, 55, 37, tzinfo=timezone.utc)
    refunded = map_return(entry(item(handled=True, processingResults=[result("RETURN_RECEIVED")])))
    assert refunded.decided_at == refunded.refunded_at == refunded.received_at == when
    rejected = map_return(entry(item(handled=True, processingResults=[result("RETURN_DOES_NOT_MEET_CONDITIONS", "REJECTED")])))
    assert rejected.decided_at == when and rejected.refunded_at is None and rejected.received_at is None
    assert rejected.created_at < when - timedelta(days=365)
