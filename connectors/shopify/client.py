"""Shopify's Admin GraphQL API, and nothing else: the documents retsync sends, and the cost bucket they spend.

One endpoint (`POST /admin/api/{version}/graphql.json`, header `X-Shopify-Access-Token`); a query is retried
like a GET (it changes nothing), a mutation never blindly (`ChannelHttp` raises when it may have reached the
shop, and the connector reads the return back before trying again).

Shopify limits an app by calculated query cost, a leaky bucket of points (NOTES.md "Rate limit"). Each answer
reports it in `extensions.cost.throttleStatus` {maximumAvailable, currentlyAvailable, restoreRate}; `CostBucket`
keeps the last report and, before a query is sent, waits as long as the bucket needs to refill for that query's
cost (the cost the shop reported for the same document last time, else the estimate its documented rules give).
A `THROTTLED` answer (the query did not run) waits exactly (requested − available) / restoreRate and sends it
again: a wait, never a busy loop, through the runtime's sleep hook when it has one.

Each document asks only for the fields the mapping reads, with page sizes that keep a page's requested cost
below the single-query maximum of 1,000 (`ORDERS_PAGE_COST`); a connection that overflows its page size (an order
with more line items or returns than one page asks for) is completed by follow-up queries of that order alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, AuthError, BadPayload, ChannelHttp, Stopped, TransientError, error_detail_from
from retsync.kit.payload import decimal, obj, objs, text

log = structlog.get_logger(__name__)

ORDERS_PER_PAGE = 8
LINE_ITEMS_PER_ORDER = 10
RETURNS_PER_ORDER = 2
LINES_PER_RETURN = 5
REFUNDS_PER_RETURN = 2
MORE_LINE_ITEMS = 100
"""Line items per follow-up query of an order with more than LINE_ITEMS_PER_ORDER."""
MORE_RETURNS = 4
MORE_RETURN_LINES = 50
"""Returns, and lines of each, per follow-up query of an order with more than a page holds."""
DRAFTS_PER_READ = 50
"""Held draft orders read back per `nodes` query."""
MAX_CURSOR = 1000
"""Characters of a Relay cursor kept: a longer one is no cursor Shopify issues, and is not stored."""
THROTTLE_RETRIES = 8

REASON_FIELDS = "returnReason returnReasonNote customerNote"
DEFINED_REASON_FIELDS = "returnReason returnReasonDefinition { handle name } returnReasonNote customerNote"
"""A return line's reason: from API 2026-01 on with its reason definition (`DEFINITION_VERSION`)."""
DEFINITION_VERSION = "2026-01"

RETURN_FIELDS = f"""
fragment ReturnFields on Return {{
  id name status createdAt closedAt requestApprovedAt
  decline {{ reason note }}
  returnLineItems(first: $lines) {{
    pageInfo {{ hasNextPage }}
    nodes {{
      id quantity processedQuantity refundedQuantity RETSYNC_REASON_FIELDS
      ... on ReturnLineItem {{ fulfillmentLineItem {{ id lineItem {{ id sku title }} }} }}
    }}
  }}
  reverseFulfillmentOrders(first: 1) {{
    nodes {{ reverseDeliveries(first: 1) {{ nodes {{ deliverable {{
      ... on ReverseDeliveryShippingDeliverable {{ tracking {{ number carrierName }} }}
    }} }} }} }}
  }}
  refunds(first: {REFUNDS_PER_RETURN}) {{ nodes {{ id createdAt totalRefundedSet {{ shopMoney {{ amount currencyCode }} }} }} }}
}}
"""

ORDER_FIELDS = """
fragment OrderFields on Order {
  id name createdAt updatedAt processedAt email phone currencyCode displayFinancialStatus
  totalPriceSet { shopMoney { amount } }
  customer { displayName }
  shippingAddress { name zip phone }
}
"""

LINE_ITEM_FIELDS = "id sku title quantity originalUnitPriceSet { shopMoney { amount } }"

