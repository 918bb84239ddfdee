"""The mapping reads whatever Magento's schema allows (hypothesis, drawn from admin-schema-2.4.9.yaml), keeps
values it does not know, refuses a record it cannot read (quarantined, not stored wrong), and builds the one act."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retsync.kit.contract import ActLine, DecisionAct
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.payload import QUANTITY_LIMIT, OutOfRange
from retsync.kit.records import RecordSieve
from retsync.testing.specs import MOMENTS, PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema
from retsync_connectors.magento.client import criteria, error_text
from retsync_connectors.magento.mapping import (
    held_decision,
    map_creditmemo,
    map_order,
    map_rma,
    plan,
    refund_body,
    resolution_id,
)

from .spec import document

LABELS = {"reason": {"7": "Wrong Color", "8": "Wrong Size"}, "condition": {"12": "Opened"},
          "resolution": {"4": "Exchange", "5": "Refund", "21": "Repair"}}


def documented_rma(**changes: Any) -> dict[str, Any]:
    rma = {"increment_id": "000000101", "entity_id": 101, "order_id": 1001, "order_increment_id": "000001001",
           "store_id": 1, "customer_id": 0, "date_requested": "2026-11-02 09:15:00",
           "customer_custom_email": "anna.meyer@example.com", "status": "received_on_item",
           "items": [{"entity_id": 9001, "rma_entity_id": 101, "order_item_id": 5002, "qty_requested": 2,
                      "qty_authorized": 2, "qty_approved": 0, "qty_returned": 2, "reason": "8", "condition": "12",
                      "resolution": "5", "status": "received"},
                     {"entity_id": 9002, "rma_entity_id": 101, "order_item_id": 5003, "qty_requested": 1,
                      "qty_authorized": 1, "qty_approved": 0, "qty_returned": 0, "reason": "8", "condition": "12",
                      "resolution": "5", "status": "authorized"}],
           "comments": [{"comment": "Too small for me", "rma_entity_id": 101, "created_at": "2026-11-02 09:15:00",
                         "entity_id": 1, "customer_notified": False, "visible_on_front": True, "status": "pending",
                         "admin": False}],
           "tracks": [{"entity_id": 3, "rma_entity_id": 101, "track_number": "1Z999", "carrier_title": "DHL",
                       "carrier_code": "dhl"}]}
    return {**rma, **changes}


def test_the_documented_rma_is_mapped() -> None:
    mapped = map_rma(documented_rma(), LABELS)
    assert (mapped.external_id, mapped.order_external_id, mapped.status) == ("101", "1001", ReturnStatus.RECEIVED)
    assert (mapped.tracking_number, mapped.carrier) == ("1Z999", "DHL")
    assert mapped.reason is ReturnReason.WRONG_SIZE and mapped.lines[0].channel_reason == "Wrong Size"
    assert [line.order_line_external_id for line in mapped.lines] == ["5002", "5003"]
    assert [line.channel_status for line in mapped.lines] == ["received", "authorized"]
    assert mapped.customer.email == "anna.meyer@example.com" and mapped.extra["increment_id"] == "000000101"


def test_unknown_status_and_option_ids_are_kept_verbatim() -> None:
    raw = documented_rma(status="awaiting_inspection_v2")
    raw["items"][0]["reason"] = "9999"
    mapped = map_rma(raw, LABELS)
    assert mapped.status is ReturnStatus.REQUESTED and mapped.channel_status == "awaiting_inspection_v2"
    assert mapped.lines[0].channel_reason == "9999"


@pytest.mark.parametrize("status, unified", [("pending", ReturnStatus.REQUESTED),
                                             ("authorized", ReturnStatus.IN_TRANSIT),
                                             ("closed", ReturnStatus.CLOSED),
                                             ("processed_closed", ReturnStatus.CLOSED)])
def test_rma_statuses(status: str, unified: ReturnStatus) -> None:
    assert map_rma(documented_rma(status=status), LABELS).status is unified


@pytest.mark.parametrize("changes, problem", [
    ({"entity_id": None}, "entity_id"), ({"date_requested": "yesterday"}, "not a date"),
], ids=["no-id", "no-date"])
def test_an_rma_it_cannot_read_is_set_aside_with_why(changes: dict[str, Any], problem: str) -> None:
    raw = documented_rma(**changes)
    sieve = RecordSieve()
    assert sieve.map("return", raw, map_rma, raw, LABELS, external_id=raw["entity_id"]) is None
    (aside,) = sieve.take()
    assert problem in aside.reason


def test_a_quantity_beyond_any_parcel_raises_out_of_range() -> None:
    raw = documented_rma()
    raw["items"][0]["qty_requested"] = 1e30
    with pytest.raises(OutOfRange):
        map_rma(raw, LABELS)


def magento_time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def drawn(name: str, *read: str, **nested: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Payloads of the schema's definition `name`. With `read`, only the fields the mapping reads (and the required
    ones) are drawn, so the 200-field order stays fast to draw; `nested` does the same for an array's items."""
    definition = document()["definitions"][name]
    if not read:
        return from_schema({"$ref": f"#/definitions/{name}"}, document())
    keep = set(read) | set(definition.get("required", ()))
    properties = {k: v for k, v in definition["properties"].items() if k in keep}
    for field, inner in nested.items():
        target = document()["definitions"][properties[field]["items"]["$ref"].split("/")[-1]]
        kept = set(inner) | set(target.get("required", ()))
        properties[field] = {"type": "array", "items": {
            "type": "object", "required": target.get("required", []),
            "properties": {k: v for k, v in target["properties"].items() if k in kept}}}
    return from_schema({"type": "object", "properties": properties, "required": definition.get("required", [])},
                       document())


