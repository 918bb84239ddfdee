"""A seeded stand-in for Allegro's REST API: device flow, rotating tokens, customer returns, orders, refunds, claims.

Bodies, media types and error bodies follow Allegro's OpenAPI spec
(`spec.yaml`), so the connector is tested against what Allegro promises.
The seeded records come from `sandbox_data` (lazily per index, so 200,000
returns start in well under a second); only what clients changed (a refund,
a rejection, a claim) is kept here. Time is virtual: it starts at today's UTC midnight and moves
only when a test calls `advance()`, so returns travel through their statuses
(and new ones appear) deterministically.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx

from retsync.kit.emulator import Emulator, route
from retsync_connectors.allegro.sandbox_data import REJECTION_CODES, SellerData, iso, money

SANDBOX_CLIENT_ID = "sandbox-allegro-client"
SANDBOX_CLIENT_SECRET = "sandbox-allegro-secret"
SANDBOX_REFRESH_TOKEN = "sandbox-allegro-refresh-token"
"""A refresh token the sandbox always honours, so a sandbox channel works without a device flow first."""

PUBLIC = "application/vnd.allegro.public.v1+json"
BETA = "application/vnd.allegro.beta.v1+json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

REFRESH_GRACE = 60.0
"""Seconds an already used refresh token keeps working (Allegro: about a minute)."""
REFUND_REASONS = ("REFUND", "COMPLAINT", "PRODUCT_NOT_AVAILABLE", "PAID_VALUE_TOO_LOW", "OVERPAID",
                  "CANCELLED_BY_BUYER", "NOT_COLLECTED")
FINAL = frozenset({"FINISHED", "FINISHED_APT", "COMMISSION_REFUND_CLAIMED", "COMMISSION_REFUNDED", "REJECTED"})


@dataclass
class _Device:
    device_code: str
    user_code: str
    expires_at: float
    polls: int = 0
    used: bool = False


@dataclass
class _Refresh:
    first_used: float | None = None


@dataclass
class AllegroEmulator(Emulator):
    """Allegro for one seller, deterministic for a seed and a day."""

    n_returns: int = 120
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    token_ttl: float = 43199
    history_days: int = 120
    fulfillment_share: float = 0.1
    new_share: float = 0.05
    """Share of returns created during the two days after midnight: they appear as `advance()` moves time."""
    device_polls_until_approved: int = 2
    device_script: list[str] = field(default_factory=list)
    """Answers of the next device-code polls (`authorization_pending`, `slow_down`, `access_denied`,
    `expired_token`, `approved`); empty: pending until `device_polls_until_approved` polls, then approved."""
    device_interval: int = 5
    device_expires_in: int = 3600
    rate_limit: int | None = None
    """Requests per `rate_window` seconds before a 429 that blocks the client for `rate_block` seconds."""
    rate_window: float = 60.0
    rate_block: float = 60.0
    clock: Callable[[], float] = time.monotonic
    """Real time for token lifetimes (tests replace it to age refresh tokens)."""
    applied: list[tuple[str, ...]] = field(default_factory=list)
    """Every change a client made, in order: ("refund", refund id, line item id, quantity), ("rejection",
    return id, code), ("claim", claim id, line item id, quantity). A repeat here is a duplicate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        now = datetime.now(timezone.utc)
        self._midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        self._offset = 0.0
        self.data = SellerData(self.seed, self.n_returns, self.history_days, self.fulfillment_share, self.new_share,
                               self._midnight)
        self._created = self.data.created  # the same list: add_odd_return moves a return's date in it
        self._generated: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._overrides: dict[int, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._by_command: dict[str, str] = {}
        self._refunded: dict[str, int] = {}
        self._claims: dict[str, dict[str, Any]] = {}
        self._devices: dict[str, _Device] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._window: tuple[float, int] = (0.0, 0)
        self._blocked_until = 0.0

    # --- time ------------------------------------------------------------------------------

    def now(self) -> float:
        """Virtual time: today's UTC midnight plus whatever `advance()` added."""
        return self._midnight + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    # --- ids -------------------------------------------------------------------------------

    def _id(self, kind: int, index: int, sub: int = 0) -> str:
        return self.data.id(kind, index, sub)

    def _index(self, value: str, kind: int) -> int | None:
        return self.data.index(value, kind)

    def return_id(self, index: int) -> str:
        return self._id(1, index)

    def order_id(self, index: int) -> str:
        return self._id(2, index)

    def _visible(self, index: int) -> bool:
        return self._created[index] <= self.now()

    # --- generation ------------------------------------------------------------------------

    def _cached(self, kind: str, index: int, build: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        key = (kind, index)
        found = self._generated.get(key)
        if found is None:
            found = build(index)
            self._generated[key] = found
            if len(self._generated) > 8192:
                self._generated.popitem(last=False)
        return found

    def _order(self, i: int) -> dict[str, Any]:
        return self._cached("order", i, self.data.order)

    def _build_return(self, i: int) -> dict[str, Any]:
        return self.data.customer_return(i, self._order(i))

    def _return(self, i: int) -> dict[str, Any]:
        """Return i as Allegro shows it now."""
        base = self._cached("return", i, self._build_return)
        now = self.now()
        shown = {key: value for key, value in base.items() if not key.startswith("_")}
        status = "CREATED"
        for when, step in base["_steps"]:
            if when <= now:
                status = step
        override = self._overrides.get(i, {})
        status = override.get("status", status)
        shown["status"] = status
        if override.get("poison") == "quantity":  # see add_poison_return
            from retsync.kit.sandbox import POISON_QUANTITY

            shown["items"] = [{**item, "quantity": POISON_QUANTITY} for item in shown["items"]]
        if override.get("odd"):  # see add_odd_return: only what a return cannot be without
            items = [{"offerId": item["offerId"], "quantity": item["quantity"], "reason": {"type": "CHANGED_MIND_2027"}}
                     for item in shown["items"]]
            return {"id": shown["id"], "createdAt": shown["createdAt"], "orderId": shown["orderId"],
                    "items": items, "status": status}
        if status != "CREATED":
            shown["parcels"] = [dict(base["_parcel"])]
        rejection = override.get("rejection") or (base.get("_rejection") if status == "REJECTED" else None)
        if rejection:
            shown["rejection"] = dict(rejection)
        return shown

    # --- truth for tests -------------------------------------------------------------------

    def truth(self) -> dict[str, set[str]]:
        """Ids a complete sync must have stored by now."""
        with self.lock:
            visible = [i for i in range(len(self._created)) if self._visible(i)]
            return {"returns": {self.return_id(i) for i in visible}, "orders": {self.order_id(i) for i in visible}}

    def add_odd_return(self) -> str:
        """A buyer returns something now, in a status and with a reason type Allegro may add tomorrow, and with
        every optional field left out (no reference number, buyer, parcels, refund account, item names or prices)."""
        with self.lock:
            now = self.now()
            hidden = bisect.bisect_right(self._created, now)
            if hidden < len(self._created):  # the next return due later becomes this one, now: ids stay in order
                i = hidden
                self._created[i] = max(now, self._created[i - 1] if i else now)
            else:
                i = len(self._created)
                self._created.append(now)
            for kind in ("return", "order"):
                self._generated.pop((kind, i), None)
            self._overrides[i] = {"status": "AWAITING_SOMETHING_NEW", "odd": True}
            return self.return_id(i)

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A buyer returns something now with an item quantity of 1e30 (`quantity`); Allegro's returns carry no
        postcode or phone of the buyer's own typing, so only `quantity` is offered here."""
        if poison != "quantity":
            raise ValueError(f"the Allegro sandbox poisons only the quantity, not {poison!r}")
        with self.lock:
            return_id = self.add_odd_return()
            i = self._index(return_id, 1)
            assert i is not None
            self._overrides[i] = {"poison": "quantity"}
            return return_id

    def acts_applied(self) -> list[tuple[str, ...]]:
        """Every effect a client's act had, in order, naming what it acted on and never the id Allegro gave it:
        ("refund", order id, line item id, quantity) per refunded line item, ("claim", line item id, quantity) per
        commission claim, ("rejection", return id) per rejected return. A repeat here is an act done twice."""
        with self.lock:
            return [self._act_of(entry) for entry in self.applied]

    def _act_of(self, entry: tuple[str, ...]) -> tuple[str, ...]:
        kind = entry[0]
        if kind == "refund":
            return ("refund", self._refunds[entry[1]]["order"]["id"], *entry[2:])
        if kind == "claim":
            return ("claim", *entry[2:])
        return ("rejection", entry[1])

    def status_of(self, return_id: str) -> str | None:
        with self.lock:
            i = self._index(return_id, 1)
            return self._return(i)["status"] if i is not None and self._visible(i) else None

    def open_return_ids(self, *, fulfillment: bool = False) -> list[str]:
        """Visible returns still waiting for the seller, oldest first."""
        with self.lock:
            found = []
            for i in range(len(self._created)):
                if not self._visible(i):
                    continue
                entry = self._return(i)
                if entry["status"] not in FINAL and entry["isFulfillment"] is fulfillment:
                    found.append(entry["id"])
            return found

    def return_entry(self, return_id: str) -> dict[str, Any]:
        with self.lock:
            i = self._index(return_id, 1)
            assert i is not None
            return self._return(i)

    def checkout_form(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            j = self._index(order_id, 2)
            assert j is not None
            return self._order(j)

    # --- answers ---------------------------------------------------------------------------

    @staticmethod
    def _media(request: httpx.Request) -> str:
        return BETA if request.url.path.startswith("/order/customer-returns") else PUBLIC

    def _reply(self, request: httpx.Request, status: int, body: Any, **headers: str) -> httpx.Response:
        return self.json_response(status, body, self._media(request), **headers)

    def _errors(self, request: httpx.Request, status: int, code: str, message: str, path: str | None = None,
                **headers: str) -> httpx.Response:
        error = {"code": code, "details": None, "message": message, "path": path,
                 "userMessage": "Nie możemy zrealizować tego żądania.", "metadata": {}}
        return self._reply(request, status, {"errors": [error]}, **headers)

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/auth/"):
            return None
        with self.lock:
            if not self.bearer_ok(request):
                return self._reply(request, 401, {"error": "invalid_token",
                                                  "error_description": "Access token expired or invalid"})
            limited = self._rate_limited()
            if limited:
                return self._errors(request, 429, "TooManyRequestsException", "Too many requests")
            accepted = self._media(request)
            offered = {part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")}
            if accepted not in offered:
                return self._errors(request, 406, "NotAcceptableException",
                                    f"Not acceptable representation requested. Please check 'Accept' request header: "
                                    f"this resource needs {accepted}")
        return None

    def _rate_limited(self) -> bool:
        if self.rate_limit is None:
            return False
        now = self.clock()
        if now < self._blocked_until:
            return True
        start, used = self._window
        if now - start >= self.rate_window:
            start, used = now, 0
        used += 1
        self._window = (start, used)
        if used > self.rate_limit:
            self._blocked_until = now + self.rate_block
            return True
        return False

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self._errors(request, 404, "NotFoundException", f"No resource at {request.method} {request.url.path}")

    def malformed_body(self) -> bytes:
        return b'{"customerReturns": [{"id": "a3405c27", "createdAt": '

    def wrong_shape_body(self) -> Any:
        return {"customerReturns": {"id": "a3405c27", "note": "an object where Allegro promises an array"}}

    # --- OAuth -----------------------------------------------------------------------------

    def _client_ok(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except ValueError:
            return False
        return tuple(decoded.partition(":")[::2]) == (self.client_id, self.client_secret)

    @staticmethod
    def _form(request: httpx.Request) -> dict[str, str]:
        form = {key: values[0] for key, values in parse_qs(request.content.decode("utf-8", "replace")).items()}
        return {**dict(request.url.params), **form}

    @staticmethod
    def _oauth_error(status: int, error: str, description: str | None = None) -> httpx.Response:
        body = {"error": error, **({"error_description": description} if description else {})}
        return Emulator.json_response(status, body)

    @route("POST", "/auth/oauth/device")
    def device(self, request: httpx.Request) -> httpx.Response:
        if not self._client_ok(request):
            return self._oauth_error(401, "invalid_client", "Bad client credentials")
        if self._form(request).get("client_id") != self.client_id:
            return self._oauth_error(400, "invalid_request", "client_id is required")
        with self.lock:
            device = _Device(device_code=secrets.token_urlsafe(24), user_code=f"{secrets.randbelow(10**9):09d}",
                             expires_at=self.clock() + self.device_expires_in)
            self._devices[device.device_code] = device
        base = f"{request.url.scheme}://{request.url.netloc.decode()}"
        return self.json_response(200, {
            "device_code": device.device_code, "user_code": device.user_code,
            "expires_in": str(self.device_expires_in), "interval": str(self.device_interval),
            "verification_uri": f"{base}/skojarz-aplikacje",
            "verification_uri_complete": f"{base}/skojarz-aplikacje?code={device.user_code}",
        })

    @route("POST", "/auth/oauth/token")
    def token(self, request: httpx.Request) -> httpx.Response:
        if not self._client_ok(request):
            return self._oauth_error(401, "invalid_client", "Bad client credentials")
        form = self._form(request)
        grant = form.get("grant_type", "")
        with self.lock:
            if grant == DEVICE_GRANT:
                return self._device_token(form.get("device_code", ""))
            if grant == "refresh_token":
                return self._refresh_token(form.get("refresh_token", ""))
        return self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _device_token(self, device_code: str) -> httpx.Response:
        device = self._devices.get(device_code)
        if device is None or device.used:
            return self._oauth_error(400, "Invalid device code")
        device.polls += 1
        if self.device_script:
            answer = self.device_script.pop(0)
        elif self.clock() > device.expires_at:
            answer = "expired_token"
        else:
            answer = "approved" if device.polls >= self.device_polls_until_approved else "authorization_pending"
        if answer != "approved":
            return self._oauth_error(400, answer)
        device.used = True
        return self._token_pair()

    def _refresh_token(self, refresh_token: str) -> httpx.Response:
        if refresh_token == SANDBOX_REFRESH_TOKEN:
            return self._token_pair()
        record = self._refresh.get(refresh_token)
        now = self.clock()
        if record is None or (record.first_used is not None and now - record.first_used > REFRESH_GRACE):
            return self._oauth_error(400, "invalid_grant", f"Invalid refresh token: {refresh_token[:6]}…")
        if record.first_used is None:
            record.first_used = now
        return self._token_pair()

    def _token_pair(self) -> httpx.Response:
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = _Refresh()
        access = self.issue_token(self.token_ttl)
        return self.json_response(200, {
            "access_token": access, "token_type": "bearer", "refresh_token": refresh,
            "expires_in": int(self.token_ttl), "scope": "allegro:api:orders:read allegro:api:orders:write "
            "allegro:api:payments:read allegro:api:payments:write", "allegro_api": True, "jti": str(uuid.uuid4()),
        })

    def revoke_refresh_tokens(self) -> None:
        """What a password change or "log out everywhere" does: every refresh token stops working."""
        with self.lock:
            self._refresh.clear()

    # --- customer returns ------------------------------------------------------------------

    @staticmethod
    def _values(params: httpx.QueryParams, name: str) -> list[str]:
        return [part for value in params.get_list(name) for part in value.split(",") if part]

    @route("GET", "/order/customer-returns")
    def list_returns(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "100"))
            offset = int(params.get("offset", "0"))
        except ValueError:
            return self._errors(request, 400, "VALIDATION_ERROR", "limit and offset must be integers")
        if not 1 <= limit <= 1000 or offset < 0:
            return self._errors(request, 400, "VALIDATION_ERROR", "limit must be 1..1000 and offset at least 0",
                                "limit" if not 1 <= limit <= 1000 else "offset")
        with self.lock:
            indices = self._matching(request, params)
            if isinstance(indices, httpx.Response):
                return indices
            page = [self._return(i) for i in indices[offset:offset + limit]]
            return self._reply(request, 200, {"count": len(page), "customerReturns": page})

    def _matching(self, request: httpx.Request, params: httpx.QueryParams) -> list[int] | httpx.Response:
        """Visible returns matching the filters, oldest first (as Allegro's `from` cursor implies)."""
        ids = self._values(params, "customerReturnId")
        if ids:
            found = sorted({i for i in (self._index(value, 1) for value in ids) if i is not None and self._visible(i)})
        else:
            low, high = 0, bisect.bisect_right(self._created, self.now())
            for name, side in (("createdAt.gte", "low"), ("createdAt.lte", "high")):
                raw = params.get(name)
                if raw is None:
                    continue
                try:
                    when = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    return self._errors(request, 400, "VALIDATION_ERROR", f"{name} must be an ISO 8601 date-time",
                                        name)
                if side == "low":
                    low = max(low, bisect.bisect_left(self._created, when))
                else:
                    high = min(high, bisect.bisect_right(self._created, when))
            after = params.get("from")
            if after:
                start = self._index(after, 1)
                low = max(low, start + 1) if start is not None else low
            found = list(range(low, high))
        orders = set(self._values(params, "orderId"))
        statuses = set(self._values(params, "status"))
        if orders:
            found = [i for i in found if self.order_id(i) in orders]
        if statuses:
            found = [i for i in found if self._return(i)["status"] in statuses]
        return found

    @route("GET", "/order/customer-returns/{customerReturnId}")
    def get_return(self, request: httpx.Request, customerReturnId: str) -> httpx.Response:  # noqa: N803
        with self.lock:
            i = self._index(customerReturnId, 1)
            if i is None or not self._visible(i):
                return self._errors(request, 404, "NotFoundException",
                                    f"Customer return {customerReturnId} was not found")
            return self._reply(request, 200, self._return(i))

    @route("POST", "/order/customer-returns/{customerReturnId}/rejection")
    def reject(self, request: httpx.Request, customerReturnId: str) -> httpx.Response:  # noqa: N803
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != BETA:
            return self._errors(request, 415, "UnsupportedMediaTypeException", f"Content-Type must be {BETA}")
        try:
            rejection = json.loads(request.content or b"null")["rejection"]
            code, reason = rejection["code"], rejection.get("reason")
        except (ValueError, KeyError, TypeError):
            return self._errors(request, 400, "VALIDATION_ERROR", "rejection.code is required", "rejection.code")
        if code not in REJECTION_CODES:
            return self._errors(request, 400, "VALIDATION_ERROR", f"unknown rejection code {code!r}", "rejection.code")
        if reason is not None and not (isinstance(reason, str) and 1 <= len(reason) <= 250):
            return self._errors(request, 400, "VALIDATION_ERROR", "reason must be 1..250 characters",
                                "rejection.reason")
        if code == "REFUND_REJECTED" and not reason:
            return self._errors(request, 400, "VALIDATION_ERROR", "reason is required for REFUND_REJECTED",
                                "rejection.reason")
        with self.lock:
            i = self._index(customerReturnId, 1)
            if i is None or not self._visible(i):
                return self._errors(request, 404, "NotFoundException",
                                    f"Customer return {customerReturnId} was not found")
            current = self._return(i)
            if current["status"] == "REJECTED":
                return self._errors(request, 422, "CustomerReturnAlreadyRejected",
                                    f"Customer return {customerReturnId} has already been rejected")
            if current["status"] in FINAL:
                return self._errors(request, 422, "CustomerReturnAlreadyRefunded",
                                    f"Customer return {customerReturnId} has already been refunded")
            stored: dict[str, Any] = {"code": code, "createdAt": iso(self.now())}
            if reason:
                stored["reason"] = reason
            self._overrides[i] = {"status": "REJECTED", "rejection": stored}
            self.applied.append(("rejection", customerReturnId, code))
            return self._reply(request, 200, self._return(i))

    # --- checkout forms --------------------------------------------------------------------

    @route("GET", "/order/checkout-forms/{id}")
    def get_checkout_form(self, request: httpx.Request, id: str) -> httpx.Response:  # noqa: A002
        with self.lock:
            j = self._index(id, 2)
            if j is None or not self._visible(j):
                return self._errors(request, 404, "NotFoundException", f"Checkout form {id} was not found")
            return self._reply(request, 200, self._order(j))

    # --- refunds ---------------------------------------------------------------------------

    @route("POST", "/payments/refunds")
    def refund(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != PUBLIC:
            return self._errors(request, 415, "UnsupportedMediaTypeException", f"Content-Type must be {PUBLIC}")
        try:
            body = json.loads(request.content or b"null")
            command, order_id = str(body["commandId"]), str(body["order"]["id"])
            payment_id, reason = str(body["payment"]["id"]), body["reason"]
            lines = body.get("lineItems") or []
        except (ValueError, KeyError, TypeError):
            return self._errors(request, 400, "VALIDATION_ERROR", "payment, order, commandId and reason are required")
        if reason not in REFUND_REASONS:
            return self._errors(request, 400, "VALIDATION_ERROR", f"unknown reason {reason!r}", "reason")
        with self.lock:
            if command in self._by_command:  # the same command again: the same refund, never a second one
                return self._reply(request, 200, self._refunds[self._by_command[command]])
            j = self._index(order_id, 2)
            if j is None or not self._visible(j):
                return self._errors(request, 404, "NotFoundException", f"Order {order_id} was not found", "order.id")
            order = self._order(j)
            if order["payment"]["id"] != payment_id:
                return self._errors(request, 422, "PaymentMismatch", "the payment does not belong to the order",
                                    "payment.id")
            refused = self._refund_problem(order, lines)
            if refused is not None:
                return self._errors(request, 422, *refused)
            return self._reply(request, 200, self._record_refund(j, order, command, body, lines))

    def _refund_problem(self, order: dict[str, Any], lines: list[dict[str, Any]]) -> tuple[str, str, str] | None:
        bought = {line["id"]: line["quantity"] for line in order["lineItems"]}
        if not lines:
            return "VALIDATION_ERROR", "nothing to refund", "lineItems"
        for line in lines:
            if line.get("id") not in bought or line.get("type") != "QUANTITY":
                return "VALIDATION_ERROR", f"line item {line.get('id')} cannot be refunded by QUANTITY", "lineItems"
            quantity = line.get("quantity")
            if not isinstance(quantity, (int, float)) or quantity <= 0:
                return "VALIDATION_ERROR", "quantity must be positive", "lineItems.quantity"
            if self._refunded.get(line["id"], 0) + quantity > bought[line["id"]]:
                return ("RefundQuantityExceeded",
                        f"line item {line['id']} has already been refunded", "lineItems.quantity")
        return None

    def _record_refund(self, j: int, order: dict[str, Any], command: str, body: dict[str, Any],
                       lines: list[dict[str, Any]]) -> dict[str, Any]:
        prices = {line["id"]: Decimal(line["price"]["amount"]) for line in order["lineItems"]}
        total = sum((prices[line["id"]] * Decimal(str(line["quantity"])) for line in lines), Decimal(0))
        refund_id = str(uuid.UUID(int=random.Random(f"allegro:{self.seed}:refund:{len(self._refunds)}")
                                  .getrandbits(128), version=4))
        refund = {
            "id": refund_id, "payment": {"id": order["payment"]["id"]}, "order": {"id": order["id"]},
            "reason": body["reason"], "status": "SUCCESS", "createdAt": iso(self.now()),
            "totalValue": {"amount": money(total), "currency": "PLN"},
            "lineItems": [{"id": line["id"], "type": "QUANTITY", "quantity": line["quantity"]} for line in lines],
        }
        if isinstance(body.get("sellerComment"), str):
            refund["sellerComment"] = body["sellerComment"]
        self._refunds[refund_id] = refund
        self._by_command[command] = refund_id
        for line in lines:
            self._refunded[line["id"]] = self._refunded.get(line["id"], 0) + int(line["quantity"])
            self.applied.append(("refund", refund_id, line["id"], str(line["quantity"])))
        current = self._return(j)
        if current["status"] not in FINAL:
            self._overrides[j] = {"status": "FINISHED"}
        return refund

    @route("GET", "/payments/refunds")
    def list_refunds(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit, offset = int(params.get("limit", "50")), int(params.get("offset", "0"))
        if not 1 <= limit <= 100:
            return self._errors(request, 400, "VALIDATION_ERROR", "limit must be 1..100", "limit")
        with self.lock:
            found = [refund for refund in self._refunds.values()
                     if all(params.get(key) in (None, value) for key, value in (
                         ("id", refund["id"]), ("order.id", refund["order"]["id"]),
                         ("payment.id", refund["payment"]["id"])))]
            page = found[offset:offset + limit]
            return self._reply(request, 200, {"refunds": page, "count": len(page), "totalCount": len(found)})

    # --- commission refund claims ----------------------------------------------------------

    @route("POST", "/order/refund-claims")
    def claim(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content or b"null")
            line_id, quantity = str(body["lineItem"]["id"]), body["quantity"]
        except (ValueError, KeyError, TypeError):
            return self._errors(request, 400, "VALIDATION_ERROR", "lineItem.id and quantity are required")
        with self.lock:
            j = self._index(line_id, 4)
            order = self._order(j) if j is not None and self._visible(j) else None
            line = next((item for item in (order or {}).get("lineItems", []) if item["id"] == line_id), None)
            if line is None:
                return self._errors(request, 404, "NotFoundException", f"Line item {line_id} was not found")
            if any(c["lineItem"]["id"] == line_id and c["status"] != "CANCELLED" for c in self._claims.values()):
                return self._errors(request, 422, "RefundClaimAlreadyExists",
                                    f"a commission refund for line item {line_id} has already been claimed")
            if not isinstance(quantity, int) or not 1 <= quantity <= line["quantity"]:
                return self._errors(request, 422, "VALIDATION_ERROR", "quantity exceeds the purchased quantity")
            claim_id = str(uuid.UUID(int=random.Random(f"allegro:{self.seed}:claim:{len(self._claims)}")
                                     .getrandbits(128), version=4))
            self._claims[claim_id] = {
                "id": claim_id, "status": "IN_PROGRESS", "quantity": quantity,
                "commission": {"amount": float((Decimal(line["price"]["amount"]) * quantity * Decimal("0.1"))
                                               .quantize(Decimal("0.01"))), "currency": "PLN"},
                "buyer": {"id": order["buyer"]["id"]}, "createdAt": iso(self.now()),  # type: ignore[index]
                "lineItem": {"id": line_id, "quantity": line["quantity"], "boughtAt": line["boughtAt"],
                             "offer": {"id": line["offer"]["id"]}},
                "type": "MANUAL",
            }
            self.applied.append(("claim", claim_id, line_id, str(quantity)))
            return self._reply(request, 201, {"id": claim_id})

    @route("GET", "/order/refund-claims")
    def list_claims(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        offer = params.get("lineItem.offer.id")
        with self.lock:
            found = [c for c in self._claims.values() if offer in (None, c["lineItem"]["offer"]["id"])]
            return self._reply(request, 200, {"refundClaims": found[:int(params.get("limit", "25"))],
                                              "count": len(found)})

    @route("GET", "/order/refund-claims/{claimId}")
    def get_claim(self, request: httpx.Request, claimId: str) -> httpx.Response:  # noqa: N803
        with self.lock:
            claim = self._claims.get(claimId)
            if claim is None:
                return self._errors(request, 404, "NotFoundException", f"Refund claim {claimId} was not found")
            return self._reply(request, 200, claim)