ORDERS_QUERY = f"""
query RetsyncOrders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      ...OrderFields
      lineItems(first: {LINE_ITEMS_PER_ORDER}) {{ pageInfo {{ hasNextPage }} nodes {{ {LINE_ITEM_FIELDS} }} }}
      returns(first: {RETURNS_PER_ORDER}) {{ pageInfo {{ hasNextPage }} nodes {{ ...ReturnFields }} }}
    }}
  }}
}}
{ORDER_FIELDS}{RETURN_FIELDS}"""

ORDER_QUERY = f"""
query RetsyncOrder($id: ID!, $lines: Int!) {{
  order(id: $id) {{
    ...OrderFields
    lineItems(first: {LINE_ITEMS_PER_ORDER}) {{ pageInfo {{ hasNextPage }} nodes {{ {LINE_ITEM_FIELDS} }} }}
    returns(first: {RETURNS_PER_ORDER}) {{ pageInfo {{ hasNextPage }} nodes {{ ...ReturnFields }} }}
  }}
}}
{ORDER_FIELDS}{RETURN_FIELDS}"""

ORDER_LINES_QUERY = f"""
query RetsyncOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {MORE_LINE_ITEMS}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_ITEM_FIELDS} }}
    }}
  }}
}}"""

ORDER_RETURNS_QUERY = f"""
query RetsyncOrderReturns($id: ID!, $after: String, $lines: Int!) {{
  order(id: $id) {{
    returns(first: {MORE_RETURNS}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ ...ReturnFields }} }}
  }}
}}
{RETURN_FIELDS}"""

RETURN_STATE_QUERY = """
query RetsyncReturnState($id: ID!) {
  return(id: $id) {
    id name status
    order { id note }
    returnLineItems(first: 50) {
      nodes { id quantity processedQuantity refundedQuantity }
    }
    refunds(first: 10) { nodes { id note totalRefundedSet { shopMoney { amount currencyCode } } } }
  }
}"""

PAYLOAD = "return { id status } userErrors { field message code }"

APPROVE = f"""mutation RetsyncApprove($input: ReturnApproveRequestInput!) {{
  returnApproveRequest(input: $input) {{ {PAYLOAD} }} }}"""
DECLINE = f"""mutation RetsyncDecline($input: ReturnDeclineRequestInput!) {{
  returnDeclineRequest(input: $input) {{ {PAYLOAD} }} }}"""
PROCESS = f"""mutation RetsyncProcess($input: ReturnProcessInput!) {{
  returnProcess(input: $input) {{ {PAYLOAD} }} }}"""
REFUND = """mutation RetsyncRefund($input: ReturnRefundInput!) {
  returnRefund(returnRefundInput: $input) {
    refund { id totalRefundedSet { shopMoney { amount currencyCode } } } userErrors { field message code } } }"""
CLOSE = f"""mutation RetsyncClose($id: ID!) {{ returnClose(id: $id) {{ {PAYLOAD} }} }}"""
CANCEL = f"""mutation RetsyncCancel($id: ID!, $notify: Boolean) {{
  returnCancel(id: $id, notifyCustomer: $notify) {{ {PAYLOAD} }} }}"""
ORDER_NOTE = """mutation RetsyncOrderNote($input: OrderInput!) {
  orderUpdate(input: $input) { order { id } userErrors { field message } } }"""
DRAFT_CREATE = """mutation RetsyncHold($input: DraftOrderInput!) {
  draftOrderCreate(input: $input) { draftOrder { id name } userErrors { field message code } } }"""

DRAFT_FIELDS = "id name tags note2 updatedAt customAttributes { key value }"
DRAFTS_BY_TAG = f"""query RetsyncHeld($query: String!) {{
  draftOrders(first: 5, query: $query) {{ nodes {{ {DRAFT_FIELDS} }} }} }}"""
RECENT_DRAFTS = f"""query RetsyncRecentHeld {{
  draftOrders(first: 25, sortKey: ID, reverse: true) {{ nodes {{ {DRAFT_FIELDS} }} }} }}"""
DRAFTS_BY_ID = f"""query RetsyncHeldDecisions($ids: [ID!]!) {{
  nodes(ids: $ids) {{ ... on DraftOrder {{ {DRAFT_FIELDS} }} }} }}"""