def _too_big(values: list[Any]) -> bool:
    """A quantity the kit refuses: beyond any parcel, or written with an exponent (1e-168)."""
    return any(isinstance(v, (int, float)) and (abs(v) > QUANTITY_LIMIT or "e" in repr(v)) for v in values)


@PROPERTY_SETTINGS
@given(drawn("rma-data-rma-interface"), MOMENTS)
def test_any_rma_the_schema_allows_is_mapped(raw: dict[str, Any], moment: Any) -> None:
    raw["date_requested"] = magento_time(moment)  # a plain string in the schema; Magento writes this format
    try:
        mapped = map_rma(raw, LABELS)
    except OutOfRange:
        assert _too_big([item.get("qty_requested") for item in raw["items"]])
        return
    check_mapped_return(mapped, str(raw["entity_id"]), len(raw["items"]))


@PROPERTY_SETTINGS
@given(drawn("sales-data-order-interface", "entity_id", "created_at", "status", "order_currency_code",
             "grand_total", "customer_email", "billing_address", "items",
             items=("item_id", "sku", "name", "qty_ordered", "price", "parent_item_id", "product_type")))
def test_any_order_the_schema_allows_is_mapped_or_set_aside_with_why(raw: dict[str, Any]) -> None:
    raw.setdefault("entity_id", 1)
    try:
        mapped = map_order(raw)
    except OutOfRange:
        assert _too_big([item.get("qty_ordered") for item in raw["items"]])
        return
    except KeyError as missing:
        assert str(missing) == "'item_id'" and any("item_id" not in item for item in raw["items"])
        return
    check_mapped_order(mapped, str(raw["entity_id"]))


@PROPERTY_SETTINGS
@given(drawn("sales-data-creditmemo-interface", "entity_id", "order_id", "created_at", "updated_at", "grand_total",
             "order_currency_code", "increment_id", "comments", "items",
             items=("entity_id", "order_item_id", "qty", "price", "sku", "name")), MOMENTS)
