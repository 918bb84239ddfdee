"""The sandbox answers by Shopify's contract, not by what the connector expects: its schema holds the types and
enum values NOTES.md documents (read from the contract folder, never copied here), it executes what it is sent
against that schema (an unknown field is refused), and it keeps Shopify's cost accounting and error shapes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType
from openapi_schema_validator import OAS30Validator

from retsync.testing.specs import spec_file, strict
from retsync_connectors.shopify.client import ORDERS_QUERY, RETURN_STATE_QUERY, versioned
from retsync_connectors.shopify.emulator import SANDBOX_TOKEN, ShopifyEmulator

from .shapes import answer_schema, schema

URL = "/admin/api/2026-10/graphql.json"


def ask(emulator: ShopifyEmulator, query: str, variables: dict[str, Any] | None = None, *, url: str = URL,
        token: str | None = SANDBOX_TOKEN) -> httpx.Response:
    headers = {"X-Shopify-Access-Token": token} if token else {}
    with httpx.Client(transport=emulator.transport(), base_url="https://retsync-sandbox.myshopify.com",
                      headers=headers) as client:
        return client.post(url, json={"query": query, "variables": variables or {}})


@pytest.fixture(scope="module")
def notes() -> str:
    return spec_file("shopify", "NOTES.md").read_text()


def _documented_enum(notes: str, name: str) -> list[str]:
    """The values of one enum bullet of NOTES.md ("- `Name` (…): `A`, `B`, …", wrapped over indented lines)."""
    block = re.search(rf"^- `{name}`[^:]*:(.*?)(?=^- |^#|\Z)", notes, flags=re.M | re.S)
    assert block, f"NOTES.md documents no {name}"
    return re.findall(r"`([A-Z_]+)`", block.group(1))


@pytest.mark.parametrize("name", ["ReturnStatus", "ReturnDeclineReason", "ReturnReason", "OrderReturnStatus"])
def test_the_schemas_enums_are_the_documented_ones(notes: str, name: str) -> None:
    enum = schema().get_type(name)
    assert isinstance(enum, GraphQLEnumType)
    assert sorted(enum.values) == sorted(_documented_enum(notes, name))


def test_the_documented_return_fields_and_inputs_are_in_the_schema(notes: str) -> None:
    gql = schema()
    section = notes.split("## Return object", 1)[1].split("### Enums", 1)[0]
    documented = set(re.findall(r"`([a-zA-Z]+)`", section)) | set(re.findall(r"\b([a-z][a-zA-Z]+)\b", section))
    returned = gql.get_type("Return")
    line = gql.get_type("ReturnLineItem")
    assert isinstance(returned, GraphQLObjectType) and isinstance(line, GraphQLObjectType)
    for field in ("id", "name", "status", "order", "totalQuantity", "createdAt", "closedAt", "requestApprovedAt",
                  "decline", "returnLineItems", "reverseFulfillmentOrders", "refunds"):
        assert field in documented and field in returned.fields, field
    for field in ("id", "quantity", "returnReason", "returnReasonNote", "customerNote", "fulfillmentLineItem",
                  "refundableQuantity", "refundedQuantity", "processedQuantity"):
        assert field in documented and field in line.fields, field
    mutations = notes.split("## Mutations", 1)[1].split("## Proposed", 1)[0]
    named = set(re.findall(r"\| `(return[A-Za-z]+)", mutations))
    used = {"returnApproveRequest", "returnDeclineRequest", "returnProcess", "returnClose", "returnCancel",
            "returnRequest"}
    assert used <= named and used <= set(gql.mutation_type.fields)
    for input_name, fields in (("ReturnApproveRequestInput", {"id", "notifyCustomer"}),
                               ("ReturnDeclineRequestInput", {"id", "declineReason", "declineNote",
                                                              "notifyCustomer"}),
                               ("ReturnProcessInput", {"returnId", "returnLineItems", "financialTransfer",
                                                       "notifyCustomer", "note"})):
        kind = gql.get_type(input_name)
        assert isinstance(kind, GraphQLInputObjectType) and set(kind.fields) >= fields
        assert all(field in mutations for field in fields), f"{input_name}: {fields} not all in NOTES.md"
    assert "returnProcess" not in schema("2025-04").mutation_type.fields, "2025-07 brought returnProcess"
    assert "returnReasonDefinition" not in schema("2025-10").get_type("ReturnLineItem").fields  # type: ignore[union-attr]
    assert "returnReasonDefinition" in schema("2026-01").get_type("ReturnLineItem").fields  # type: ignore[union-attr]


def test_a_query_with_a_field_shopify_does_not_have_is_refused(emulator: ShopifyEmulator) -> None:
    answer = ask(emulator, "{ orders(first: 1) { nodes { id returnFeelings } } }").json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert "returnFeelings" in error["message"] and error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    older = ask(emulator, 'mutation { returnProcess(input: {returnId: "gid://shopify/Return/1"}) { userErrors { '
                          "message } } }", url="/admin/api/2024-10/graphql.json").json()
    assert "returnProcess" in older["errors"][0]["message"]


def test_answers_follow_the_schema_and_report_their_cost(emulator: ShopifyEmulator) -> None:
    node_schema = strict(answer_schema(ORDERS_QUERY, ["orders", "nodes"]))
    answer = ask(emulator, versioned(ORDERS_QUERY, "2026-10"), {"first": 8, "after": None, "query": "updated_at:>='2000-01-01T00:00:00Z'",
                                          "lines": 5}).json()
    nodes = answer["data"]["orders"]["nodes"]
    assert len(nodes) == 8
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for node in nodes for e in OAS30Validator(node_schema).iter_errors(node)]
    assert problems == []
    cost = answer["extensions"]["cost"]
    assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert 0 < cost["actualQueryCost"] < cost["requestedQueryCost"]


def test_a_query_costing_more_than_1000_is_refused(emulator: ShopifyEmulator) -> None:
    answer = ask(emulator, "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }").json()
    assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED" and "data" not in answer


def test_an_empty_bucket_answers_throttled_with_the_cost(emulator: ShopifyEmulator) -> None:
    emulator.bucket.available = 10
    emulator.bucket.restore_rate = 0.0001
    answer = ask(emulator, RETURN_STATE_QUERY, {"id": "gid://shopify/Return/9000017"}).json()
    assert answer["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert answer["extensions"]["cost"]["requestedQueryCost"] > 10
    assert answer["extensions"]["cost"]["actualQueryCost"] is None


def test_mutations_answer_user_errors(emulator: ShopifyEmulator) -> None:
    closed = next(r for r in emulator.returns.values() if r["status"] == "CLOSED")
    answer = ask(emulator, "mutation($id: ID!) { returnClose(id: $id) { return { id } userErrors { field message "
                           "code } } }", {"id": f"gid://shopify/Return/{closed['id']}"}).json()
    (error,) = answer["data"]["returnClose"]["userErrors"]
    assert error["code"] == "INVALID_STATE" and "already closed" in error["message"]
    assert emulator.acts_applied() == []


def test_a_wrong_token_is_refused(emulator: ShopifyEmulator) -> None:
    answer = ask(emulator, "{ orders(first: 1) { nodes { id } } }", token="shpat_guess")
    assert answer.status_code == 401 and "Invalid API key or access token" in answer.json()["errors"]


def test_a_lost_answer_hits_a_mutation_not_a_query(emulator: ShopifyEmulator) -> None:
    requested = next(r for r in emulator.returns.values() if r["status"] == "REQUESTED")
    emulator.lose_answer("POST", "graphql.json")
    assert ask(emulator, "{ orders(first: 1) { nodes { id } } }").status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        ask(emulator, "mutation($id: ID!) { returnCancel(id: $id) { userErrors { message } } }",
            {"id": f"gid://shopify/Return/{requested['id']}"})
    assert emulator.acts_applied() == [("cancel", requested["id"])], "carried out, its answer lost"


def test_the_same_seed_on_the_same_day_is_the_same_shop() -> None:
    assert ShopifyEmulator(seed=4).returns == ShopifyEmulator(seed=4).returns
    assert ShopifyEmulator(seed=4).returns != ShopifyEmulator(seed=5).returns
    open_ = [r for r in ShopifyEmulator(seed=7).returns.values() if r["status"] in ("REQUESTED", "OPEN")]
    assert len(open_) >= 10 and any(len(r["lines"]) >= 2 for r in open_)