RETURN_COST = 1 + (2 + LINES_PER_RETURN * 3) + 8 + (2 + REFUNDS_PER_RETURN * 3)
ORDER_COST = 1 + 2 + 1 + 1 + (2 + LINE_ITEMS_PER_ORDER * 3) + (2 + RETURNS_PER_ORDER * (1 + RETURN_COST))
ORDERS_PAGE_COST = 2 + ORDERS_PER_PAGE * ORDER_COST
"""The requested cost of a page of orders by Shopify's documented rules (objects 1, connections 2 + size ×
node): below the single-query maximum of 1,000, with room for the bucket to pay a page while another runs."""
ORDERS_PAGE_COST_DEFINED = ORDERS_PAGE_COST + ORDERS_PER_PAGE * RETURNS_PER_ORDER * LINES_PER_RETURN
"""The same from 2026-01 on, where each line also names its reason definition (an object: 1 point)."""
ESTIMATES = {ORDERS_QUERY: ORDERS_PAGE_COST_DEFINED, ORDER_QUERY: ORDER_COST,
             ORDER_LINES_QUERY: 3 + MORE_LINE_ITEMS * 3,
             ORDER_RETURNS_QUERY: 3 + MORE_RETURNS * (1 + RETURN_COST + MORE_RETURN_LINES * 3),
             RETURN_STATE_QUERY: 1 + 1 + 52 + 32, DRAFTS_BY_TAG: 2 + 5 * 2, RECENT_DRAFTS: 2 + 25 * 2}
MUTATION_ESTIMATE = 10


def versioned(document: str, version: str) -> str:
    """A document as API `version` takes it: return lines' reasons with their definitions from 2026-01 on."""
    fields = DEFINED_REASON_FIELDS if version >= DEFINITION_VERSION else REASON_FIELDS
    return document.replace("RETSYNC_REASON_FIELDS", fields)


class UserErrors(ApiError):
    """A mutation's `userErrors`: Shopify refused it (the message says why); the decision fails with it."""

    def __init__(self, mutation: str, errors: Sequence[Mapping[str, Any]]) -> None:
        messages = "; ".join(filter(None, (text(e.get("message")) for e in errors))) or "refused without a message"
        codes = ", ".join(sorted({c for c in (text(e.get("code")) for e in errors) if c}))
        super().__init__(422, f"{mutation}: {messages}" + (f" ({codes})" if codes else ""))
        self.messages = messages


class QueryRefused(ApiError):
    """Shopify would not run a document (a field this API version does not have, a cost above the maximum, a
    missing scope): asking again will not help."""


