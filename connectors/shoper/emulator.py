"""A Shoper shop (REST webapi/rest), seeded, stateful, with Shoper's leaky bucket.

Following `shared/specs/shoper/NOTES.md`: `POST /webapi/rest/auth` with the
panel user's basic auth buys a bearer token; lists answer `{count (a string),
pages, page, list}` and take `limit` (at most 50), `page` (1-based) and a
JSON `filters` object (`{"field": value}` or `{"field": {"op": value}}` with
`=`, `!=`, `>`, `>=`, `<`, `<=`, `in`, `not in`); every id and number is a
string, dates are `YYYY-MM-DD HH:MM:SS` in the shop's time (Europe/Warsaw);
order statuses carry `type` 1 new, 2 opened, 3 closed, 4 not completed;
order refunds have `status` 1 pending, 2 canceled, 3 finished, 4 failed;
errors are `{"error": key, "error_description": text}` with the SDK's keys
(401: `auth_failure` for a wrong login, `unauthorized_client` for a bad
token; 400/404: `invalid_request`; 429: `temporarily_unavailable`). Every answer says
how full the application's bucket is (`X-Shop-Api-Limit`, `-Bandwidth`,
`-Calls`); a call that does not fit gets 429 with `Retry-After`.

Not in the notes, so chosen here and kept plain: order refunds and
transactions are listed with `refund_id`/`transaction_id`, `order_id`,
`date`, `currency_id`, `currency_value`, `status` (the insert fields plus
ids and a date); an insert answers the new id, an update answers `1`; lists
come in id order. The shop has the merchant's own return statuses (14-17)
beside the stock ones, and one (21) retsync is not told about.

The seeded records come from `sandbox_data` (the same shop for the same
seed); this module holds the routes and what clients change. Every refund,
status change, note and insert retsync makes is logged in `applied`, and
`acts_applied()` names the effects of decision acts, so tests can prove
nothing was applied twice.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY
from retsync_connectors.shoper.sandbox_data import (
    ACCEPTED,
    CURRENCIES,
    EXCHANGE,
    HOLD,
    REASON_FIELD,
    RECEIVED,
    REJECTED,
    REPAIR,
    REQUESTED,
    RETURN_STATUSES,
    ZONE,
    ShopData,
    local,
    money,
)

SANDBOX_LOGIN = "retsync-sandbox"
SANDBOX_PASSWORD = "sandbox-Pa55-7f3c91e2"
PREFIX = "/webapi/rest"
MAX_LIMIT = 50
TOKEN_TTL = 30 * 86400
ODD_STATUS = ("42", "9", "Status, którego retsync nie zna")
PANEL_DECISION_STATUSES = {"accept": ACCEPTED, "reject": REJECTED}

SANDBOX_CHANNEL: dict[str, Any] = {
    "login": SANDBOX_LOGIN, "password": SANDBOX_PASSWORD,
    # scalars only (the demo writes them into a TOML file): lists as comma-separated ids
    "requested_statuses": REQUESTED, "received_statuses": RECEIVED, "accepted_statuses": ACCEPTED,
    "rejected_statuses": REJECTED, "reason_field_id": REASON_FIELD,
    "accept_status": ACCEPTED, "reject_status": REJECTED, "repair_status": REPAIR, "exchange_status": EXCHANGE,
    "cancel_status": "5", "hold_status": HOLD, "hold_payment_id": "1", "hold_shipping_id": "1",
    "held_decision_statuses": f"{ACCEPTED}=accept,{REJECTED}=reject",
}


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


class _ShoperError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Numbers as numbers, everything else (dates included: same format) as text."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na, nb
    return str(a if a is not None else ""), str(b if b is not None else "")


def _key(value: Any) -> tuple[str, Any]:
    """What `in` compares: a number as a number, anything else as its text (as _comparable does)."""
    number = _number(value)
    return ("n", number) if number is not None else ("s", str(value if value is not None else ""))


def _matcher(filters: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The filters as one test of a record, with each `in` list read once rather than once per record."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for name, condition in filters.items():
        for operator, wanted in (condition.items() if isinstance(condition, dict) else [("=", condition)]):
            if operator in ("in", "not in"):
                keys, inside = {_key(w) for w in wanted}, operator == "in"
                checks.append(lambda r, n=name, k=keys, i=inside: (_key(r.get(n)) in k) == i)
            else:
                compare = _OPERATORS[operator]
                checks.append(lambda r, n=name, w=wanted, c=compare: c(*_comparable(r.get(n), w)))
    return lambda record: all(check(record) for check in checks)


@dataclass
class ShoperEmulator(Emulator):
    """A shop of `n_orders` orders; about a third of them in a return status or refunded."""

    n_orders: int = 240
    days: int = 150
    bucket_limit: int = 10
    bandwidth: float = 2.0
    clock: Callable[[], float] = time.monotonic
    """What the bucket leaks by; tests pass a fake clock their connector's waits advance."""
    applied: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def roomy(cls, seed: int = 1, returns: int | None = None) -> ShoperEmulator:
        """The sandbox of `retsync demo` and the shared suites: the same bucket rules with room for a fast
        sandbox run (the documented 10 calls, 2 per second would make a demo wait); `returns` sizes it."""
        n_orders = 240 if returns is None else max(40, returns * 3)
        return cls(seed=seed, n_orders=n_orders, bucket_limit=500, bandwidth=250.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = ShopData.seeded(self.seed, self.n_orders, self.days)
        self.now = self.data.now
        self.statuses, self.orders, self.products = self.data.statuses, self.data.orders, self.data.products
        self.transactions, self.refunds = self.data.transactions, self.data.refunds
        self._fill = 0.0
        self._drained = False
        self._leaked_at = self.clock()

    # --- state changes ---------------------------------------------------------------------

    def _stamp(self, order: dict[str, Any]) -> None:
        """A status change now, strictly after every one before it, as a real shop's clock would, so a
        "changed since" listing always sees it however fast a test acts."""
        floor = datetime.strptime(self.data.latest, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE) + timedelta(seconds=1)
        order["status_date"] = local(max(datetime.now(timezone.utc), floor))
        self.data.latest = order["status_date"]

    def _set_status(self, order: dict[str, Any], status: str, *, by_retsync: bool) -> None:
        if status not in self.statuses:
            raise _ShoperError(400, "invalid_request", f"status_id: status {status} does not exist")
        if status != order["status_id"]:
            if by_retsync:
                self.applied.append({"kind": "status", "order": int(order["order_id"]), "from": order["status_id"],
                                     "to": status})
            order["status_id"], order["status"] = status, self.statuses[status]
            self._stamp(order)

    def _left(self, transaction_id: int) -> Decimal:
        refunded = sum((Decimal(r["currency_value"]) for r in self.refunds.values()
                        if r["transaction_id"] == str(transaction_id) and r["status"] not in ("2", "4")), Decimal(0))
        return Decimal(self.transactions[transaction_id]["currency_value"]) - refunded

    # --- what tests and the demo use to act as the shop's staff and customers ----------------

    def request_return(self, order_id: int | None = None, reason: str = "Za mały rozmiar") -> int:
        """A customer's return form moves a completed order into the requested status (with its reason)."""
        with self.lock:
            if order_id is None:
                order_id = next(i for i, o in self.orders.items() if o["status_id"] == "5"
                                and not self._refunds_of(i) and not o["notes_priv"])
            order = self.orders[order_id]
            order["additional_fields"] = [{"field_id": REASON_FIELD, "type": "1", "locate": "2", "req": "0",
                                           "value": reason}]
            self._set_status(order, REQUESTED, by_retsync=False)
            return order_id

    def set_status(self, order_id: int, status: str) -> None:
        """The merchant changes the order's status in the panel."""
        with self.lock:
            self._set_status(self.orders[order_id], status, by_retsync=False)

    def refund_in_panel(self, order_id: int, amount: str, status: str = "3") -> int:
        """The merchant records a refund in the panel (an order's status_date does not move)."""
        with self.lock:
            tid = next(int(t) for t, tr in self.transactions.items() if tr["order_id"] == str(order_id))
            return int(self.data.add_refund(tid, Decimal(amount), status, comment="Zwrot w panelu")["refund_id"])

    def drain_bucket(self) -> None:
        """Another integration of the same application uses up the bucket (fills it to the brim) just before
        the next call arrives, so that call is the one that finds it full, however long the caller takes."""
        with self.lock:
            self._drained = True

    def add_odd_return(self) -> str:
        with self.lock:
            sid, kind, name = ODD_STATUS
            self.statuses.setdefault(sid, {"status_id": sid, "type": kind, "translations": {"xx_XX": {"name": name}}})
            order_id = max(self.orders) + 1
            order = {"order_id": str(order_id), "date": local(datetime.now(timezone.utc)), "status_id": sid,
                     "status": self.statuses[sid], "sum": "5.00", "email": ""}
            self._stamp(order)
            self.orders[order_id] = order
            self.products[order_id] = [{"id": str(self.data.next_id("product")), "order_id": str(order_id),
                                        "quantity": "1"}]
            tid = self.data.next_id("transaction")
            self.transactions[tid] = {"transaction_id": str(tid), "order_id": str(order_id),
                                      "currency_value": "5.00", "status": "3"}
            self.data.add_refund(tid, Decimal("5.00"), "7")
            return str(order_id)

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A refunded order (see add_odd_return) of 1e30 items (`quantity`), or whose buyer typed a 36-character
        postcode and a 64-character phone (`postcode`)."""
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}: one of {self.POISONS}")
        with self.lock:
            order_id = int(self.add_odd_return())
            if poison == "quantity":
                self.products[order_id][0]["quantity"] = str(POISON_QUANTITY)
            else:
                self.orders[order_id]["billing_address"] = {"firstname": "Ann", "lastname": "Poison",
                                                            "postcode": POISON_POSTCODE, "phone": POISON_PHONE}
            return str(order_id)

    def acts_applied(self) -> list[tuple[str, ...]]:
        """Refunds, status changes, notes and refund cancellations made through the API, in order; the orders and
        products a hold creates are no decision's effect and left out.

        A Shoper refund names no products (its insert takes a transaction, an amount, a status and a comment), so
        its entry names the order, the transaction, the amount and the comment written with it; a note names the
        order, the field and the text added; a cancelled refund, the refund it cancelled. Never the id the shop
        gave a new refund, so a refund made twice shows as the same entry twice.
        """
        entries: dict[str, Callable[[dict[str, Any]], tuple[str, ...]]] = {
            "refund": lambda e: ("refund", f"order {e['order']}", f"transaction {e['transaction']}", e["amount"],
                                 e["comment"]),
            "status": lambda e: ("status", f"order {e['order']}", e["to"]),
            "notes": lambda e: ("notes", f"order {e['order']}", e["field"], e["added"]),
            "refund_status": lambda e: ("refund_status", f"order {e['order']}", f"refund {e['refund']}", e["to"]),
        }
        with self.lock:
            return [entries[entry["kind"]](entry) for entry in self.applied if entry["kind"] in entries]

    def held_returns(self) -> dict[str, str]:
        with self.lock:
            found = {}
            for order in self.orders.values():
                match = re.search(r"\[retsync-hold:([^\]\s]+)\]", order.get("notes_priv") or "")
                if match:
                    found[match[1]] = order["order_id"]
            return found

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """The merchant moves the held order to the status that means `kind`, writing a private note."""
        status = PANEL_DECISION_STATUSES.get(kind)
        if status is None:
            raise ValueError(f"the sandbox has no status for {kind!r}; one of {sorted(PANEL_DECISION_STATUSES)}")
        with self.lock:
            order = self.orders[int(reference)]
            if note:
                order["notes_priv"] = f"{order['notes_priv']}\n{note}".strip()
            self._set_status(order, status, by_retsync=False)

    def order(self, order_id: int | str) -> dict[str, Any]:
        return self.orders[int(order_id)]

    def _refunds_of(self, order_id: int) -> list[dict[str, Any]]:
        return [r for r in self.refunds.values() if r["order_id"] == str(order_id)]

    def truth(self) -> dict[str, set[str]]:
        """What a full sync with the sandbox settings stores: every shop order, and those that are returns."""
        orders, returns = set(), set()
        for order_id, order in self.orders.items():
            if "[retsync-hold:" in (order.get("notes_priv") or ""):
                continue
            orders.add(str(order_id))
            if order["status_id"] in RETURN_STATUSES or self._refunds_of(order_id) \
                    or "[retsync:" in (order.get("notes_priv") or ""):
                returns.add(str(order_id))
        return {"orders": orders, "returns": returns}

    # --- the leaky bucket ------------------------------------------------------------------

    def _leak(self) -> None:
        now = self.clock()
        self._fill = max(0.0, self._fill - (now - self._leaked_at) * self.bandwidth)
        self._leaked_at = now

    def _bucket_headers(self) -> dict[str, str]:
        return {"X-Shop-Api-Limit": str(self.bucket_limit), "X-Shop-Api-Bandwidth": f"{self.bandwidth:g}",
                "X-Shop-Api-Calls": str(math.ceil(self._fill))}

    # --- HTTP ------------------------------------------------------------------------------

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self._leak()
            if self._drained:
                self._fill, self._drained = float(self.bucket_limit), False
            if self._fill + 1 > self.bucket_limit:
                wait = max(1, math.ceil((self._fill + 1 - self.bucket_limit) / self.bandwidth))
                return self.shoper_error(429, "temporarily_unavailable", "Too many requests: the call limit is "
                                         "exceeded, try again later", **{"Retry-After": str(wait)},
                                         **self._bucket_headers())
            self._fill += 1
            headers = self._bucket_headers()
        response = super()._dispatch(request)
        for key, value in headers.items():
            response.headers[key] = value
        return response

    @staticmethod
    def shoper_error(status: int, error: str, description: str, **headers: str) -> httpx.Response:
        return Emulator.json_response(status, {"error": error, "error_description": description}, **headers)

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path == PREFIX + "/auth":
            return None
        if not self.bearer_ok(request):  # ErrorResponse401Error: a 401 is never invalid_grant (a 400 key)
            return self.shoper_error(401, "unauthorized_client", "Access token is invalid or has expired")
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.shoper_error(404, "invalid_request", f"Resource not found: {request.url.path}")

    def malformed_body(self) -> bytes:
        return b'{"count":"240","pages":5,"page":1,"list":[{"order_id":"1001","date":"2026-'

    def _guarded(self, action: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            with self.lock:
                return action()
        except _ShoperError as error:
            return self.shoper_error(error.status, error.error, error.description)

    @staticmethod
    def _body(request: httpx.Request) -> dict[str, Any]:
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            raise _ShoperError(400, "invalid_request", "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _ShoperError(400, "invalid_request", "Request body must be a JSON object")
        return body

    def _list(self, request: httpx.Request, records: list[dict[str, Any]], key: str) -> httpx.Response:
        params = request.url.params
        try:
            limit, page = int(params.get("limit", "10")), int(params.get("page", "1"))
        except ValueError:
            raise _ShoperError(400, "invalid_request", "limit and page must be integers") from None
        if not 1 <= limit <= MAX_LIMIT or page < 1:
            raise _ShoperError(400, "invalid_request", f"limit must be between 1 and {MAX_LIMIT}, page at least 1")
        filters: dict[str, Any] = {}
        if params.get("filters"):
            try:
                filters = json.loads(params["filters"])
            except ValueError:
                raise _ShoperError(400, "invalid_request", "filters: not a valid JSON object") from None
            if not isinstance(filters, dict):
                raise _ShoperError(400, "invalid_request", "filters: not a valid JSON object")
        for name, condition in filters.items():
            # the first record answers for all but an odd field (a scan of every record per request made an
            # empty poll on a long history measure the sandbox, not retsync)
            if records and name not in records[0] and not any(name in r for r in records):
                raise _ShoperError(400, "invalid_request", f"filters: unknown field {name}")
            for operator, wanted in (condition.items() if isinstance(condition, dict) else [("=", condition)]):
                if operator not in _OPERATORS and operator not in ("in", "not in"):
                    raise _ShoperError(400, "invalid_request", f"filters: unknown operator {operator!r} for {name}")
                if operator in ("in", "not in") and not isinstance(wanted, list):
                    raise _ShoperError(400, "invalid_request", f"filters: {operator!r} needs a list for {name}")
        matches = _matcher(filters)
        matching = sorted((r for r in records if matches(r)), key=lambda r: int(r[key]))
        pages = math.ceil(len(matching) / limit)
        chunk = matching[(page - 1) * limit: page * limit]
        return self.json_response(200, {"count": str(len(matching)), "pages": pages, "page": page, "list": chunk})

    # --- routes ----------------------------------------------------------------------------

    @route("POST", PREFIX + "/auth")
    def auth(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("authorization", "")
        login = password = None
        if header.lower().startswith("basic "):
            try:
                login, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except ValueError:
                login = None
        if login is None:
            return self.shoper_error(400, "invalid_request", "Missing client credentials (HTTP basic auth)")
        if login != SANDBOX_LOGIN or password != SANDBOX_PASSWORD:
            return self.shoper_error(401, "auth_failure", "Invalid user credentials or no access to the API")
        return self.json_response(200, {"access_token": self.issue_token(TOKEN_TTL), "expires_in": TOKEN_TTL,
                                        "token_type": "bearer"})

    @route("GET", PREFIX + "/orders")
    def list_orders(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(request, list(self.orders.values()), "order_id"))

    def _order_or_error(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None:
            raise _ShoperError(404, "invalid_request", f"Order {order_id} does not exist")
        return order

    @route("GET", PREFIX + "/orders/{order_id}")
    def get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        return self._guarded(lambda: self.json_response(200, self._order_or_error(order_id)))

    @route("PUT", PREFIX + "/orders/{order_id}")
    def update_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            order = self._order_or_error(order_id)
            body = self._body(request)
            for name in ("notes_priv", "notes_pub", "notes"):
                if name in body:
                    if not isinstance(body[name], str):
                        raise _ShoperError(400, "invalid_request", f"{name}: must be a string")
                    if body[name] != order.get(name):
                        self.applied.append({"kind": "notes", "order": int(order_id), "field": name,
                                             "added": body[name][len(order.get(name) or ""):].strip()})
                        order[name] = body[name]
            if "status_id" in body:
                self._set_status(order, str(body["status_id"]), by_retsync=True)
            return self.json_response(200, 1)

        return self._guarded(act)

    @route("POST", PREFIX + "/orders")
    def create_order(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            body = self._body(request)
            for name in ("status_id", "payment_id", "shipping_id"):
                if not str(body.get(name) or "").strip():
                    raise _ShoperError(400, "invalid_request", f"{name}: this field is required")
            status = str(body["status_id"])
            if status not in self.statuses:
                raise _ShoperError(400, "invalid_request", f"status_id: status {status} does not exist")
            order_id = max(self.orders) + 1
            order = self.data.new_order(random.Random(order_id), order_id, datetime.now(timezone.utc), status)
            order.update({"origin": "4", "email": str(body.get("email") or ""), "shipping_cost": "0.00",
                          "payment_id": str(body["payment_id"]), "shipping_id": str(body["shipping_id"]),
                          "notes": str(body.get("notes") or ""), "notes_priv": str(body.get("notes_priv") or ""),
                          "notes_pub": str(body.get("notes_pub") or "")})
            if str(body.get("currency_id") or "") in {c["currency_id"] for c in CURRENCIES}:
                order["currency_id"] = str(body["currency_id"])
            for part in ("billing_address", "delivery_address"):
                if isinstance(body.get(part), dict):
                    order[part] = {**order[part], **{k: str(v) for k, v in body[part].items()}}
            self._stamp(order)
            self.orders[order_id] = order
            self.products[order_id] = []
            self.data.total(order)
            self.applied.append({"kind": "order", "order": order_id, "status": status})
            return self.json_response(200, order_id)

        return self._guarded(act)

    @route("GET", PREFIX + "/order-products")
    def list_products(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(
            request, [p for products in self.products.values() for p in products], "id"))

    @route("POST", PREFIX + "/order-products")
    def create_product(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            body = self._body(request)
            order = self._order_or_error(str(body.get("order_id") or ""))
            quantity, price = _number(body.get("quantity")), _number(body.get("price"))
            if quantity is None or quantity <= 0 or price is None or price < 0:
                raise _ShoperError(400, "invalid_request", "quantity and price: positive numbers are required")
            pid = self.data.next_id("product")
            product = {"id": str(pid), "order_id": order["order_id"], "product_id": str(body.get("product_id") or 0),
                       "stock_id": str(body.get("stock_id") or 0), "price": money(price), "discount_perc": "0.00",
                       "quantity": str(quantity), "name": str(body.get("name") or ""),
                       "code": str(body.get("code") or ""), "pkwiu": str(body.get("pkwiu") or ""), "option": "",
                       "ean": "",
                       "unit": "szt.", "unit_fp": "0"}
            self.products.setdefault(int(order["order_id"]), []).append(product)
            self.data.total(order)
            self.applied.append({"kind": "product", "order": int(order["order_id"]), "name": product["name"],
                                 "quantity": product["quantity"]})
            return self.json_response(200, pid)

        return self._guarded(act)

    @route("GET", PREFIX + "/order-transactions")
    def list_transactions(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(request, list(self.transactions.values()), "transaction_id"))

    @route("GET", PREFIX + "/order-refunds")
    def list_refunds(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(request, list(self.refunds.values()), "refund_id"))

    @route("GET", PREFIX + "/order-refunds/{refund_id}")
    def get_refund(self, request: httpx.Request, refund_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            refund = self.refunds.get(int(refund_id)) if refund_id.isdigit() else None
            if refund is None:
                raise _ShoperError(404, "invalid_request", f"Order refund {refund_id} does not exist")
            return self.json_response(200, refund)

        return self._guarded(act)

    @route("POST", PREFIX + "/order-refunds")
    def create_refund(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            body = self._body(request)
            for name in ("transaction_id", "currency_id", "currency_value", "status"):
                if body.get(name) in (None, ""):
                    raise _ShoperError(400, "invalid_request", f"{name}: this field is required")
            tid = int(_number(body["transaction_id"]) or 0)
            if tid not in self.transactions:
                raise _ShoperError(400, "invalid_request", f"transaction_id: transaction {tid} does not exist")
            amount = _number(body["currency_value"])
            if amount is None or amount <= 0:
                raise _ShoperError(400, "invalid_request", "currency_value: must be greater than zero")
            status = str(body["status"])
            if status not in ("1", "2", "3", "4"):
                raise _ShoperError(400, "invalid_request", "status: one of 1, 2, 3, 4")
            comment = str(body.get("comment") or "")
            if len(comment) > 256:
                raise _ShoperError(400, "invalid_request", "comment: at most 256 characters")
            if amount > self._left(tid):
                raise _ShoperError(400, "invalid_request", "currency_value: more than is left to refund on the "
                                   "transaction")
            refund = self.data.add_refund(tid, amount, status, comment=comment,
                                      description=str(body.get("status_description") or ""))
            self.applied.append({"kind": "refund", "order": int(refund["order_id"]), "refund": int(refund["refund_id"]),
                                 "amount": refund["currency_value"], "status": status, "transaction": tid,
                                 "comment": comment})
            return self.json_response(200, int(refund["refund_id"]))

        return self._guarded(act)

    @route("PUT", PREFIX + "/order-refunds/{refund_id}")
    def update_refund(self, request: httpx.Request, refund_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            refund = self.refunds.get(int(refund_id)) if refund_id.isdigit() else None
            if refund is None:
                raise _ShoperError(404, "invalid_request", f"Order refund {refund_id} does not exist")
            body = self._body(request)
            if "status" in body:
                status = str(body["status"])
                if status not in ("1", "2", "3", "4"):
                    raise _ShoperError(400, "invalid_request", "status: one of 1, 2, 3, 4")
                if status != refund["status"]:
                    self.applied.append({"kind": "refund_status", "refund": int(refund_id),
                                         "order": int(refund["order_id"]), "from": refund["status"], "to": status})
                    refund["status"] = status
            return self.json_response(200, 1)

        return self._guarded(act)

    @route("GET", PREFIX + "/statuses")
    def list_statuses(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(request, list(self.statuses.values()), "status_id"))

    @route("GET", PREFIX + "/currencies")
    def list_currencies(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._list(request, [dict(c) for c in CURRENCIES], "currency_id"))
