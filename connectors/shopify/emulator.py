"""The Shopify sandbox: one Admin GraphQL endpoint that parses, validates and executes what it is sent.

Written from the contract (NOTES.md and the reference pages it names), never from the connector. Every request
is a GraphQL document run by graphql-core against the SDL in `schema.py` (the API version in the URL picks the
schema: `returnProcess` exists from 2025-07 on), so a field Shopify does not have is refused with Shopify's kind
of error, not answered because a string matched. Around the execution sit Shopify's rules:

- cost: a query's requested cost is computed from the document before it runs (scalars and enums 0, objects 1,
  connections 2 + `first`/`last` × their node, mutations 10; more than 1,000 is refused, MAX_COST_EXCEEDED), its
  actual cost from what it answered; `extensions.cost` reports both and the bucket (`throttleStatus`
  {maximumAvailable, currentlyAvailable, restoreRate});
- the leaky bucket: requested cost is taken before the query runs and the difference to the actual cost given
  back; a query costing more than is available is not run and answers `THROTTLED` (HTTP 200, as Shopify does).
  The bucket refills at `restoreRate` points a second by `clock`, which a test may replace to pass time
  without sleeping;
- mutations' business errors as `userErrors {field message code}` in their payload;
- the `lost` fault hits mutations only: a query sent by POST changes nothing, so losing its answer is a plain
  network fault, not a lost write.

`acts_applied()` names each effect (approve, decline, process, refund, close, cancel, a note on an order) by the
return or order and the line it touched; the back-office half holds other channels' returns as draft orders
(`held_returns`, `panel_decide`: the merchant tags the draft order).
"""

from __future__ import annotations

import base64
import bisect
import functools
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute,
    parse,
    validate,
    value_from_ast_untyped,
)

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY
from retsync_connectors.shopify.sandbox_data import CURRENCY, DEFINITIONS, ShopifyData, money, stamp
from retsync_connectors.shopify.schema import DEFINITION_VERSION, PROCESS_VERSION, sdl

SANDBOX_TOKEN = "shpat_sandbox_5f2c9a1e7b3d4c8e"
SANDBOX_SHOP = "retsync-sandbox.myshopify.com"
DEFAULT_VERSION = "2026-10"
MAX_QUERY_COST = 1000
"""Shopify refuses a single query whose requested cost is above this (MAX_COST_EXCEEDED)."""
MAX_PAGE = 250
"""The most `first`/`last` a connection takes."""
MUTATION_COST = 10
HOLD_TAG = "retsync-hold"
PANEL_TAGS = {"accept": "return-accept", "reject": "return-reject", "keep": "return-keep",
              "repair": "return-repair", "exchange": "return-exchange", "cancel": "return-cancel"}
"""What the merchant tags a held draft order with in the Shopify admin, by the decision it stands for (the
connector's `held_decision_tags` default)."""
NOTE_MARKER = "Your note for the marketplace (below this line):"

_schemas: dict[tuple[bool, bool], GraphQLSchema] = {}


def schema_for(version: str) -> GraphQLSchema:
    """The schema of an API version (one per set of features: returnProcess, reason definitions)."""
    key = (version >= PROCESS_VERSION, version >= DEFINITION_VERSION)
    if key not in _schemas:
        _schemas[key] = build_schema(sdl(version))
    return _schemas[key]


def gid(kind: str, number: str) -> str:
    return f"gid://shopify/{kind}/{number}"


def _tail(value: Any, kind: str) -> str | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    return match.group(1) if match else None


def _now() -> str:
    return stamp(datetime.now(timezone.utc))


def _bag(cents: int) -> dict[str, Any]:
    one = {"amount": money(cents), "currencyCode": CURRENCY}
    return {"shopMoney": one, "presentmentMoney": one}


def _encode(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor[:40]}") from None


def _window(first: int | None, last: int | None) -> int:
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    size = first if first is not None else last
    assert size is not None
    if not 0 <= size <= MAX_PAGE:
        raise GraphQLError(f"The value of first or last must be within 0-{MAX_PAGE}")
    return size


