"""The mapping reads whatever Channable's contract allows (payloads drawn from its OpenAPI file), keeps values it
does not know, and refuses a record it cannot read, so `RecordSieve` quarantines that one record."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retsync.kit.contract import ActLine, DecisionAct
from retsync.kit.model import DecisionKind, ReturnReason, ReturnStatus
from retsync.kit.records import RecordSieve
from retsync.testing.specs import PROPERTY_SETTINGS, check_mapped_order, check_mapped_return, from_schema, load_spec
from retsync_connectors.channable.mapping import STATUSES, map_order, map_return, status_word


@functools.cache
def _spec() -> dict[str, Any]:
    return load_spec("channable", "channable-returns-api-openapi.yml")


def documented_return(**changes: Any) -> dict[str, Any]:
    """The spec's own example (`SingleEfferentReturn.example.return`), with `changes` on top."""
    example = copy.deepcopy(_spec()["components"]["schemas"]["SingleEfferentReturn"]["example"]["return"])
    return {**example, **changes}


def test_the_documented_example_is_read_whole() -> None:
    mapped = map_return(documented_return())
    assert (mapped.external_id, mapped.order_external_id, mapped.status, mapped.channel_status) == (
        "1", "ABC9839833", ReturnStatus.REQUESTED, "new")
    assert (mapped.reason, mapped.channel_reason) == (ReturnReason.NOT_AS_EXPECTED, "Not as pictured")
    assert mapped.customer.email == "noreply@example.com" and mapped.customer.name == "Firstname Lastname"
    assert mapped.customer.postcode == "1234 AB"
    (line,) = mapped.lines
    assert (line.external_id, line.order_line_external_id, line.ean, line.title, line.quantity) == (
        "1", "123456-some-item", "1234567890123", "Product Title", 1)
    assert line.customer_comment == "Some extra info" and line.channel_decision is None
    assert mapped.marketplace == "bol"
    assert mapped.extra == {"channel_return_id": "123456-some-return",
                            "channel_order_id": "123456-some-order", "platform_name": "lightspeed"}
    assert mapped.revision == "2017-02-09T12:39:48+00:00" and not mapped.handled_by_channel


@pytest.mark.parametrize("status, unified, decided", [
    ("new", ReturnStatus.REQUESTED, None), ("manual", ReturnStatus.REQUESTED, None),
    ("processing", ReturnStatus.RECEIVED, None), ("accepted", ReturnStatus.DECIDED, DecisionKind.ACCEPT),
    ("rejected", ReturnStatus.DECIDED, DecisionKind.REJECT), ("repaired", ReturnStatus.DECIDED, DecisionKind.REPAIR),
    ("keeps", ReturnStatus.DECIDED, DecisionKind.KEEP), ("exchanged", ReturnStatus.DECIDED, DecisionKind.EXCHANGE),
    ("cancelled", ReturnStatus.CANCELLED, DecisionKind.CANCEL), ("awaiting_pickup", ReturnStatus.REQUESTED, None),
])
def test_every_status_maps_one_to_one(status: str, unified: ReturnStatus, decided: DecisionKind | None) -> None:
    mapped = map_return(documented_return(status=status))
    assert (mapped.status, mapped.channel_status, mapped.lines[0].channel_decision) == (unified, status, decided)
    assert (mapped.decided_at is not None) is (decided is not None)


def test_the_statuses_are_the_contracts() -> None:
    schemas = _spec()["components"]["schemas"]
    assert set(STATUSES) == set(schemas["ChannableReturnsStatus"]["enum"])
    for kind in DecisionKind:
        act = DecisionAct(key="k", kind=kind, note=None, return_external_id="1", order_external_id=None, attempt=1,
                          lines=(ActLine(1, "1", 1, None, None),))
        assert status_word(act) in schemas["ChannableApiReturnsStatus"]["enum"]