def _error_text(body: Mapping[str, Any]) -> str | None:
    """Shopify's error bodies: `{"errors": "…"}`, `{"errors": {"query": "…"}}` or `{"errors": [{"message": …}]}`."""
    errors = body.get("errors")
    if isinstance(errors, str):
        return errors[:300]
    if isinstance(errors, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    messages = [text(obj(e).get("message")) for e in objs(errors)]
    return "; ".join(m for m in messages if m)[:300] or None


class CostBucket:
    """The shop's cost bucket as last reported, refilled by the clock between answers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.maximum: float | None = None
        self.available = 0.0
        self.rate = 0.0
        self.at = 0.0
        self.costs: dict[str, int] = {}

    def note(self, cost: Mapping[str, Any], document: str) -> None:
        status = obj(cost.get("throttleStatus"))
        maximum, available, rate = (decimal(status.get(k)) for k in ("maximumAvailable", "currentlyAvailable",
                                                                         "restoreRate"))
        requested = decimal(cost.get("requestedQueryCost"))
        if requested is not None and 0 <= requested <= 100_000:
            self.costs[document] = int(requested)
        if maximum is None or available is None or rate is None or rate <= 0:
            return
        self.maximum, self.available, self.rate, self.at = float(maximum), float(available), float(rate), self.clock()

    def cost_of(self, document: str, mutation: bool) -> int:
        return self.costs.get(document) or (MUTATION_ESTIMATE if mutation else ESTIMATES.get(document, 50))

    def wait_for(self, cost: float) -> float:
        """Seconds until the bucket as last reported holds `cost` points again (0 when it does, or is unknown)."""
        if self.maximum is None or self.rate <= 0:
            return 0.0
        now = min(self.maximum, self.available + (self.clock() - self.at) * self.rate)
        return max(0.0, (min(cost, self.maximum) - now) / self.rate)


class ShopifyClient:
    def __init__(self, channel: str, settings: Any, token: str, runtime: Runtime) -> None:
        base = settings.base_url or f"https://{settings.shop}"
        self.path = f"/admin/api/{settings.api_version}/graphql.json"
        self.channel = channel
        self.http = ChannelHttp.for_channel(channel, settings, runtime, base_url=base, headers={
            "X-Shopify-Access-Token": token, "Accept": "application/json"}, error_detail=error_detail_from(_error_text))
        self._runtime = runtime
        self._version = settings.api_version
        self._max_wait = settings.max_retry_after.total_seconds()
        self._slept = 0.0
        # With the runtime's sleep hook (tests) time passes only by what was slept, so the bucket's refill is
        # counted on the same clock as the waits; the daemon has no hook and counts real time.
        clock = (lambda: self._slept) if runtime.sleep is not None else time.monotonic
        self.bucket = CostBucket(clock)
        self.waits: list[float] = []

    def close(self) -> None:
        self.http.close()

    def _wait(self, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        if seconds > self._max_wait:  # a bucket this slow to refill: the next run asks again, no worker blocked
            raise TransientError(f"Shopify's cost bucket needs {seconds:.1f}s to pay for the next query, more than "
                                 f"max_retry_after ({self._max_wait:g}s); asked again later")
        self.waits.append(seconds)
        log.info("shopify_cost_wait", channel=self.channel, why=why, wait_s=round(seconds, 3))
        if self._runtime.sleep is not None:
            self._runtime.sleep(seconds)
            self._slept += seconds
            if self._runtime.stop.is_set():
                raise Stopped()
        elif self._runtime.stop.wait(seconds):
            raise Stopped()

    def run(self, document: str, variables: Mapping[str, Any] | None = None, *, mutation: bool = False
            ) -> dict[str, Any]:
        """The `data` of one document, after waiting for the bucket; a THROTTLED answer waits and sends again."""
        body = {"query": versioned(document, self._version), "variables": dict(variables or {})}
        for _ in range(THROTTLE_RETRIES):
            self._wait(self.bucket.wait_for(self.bucket.cost_of(document, mutation)), "pace")
            answer = obj(self.http.json("POST", self.path, json=body, idempotent=not mutation))
            cost = obj(obj(answer.get("extensions")).get("cost"))
            self.bucket.note(cost, document)
            errors = objs(answer.get("errors"))
            codes = {text(obj(e.get("extensions")).get("code")) for e in errors}
            if "THROTTLED" in codes:
                requested = decimal(cost.get("requestedQueryCost"))
                status = obj(cost.get("throttleStatus"))
                available, rate = decimal(status.get("currentlyAvailable")), decimal(status.get("restoreRate"))
                if requested is None or available is None or rate is None or rate <= 0:
                    raise TransientError("Shopify throttled the query without saying its cost; asked again later")
                self._wait(max(0.0, float(requested - available) / float(rate)), "throttled")
                continue
            return self._data(answer, errors, codes, document)
        raise TransientError(f"Shopify throttled the query {THROTTLE_RETRIES} times in a row; asked again later")

    def _data(self, answer: Mapping[str, Any], errors: list[Mapping[str, Any]], codes: set[str | None],
              document: str) -> dict[str, Any]:
        if errors:
            message = "; ".join(filter(None, (text(e.get("message")) for e in errors)))[:500]
            if codes & {"INTERNAL_SERVER_ERROR", "INTERNAL", "SERVICE_UNAVAILABLE", "TIMEOUT"}:
                raise TransientError(f"Shopify failed the query: {message}")
            if "ACCESS_DENIED" in codes:
                raise AuthError(f"Shopify refused the access token's scopes: {message} (the app needs read_orders, "
                                "read_returns and write_returns, and write_draft_orders for the back office)")
            raise QueryRefused(400, f"Shopify refused the query: {message}")
        data = answer.get("data")
        if not isinstance(data, Mapping):
            raise BadPayload("Shopify's answer holds no `data` object")
        return dict(data)

    # --- reads ----------------------------------------------------------------------------------

    def orders_page(self, query: str, after: str | None) -> tuple[list[Mapping[str, Any]], bool, str | None]:
        """One page of orders matching `query`, oldest update first: (orders, more to come, end cursor)."""
        data = self.run(ORDERS_QUERY, {"first": ORDERS_PER_PAGE, "after": after, "query": query,
                                       "lines": LINES_PER_RETURN})
        found = data.get("orders")
        if not isinstance(found, Mapping) or not isinstance(found.get("nodes"), list):
            raise BadPayload("Shopify's answer to the orders query has no `orders.nodes` list")
        info = obj(found.get("pageInfo"))
        end = text(info.get("endCursor"))
        more = info.get("hasNextPage") is True
        if more and (end is None or len(end) > MAX_CURSOR):
            raise BadPayload("Shopify's orders page says more follow but gives no usable endCursor")
        return objs(found["nodes"]), more, end

    def order(self, order_gid: str) -> Mapping[str, Any] | None:
        data = self.run(ORDER_QUERY, {"id": order_gid, "lines": LINES_PER_RETURN})
        found = data.get("order")
        return found if isinstance(found, Mapping) else None

    def order_lines(self, order_gid: str) -> list[Mapping[str, Any]]:
        """Every line item of an order, MORE_LINE_ITEMS a query."""
        found: list[Mapping[str, Any]] = []
        after: str | None = None
        while True:
            connection = obj(obj(self.run(ORDER_LINES_QUERY, {"id": order_gid, "after": after}).get("order"))
                             .get("lineItems"))
            found += objs(connection.get("nodes"))
            info = obj(connection.get("pageInfo"))
            after = text(info.get("endCursor"))
            if info.get("hasNextPage") is not True or after is None or len(found) > 10_000:
                return found

    def order_returns(self, order_gid: str) -> list[Mapping[str, Any]]:
        """Every return of an order, MORE_RETURNS a query, with up to MORE_RETURN_LINES lines each."""
        found: list[Mapping[str, Any]] = []
        after: str | None = None
        while True:
            connection = obj(obj(self.run(ORDER_RETURNS_QUERY, {"id": order_gid, "after": after,
                                                                "lines": MORE_RETURN_LINES}).get("order"))
                             .get("returns"))
            found += objs(connection.get("nodes"))
            info = obj(connection.get("pageInfo"))
            after = text(info.get("endCursor"))
            if info.get("hasNextPage") is not True or after is None or len(found) > 1000:
                return found

    def return_state(self, return_gid: str) -> Mapping[str, Any] | None:
        """What a decision needs to know of a return before acting: its status, lines' processed and refunded
        quantities, its refunds (with their notes) and its order's note."""
        found = self.run(RETURN_STATE_QUERY, {"id": return_gid}).get("return")
        return found if isinstance(found, Mapping) else None

    def drafts_tagged(self, tag: str) -> list[Mapping[str, Any]]:
        found = obj(self.run(DRAFTS_BY_TAG, {"query": f"tag:'{tag}'"}).get("draftOrders"))
        return objs(found.get("nodes"))

    def recent_drafts(self) -> list[Mapping[str, Any]]:
        """The newest draft orders, by id: found without the search index, which a draft made a moment ago may
        not have reached yet."""
        return objs(obj(self.run(RECENT_DRAFTS).get("draftOrders")).get("nodes"))

    def drafts(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for start in range(0, len(ids), DRAFTS_PER_READ):
            found += objs(self.run(DRAFTS_BY_ID, {"ids": list(ids[start:start + DRAFTS_PER_READ])}).get("nodes"))
        return found

    # --- writes ---------------------------------------------------------------------------------

    def mutate(self, document: str, name: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        """The payload of mutation `name`; its `userErrors` raise `UserErrors`."""
        payload = self.run(document, variables, mutation=True).get(name)
        if not isinstance(payload, Mapping):
            raise BadPayload(f"Shopify's answer to {name} has no payload")
        errors = objs(payload.get("userErrors"))
        if errors:
            raise UserErrors(name, errors)
        return payload

