"""A seeded stand-in for bol.com's Retailer API v10: returns, orders, handling and process status.

Bodies, media types and error Problems follow bol's published OpenAPI spec,
so the connector is tested against what bol promises, not against what we
hoped. Data is generated lazily per record from the seed, so a sandbox with
200,000 returns starts in well under a second and reads stay cheap; only
records that changed (a handling arrived, a return was added) are kept.
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import math
import random
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx

from retsync.kit.emulator import Emulator, route
from retsync_connectors.bol.sandbox_data import (
    ITEMS_PER_RETURN,
    ORDER_BASE,
    RETURN_ID_BASE,
    RMA_BASE,
    SandboxData,
    iso,
    result,
)

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"

MEDIA_TYPE = "application/vnd.retailer.v10+json"
ADVERTISER_MEDIA_TYPE = "application/vnd.advertiser.v10+json"
PROBLEM_TYPE = "https://api.bol.com/problems"
PAGE_SIZE = 50

HANDLING_RESULTS = (
    "RETURN_RECEIVED",
    "EXCHANGE_PRODUCT",
    "RETURN_DOES_NOT_MEET_CONDITIONS",
    "REPAIR_PRODUCT",
    "CUSTOMER_KEEPS_PRODUCT_PAID",
    "STILL_APPROVED",
)
"""`ReturnRequest.handlingResult` verbatim from the spec."""

EVENT_TYPES = (
    "CREATE_SHIPMENT", "CANCEL_ORDER", "CHANGE_TRANSPORT", "HANDLE_RETURN_ITEM", "CREATE_RETURN_ITEM", "CREATE_INBOUND",
    "DELETE_OFFER", "CREATE_OFFER", "UPDATE_OFFER", "UPDATE_OFFER_STOCK", "UPDATE_OFFER_PRICE", "CREATE_OFFER_EXPORT",
    "UNPUBLISHED_OFFER_REPORT", "CREATE_PRODUCT_CONTENT", "CREATE_SUBSCRIPTION", "UPDATE_SUBSCRIPTION",
    "DELETE_SUBSCRIPTION", "SEND_SUBSCRIPTION_TST_MSG", "CREATE_SHIPPING_LABEL", "CREATE_REPLENISHMENT",
    "UPDATE_REPLENISHMENT", "REQUEST_PRODUCT_DESTINATIONS", "CREATE_SOV_SEARCH_TERM_REPORT",
    "CREATE_SOV_CATEGORY_REPORT", "UPLOAD_INVOICE", "CREATE_CAMPAIGN_PERFORMANCE_REPORT",
)
"""`event-type` of GET /shared/process-status, verbatim from the spec."""

STILL_APPROVED_AFTER = frozenset({"EXCHANGE_PRODUCT", "REPAIR_PRODUCT", "RETURN_DOES_NOT_MEET_CONDITIONS"})



def _invalid(name: str, value: object, allowed: Sequence[str]) -> tuple[str, str]:
    return name, f"Request contains invalid value(s): '{value}', allowed values: {', '.join(allowed)}."


def _page_number(params: httpx.QueryParams, violations: list[tuple[str, str]]) -> int:
    text = params.get("page", "1")
    if text.isdigit() and int(text) >= 1:
        return int(text)
    violations.append(("page", f"Request contains invalid value(s): '{text}', must be an integer of at least 1."))
    return 1


def _processing_result_for(handling_result: str) -> str:
    if handling_result == "RETURN_DOES_NOT_MEET_CONDITIONS":
        return "REJECTED"
    if handling_result == "CANCELLED_BY_CUSTOMER":
        return "CANCELLED"
    return "ACCEPTED"


def _reduced(detail: dict[str, Any]) -> dict[str, Any]:
    """The list entry (ReducedReturn) of a detail (Return): the same return without title, tracking and customer."""
    keep = ("rmaId", "orderId", "ean", "expectedQuantity", "returnReason", "handled", "processingResults")
    return {
        "returnId": detail["returnId"],
        "registrationDateTime": detail["registrationDateTime"],
        "fulfilmentMethod": detail["fulfilmentMethod"],
        "returnItems": [{key: item[key] for key in keep} for item in detail["returnItems"]],
    }


@dataclass
class _Process:
    """A PUT bol accepted and is working on; it finishes after enough polls, or by itself after a while."""

    body: dict[str, Any]
    rma_id: str
    handling_result: str
    quantity: int
    started: float
    polls: int = 0


class _Violation(Exception):
    def __init__(self, status: int, detail: str, violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.violations = list(violations)


@dataclass
class BolEmulator(Emulator):
    """bol's returns world for one retailer, deterministic for a seed and a day."""

    n_returns: int = 120
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    token_ttl: float = 299
    process_polls_until_done: int = 1
    process_seconds: float | None = 1.0
    """bol finishes a handling by itself this long after the PUT, polled or not (None: only polls finish it)."""
    fbb_share: float = 0.2
    history_days: int = 120
    rate_limit: int | None = None
    """Requests per `rate_window` seconds per endpoint before a 429; None never limits (headers still sent)."""
    rate_window: float = 60.0
    omit_empty_lists: bool = False
    """Answer an empty page with `{}` (as some clients report bol does) instead of the spec's `{"returns": []}`."""
    handled_log: dict[str, list[str]] = field(default_factory=dict)
    """rmaId -> every handlingResult applied through PUT, in order; two entries mean it was handled twice."""

    def __post_init__(self) -> None:
        super().__post_init__()
        now = datetime.now(timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        self.data = SandboxData(self.seed, self.n_returns, fbb_share=self.fbb_share, history_days=self.history_days,
                                midnight=midnight)
        self._changed: dict[int, dict[str, Any]] = {}
        self._added_orders: dict[str, dict[str, Any]] = {}
        self._generated: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._processes: dict[str, _Process] = {}
        self._unfinished: deque[_Process] = deque()
        self._windows: dict[str, tuple[float, int]] = {}
        self._acts: list[tuple[str, ...]] = []

    # --- generated data, cached ----------------------------------------------------------------

    def _cached(self, kind: str, index: int, build: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        key = (kind, index)
        found = self._generated.get(key)
        if found is None:
            found = build(index)
            self._generated[key] = found
            if len(self._generated) > 4096:
                self._generated.popitem(last=False)
        return found

    def _generate_order(self, j: int) -> dict[str, Any]:
        return self.data.order(j)

    def _generate_return(self, i: int) -> dict[str, Any]:
        order = self._order_by_index(self.data.owner(i))
        assert order is not None
        return self.data.return_detail(i, order)

    # --- lookups ---------------------------------------------------------------------------

    @property
    def _count(self) -> int:
        return len(self.data.registered)

    def _return_by_index(self, i: int) -> dict[str, Any]:
        changed = self._changed.get(i)
        return changed if changed is not None else self._cached("return", i, self._generate_return)

    def _order_by_index(self, j: int) -> dict[str, Any] | None:
        added = self._added_orders.get(str(ORDER_BASE + j))
        if added is not None:
            return added
        if not 0 <= j < self.n_returns or self.data.shares_order[j]:
            return None
        return self._cached("order", j, self._generate_order)

    @staticmethod
    def _number(text: str, base: int) -> int | None:
        return int(text) - base if text.isdigit() else None

    def _return_index(self, return_id: str) -> int | None:
        i = self._number(return_id, RETURN_ID_BASE)
        return i if i is not None and 0 <= i < self._count else None

    def _locate_rma(self, rma_id: str) -> tuple[int, int] | None:
        number = self._number(rma_id, RMA_BASE)
        if number is None or number < 0:
            return None
        i, k = divmod(number, ITEMS_PER_RETURN)
        if i >= self._count or k >= len(self._return_by_index(i)["returnItems"]):
            return None
        return i, k

    def _materialize(self, i: int) -> dict[str, Any]:
        """A return about to change, copied out of the generator so the change sticks."""
        if i not in self._changed:
            self._changed[i] = copy.deepcopy(self._return_by_index(i))
        return self._changed[i]

    def _sort_key(self, i: int) -> tuple[float, int]:
        return self.data.registered[i], i

    @staticmethod
    def _all_handled(detail: dict[str, Any]) -> bool:
        return all(item["handled"] for item in detail["returnItems"])

    def _relist(self, i: int, method: str, was_handled: bool, now_handled: bool) -> None:
        if was_handled == now_handled:
            return
        source, target = self.data.lists[(method, was_handled)], self.data.lists[(method, now_handled)]
        position = bisect.bisect_left(source, self._sort_key(i), key=self._sort_key)
        if position < len(source) and source[position] == i:
            del source[position]
        bisect.insort(target, i, key=self._sort_key)

    # --- state changes ---------------------------------------------------------------------

    def _apply(self, rma_id: str, handling_result: str, quantity: int, processing_result: str) -> None:
        located = self._locate_rma(rma_id)
        if located is None:
            raise KeyError(rma_id)
        i, k = located
        detail = self._materialize(i)
        was_handled = self._all_handled(detail)
        item = detail["returnItems"][k]
        item["handled"] = True
        item["processingResults"].append(result(quantity, processing_result, handling_result, time.time()))
        self._relist(i, detail["fulfilmentMethod"], was_handled, self._all_handled(detail))

    def _refusal(self, process: _Process) -> str | None:
        """Why bol refuses a handling once it processes it; None when it goes through."""
        located = self._locate_rma(process.rma_id)
        if located is None:
            return f"Return item with rma id {process.rma_id} no longer exists."
        i, k = located
        detail = self._return_by_index(i)
        if detail["fulfilmentMethod"] == "FBB":
            return f"Return item {process.rma_id} is fulfilled by bol.com (FBB); bol.com handles it."
        if process.handling_result == "STILL_APPROVED":
            results = detail["returnItems"][k]["processingResults"]
            if not results or results[-1]["handlingResult"] not in STILL_APPROVED_AFTER:
                return ("STILL_APPROVED only changes a return item handled as "
                        "EXCHANGE_PRODUCT, REPAIR_PRODUCT or RETURN_DOES_NOT_MEET_CONDITIONS.")
        return None

    def _finish_overdue(self) -> None:
        """Time passes on bol's side too: handlings finish whether anyone polls or not."""
        if self.process_seconds is None:
            return
        deadline = time.monotonic() - self.process_seconds
        with self.lock:
            while self._unfinished and self._unfinished[0].started <= deadline:
                self._finish(self._unfinished.popleft())

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._finish_overdue()
        return super().handle(request)

    def _finish(self, process: _Process) -> None:
        if process.body["status"] != "PENDING":
            return
        refusal = self._refusal(process)
        if refusal is not None:
            process.body["status"] = "FAILURE"
            process.body["errorMessage"] = refusal
            return
        self._apply(process.rma_id, process.handling_result, process.quantity,
                    _processing_result_for(process.handling_result))
        self.handled_log.setdefault(process.rma_id, []).append(process.handling_result)
        located = self._locate_rma(process.rma_id)
        return_id = str(RETURN_ID_BASE + located[0]) if located is not None else "?"
        self._acts.append(("handling", return_id, process.rma_id, process.handling_result))
        process.body["status"] = "SUCCESS"

    # --- test helpers ----------------------------------------------------------------------

    def add_return(
        self,
        *,
        fulfilment_method: str = "FBR",
        main_reason: str = "Verkeerde maat of afmeting",
        detailed_reason: str | None = "Te klein",
        quantity: int = 1,
        with_order: bool = True,
    ) -> dict[str, Any]:
        """A customer registers a new return (on a new order); returns the Return detail as bol serves it.

        `with_order=False` points the return at an order bol no longer serves (404), as happens with old orders.
        """
        if quantity < 1:
            raise ValueError("a return needs a quantity of at least 1")
        with self.lock:
            i = self._count
            now = max(time.time(), self.data.registered[-1] + 0.001 if self.data.registered else 0.0)
            self.data.registered.append(now)
            rng = random.Random(f"bol:{self.seed}:added:{i}")
            order = self.data.order_body(rng, i, now - 3 * 86400, fulfilment_method, 1)
            ordered = order["orderItems"][0]
            ordered.update(quantity=quantity, quantityShipped=quantity, discounts=[],
                           totalPrice=round(ordered["unitPrice"] * quantity, 2))
            if with_order:
                self._added_orders[order["orderId"]] = order
            reason: dict[str, Any] = {"mainReason": main_reason, "customerComments": ""}
            if detailed_reason:
                reason["detailedReason"] = detailed_reason
            item = self.data.return_item(rng, i, 0, ordered, order, fulfilment_method, now, False, False)
            item.update(expectedQuantity=quantity, returnReason=reason)
            self._changed[i] = {
                "returnId": str(RETURN_ID_BASE + i),
                "registrationDateTime": iso(now),
                "fulfilmentMethod": fulfilment_method,
                "returnItems": [item],
            }
            bisect.insort(self.data.lists[(fulfilment_method, False)], i, key=self._sort_key)
            return copy.deepcopy(self._changed[i])

    def add_odd_return(self) -> str:
        """A return whose reason, processing result and salutation bol may add tomorrow, with every optional
        field left out (no detailed reason, comments, tracking or customer address)."""
        with self.lock:
            detail = self.add_return(main_reason="Iets wat bol morgen toevoegt", detailed_reason=None)
            i = self._count - 1
            item = self._changed[i]["returnItems"][0]
            item["returnReason"] = {"mainReason": "Iets wat bol morgen toevoegt", "customerComments": ""}
            item["customerDetails"] = {"salutation": "NOT_YET_DOCUMENTED"}
            item.pop("trackAndTrace", None)
            item.pop("transporterName", None)
            item["processingResults"] = [result(1, "UNDER_INSPECTION_2027", "NOT_YET_DOCUMENTED",
                                                      self.data.registered[i])]
            return str(detail["returnId"])

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A new return whose item's expected quantity is 1e30 (`quantity`), or whose customer wrote a 36-character
        postcode and a 64-character phone (`postcode`)."""
        from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY

        with self.lock:
            detail = self.add_return()
            item = self._changed[self._count - 1]["returnItems"][0]
            if poison == "quantity":
                item["expectedQuantity"] = POISON_QUANTITY
            elif poison == "postcode":
                item["customerDetails"].update(zipCode=POISON_POSTCODE, deliveryPhoneNumber=POISON_PHONE)
            else:
                raise ValueError(f"unknown poison {poison!r}: one of {self.POISONS}")
            return str(detail["returnId"])

    def acts_applied(self) -> list[tuple[str, ...]]:
        """Every handling bol applied through the API, in order: ("handling", returnId, rmaId, handlingResult).
        An item handled twice with the same result (a PUT sent again after a lost answer) is a duplicate entry;
        handlings from the seller dashboard (`handle_externally`) are not acts of retsync and are left out."""
        with self.lock:
            return list(self._acts)

    def handle_externally(self, rma_id: str, handling_result: str, processing_result: str | None = None) -> None:
        """Something happened on bol's side (the seller dashboard, bol's warehouse); not logged in handled_log."""
        with self.lock:
            located = self._locate_rma(rma_id)
            if located is None:
                raise KeyError(f"no return item with rmaId {rma_id}")
            quantity = self._return_by_index(located[0])["returnItems"][located[1]]["expectedQuantity"]
            self._apply(rma_id, handling_result, quantity, processing_result or _processing_result_for(handling_result))

    def settle(self) -> None:
        """Let bol finish every pending handling, as if time had passed."""
        with self.lock:
            for process in self._processes.values():
                self._finish(process)

    def item(self, rma_id: str) -> dict[str, Any]:
        """The current state of one return item (a copy), as the return detail shows it."""
        with self.lock:
            located = self._locate_rma(rma_id)
            if located is None:
                raise KeyError(f"no return item with rmaId {rma_id}")
            return copy.deepcopy(self._return_by_index(located[0])["returnItems"][located[1]])

    def truth(self) -> dict[str, set[str]]:
        """Every returnId, rmaId and orderId bol holds: what a complete sync must have stored."""
        with self.lock:
            rmas: set[str] = set()
            for i in range(self._count):
                count = len(self._changed[i]["returnItems"]) if i in self._changed else self.data.return_items[i]
                rmas.update(str(RMA_BASE + ITEMS_PER_RETURN * i + k) for k in range(count))
            orders = {str(ORDER_BASE + j) for j in range(self.n_returns) if not self.data.shares_order[j]}
            return {
                "returns": {str(RETURN_ID_BASE + i) for i in range(self._count)},
                "rmas": rmas,
                "orders": orders | set(self._added_orders),
            }

    # --- HTTP plumbing ---------------------------------------------------------------------

    def _rate_key(self, request: httpx.Request) -> str:
        parts = request.url.path.split("/")
        if len(parts) > 3:
            parts[-1] = "{id}"
        return f"{request.method} {'/'.join(parts)}"

    def _window(self, key: str) -> tuple[int, int, int]:
        """(limit, remaining, seconds to reset) of an endpoint's current window."""
        started, used = self._windows.get(key, (time.monotonic(), 0))
        limit = self.rate_limit if self.rate_limit is not None else 1_000_000
        reset = max(1, math.ceil(started + self.rate_window - time.monotonic()))
        return limit, max(0, limit - used), reset

    def _spend(self, key: str) -> bool:
        """Count a request; False when it is over the limit."""
        now = time.monotonic()
        started, used = self._windows.get(key, (now, 0))
        if now - started >= self.rate_window:
            started, used = now, 0
        self._windows[key] = (started, used + 1)
        return self.rate_limit is None or used < self.rate_limit

    def _reply(self, request: httpx.Request, status: int, body: Any, **headers: str) -> httpx.Response:
        limit, remaining, reset = self._window(self._rate_key(request))
        rate = {"x-ratelimit-limit": limit, "x-ratelimit-remaining": remaining, "x-ratelimit-reset": reset}
        return self.json_response(status, body, MEDIA_TYPE, **{k: str(v) for k, v in rate.items()}, **headers)

    def _problem(
        self,
        request: httpx.Request,
        status: int,
        detail: str,
        violations: Sequence[tuple[str, str]] = (),
        **headers: str,
    ) -> httpx.Response:
        titles = {400: "Error validating request. Consult the bol.com API documentation for more information.",
                  401: "Unauthorized", 404: "Not Found", 406: "Not Acceptable", 415: "Unsupported Media Type",
                  429: "Too Many Requests"}
        body = {
            "type": PROBLEM_TYPE,
            "title": titles.get(status, "Error"),
            "status": status,
            "detail": detail,
            "host": "Instance-001",
            "instance": f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}",
            "violations": [{"name": name, "reason": reason} for name, reason in violations],
        }
        return self._reply(request, status, body, **headers)

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/token":
            return None
        with self.lock:
            if not self.bearer_ok(request):
                return self._problem(request, 401, "Full authentication is required to access this resource: "
                                                   "the access token is missing, invalid or expired.")
            accepted = {MEDIA_TYPE, ADVERTISER_MEDIA_TYPE} if request.url.path.startswith("/shared/") else {MEDIA_TYPE}
            offered = {part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")}
            if not offered & accepted:
                violation = _invalid("Accept", request.headers.get("accept", ""), sorted(accepted))
                return self._problem(request, 406, f"The Accept header must be {MEDIA_TYPE}.", [violation])
            key = self._rate_key(request)
            if not self._spend(key):
                _, _, reset = self._window(key)
                return self._problem(request, 429, "Too many requests, retry later.", **{"retry-after": str(reset)})
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self._problem(request, 404, f"No resource at {request.method} {request.url.path}.")

    def wrong_shape_body(self) -> Any:
        return {"returns": {"returnId": "1", "note": "an object where bol promises an array"}}

    # --- token -----------------------------------------------------------------------------

    @route("POST", "/token")
    def token(self, request: httpx.Request) -> httpx.Response:
        if {"client_id", "client_secret"} & set(request.url.params):
            return self.json_response(400, {"error": "invalid_request",
                                            "error_description": "credentials must not be sent in the query string"})
        if not self._basic_ok(request.headers.get("authorization", "")):
            return self.json_response(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        form = parse_qs(request.content.decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [request.url.params.get("grant_type", "")])[0]
        if grant != "client_credentials":
            return self.json_response(400, {"error": "unsupported_grant_type",
                                            "error_description": f"grant_type {grant!r} is not supported"})
        access_token = self.issue_token(self.token_ttl)
        return self.json_response(
            200, {"access_token": access_token, "token_type": "Bearer", "expires_in": int(self.token_ttl),
                  "scope": "RETAILER"})

    def _basic_ok(self, header: str) -> bool:
        if not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except ValueError:
            return False
        client_id, _, client_secret = decoded.partition(":")
        return (client_id, client_secret) == (self.client_id, self.client_secret)

    # --- returns ---------------------------------------------------------------------------

    @staticmethod
    def _query(request: httpx.Request) -> tuple[int, bool, str]:
        """page, handled and fulfilment-method; bol's defaults are the first page of open FBR returns."""
        params = request.url.params
        violations: list[tuple[str, str]] = []
        page = _page_number(params, violations)
        handled_text = params.get("handled", "false").lower()
        if handled_text not in ("true", "false"):
            violations.append(_invalid("handled", handled_text, ("true", "false")))
        method = params.get("fulfilment-method", "FBR")
        if method not in ("FBR", "FBB"):
            violations.append(_invalid("fulfilment-method", method, ("FBR", "FBB")))
        if violations:
            raise _Violation(400, "Bad request", violations)
        return page, handled_text == "true", method

    @route("GET", "/retailer/returns")
    def list_returns(self, request: httpx.Request) -> httpx.Response:
        try:
            page, handled, method = self._query(request)
        except _Violation as bad:
            return self._problem(request, bad.status, bad.detail, bad.violations)
        with self.lock:
            listed = self.data.lists[(method, handled)]
            start = (page - 1) * PAGE_SIZE
            if handled:  # newest first
                end = max(0, len(listed) - start)
                indices = listed[max(0, end - PAGE_SIZE):end][::-1]
            else:  # oldest first
                indices = listed[start:start + PAGE_SIZE]
            entries = [_reduced(self._return_by_index(i)) for i in indices]
            return self._reply(request, 200, {"returns": entries} if entries or not self.omit_empty_lists else {})

    @route("GET", "/retailer/returns/{return-id}")
    def get_return(self, request: httpx.Request, return_id: str) -> httpx.Response:
        with self.lock:
            i = self._return_index(return_id)
            if i is None:
                return self._problem(request, 404, f"Return with return id {return_id} was not found.")
            return self._reply(request, 200, self._return_by_index(i))

    @route("PUT", "/retailer/returns/{rma-id}")
    def handle_return(self, request: httpx.Request, rma_id: str) -> httpx.Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != MEDIA_TYPE:
            return self._problem(request, 415, f"Content-Type must be {MEDIA_TYPE}, not '{content_type}'.")
        try:
            handling, quantity = self._handling_request(request, rma_id)
            with self.lock:
                return self._accept_handling(request, rma_id, handling, quantity)
        except _Violation as bad:
            return self._problem(request, bad.status, bad.detail, bad.violations)

    @staticmethod
    def _handling_request(request: httpx.Request, rma_id: str) -> tuple[str, int]:
        if not rma_id.isdigit() or int(rma_id) >= 2**63:
            raise _Violation(400, "Bad request", [("rma-id", f"Request contains invalid value(s): '{rma_id}', "
                                                             "must be an int64.")])
        try:
            body = json.loads(request.content or b"null")
        except ValueError:
            raise _Violation(400, "Bad request", [("body", "The request body is not valid JSON.")]) from None
        if not isinstance(body, dict):
            raise _Violation(400, "Bad request", [("body", "The request body must be a ReturnRequest object.")])
        violations = []
        handling = body.get("handlingResult")
        if handling not in HANDLING_RESULTS:
            violations.append(_invalid("handlingResult", handling, HANDLING_RESULTS))
        quantity = body.get("quantityReturned")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 9999:
            violations.append(("quantityReturned", f"Request contains invalid value(s): '{quantity}', "
                                                   "must be an integer between 1 and 9999."))
        if violations:
            raise _Violation(400, "Bad request", violations)
        return str(handling), int(quantity)

    def _accept_handling(self, request: httpx.Request, rma_id: str, handling: str, quantity: int) -> httpx.Response:
        located = self._locate_rma(rma_id)
        if located is None:
            raise _Violation(404, f"Return item with rma id {rma_id} was not found.")
        i, k = located
        expected = self._return_by_index(i)["returnItems"][k]["expectedQuantity"]
        if quantity > expected:
            raise _Violation(400, "Bad request", [("quantityReturned", f"Quantity returned ({quantity}) exceeds "
                                                                       f"the expected quantity ({expected}).")])
        process_rng = random.Random(f"bol:{self.seed}:process:{len(self._processes)}")
        process_id = str(uuid.UUID(int=process_rng.getrandbits(128), version=4))
        body = {
            "processStatusId": process_id,
            "entityId": rma_id,
            "eventType": "HANDLE_RETURN_ITEM",
            "description": f"Handle return item with rma id {rma_id}: {handling} x{quantity}.",
            "status": "PENDING",
            "createTimestamp": iso(time.time()),
            "links": [{"rel": "self", "href": f"{request.url.scheme}://{request.url.netloc.decode()}"
                                              f"/shared/process-status/{process_id}"}],
        }
        process = _Process(body=body, rma_id=rma_id, handling_result=handling, quantity=quantity,
                           started=time.monotonic())
        self._processes[process_id] = process
        self._unfinished.append(process)
        if self.process_polls_until_done <= 0:
            self._finish(process)
        return self._reply(request, 202, body)

    # --- process status --------------------------------------------------------------------

    @route("GET", "/shared/process-status/{process-status-id}")
    def process_status(self, request: httpx.Request, process_status_id: str) -> httpx.Response:
        with self.lock:
            process = self._processes.get(process_status_id)
            if process is None:
                return self._problem(request, 404, f"Process status with id {process_status_id} was not found.")
            process.polls += 1
            if process.polls >= self.process_polls_until_done:
                self._finish(process)
            return self._reply(request, 200, process.body)

    @route("GET", "/shared/process-status")
    def process_statuses(self, request: httpx.Request) -> httpx.Response:
        """An entity's process statuses, newest first: how a client finds a handling it lost track of."""
        params = request.url.params
        entity_id, event_type = params.get("entity-id"), params.get("event-type")
        violations: list[tuple[str, str]] = []
        if not entity_id:
            violations.append(("entity-id", "Request is missing required parameter 'entity-id'."))
        if event_type not in EVENT_TYPES:
            violations.append(_invalid("event-type", event_type, EVENT_TYPES))
        page = _page_number(params, violations)
        if violations:
            return self._problem(request, 400, "Bad request", violations)
        with self.lock:
            found = [p.body for p in reversed(self._processes.values())
                     if p.body["entityId"] == entity_id and p.body["eventType"] == event_type]
            start = (page - 1) * PAGE_SIZE
            return self._reply(request, 200, {"processStatuses": found[start:start + PAGE_SIZE]})

    # --- orders ----------------------------------------------------------------------------

    @route("GET", "/retailer/orders/{order-id}")
    def get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        with self.lock:
            j = self._number(order_id, ORDER_BASE)
            order = self._order_by_index(j) if j is not None else None
            if order is None:
                return self._problem(request, 404, f"Order with order id {order_id} was not found.")
            return self._reply(request, 200, order)

    @route("GET", "/retailer/orders")
    def list_orders(self, request: httpx.Request) -> httpx.Response:
        """Shipped orders newest first; every order here has shipped, so `status=OPEN` (bol's default) is empty."""
        params = request.url.params
        method, status = params.get("fulfilment-method", "FBR"), params.get("status", "OPEN")
        violations: list[tuple[str, str]] = []
        page = _page_number(params, violations)
        if method not in ("FBR", "FBB", "ALL"):
            violations.append(_invalid("fulfilment-method", method, ("FBR", "FBB", "ALL")))
        if status not in ("OPEN", "SHIPPED", "ALL"):
            violations.append(_invalid("status", status, ("OPEN", "SHIPPED", "ALL")))
        if violations:
            return self._problem(request, 400, "Bad request", violations)
        with self.lock:
            orders = [] if status == "OPEN" else self._orders_page(page, method)
            return self._reply(request, 200, {"orders": orders} if orders or not self.omit_empty_lists else {})

    def _orders_page(self, page: int, method: str) -> list[dict[str, Any]]:
        owners = (i for i in range(self._count - 1, -1, -1) if i >= self.n_returns or not self.data.shares_order[i])
        found: list[dict[str, Any]] = []
        for i in owners:
            order = self._order_by_index(i)
            if order is None or (method != "ALL" and order["orderItems"][0]["fulfilment"]["method"] != method):
                continue
            found.append(order)
            if len(found) >= page * PAGE_SIZE:
                break
        return [self._reduced_order(order) for order in found[(page - 1) * PAGE_SIZE:]]

    @staticmethod
    def _reduced_order(order: dict[str, Any]) -> dict[str, Any]:
        return {
            "orderId": order["orderId"],
            "orderPlacedDateTime": order["orderPlacedDateTime"],
            "orderItems": [
                {
                    "orderItemId": item["orderItemId"],
                    "ean": item["product"]["ean"],
                    "fulfilmentMethod": item["fulfilment"]["method"],
                    "fulfilmentStatus": "HANDLED",
                    "quantity": item["quantity"],
                    "quantityShipped": item["quantityShipped"],
                    "quantityCancelled": item["quantityCancelled"],
                    "cancellationRequest": item["cancellationRequest"],
                    "latestChangedDateTime": item["latestChangedDateTime"],
                }
                for item in order["orderItems"]
            ],
        }