def connection(entries: list[tuple[Any, Any]]) -> Callable[..., dict[str, Any]]:
    """A Relay connection over `(sort position, node)` pairs in order: `first`/`after` (and `reverse`); a node
    may be a function making it, called only for the nodes of the page."""

    def resolve(info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None, reverse: bool = False, **_: Any) -> dict[str, Any]:
        size = _window(first, last)
        ordered = list(reversed(entries)) if reverse else list(entries)
        start = _decode(after)
        if start is not None and not reverse:  # after the cursor's position, even where its record moved since
            ordered = ordered[bisect.bisect_right(ordered, start, key=lambda entry: entry[0]):]
        elif start is not None:
            ordered = [entry for entry in ordered if entry[0] < start]
        chosen = [(position, node() if callable(node) else node) for position, node in ordered[:size]]
        edges = [{"cursor": _encode(position), "node": node} for position, node in chosen]
        return {"edges": edges, "nodes": [node for _, node in chosen],
                "pageInfo": {"hasNextPage": len(ordered) > size, "hasPreviousPage": start is not None,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    return resolve


# --- cost ------------------------------------------------------------------------------------------

def _fields(selection: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> list[FieldNode]:
    found: list[FieldNode] = []
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            found.append(node)
        elif isinstance(node, InlineFragmentNode):
            found += _fields(node.selection_set, fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            found += _fields(fragments[node.name.value].selection_set, fragments)
    return found


def _arguments(node: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    return {arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in node.arguments or ()}


def requested_cost(selection: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode],
                   variables: Mapping[str, Any], mutation: bool = False) -> int:
    """Shopify's calculated cost of a selection before it runs: objects 1, scalars and enums 0, a connection
    2 + its page size × its node's cost, `nodes(ids:)` its ids × the node's cost; a mutation field 10."""
    total = 0
    for node in _fields(selection, fragments):
        if node.name.value.startswith("__"):
            continue
        if mutation:
            total += MUTATION_COST
            continue
        if node.selection_set is None:
            continue
        args = _arguments(node, variables)
        inner = requested_cost(node.selection_set, fragments, variables)
        if node.name.value == "nodes" and isinstance(args.get("ids"), list):
            total += len(args["ids"]) * (1 + inner)
        elif _is_connection(node, fragments):
            size = args.get("first") if args.get("first") is not None else args.get("last")
            per_node = requested_cost(_connection_node(node, fragments), fragments, variables)
            total += 2 + int(size or 0) * (1 + per_node)
        elif isinstance(args.get("first"), int):  # a plain list sized by `first` (Order.refunds)
            total += args["first"] * (1 + inner)
        else:
            total += 1 + inner
    return total


def _is_connection(node: FieldNode, fragments: Mapping[str, FragmentDefinitionNode]) -> bool:
    names = {f.name.value for f in _fields(node.selection_set, fragments)}
    return bool(names & {"edges", "nodes"}) and node.name.value != "nodes"


def _connection_node(node: FieldNode, fragments: Mapping[str, FragmentDefinitionNode]) -> SelectionSetNode | None:
    for child in _fields(node.selection_set, fragments):
        if child.name.value == "nodes":
            return child.selection_set
        if child.name.value == "edges":
            for grandchild in _fields(child.selection_set, fragments):
                if grandchild.name.value == "node":
                    return grandchild.selection_set
    return None


def actual_cost(data: Any) -> int:
    """What an answer really cost: 1 per object returned, 2 more per connection."""
    if isinstance(data, list):
        return sum(actual_cost(item) for item in data)
    if not isinstance(data, dict):
        return 0
    own = 2 if "pageInfo" in data else (0 if "shopMoney" in data or "amount" in data else 1)
    if "edges" in data and "nodes" in data:
        return own + actual_cost(data["nodes"])
    return own + sum(actual_cost(value) for key, value in data.items() if key != "pageInfo")


class _Problem(Exception):
    """A top-level error answer: HTTP 200 with `errors`, as Shopify answers a query it will not run."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message)
        self.body = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


@dataclass
class Bucket:
    """The leaky bucket of cost points one app has on one shop."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    clock: Callable[[], float] = time.monotonic
    available: float = -1.0
    at: float = 0.0

    def __post_init__(self) -> None:
        self.available = self.maximum if self.available < 0 else self.available
        self.at = self.clock()

    def refill(self) -> None:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self.at) * self.restore_rate)
        self.at = now

    def status(self) -> dict[str, Any]:
        return {"maximumAvailable": self.maximum, "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate}


def _user_error(message: str, code: str | None = "INVALID", field_: list[str] | None = None) -> dict[str, Any]:
    return {"field": field_, "message": message, "code": code}


@dataclass
class ShopifyEmulator(Emulator):
    """A shop holding `n_orders` orders (about four in five with a return), its returns and its draft orders."""

    n_orders: int = 32
    bucket_size: float = 20_000.0
    restore_rate: float = 1000.0
    """The bucket of a Shopify Plus shop (Standard: 2,000 points, 100 a second): the suites' pulls run
    back to back; the throttling tests shrink it."""
    clock: Callable[[], float] = time.monotonic
    applied: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int | None) -> ShopifyEmulator:
        return cls(seed=seed) if returns is None else cls(seed=seed, n_orders=max(10, returns * 5 // 4))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = ShopifyData(seed=self.seed, size=self.n_orders)
        self.orders, self.returns = self.data.orders, self.data.returns
        self.drafts: dict[str, dict[str, Any]] = {}
        self.bucket = Bucket(self.bucket_size, self.restore_rate, self.clock)
        self.throttled = 0
        self.answers: list[str] = []  # "ok" or "throttled" per request that reached the bucket, in order
        self.costs: list[dict[str, Any]] = []
        self.poisoned: set[str] = set()
        self.search_lag = False
        """When set, a new draft order is not found by a search (`query:`) yet, as Shopify's index lags writes."""
        self._numbers = itertools.count(1)
        self._extra = itertools.count(9_500_000)
        self._index: dict[str, list[dict[str, Any]]] | None = None
        self._documents: dict[tuple[bool, str], Any] = {}

    # --- every request ---------------------------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("x-shopify-access-token") == SANDBOX_TOKEN:
            return None
        return self.json_response(401, {"errors": "[API] Invalid API key or access token (unrecognized login or "
                                                  "wrong password)"})

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"errors": "Not Found"})

    def malformed_body(self) -> bytes:
        return b'{"data": {"orders": {"edges": [{"cursor": "eyJ", "node": {"id": "gid://shopify/Order/'

    def wrong_shape_body(self) -> Any:
        return {"unexpected": ["this", "is", "not", "a", "GraphQL", "answer"]}

    def changes_state(self, request: httpx.Request) -> bool:
        """Every request is a POST: a mutation writes, a query reads (a `lost` fault hits mutations only)."""
        return _is_mutation(request)

    @route("POST", "/admin/api/{version}/graphql.json")
    def graphql(self, request: httpx.Request, version: str) -> httpx.Response:
        if not re.fullmatch(r"\d{4}-\d{2}", version):
            return self.not_found(request)
        try:
            body = json.loads(request.content or b"null")
        except ValueError:
            return self.json_response(400, {"errors": {"query": "Required parameter missing or invalid"}})
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return self.json_response(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        try:
            with self.lock:
                return self.json_response(200, self._run(schema_for(version), body["query"], variables))
        except _Problem as problem:
            return self.json_response(200, problem.body)

    def _parsed(self, schema: GraphQLSchema, query: str) -> tuple[Any, list[dict[str, Any]]]:
        """The document parsed and validated against the schema (kept per schema and text: the same documents
        come again and again)."""
        key = (id(schema), query)
        if key not in self._documents:
            try:
                document = parse(query)
            except GraphQLError as error:
                raise _Problem(error.message, "PARSE_ERROR") from None
            errors = [{"message": e.message, "locations": [loc._asdict() for loc in e.locations or ()],
                       "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}} for e in validate(schema, document)]
            if len(self._documents) > 200:
                self._documents.clear()
            self._documents[key] = (document, errors)
        return self._documents[key]

    def _run(self, schema: GraphQLSchema, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self._index = None
        document, errors = self._parsed(schema, query)
        if errors:
            return {"errors": errors}
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        operation = operations[0]
        mutation = operation.operation.value == "mutation"
        requested = requested_cost(operation.selection_set, fragments, variables, mutation)
        if requested > MAX_QUERY_COST:
            raise _Problem(f"Query cost is {requested}, which exceeds the single query max cost limit "
                           f"({MAX_QUERY_COST}).", "MAX_COST_EXCEEDED", cost=requested, maxCost=MAX_QUERY_COST)
        self.bucket.refill()
        if requested > self.bucket.available + 1e-6:  # float refill: 873.9999999 is 874
            self.throttled += 1
            self.count_over_limit()
            self.answers.append("throttled")
            return {"errors": [{"message": "Throttled", "extensions": {
                        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                            "throttleStatus": self.bucket.status()}}}
        self.bucket.available -= requested
        self.answers.append("ok")
        result = execute(schema, document, root_value=self._root(), variable_values=variables)
        data = result.data
        actual = MUTATION_COST * len(_fields(operation.selection_set, fragments)) if mutation else actual_cost(data)
        actual = min(actual, requested)
        self.bucket.available += requested - actual
        cost = {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}
        self.costs.append({"requested": requested, "actual": actual, "mutation": mutation})
        answer: dict[str, Any] = {"data": data, "extensions": {"cost": cost}}
        if result.errors:
            answer["errors"] = [{"message": e.message, "path": e.path, "extensions": {"code": "INTERNAL"}}
                                for e in result.errors]
        if self.poisoned:
            _poison(answer, self.poisoned)
        return answer

    # --- the graph ------------------------------------------------------------------------------

    def _root(self) -> dict[str, Any]:
        return {
            "order": lambda info, id: self._order_view(self.orders.get(_tail(id, "Order") or "")),
            "orders": self._orders,
            "return": lambda info, id: self._return_view(self.returns.get(_tail(id, "Return") or "")),
            "draftOrder": lambda info, id: self._draft_view(self.drafts.get(_tail(id, "DraftOrder") or "")),
            "draftOrders": self._draft_orders,
            "node": lambda info, id: self._node(id),
            "nodes": lambda info, ids: [self._node(i) for i in ids],
            "returnApproveRequest": self._approve,
            "returnDeclineRequest": self._decline,
            "returnProcess": self._process,
            "returnRefund": self._refund,
            "returnClose": self._close,
            "returnCancel": self._cancel,
            "returnRequest": self._request,
            "orderUpdate": self._order_update,
            "draftOrderCreate": self._draft_create,
        }

    def _returns_by_order(self) -> dict[str, list[dict[str, Any]]]:
        """The returns of each order, indexed once per request (`_run` clears it)."""
        if self._index is None:
            self._index = {}
            for record in self.returns.values():
                self._index.setdefault(record["orderId"], []).append(record)
        return self._index

    def _node(self, ref: str) -> dict[str, Any] | None:
        for kind, table, view in (("Order", self.orders, self._order_view), ("Return", self.returns, self._return_view),
                                  ("DraftOrder", self.drafts, self._draft_view)):
            number = _tail(ref, kind)
            if number is not None:
                return view(table.get(number))
        return None

    def _orders(self, info: Any, query: str | None = None, sortKey: str = "ID", **paging: Any) -> dict[str, Any]:
        matches = search(query)
        chosen = [o for o in self.orders.values() if matches(o)]
        key = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt", "PROCESSED_AT": "processedAt"}.get(sortKey)
        entries = sorted(((([o[key], int(o["id"])] if key else [int(o["id"])]), o) for o in chosen),
                         key=lambda entry: entry[0])
        return connection([(position, functools.partial(self._order_view, o)) for position, o in entries])(
            info, **paging)

    def _draft_orders(self, info: Any, query: str | None = None, sortKey: str = "ID", **paging: Any) -> dict[str, Any]:
        matches = search(query)
        chosen = sorted((d for d in self.drafts.values() if matches(d) and (query is None or d["indexed"])),
                        key=lambda d: int(d["id"]))
        return connection([([int(d["id"])], self._draft_view(d)) for d in chosen])(info, **paging)

    def _order_view(self, order: dict[str, Any] | None) -> dict[str, Any] | None:
        if order is None:
            return None
        returns = sorted(self._returns_by_order().get(order["id"], ()), key=lambda r: int(r["id"]))
        lines = [{"__typename": "LineItem", "id": gid("LineItem", line["id"]), "name": line.get("title") or "",
                  "title": line.get("title") or "", "sku": line.get("sku"), "quantity": line["quantity"],
                  "currentQuantity": line["quantity"],
                  "variant": {"__typename": "ProductVariant", "id": gid("ProductVariant", line["id"]),
                              "sku": line.get("sku"), "barcode": line.get("barcode"), "title": "Default Title"},
                  "originalUnitPriceSet": _bag(line.get("price") or 0)} for line in order["lines"]]
        refunds = [refund for r in returns for refund in r["refunds"]]
        return {
            "__typename": "Order", "id": gid("Order", order["id"]), "name": order["name"],
            "createdAt": order["createdAt"], "updatedAt": order["updatedAt"], "processedAt": order["processedAt"],
            "closedAt": None, "cancelledAt": None, "email": order.get("email"), "phone": order.get("phone"),
            "note": order.get("note"), "tags": list(order.get("tags") or []), "currencyCode": CURRENCY,
            "displayFinancialStatus": order.get("financialStatus"), "returnStatus": _order_return_status(returns),
            "totalPriceSet": _bag(order.get("total") or 0),
            "customer": {"__typename": "Customer", "id": gid("Customer", order["id"]),
                         "displayName": order.get("buyer") or "", "email": order.get("email"),
                         "phone": order.get("phone")} if order.get("buyer") else None,
            "shippingAddress": {"name": order.get("buyer"), "zip": order.get("zip"), "phone": order.get("phone"),
                                "countryCodeV2": "NL", "city": None} if order.get("zip") else None,
            "lineItems": connection([([i], line) for i, line in enumerate(lines)]),
            "returns": connection([([int(r["id"])], functools.partial(self._return_view, r, order)) for r in returns]),
            "refunds": lambda info, first=None: [_refund_view(r) for r in refunds][:first],
        }

    def _return_view(self, record: dict[str, Any] | None, order: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if record is None:
            return None
        order = order or self.orders[record["orderId"]]
        by_line = {line["id"]: line for line in order["lines"]}
        lines = [self._return_line_view(line, by_line.get(line.get("lineItemId") or "")) for line in record["lines"]]
        tracking = record.get("tracking")
        deliveries = [([0], {"__typename": "ReverseDelivery", "id": gid("ReverseDelivery", record["id"]),
                             "deliverable": {"__typename": "ReverseDeliveryShippingDeliverable",
                                             "tracking": {**tracking, "url": None}}})] if tracking else []
        rfos = [([0], {"__typename": "ReverseFulfillmentOrder", "id": gid("ReverseFulfillmentOrder", record["id"]),
                       "status": "CLOSED" if record["status"] == "CLOSED" else "OPEN",
                       "reverseDeliveries": connection(deliveries)})] if record["status"] in ("OPEN", "CLOSED") else []
        return {
            "__typename": "Return", "id": gid("Return", record["id"]), "name": record["name"],
            "status": record["status"], "order": lambda info: self._order_view(order),
            "totalQuantity": sum(line["quantity"] for line in record["lines"]), "createdAt": record.get("createdAt"),
            "closedAt": record.get("closedAt"), "requestApprovedAt": record.get("requestApprovedAt"),
            "decline": record.get("decline"),
            "returnLineItems": connection([([i], line) for i, line in enumerate(lines)]),
            "reverseFulfillmentOrders": connection(rfos),
            "refunds": connection([([i], _refund_view(r)) for i, r in enumerate(record["refunds"])]),
        }

    @staticmethod
    def _return_line_view(line: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
        common = {"id": gid("ReturnLineItem", line["id"]), "quantity": line["quantity"],
                  "processedQuantity": line["processed"], "refundedQuantity": line["refunded"],
                  "refundableQuantity": line["quantity"] - line["refunded"],
                  "unprocessedQuantity": line["quantity"] - line["processed"],
                  "returnReason": line.get("returnReason") or "UNKNOWN",
                  "returnReasonNote": line.get("returnReasonNote") or "", "customerNote": line.get("customerNote"),
                  "returnReasonDefinition": _definition(line)}
        if line.get("fulfillmentLineItemId") is None:
            return {"__typename": "UnverifiedReturnLineItem", **common,
                    "unitPrice": {"amount": money(line.get("price") or 0), "currencyCode": CURRENCY}}
        lineitem = {"__typename": "LineItem", "id": gid("LineItem", line.get("lineItemId") or "0"),
                    "sku": (item or {}).get("sku"), "title": (item or {}).get("title") or "",
                    "name": (item or {}).get("title") or "", "quantity": (item or {}).get("quantity") or 0,
                    "currentQuantity": (item or {}).get("quantity") or 0, "variant": None,
                    "originalUnitPriceSet": _bag((item or {}).get("price") or 0)}
        return {"__typename": "ReturnLineItem", **common, "restockingFee": None,
                "fulfillmentLineItem": {"__typename": "FulfillmentLineItem",
                                        "id": gid("FulfillmentLineItem", line["fulfillmentLineItemId"]),
                                        "quantity": line["quantity"], "lineItem": lineitem}}

    def _draft_view(self, draft: dict[str, Any] | None) -> dict[str, Any] | None:
        if draft is None:
            return None
        lines = [([i], {"__typename": "DraftOrderLineItem", "id": gid("DraftOrderLineItem", f"{draft['id']}{i}"),
                        "title": line.get("title") or "Item", "sku": line.get("sku"), "quantity": line["quantity"]})
                 for i, line in enumerate(draft["lines"])]
        return {"__typename": "DraftOrder", "id": gid("DraftOrder", draft["id"]), "name": draft["name"],
                "status": draft["status"], "createdAt": draft["createdAt"], "updatedAt": draft["updatedAt"],
                "note2": draft.get("note"), "tags": list(draft["tags"]), "email": draft.get("email"),
                "customAttributes": [dict(a) for a in draft["customAttributes"]],
                "lineItems": connection(lines)}

    # --- mutations ------------------------------------------------------------------------------

    def _touch(self, record: dict[str, Any]) -> None:
        record["updatedAt"] = _now()
        order = self.orders.get(record["orderId"])
        if order is not None:
            order["updatedAt"] = record["updatedAt"]

    def _find(self, ref: Any) -> dict[str, Any] | None:
        return self.returns.get(_tail(ref, "Return") or "")

    def _payload(self, record: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"return": None if errors else self._return_view(record), "userErrors": errors}

    def _approve(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        record = self._find(input["id"])
        if record is None:
            return self._payload(None, [_user_error("Return does not exist.", "NOT_FOUND", ["input", "id"])])
        if record["status"] != "REQUESTED":
            return self._payload(None, [_user_error(
                f"Return is not approvable. Only returns with status REQUESTED can be approved (it is "
                f"{record['status']}).", "INVALID_STATE", ["input", "id"])])
        record["status"], record["requestApprovedAt"] = "OPEN", _now()
        self._touch(record)
        self.applied.append(("approve", record["id"], "notify" if input.get("notifyCustomer") else "silent"))
        return self._payload(record, [])

    def _decline(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        record = self._find(input["id"])
        if record is None:
            return self._payload(None, [_user_error("Return does not exist.", "NOT_FOUND", ["input", "id"])])
        note = input.get("declineNote")
        if note is not None and len(note) > 500:
            return self._payload(None, [_user_error("Decline note is too long (maximum is 500 characters)",
                                                    "TOO_LONG", ["input", "declineNote"])])
        if record["status"] == "DECLINED":
            return self._payload(None, [_user_error("Return is already declined.", "INVALID_STATE", ["input", "id"])])
        if record["status"] != "REQUESTED":
            return self._payload(None, [_user_error(
                "Return is not declinable. Only non-refunded returns with status REQUESTED can be declined.",
                "INVALID_STATE", ["input", "id"])])
        record["status"], record["decline"] = "DECLINED", {"reason": input["declineReason"], "note": note}
        self._touch(record)
        self.applied.append(("decline", record["id"], input["declineReason"]))
        return self._payload(record, [])

    def _order_of(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.orders[record["orderId"]]

    def _lines_asked(self, record: dict[str, Any], asked: list[dict[str, Any]], key: str, room: str
                     ) -> tuple[list[tuple[dict[str, Any], int, dict[str, Any]]], list[dict[str, Any]]]:
        by_id = {gid("ReturnLineItem", line["id"]): line for line in record["lines"]}
        chosen, errors = [], []
        for index, item in enumerate(asked):
            line = by_id.get(item.get(key))
            quantity = item.get("quantity")
            if line is None:
                errors.append(_user_error("Return line item does not exist.", "NOT_FOUND",
                                          ["input", "returnLineItems", str(index), key]))
                continue
            left = line["quantity"] - line[room]
            if not isinstance(quantity, int) or not 0 < quantity <= left:
                errors.append(_user_error(f"Quantity must be between 1 and {left} for this return line item.",
                                          "INVALID", ["input", "returnLineItems", str(index), "quantity"]))
                continue
            chosen.append((line, quantity, item))
        if not asked:
            errors.append(_user_error("Return line items can't be blank.", "BLANK", ["input", "returnLineItems"]))
        return chosen, errors

    def _add_refund(self, record: dict[str, Any], cents: int, note: str | None) -> dict[str, Any]:
        refund = {"id": str(next(self._numbers) + 77_000_000), "createdAt": _now(), "note": note, "amount": cents}
        record["refunds"].append(refund)
        return refund

    def _process(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        record = self._find(input["returnId"])
        if record is None:
            return self._payload(None, [_user_error("Return does not exist.", "NOT_FOUND", ["input", "returnId"])])
        if record["status"] != "OPEN":
            return self._payload(None, [_user_error(f"Return must be open to be processed (it is "
                                                    f"{record['status']}).", "INVALID_STATE", ["input", "returnId"])])
        chosen, errors = self._lines_asked(record, input.get("returnLineItems") or [], "id", "processed")
        for index, (_, quantity, item) in enumerate(chosen):
            dispositions = item.get("dispositions") or []
            if dispositions and sum(d.get("quantity") or 0 for d in dispositions) != quantity:
                errors.append(_user_error("Disposition quantities must add up to the processed quantity.",
                                          "INVALID", ["input", "returnLineItems", str(index), "dispositions"]))
        if errors:
            return self._payload(None, errors)
        refund_asked = (input.get("financialTransfer") or {}).get("issueRefund") is not None
        prices = {line["id"]: line.get("price") or 0 for line in self._order_of(record)["lines"]}
        cents = 0
        for line, quantity, item in chosen:
            restocked = sum(d["quantity"] for d in item.get("dispositions") or [] if d["dispositionType"] == "RESTOCKED")
            line["processed"] += quantity
            line["restocked"] = line.get("restocked", 0) + restocked
            if refund_asked:
                line["refunded"] += quantity
                cents += prices.get(line.get("lineItemId") or "", 0) * quantity
            self.applied.append(("process", record["id"], line["id"], str(quantity),
                                 "restocked" if restocked else "not_restocked",
                                 "refunded" if refund_asked else "no_refund"))
        if refund_asked:
            self._add_refund(record, cents, input.get("note"))
        self._touch(record)
        return self._payload(record, [])

    def _refund(self, info: Any, returnRefundInput: dict[str, Any]) -> dict[str, Any]:
        asked = returnRefundInput
        record = self._find(asked["returnId"])
        if record is None:
            return {"refund": None, "userErrors": [_user_error("Return does not exist.", "NOT_FOUND",
                                                               ["returnRefundInput", "returnId"])]}
        if record["status"] not in ("OPEN", "CLOSED"):
            return {"refund": None, "userErrors": [_user_error(
                f"Return must be approved to be refunded (it is {record['status']}).", "INVALID_STATE",
                ["returnRefundInput", "returnId"])]}
        chosen, errors = self._lines_asked(record, asked.get("returnRefundLineItems") or [], "returnLineItemId",
                                           "refunded")
        if errors:
            return {"refund": None, "userErrors": errors}
        prices = {line["id"]: line.get("price") or 0 for line in self._order_of(record)["lines"]}
        cents = 0
        for line, quantity, _ in chosen:
            line["refunded"] += quantity
            cents += prices.get(line.get("lineItemId") or "", 0) * quantity
            self.applied.append(("refund", record["id"], line["id"], str(quantity)))
        refund = self._add_refund(record, cents, None)
        self._touch(record)
        return {"refund": _refund_view(refund), "userErrors": []}

    def _close(self, info: Any, id: str) -> dict[str, Any]:
        record = self._find(id)
        if record is None:
            return self._payload(None, [_user_error("Return does not exist.", "NOT_FOUND", ["id"])])
        if record["status"] == "CLOSED":
            return self._payload(None, [_user_error("Return is already closed.", "INVALID_STATE", ["id"])])
        if record["status"] != "OPEN":
            return self._payload(None, [_user_error(f"Return can't be closed (it is {record['status']}).",
                                                    "INVALID_STATE", ["id"])])
        record["status"], record["closedAt"] = "CLOSED", _now()
        self._touch(record)
        self.applied.append(("close", record["id"]))
        return self._payload(record, [])

    def _cancel(self, info: Any, id: str, notifyCustomer: bool = False) -> dict[str, Any]:
        record = self._find(id)
        if record is None:
            return self._payload(None, [_user_error("Return does not exist.", "NOT_FOUND", ["id"])])
        if record["status"] == "CANCELED":
            return self._payload(None, [_user_error("Return is already canceled.", "INVALID_STATE", ["id"])])
        if record["status"] not in ("REQUESTED", "OPEN") or any(line["processed"] or line["refunded"]
                                                                 for line in record["lines"]):
            return self._payload(None, [_user_error("Return can't be canceled because it has been processed "
                                                    "or is not open.", "INVALID_STATE", ["id"])])
        record["status"] = "CANCELED"
        self._touch(record)
        self.applied.append(("cancel", record["id"]))
        return self._payload(record, [])

    def _request(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        """A buyer's return request (what the customer account page sends): a new return, REQUESTED."""
        order = self.orders.get(_tail(input["orderId"], "Order") or "")
        if order is None:
            return self._payload(None, [_user_error("Order does not exist.", "NOT_FOUND", ["input", "orderId"])])
        by_fli = {gid("FulfillmentLineItem", line["fulfillmentLineItemId"]): line for line in order["lines"]}
        number = str(next(self._extra))
        lines = []
        for index, item in enumerate(input["returnLineItems"], 1):
            line = by_fli.get(item["fulfillmentLineItemId"])
            if line is None or not 0 < item["quantity"] <= line["quantity"]:
                return self._payload(None, [_user_error("Fulfillment line item can't be returned.", "INVALID",
                                                        ["input", "returnLineItems"])])
            lines.append({"id": f"{number}{index}", "lineItemId": line["id"],
                          "fulfillmentLineItemId": line["fulfillmentLineItemId"], "quantity": item["quantity"],
                          "processed": 0, "refunded": 0, "restocked": 0,
                          "returnReason": item.get("returnReason") or "UNKNOWN", "returnReasonNote": "",
                          "customerNote": item.get("customerNote")})
        record = {"id": number, "name": f"{order['name']}-R{number[-2:]}", "orderId": order["id"],
                  "status": "REQUESTED", "createdAt": _now(), "updatedAt": _now(), "closedAt": None,
                  "requestApprovedAt": None, "decline": None, "lines": lines, "tracking": None, "refunds": []}
        self.returns[number] = record
        self._index = None
        self._touch(record)
        return self._payload(record, [])

    def _order_update(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(_tail(input["id"], "Order") or "")
        if order is None:
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        if input.get("note") is not None:
            order["note"] = input["note"]
            self.applied.append(("order_note", order["id"], input["note"][-80:]))
        if input.get("tags") is not None:
            order["tags"] = list(input["tags"])
        order["updatedAt"] = _now()
        return {"order": self._order_view(order), "userErrors": []}

    def _draft_create(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        lines = input.get("lineItems") or []
        if not lines:
            return {"draftOrder": None, "userErrors": [{"field": ["lineItems"], "message": "Add at least 1 product",
                                                        "code": "INVALID"}]}
        number = str(1_100_000_000 + next(self._numbers))
        draft = {"id": number, "name": f"#D{len(self.drafts) + 1}", "status": "OPEN", "createdAt": _now(),
                 "updatedAt": _now(), "note": input.get("note"), "tags": list(input.get("tags") or []),
                 "email": input.get("email"), "customAttributes": [dict(a) for a in input.get("customAttributes") or []],
                 "lines": [{"title": line.get("title"), "sku": line.get("sku"), "quantity": line["quantity"]}
                           for line in lines], "indexed": not self.search_lag}
        self.drafts[number] = draft
        return {"draftOrder": self._draft_view(draft), "userErrors": []}

    # --- the merchant in the Shopify admin, and the suites' hooks ----------------------------------

    def held_returns(self) -> dict[str, str]:
        with self.lock:
            return {attribute["value"]: gid("DraftOrder", draft["id"]) for draft in self.drafts.values()
                    for attribute in draft["customAttributes"] if attribute["key"] == "retsync_key"}

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """The merchant tags the held draft order with the decision and writes a note below the marker line."""
        with self.lock:
            draft = self.drafts[_tail(reference, "DraftOrder") or reference]
            draft["tags"].append(PANEL_TAGS[kind])
            if note:
                base = draft.get("note") or ""
                draft["note"] = f"{base}\n{note}" if NOTE_MARKER in base else f"{base}\n{NOTE_MARKER}\n{note}"
            draft["updatedAt"] = _now()

    def acts_applied(self) -> list[tuple[str, ...]]:
        with self.lock:
            return list(self.applied)

    def _new_order(self, number: int, **changes: Any) -> dict[str, Any]:
        n = number - 9_500_000 + self.n_orders + 1000
        line = str(70_000_000_000 + n)
        order = {"id": str(6_600_000_000 + n), "name": f"#{9000 + n}", "createdAt": _now(), "processedAt": _now(),
                 "updatedAt": _now(), "email": None, "phone": None, "buyer": None, "zip": None, "currency": CURRENCY,
                 "note": None, "tags": [], "financialStatus": None, "total": 1995,
                 "lines": [{"id": line, "fulfillmentLineItemId": str(80_000_000_000 + n), "sku": "TS-100",
                            "barcode": None, "title": "Organic cotton T-shirt", "quantity": 1, "price": 1995}]}
        order.update(changes)
        self.orders[order["id"]] = order
        return order

    def add_odd_return(self) -> str:
        """A return of the oddest documented kind: an unverified line (no fulfillment line item to link to), reason
        UNKNOWN, no buyer, no address, no note, no tracking; on an order with no line items."""
        with self.lock:
            number = next(self._extra)
            order = self._new_order(number, lines=[], total=0)
            record = {"id": str(number), "name": f"{order['name']}-R1", "orderId": order["id"], "status": "REQUESTED",
                      "createdAt": _now(), "updatedAt": _now(), "closedAt": None, "requestApprovedAt": None,
                      "decline": None, "tracking": None, "refunds": [],
                      "lines": [{"id": f"{number}1", "lineItemId": None, "fulfillmentLineItemId": None, "quantity": 1,
                                 "processed": 0, "refunded": 0, "restocked": 0, "returnReason": "UNKNOWN",
                                 "returnReasonNote": "", "customerNote": None, "price": 1995}]}
            self.returns[record["id"]] = record
            return record["id"]

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A return as a broken proxy or app can make one look: a line quantity of 1e30 (GraphQL's Int cannot hold
        it, so it is written into the answer after execution), or an overlong postcode and phone."""
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}; one of {', '.join(self.POISONS)}")
        with self.lock:
            number = next(self._extra)
            order = self._new_order(number, buyer="Anna Meyer", email="anna.meyer@example.com", zip="10115",
                                    phone="+31 6 12345678")
            if poison == "postcode":
                order.update(zip=POISON_POSTCODE, phone=POISON_PHONE)
            line = order["lines"][0]
            record = {"id": str(number), "name": f"{order['name']}-R1", "orderId": order["id"], "status": "REQUESTED",
                      "createdAt": _now(), "updatedAt": _now(), "closedAt": None, "requestApprovedAt": None,
                      "decline": None, "tracking": None, "refunds": [],
                      "lines": [{"id": f"{number}1", "lineItemId": line["id"],
                                 "fulfillmentLineItemId": line["fulfillmentLineItemId"], "quantity": 1, "processed": 0,
                                 "refunded": 0, "restocked": 0, "returnReason": "OTHER", "returnReasonNote": "",
                                 "customerNote": None}]}
            self.returns[record["id"]] = record
            if poison == "quantity":
                self.poisoned.add(gid("ReturnLineItem", f"{number}1"))
            return record["id"]


def _poison(node: Any, ids: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _poison(item, ids)
    elif isinstance(node, dict):
        if node.get("id") in ids and "quantity" in node:
            node["quantity"] = POISON_QUANTITY
        for value in node.values():
            _poison(value, ids)


def _definition(line: dict[str, Any]) -> dict[str, Any] | None:
    handle, name = line.get("definition") or DEFINITIONS.get(line.get("returnReason") or "", (None, None))
    if handle is None:
        return None
    return {"__typename": "ReturnReasonDefinition", "id": gid("ReturnReasonDefinition", str(sum(map(ord, handle)))),
            "handle": handle, "name": name, "deleted": False}


def _refund_view(refund: dict[str, Any]) -> dict[str, Any]:
    return {"__typename": "Refund", "id": gid("Refund", refund["id"]), "createdAt": refund["createdAt"],
            "note": refund.get("note"), "totalRefundedSet": _bag(refund["amount"])}


def _order_return_status(returns: list[dict[str, Any]]) -> str:
    statuses = {r["status"] for r in returns}
    if not returns:
        return "NO_RETURN"
    if "REQUESTED" in statuses:
        return "RETURN_REQUESTED"
    if "OPEN" in statuses:
        return "IN_PROGRESS"
    return "RETURNED" if "CLOSED" in statuses else "NO_RETURN"


_TERM = re.compile(r"""(-?)(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")


def search(query: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Shopify's search syntax, the part the sandbox knows, as a test of one record: `updated_at:>='…'` (>=, >,
    <=, <), `tag:x`, `-tag:x`, joined by spaces or AND; other terms are ignored, as Shopify ignores a filter it
    does not know. Times are compared as Shopify writes them (UTC, a trailing Z), so as text."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for negated, name, comparison, raw in _TERM.findall(query or ""):
        value = raw.strip("'\"")
        if name in ("updated_at", "created_at"):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            bound = stamp(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
            key = "updatedAt" if name == "updated_at" else "createdAt"
            compare = {">=": str.__ge__, ">": str.__gt__, "<=": str.__le__, "<": str.__lt__, "": str.__eq__}[comparison]
            tests.append(lambda r, k=key, b=bound, c=compare, n=bool(negated): c(str(r[k]), b) != n)
        elif name == "tag":
            tests.append(lambda r, v=value.lower(), n=bool(negated):
                         (v in {t.lower() for t in r.get("tags") or []}) != n)
    return lambda record: all(test(record) for test in tests)


def _is_mutation(request: httpx.Request) -> bool:
    try:
        body = json.loads(request.content or b"null")
        document = parse(body["query"])
    except (ValueError, TypeError, KeyError, GraphQLError):
        return False
    return any(isinstance(d, OperationDefinitionNode) and d.operation.value == "mutation"
               for d in document.definitions)


__all__ = ["DEFAULT_VERSION", "HOLD_TAG", "NOTE_MARKER", "PANEL_TAGS", "SANDBOX_SHOP", "SANDBOX_TOKEN",
           "ShopifyEmulator", "gid"]
