"""Channable's order-connection API (returns, and the orders they name) as a sandbox, on `retsync.kit.emulator`.

Written from the contract in `shared/specs/channable/` (channable-returns-api-openapi.yml and NOTES.md), not from
the connector; `tests/channable/test_emulator_spec.py` validates its answers against the OpenAPI file. It holds:

- `GET  /v1/companies/{company_id}/projects/{project_id}/returns`: newest first (by `created`), filtered by
  `last_modified_after` / `last_modified_before` / `start_date` / `end_date`, paged by `offset` and `limit`
  (1..100); `total` counts the returns of this page (the spec's examples).
- `GET  .../returns/{return_id}`, `POST .../returns/{return_id}/status` (`ChannableApiReturnsStatus`; a return
  already in that status, or already decided, answers 409 with a `ChannableErrorResponse`; a status outside the
  enum, 422 FastAPI style) and `POST .../returns/test` (a test return for a Channable order id).
- `GET  /v2/companies/{company_id}/projects/{project_id}/orders/{order_id}` (`{order, events}`) and the v2 list.
- The rate limit: a leaky bucket per company, 4 requests a second with a burst of 200; beyond it HTTP 429.
- A static API token (`Authorization: Bearer ...`); a wrong company or project answers 403.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY
from retsync_connectors.channable.sandbox_data import COMPANY_ID, PROJECT_ID, ChannableData, stamp

SANDBOX_TOKEN = "chn_sandbox_5f1d8e2a9c7b4e60"
V1 = "/v1/companies/{company_id}/projects/{project_id}"
V2 = "/v2/companies/{company_id}/projects/{project_id}"
WRITABLE = ("accepted", "rejected", "repaired", "keeps", "exchanged", "cancelled")
"""`ChannableApiReturnsStatus`: what `POST .../returns/{id}/status` takes."""
OPEN = ("new", "manual", "processing")
"""Statuses a return can still be decided from; one in WRITABLE is decided, and a change answers 409."""
BURST = 200
LEAK_PER_SECOND = 4.0


class ApiProblem(Exception):
    """An error answer: a `ChannableErrorResponse`, or for 422 FastAPI's `HTTPValidationError`."""

    def __init__(self, status: int, message: str, loc: list[str | int] | None = None, kind: str = "value_error",
                 value: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.loc, self.kind, self.value = status, message, loc, kind, value

    def body(self) -> dict[str, Any]:
        if self.status == 422:
            return {"detail": [{"loc": self.loc or ["body"], "msg": self.message, "type": self.kind,
                                "input": self.value}]}
        return {"status": "error", "message": self.message}


def problems(handler: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
    @functools.wraps(handler)
    def answer(self: ChannableEmulator, request: httpx.Request, **params: str) -> httpx.Response:
        try:
            _company_and_project(params)
            return handler(self, request, **params)
        except ApiProblem as problem:
            return self.json_response(problem.status, problem.body())

    return answer


def _now() -> str:
    return stamp(datetime.now(timezone.utc))


@dataclass
class ChannableEmulator(Emulator):
    """One Channable company and project holding `n_returns` returns (seeded by `sandbox_data`)."""

    n_returns: int = 120
    burst: int = BURST
    leak_per_second: float = LEAK_PER_SECOND
    applied: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int | None) -> ChannableEmulator:
        """The default sandbox, or about `returns` returns (a large one, for the demo and benchmarks, with a
        bucket that big: the pacing of the real limit would make a benchmark measure the limit)."""
        if returns is None:
            return cls(seed=seed)
        size = max(10, returns)
        return cls(seed=seed, n_returns=size, burst=max(BURST, size * 4))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = ChannableData(seed=self.seed, size=self.n_returns)
        self.orders, self.returns = self.data.orders, self.data.returns
        self._extra = itertools.count(900_000)
        self._level = 0.0
        self._leaked_at = time.monotonic()

    # --- every request --------------------------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {SANDBOX_TOKEN}":
            return self.json_response(401, {"status": "error", "message": "Invalid or revoked API token"})
        with self.lock:  # the leaky bucket, per company
            now = time.monotonic()
            self._level = max(0.0, self._level - (now - self._leaked_at) * self.leak_per_second)
            self._leaked_at = now
            if self._level + 1 > self.burst:
                return self.json_response(429, {"status": "error", "message": "Too many requests"})
            self._level += 1
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"status": "error", "message": "Not Found"})

    def malformed_body(self) -> bytes:
        return b'{"total": 100, "error_count": 0, "returns": [{"id": 1, "project_id": 10001, "created": '

    # --- returns ----------------------------------------------------------------------------------

    @route("GET", V1 + "/returns")
    @problems
    def list_returns(self, request: httpx.Request, company_id: str, project_id: str) -> httpx.Response:
        params = request.url.params
        limit = _integer(params.get("limit", "100"), "limit", 1, 100)
        offset = _integer(params.get("offset", "0"), "offset", 0, None)
        after, before = _moment(params, "last_modified_after"), _moment(params, "last_modified_before")
        start, end = _moment(params, "start_date"), _moment(params, "end_date")
        with self.lock:
            chosen = [r for r in self.returns.values()
                      if (after is None or _parsed(r["modified"]) >= after)
                      and (before is None or _parsed(r["modified"]) <= before)
                      and (start is None or _parsed(r["created"]) >= start)
                      and (end is None or _parsed(r["created"]) <= end)]
            chosen.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
            page = chosen[offset:offset + limit]
            return self.json_response(200, {"total": len(page), "error_count": sum(r["error"] for r in page),
                                            "returns": page})

    @route("GET", V1 + "/returns/{return_id}")
    @problems
    def single_return(self, request: httpx.Request, company_id: str, project_id: str,
                      return_id: str) -> httpx.Response:
        with self.lock:
            return self.json_response(200, {"return": self._return(return_id)})

    @route("POST", V1 + "/returns/{return_id}/status")
    @problems
    def update_status(self, request: httpx.Request, company_id: str, project_id: str,
                      return_id: str) -> httpx.Response:
        body = _body(request)
        status = body.get("status")
        if "status" not in body:
            raise ApiProblem(422, "Field required", ["body", "status"], "missing", body)
        if status not in WRITABLE:
            raise ApiProblem(422, "Input should be " + ", ".join(f"'{s}'" for s in WRITABLE), ["body", "status"],
                             "enum", status)
        with self.lock:
            record = self._return(return_id)
            if record["status"] == status:
                raise ApiProblem(409, f"Return {record['id']} already has status {status}")
            if record["status"] not in OPEN:
                raise ApiProblem(409, f"Return status cannot be changed from {record['status']} to {status}")
            now = _now()
            record["log"].append({"timestamp": now, "level": "info", "message": f"Status changed to {status}"})
            record["status"], record["modified"] = status, now
            self.applied.append((status, str(record["id"])))
            return self.json_response(200, {"status": "success", "message": f"Return status updated to {status}"})

    @route("POST", V1 + "/returns/test")
    @problems
    def create_test_return(self, request: httpx.Request, company_id: str, project_id: str) -> httpx.Response:
        body = _body(request)
        order_id = body.get("order_id")
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            raise ApiProblem(422, "Input should be a valid integer", ["body", "order_id"], "int_type", order_id)
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise ApiProblem(404, f"Order {order_id} not found")
            number = next(self._extra)
            record = self.data.return_of(self.data.rng("test", number), number, order, order["data"]["products"][0],
                                         status="new", test=True)
            record["created"] = record["modified"] = record["retrieved_at"] = _now()
            self.returns[number] = record
            return self.json_response(201, {"status": "success", "message": "Test return created", "data": [
                {"status": "success", "message": f"Test return {number} created", "id": str(number),
                 "data": {"return_id": number}}]})

    def _return(self, return_id: str) -> dict[str, Any]:
        number = _integer(return_id, "return_id", None, None, where="path")
        record = self.returns.get(number)
        if record is None:
            raise ApiProblem(404, f"Return {number} not found")
        return record

    # --- orders (v2) ------------------------------------------------------------------------------

    @route("GET", V2 + "/orders/{order_id}")
    @problems
    def single_order(self, request: httpx.Request, company_id: str, project_id: str, order_id: str) -> httpx.Response:
        number = _integer(order_id, "order_id", None, None, where="path")
        with self.lock:
            order = self.orders.get(number)
            if order is None:
                raise ApiProblem(404, f"Order {number} not found")
            return self.json_response(200, {"order": order, "events": []})

    @route("GET", V2 + "/orders")
    @problems
    def list_orders(self, request: httpx.Request, company_id: str, project_id: str) -> httpx.Response:
        params = request.url.params
        limit = _integer(params.get("limit", "100"), "limit", 1, 100)
        offset = _integer(params.get("offset", "0"), "offset", 0, None)
        after = _moment(params, "last_modified_after")
        with self.lock:
            chosen = sorted((o for o in self.orders.values() if after is None or _parsed(o["modified"]) >= after),
                            key=lambda o: (o["created"], o["id"]), reverse=True)[offset:offset + limit]
            return self.json_response(200, {"total": len(chosen), "error_count": 0, "orders": chosen})

    # --- hooks of the suites ----------------------------------------------------------------------

    def acts_applied(self) -> list[tuple[str, ...]]:
        with self.lock:
            return list(self.applied)

    def add_odd_return(self) -> str:
        """A return in a status Channable added later, from a marketplace not seen before, with every field the
        schema leaves optional left out (no `data.customer`, no `data.address`, an item of a quantity only)."""
        with self.lock:
            number = next(self._extra)
            now = _now()
            self.returns[number] = {
                "id": number, "project_id": PROJECT_ID, "created": now, "modified": now, "error": False,
                "channel_id": f"ODD-{number}", "channel_name": "kaufland_v2", "log": [], "status": "awaiting_pickup",
                "obfuscated": False, "data": {"item": {"quantity": 1, "reason": "arrived_too_late_v2"},
                                              "meta": {"channel_order_id": f"ODD-O-{number}"}}}
            return str(number)

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A return as a broken marketplace feed can send one: 1e30 items, or an overlong postcode and phone."""
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}; one of {', '.join(self.POISONS)}")
        with self.lock:
            number = next(self._extra)
            order = next(iter(self.orders.values()))
            record = self.data.return_of(self.data.rng("poison", number), number, order, order["data"]["products"][0],
                                         status="new")
            record["created"] = record["modified"] = _now()
            if poison == "quantity":
                record["data"]["item"]["quantity"] = POISON_QUANTITY
            else:
                record["data"]["address"].update(zip_code=POISON_POSTCODE, phone=POISON_PHONE)
            self.returns[number] = record
            return str(number)


def _company_and_project(params: dict[str, str]) -> None:
    for name, expected in (("company_id", COMPANY_ID), ("project_id", PROJECT_ID)):
        if name in params:
            number = _integer(params[name], name, None, None, where="path")
            if number != expected:
                raise ApiProblem(403, f"You are not allowed to access {name.split('_')[0]} {number}")


def _integer(value: str, name: str, lowest: int | None, highest: int | None, where: str = "query") -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiProblem(422, "Input should be a valid integer, unable to parse string as an integer", [where, name],
                         "int_parsing", value) from None
    if lowest is not None and number < lowest:
        raise ApiProblem(422, f"Input should be greater than or equal to {lowest}", [where, name],
                         "greater_than_equal", value)
    if highest is not None and number > highest:
        raise ApiProblem(422, f"Input should be less than or equal to {highest}", [where, name],
                         "less_than_equal", value)
    return number


def _moment(params: httpx.QueryParams, name: str) -> datetime | None:
    """A date or date-time query parameter, read as UTC where it names no zone."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return _parsed(raw)
    except ValueError:
        raise ApiProblem(422, "Input should be a valid date or datetime", ["query", name], "datetime_parsing",
                         raw) from None


def _parsed(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        raise ApiProblem(422, "JSON decode error", ["body"], "json_invalid") from None
    if not isinstance(body, dict):
        raise ApiProblem(422, "Input should be a valid dictionary or object", ["body"], "model_attributes_type", body)
    return body