def test_any_credit_memo_the_schema_allows_is_a_refunded_return(raw: dict[str, Any], moment: Any) -> None:
    raw.update(entity_id=7, created_at=magento_time(moment))
    try:
        mapped = map_creditmemo(raw, None)
    except OutOfRange:
        assert _too_big([item.get("qty") for item in raw["items"]])
        return
    except KeyError as missing:
        assert str(missing) == "'entity_id'"
        return
    assert mapped.status is ReturnStatus.REFUNDED and mapped.external_id == "creditmemo-7" and mapped.revision


def test_a_configurable_credit_memo_is_one_line_linked_to_the_child() -> None:
    order = {"entity_id": 1000, "items": [{"item_id": 1, "sku": "MH01-M", "product_type": "configurable"},
                                          {"item_id": 2, "sku": "MH01-M", "parent_item_id": 1}]}
    memo = {"entity_id": 5, "order_id": 1000, "created_at": "2026-11-02 09:15:00", "grand_total": 52,
            "items": [{"entity_id": 50, "order_item_id": 1, "qty": 1, "price": 52, "base_price": 52, "base_cost": 0},
                      {"entity_id": 51, "order_item_id": 2, "qty": 1, "price": 0, "base_price": 0, "base_cost": 0}]}
    mapped = map_creditmemo(memo, order)
    assert [(line.external_id, line.order_line_external_id) for line in mapped.lines] == [("50", "2")]
    assert mapped.refund_amount == 5200


def act(kind: DecisionKind, *lines: tuple[str, int], key: str = "k-1", note: str | None = None) -> DecisionAct:
    return DecisionAct(key=key, kind=kind, note=note, return_external_id="101", order_external_id="1001", attempt=1,
                       lines=tuple(ActLine(n, line, qty, "1001", None) for n, (line, qty) in enumerate(lines, 1)))


def test_accept_authorizes_before_receipt_and_approves_and_refunds_after() -> None:
    planned = plan(documented_rma(), act(DecisionKind.ACCEPT, ("9001", 2), ("9002", 1)), None, True)
    assert [i["status"] for i in planned.items] == ["approved", "authorized"]
    assert planned.changed and planned.refund == {"5002": 2} and planned.to_stock
    again = plan({**documented_rma(), "items": planned.items}, act(DecisionKind.ACCEPT, ("9001", 2), ("9002", 1)),
                 None, True)
    assert not again.changed and again.refund == {"5002": 2}, "planning again changes nothing, names the same refund"


@pytest.mark.parametrize("kind, statuses", [
    (DecisionKind.REJECT, ["rejected", "denied"]), (DecisionKind.CANCEL, ["denied", "denied"]),
    (DecisionKind.KEEP, ["denied", "denied"]), (DecisionKind.REPAIR, ["approved", "approved"]),
])
def test_each_decision_moves_the_items(kind: DecisionKind, statuses: list[str]) -> None:
    planned = plan(documented_rma(), act(kind, ("9001", 2), ("9002", 1)), "21", True)
    assert [i["status"] for i in planned.items] == statuses
    assert bool(planned.refund) is (kind is DecisionKind.KEEP) and planned.to_stock is (kind is not DecisionKind.KEEP)
    if kind is DecisionKind.REPAIR:
        assert {i["resolution"] for i in planned.items} == {"21"}


def test_the_refund_names_a_configurable_child_through_its_parent_and_carries_the_key() -> None:
    body = refund_body(act(DecisionKind.KEEP, ("9001", 1), key="k-9", note="Keep it"), {"2": 1}, {"2": "1"},
                       False, False)
    assert body["items"] == [{"order_item_id": 1, "qty": 1}]
    assert body["comment"]["comment"] == "Keep it [retsync k-9]"
    assert body["arguments"]["extension_attributes"]["return_to_stock_items"] == []


def test_resolution_options_by_label_or_id() -> None:
    assert resolution_id(LABELS, "repair") == "21" and resolution_id(LABELS, "4") == "4"
    assert resolution_id(LABELS, "Fix it") is None


