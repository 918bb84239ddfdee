"""The mapping reads whatever the API's contract allows, keeps values it does not know, and refuses a record it
cannot read (so `RecordSieve` quarantines that one record instead of failing the page)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from retsync.kit.contract import ActLine, DecisionAct
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.payload import OutOfRange
from retsync.kit.records import RecordSieve
from retsync.testing.specs import PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema

from retsync_connector_template.mapping import decision_body, held_decision, map_order, map_return
from template_api import SCHEMA, SCHEMAS


def documented_return(**changes: Any) -> dict[str, Any]:
    """The example return of README.md, "The API"."""
    record = {
        "id": "R-20001", "order_id": "O-10001", "status": "received", "reason_code": "too_small",
        "comment": "One size up please", "currency": "EUR", "created_at": "2026-11-02T09:15:00Z",
        "updated_at": "2026-11-04T16:40:12Z", "received_at": "2026-11-04T16:40:12Z", "refund": None,
        "buyer": {"name": "Anna Meyer", "email": "anna.meyer@example.com", "phone": "+31 6 12345678",
                  "postcode": "10115"},
        "tracking": {"carrier": "PostNL", "number": "3S1234567890"},
        "lines": [{"id": "RL-20001-1", "order_line_id": "OL-10001-1", "sku": "TS-100",
                   "title": "Organic cotton T-shirt", "quantity": 2, "unit_price": "19.95", "decision": None}],
    }
    return {**record, **changes}


def test_a_documented_return_is_read_whole() -> None:
    mapped = map_return(documented_return())
    assert (mapped.external_id, mapped.order_external_id, mapped.status) == ("R-20001", "O-10001",
                                                                             ReturnStatus.RECEIVED)
    assert (mapped.reason, mapped.channel_reason) == (ReturnReason.WRONG_SIZE, "too_small")
    assert (mapped.carrier, mapped.tracking_number, mapped.customer.postcode) == ("PostNL", "3S1234567890", "10115")
    (line,) = mapped.lines
    assert (line.external_id, line.order_line_external_id, line.quantity, line.unit_price) == (
        "RL-20001-1", "OL-10001-1", 2, 1995)
    assert mapped.revision == "2026-11-04T16:40:12Z"


def test_values_the_api_added_later_are_kept_verbatim() -> None:
    mapped = map_return(documented_return(status="awaiting_inspection", reason_code="arrived_too_late_v2",
                                          comment=None))
    assert (mapped.status, mapped.channel_status) == (ReturnStatus.REQUESTED, "awaiting_inspection")
    assert (mapped.reason, mapped.channel_reason) == (ReturnReason.OTHER, "arrived_too_late_v2")


def test_reason_other_is_read_from_the_buyers_words() -> None:
    mapped = map_return(documented_return(reason_code="other", comment="Ordered it twice by mistake"))
    assert mapped.reason is ReturnReason.ORDERED_BY_MISTAKE


@pytest.mark.parametrize("changes, problem", [
    ({"id": None}, "missing field 'id'"),
    ({"created_at": "yesterday"}, "created_at is not a date"),
    ({"lines": [{"id": "RL-1", "quantity": 1e30}]}, "is beyond"),
], ids=["no-id", "no-date", "1e30-items"])
def test_a_record_it_cannot_read_is_set_aside_with_why(changes: dict[str, Any], problem: str) -> None:
    raw = documented_return(**changes)
    sieve = RecordSieve()
    assert sieve.map("return", raw, map_return, raw, external_id=raw["id"]) is None
    (aside,) = sieve.take()
    assert problem in aside.reason and aside.payload is raw


def test_a_quantity_beyond_any_parcel_raises_out_of_range() -> None:
    with pytest.raises(OutOfRange):
        map_return(documented_return(lines=[{"id": "RL-1", "quantity": "1e30"}]))


@PROPERTY_SETTINGS
@given(from_schema(SCHEMAS["Return"], SCHEMA))
def test_any_return_the_contract_allows_is_mapped(raw: dict[str, Any]) -> None:
    check_mapped_return(map_return(raw), raw["id"], len(raw["lines"]))


@PROPERTY_SETTINGS
@given(from_schema(SCHEMAS["Order"], SCHEMA))
def test_any_order_the_contract_allows_is_mapped(raw: dict[str, Any]) -> None:
    check_mapped_order(map_order(raw), raw["id"])


def test_one_act_is_one_body_with_every_line_under_its_key() -> None:
    act = DecisionAct(key="k-1", kind=DecisionKind.KEEP, note=None, return_external_id="R-1",
                      order_external_id="O-1", attempt=1, lines=(
                          ActLine(1, "RL-1-1", 2, "O-1", "OL-1-1"), ActLine(2, "RL-1-2", 1, "O-1", "OL-1-2")))
    assert decision_body(act) == {"key": "k-1", "decision": "refund_keep_item", "note": None, "lines": [
        {"line_id": "RL-1-1", "quantity": 2}, {"line_id": "RL-1-2", "quantity": 1}]}


def test_a_panel_word_it_does_not_know_is_no_decision() -> None:
    held = {"id": "H-1", "key": "bol/1", "status": "decided", "decision": {"kind": "escalate", "decided_at": None}}
    assert held_decision(held) is None
    assert held_decision({**held, "decision": None}) is None
    decided = held_decision({**held, "decision": {"kind": "deny", "note": "Worn", "decided_at": "2026-11-04T16:40:12Z",
                                                  "lines": [{"line_id": "RL-1", "quantity": 1}]}})
    assert decided is not None and (decided.kind, decided.note, decided.lines) == (DecisionKind.REJECT, "Worn",
                                                                                   {"RL-1": 1})