def test_test_and_demo_returns_are_marked() -> None:
    data = documented_return()["data"]
    data["meta"] = {**data["meta"], "is_test_return": True, "is_demo_return": True}
    mapped = map_return(documented_return(data=data))
    assert mapped.extra["is_test_return"] is True and mapped.extra["is_demo_return"] is True


def test_the_buyer_comes_from_the_address_where_the_customer_is_anonymous() -> None:
    data = documented_return()["data"]
    data["customer"] = {"gender": "female"}
    data["address"]["phone"] = "+31 6 12345678"
    mapped = map_return(documented_return(data=data))
    assert (mapped.customer.name, mapped.customer.email, mapped.customer.phone) == (
        "Firstname Lastname", "noreply@example.com", "+31 6 12345678")


def test_a_reason_in_no_known_words_is_read_from_the_comment() -> None:
    data = documented_return()["data"]
    data["item"] = {**data["item"], "reason": "RET_07", "comment": "The zip came off, it is broken"}
    mapped = map_return(documented_return(data=data))
    assert (mapped.reason, mapped.channel_reason) == (ReturnReason.DEFECTIVE, "RET_07")


@pytest.mark.parametrize("changes, problem", [
    ({"id": None}, "missing field 'id'"),
    ({"created": "yesterday"}, "created is not a date"),
    ({"data": {"item": {"quantity": 1e30}}}, "is beyond"),
], ids=["no-id", "no-date", "1e30-items"])
def test_a_record_it_cannot_read_is_set_aside_with_why(changes: dict[str, Any], problem: str) -> None:
    raw = documented_return(**changes)
    sieve = RecordSieve()
    assert sieve.map("return", raw, map_return, raw, external_id=raw["id"]) is None
    (aside,) = sieve.take()
    assert problem in aside.reason and aside.payload is raw


@functools.cache
def _return_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """`EfferentReturn` with its free `data` object drawn as the contract describes it (the anonymized schema's
    typed item/address/customer/meta), so the property reaches every field the mapping reads."""
    spec = _spec()
    schemas = spec["components"]["schemas"]
    schema = copy.deepcopy(schemas["EfferentReturn"])
    schema["properties"]["data"] = {"$ref": "#/components/schemas/AnonymizedEfferentReturnData"}
    spec = copy.deepcopy(spec)
    # a count of units: the contract says integer; a negative one beyond any parcel is quarantined (test above)
    spec["components"]["schemas"]["AnonymizedEfferentReturnDataItem"]["properties"]["quantity"]["minimum"] = 0
    return schema, spec


@PROPERTY_SETTINGS
@given(st.data())
def test_any_return_the_contract_allows_is_mapped(data: st.DataObject) -> None:
    raw = data.draw(from_schema(*_return_schema()))
    check_mapped_return(map_return(raw), str(raw["id"]), 1)


ORDER = {"type": "object", "required": ["id", "created", "data"], "properties": {
    "id": {"type": "integer", "minimum": 1}, "created": {"type": "string", "format": "date-time"},
    "status_shipped": {"type": "string"},
    "data": {"type": "object", "properties": {
        "price": {"type": "object", "properties": {"currency": {"type": "string"}, "total": {"type": "number"}}},
        "customer": {"type": "object", "properties": {"first_name": {"type": "string"}, "email": {"type": "string"}}},
        "products": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "ean": {"type": "string"}, "title": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 0}, "price": {"type": "number"}}}}}}}}
"""The order fields NOTES.md lists from Channable's orders tag (the orders spec is not among the contract's files)."""


@PROPERTY_SETTINGS
@given(from_schema(ORDER, ORDER))
def test_any_order_the_notes_describe_is_mapped(raw: dict[str, Any]) -> None:
    check_mapped_order(map_order(raw), str(raw["id"]))


def test_an_obfuscated_return_names_no_buyer() -> None:
    mapped = map_return(documented_return(obfuscated=True))
    assert mapped.customer == map_return(documented_return(data={"item": {"quantity": 1}})).customer
    assert mapped.customer.email is None and mapped.extra["obfuscated"] is True