def test_a_held_rma_is_decided_once_no_item_is_pending() -> None:
    rma = documented_rma(comments=[{"comment": "held [retsync bol/1]", "admin": True, "created_at": "1"},
                                   {"comment": "Worn", "admin": True, "created_at": "2"}])
    assert held_decision({**rma, "items": [{**rma["items"][0], "status": "pending"}]}, LABELS) is None
    rejected = held_decision({**rma, "items": [{**i, "status": "denied"} for i in rma["items"]]}, LABELS)
    assert rejected is not None and (rejected.kind, rejected.note) == (DecisionKind.REJECT, "Worn")
    exchanged = held_decision({**rma, "items": [{**i, "status": "approved", "resolution": "4"} for i in rma["items"]]},
                              LABELS)
    assert exchanged is not None and exchanged.kind is DecisionKind.EXCHANGE


@pytest.mark.parametrize("body, text", [
    ({"message": "No such entity with %fieldName = %fieldValue",
      "parameters": [{"fieldName": "entity_id"}, {"fieldValue": "77"}]}, "No such entity with entity_id = 77"),
    ({"message": "No such entity with %1 = %2", "parameters": ["orderId", "9"]}, "No such entity with orderId = 9"),
    ({"message": "Access to %resources", "parameters": {"resources": "Magento_Rma::rma"}},
     "Access to Magento_Rma::rma"),
    ({"errors": []}, None),
], ids=["schema-objects", "positional", "named", "no-message"])
def test_error_bodies_are_filled_in(body: dict[str, Any], text: str | None) -> None:
    assert error_text(body) == text


def test_search_criteria_are_groups_anded() -> None:
    params = criteria([("date_requested", "2026-01-01 00:00:00", "gteq"), ("entity_id", "1,2", "in")],
                      "date_requested", 3, 50)
    assert params["searchCriteria[filterGroups][1][filters][0][conditionType]"] == "in"
    assert params["searchCriteria[currentPage]"] == "3" and params["searchCriteria[pageSize]"] == "50"
    assert [params[f"searchCriteria[sortOrders][{i}][field]"] for i in (0, 1)] == ["date_requested", "entity_id"]


# --- an RMA's refund: its order's credit memos ------------------------------------------------------------

def memo(number: int, *lines: tuple[int, int], comment: str = "", created: str = "2026-11-05 10:00:00",
         total: float = 49.0, **changes: Any) -> dict[str, Any]:
    return {"entity_id": number, "order_id": 1001, "state": 2, "grand_total": total, "created_at": created,
            "updated_at": created, "order_currency_code": "EUR",
            "items": [{"entity_id": number * 10 + i, "order_item_id": item, "qty": qty, "base_cost": 0,
                       "base_price": 0} for i, (item, qty) in enumerate(lines)],
            "comments": [{"comment": comment, "parent_id": number}] if comment else [], **changes}


def test_a_merchants_credit_memo_of_the_rmas_items_is_its_refund() -> None:
    mapped = map_rma(documented_rma(), LABELS, [memo(40, (5002, 2), total=98.5)],
                     {"entity_id": 1001, "order_currency_code": "EUR", "total_refunded": 98.5, "items": []})
    assert (mapped.refund_amount, mapped.currency) == (9850, "EUR")
    assert mapped.refunded_at and mapped.refunded_at.isoformat() == "2026-11-05T10:00:00+00:00"
    assert mapped.revision and mapped.revision.endswith("|cm:40")
    assert mapped.revision != map_rma(documented_rma(), LABELS).revision, "a refund is a change of the RMA"


@pytest.mark.parametrize("memos", [
    [memo(41, (5002, 3))],                                      # more units than the RMA asked for
    [memo(42, (5002, 1), (7777, 1))],                           # an item the RMA does not hold
    [memo(43, (5002, 1), created="2026-11-01 08:00:00")],       # made before the RMA was requested
    [memo(44, (5002, 1), state=3)],                             # cancelled
    [memo(45, (5002, 1), state=1)],                             # an online refund not settled
    [memo(46, (5002, 1), comment="accept [retsync act-9]")],    # another act's refund (its key is not here)
    [memo(47, (5002, 1e30))],                                   # unreadable: nobody's refund, the RMA still read
], ids=["too-many", "other-item", "before", "cancelled", "open", "other-act", "unreadable"])
def test_a_credit_memo_that_is_not_the_rmas_refund_is_left_out(memos: list[dict[str, Any]]) -> None:
    mapped = map_rma(documented_rma(), LABELS, memos, None)
    assert (mapped.refund_amount, mapped.refunded_at) == (None, None)


def test_retsyncs_own_credit_memo_is_found_by_the_key_in_both_comments() -> None:
    raw = documented_rma()
    raw["comments"].append({"comment": "Checked [retsync act-7]", "rma_entity_id": 101,
                            "created_at": "2026-11-05 10:00:01", "entity_id": 2, "customer_notified": False,
                            "visible_on_front": False, "status": "processed_closed", "admin": True})
    keyed = memo(48, (5003, 1), (5002, 2), comment="accept [retsync act-7]", total=120.0)
    mapped = map_rma(raw, LABELS, [keyed, memo(49, (5002, 1), comment="x [retsync act-8]")], None)
    assert mapped.refund_amount == 12000


def test_a_configurable_products_parent_line_counts_as_the_child_the_rma_names() -> None:
    order = {"entity_id": 1001, "order_currency_code": "EUR", "total_refunded": 150.0,
             "items": [{"item_id": 5001, "product_type": "configurable"}, {"item_id": 5002, "parent_item_id": 5001}]}
    parent_and_child = memo(50, (5001, 2), (5002, 2), total=98.0)
    other = memo(51, (8888, 1), total=52.0)  # another refund on the order: the order's total is not this RMA's
    mapped = map_rma(documented_rma(), LABELS, [parent_and_child, other], order)
    assert mapped.refund_amount == 9800
    alone = map_rma(documented_rma(), LABELS, [parent_and_child], {**order, "total_refunded": 99.0})
    assert alone.refund_amount == 9900, "every refund of the order is this RMA's: the order's books speak for it"


def test_received_at_is_the_first_status_history_entry_after_receipt() -> None:
    raw = documented_rma()
    assert map_rma(raw, LABELS).received_at is None, "no dated trace of the receipt: left None"
    raw["comments"] += [
        {"comment": "We received your package.", "rma_entity_id": 101, "created_at": "2026-11-04 16:00:00",
         "entity_id": 2, "customer_notified": False, "visible_on_front": False, "status": "received_on_item",
         "admin": True},
        {"comment": "Approved", "rma_entity_id": 101, "created_at": "2026-11-06 09:00:00", "entity_id": 3,
         "customer_notified": False, "visible_on_front": False, "status": "processed_closed", "admin": True}]
    received = map_rma(raw, LABELS).received_at
    assert received and received.isoformat() == "2026-11-04T16:00:00+00:00"


@PROPERTY_SETTINGS
@given(drawn("rma-data-rma-interface"),
       st.lists(drawn("sales-data-creditmemo-interface", "entity_id", "order_id", "created_at", "state",
                      "grand_total", "order_currency_code", "comments", "items", items=("order_item_id", "qty")),
                max_size=3), MOMENTS)
def test_any_rma_with_any_credit_memos_the_schema_allows_is_mapped(raw: dict[str, Any], memos: list[Any],
                                                                   moment: Any) -> None:
    raw["date_requested"] = magento_time(moment)
    try:
        mapped = map_rma(raw, LABELS, memos, None)
    except OutOfRange:
        assert _too_big([item.get("qty_requested") for item in raw["items"]])
        return
    check_mapped_return(mapped, str(raw["entity_id"]), len(raw["items"]))
    assert mapped.refund_amount is None or abs(mapped.refund_amount) < 10**17
