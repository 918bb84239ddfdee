"""The template channel's sandbox: its API (README.md, "The API") on `retsync.kit.emulator.Emulator`.

Written from the API's contract, not from the connector: a sandbox that answers what the connector expects lets
every test pass against a channel that answers otherwise. The base gives routing, the fault switches the suites
flip (503s, timeouts, broken bodies, a lost answer) and the request log; this module holds the routes, the
channel's rules (what it refuses, with which error), and the hooks the suites reach into: `add_odd_return`,
`add_poison_return`, `acts_applied`, and for the back-office half `held_returns` and `panel_decide`.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY

from retsync_connector_template.sandbox_data import CURRENCY, TemplateData, buyer, cents, money, stamp

SANDBOX_API_KEY = "tpl_sandbox_3c9e1f7a2b5d"
MAX_PER_PAGE = 100
MAX_IDS = 100
OPEN = ("requested", "in_transit", "received")
FINAL = ("refunded", "rejected", "closed")
"""A decision on a return in one of these is refused (409 return_closed); any other status, known or not, is open."""
DECISION_WORDS = ("refund", "refund_keep_item", "reject")
PANEL_WORDS = {"accept": "approve", "reject": "deny", "keep": "refund_keep", "repair": "repair",
               "exchange": "replace", "cancel": "cancel"}
"""What the merchant picks in the back office's panel, by the unified decision it stands for."""


class ApiProblem(Exception):
    """An error answer in the API's shape: `{"error": {"code": ..., "message": ...}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def problems(handler: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
    """Answer an `ApiProblem` raised by a route as the API's error body."""

    @functools.wraps(handler)
    def answer(self: TemplateEmulator, request: httpx.Request, **params: str) -> httpx.Response:
        try:
            return handler(self, request, **params)
        except ApiProblem as problem:
            return self.json_response(problem.status, {"error": {"code": problem.code, "message": problem.message}})

    return answer


def _now() -> str:
    return stamp(datetime.now(timezone.utc))


@dataclass
class TemplateEmulator(Emulator):
    """A channel holding `n_returns` returns (seeded by `sandbox_data`), its decisions and its back office."""

    n_returns: int = 60
    applied: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int | None) -> TemplateEmulator:
        """The sandbox `Connector.sandbox` hands out: the default size, or about `returns` returns."""
        return cls(seed=seed) if returns is None else cls(seed=seed, n_returns=max(10, returns))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = TemplateData(seed=self.seed, size=self.n_returns)
        self.orders, self.returns = self.data.orders, self.data.returns
        self.decisions: dict[str, list[dict[str, Any]]] = {}
        self.held: dict[str, dict[str, Any]] = {}
        self._numbers = itertools.count(1)
        self._extra = itertools.count(90_000)

    # --- the API's rules for every request ------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("x-api-key") == SANDBOX_API_KEY:
            return None
        return self.json_response(401, {"error": {"code": "unauthorized", "message": "missing or unknown API key"}})

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"error": {"code": "not_found", "message": f"no route {request.url.path}"}})

    def malformed_body(self) -> bytes:
        return b'{"returns": [{"id": "R-1", "status": "requested", "created_at": '

    # --- returns and orders ---------------------------------------------------------------------

    @route("GET", "/v1/returns")
    @problems
    def list_returns(self, request: httpx.Request) -> httpx.Response:
        """Returns updated at or after `updated_since`, oldest update first, `per_page` a page."""
        since = _since(request.url.params.get("updated_since"))
        page = _number(request.url.params.get("page", "1"), "page", 1, 10**6)
        per_page = _number(request.url.params.get("per_page", "50"), "per_page", 1, MAX_PER_PAGE)
        with self.lock:
            matching = sorted((r for r in self.returns.values() if since is None or r["updated_at"] >= since),
                              key=lambda r: (r["updated_at"], r["id"]))
            chosen = matching[(page - 1) * per_page:page * per_page]
            return self.json_response(200, {"returns": chosen})

    @route("GET", "/v1/orders")
    @problems
    def list_orders(self, request: httpx.Request) -> httpx.Response:
        """The orders named in `ids` (at most 100); ids the channel does not know are left out."""
        ids = _ids(request.url.params.get("ids"))
        with self.lock:
            return self.json_response(200, {"orders": [self.orders[i] for i in ids if i in self.orders]})

    # --- decisions ------------------------------------------------------------------------------

    @route("GET", "/v1/returns/{return_id}/decisions")
    @problems
    def decisions_of(self, request: httpx.Request, return_id: str) -> httpx.Response:
        with self.lock:
            self._return(return_id)
            return self.json_response(200, {"decisions": self.decisions.get(return_id, [])})

    @route("POST", "/v1/returns/{return_id}/decisions")
    @problems
    def decide(self, request: httpx.Request, return_id: str) -> httpx.Response:
        """One decision on any lines of one return: one refund (or rejection) for all of them."""
        body = _body(request)
        with self.lock:
            record = self._return(return_id)
            key, word, lines = self._check_decision(record, body)
            refund = sum(cents(self._line(record, line_id).get("unit_price")) * quantity
                         for line_id, quantity in lines) if word != "reject" else None
            decision = {"id": f"D-{next(self._numbers)}", "key": key, "return_id": return_id, "decision": word,
                        "note": body.get("note"), "lines": [{"line_id": i, "quantity": q} for i, q in lines],
                        "refund_amount": money(refund) if refund is not None else None, "created_at": _now()}
            self.decisions.setdefault(return_id, []).append(decision)
            self._apply(record, decision)
            return self.json_response(201, {"decision": decision})

    def _check_decision(self, record: dict[str, Any], body: dict[str, Any]) -> tuple[str, str, list[tuple[str, int]]]:
        key, word, note = body.get("key"), body.get("decision"), body.get("note")
        if not isinstance(key, str) or not key.strip():
            raise ApiProblem(422, "invalid_request", "key is required")
        if word not in DECISION_WORDS:
            raise ApiProblem(422, "invalid_request", f"decision must be one of {', '.join(DECISION_WORDS)}")
        if word == "reject" and not (isinstance(note, str) and note.strip()):
            raise ApiProblem(422, "note_required", "a rejection is shown to the buyer: note is required")
        if any(earlier["key"] == key for earlier in self.decisions.get(record["id"], [])):
            raise ApiProblem(409, "duplicate_key", f"a decision with key {key} exists on this return")
        if record["status"] in FINAL:
            raise ApiProblem(409, "return_closed", f"return {record['id']} is {record['status']}")
        lines = [(str(line.get("line_id")), line.get("quantity")) for line in body.get("lines") or []
                 if isinstance(line, dict)]
        if not lines:
            raise ApiProblem(422, "invalid_request", "lines must name at least one return line")
        for line_id, quantity in lines:
            line = self._line(record, line_id)
            if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= line["quantity"]:
                raise ApiProblem(422, "invalid_quantity", f"line {line_id} holds {line['quantity']} items")
            if line.get("decision"):
                raise ApiProblem(409, "line_decided", f"line {line_id} is decided already ({line['decision']})")
        return key, word, [(line_id, int(quantity)) for line_id, quantity in lines]

    def _apply(self, record: dict[str, Any], decision: dict[str, Any]) -> None:
        """The decision's effect: each line decided, the return refunded or rejected once every line is."""
        for line in decision["lines"]:
            self._line(record, line["line_id"])["decision"] = decision["decision"]
            self.applied.append((decision["decision"], record["id"], line["line_id"]))
        if decision["refund_amount"] is not None:
            earlier = cents((record.get("refund") or {}).get("amount"))
            record["refund"] = {"amount": money(earlier + cents(decision["refund_amount"])),
                                "refunded_at": decision["created_at"]}
        if all(line.get("decision") for line in record["lines"]):
            record["status"] = "refunded" if record.get("refund") else "rejected"
        record["updated_at"] = decision["created_at"]

    def _return(self, return_id: str) -> dict[str, Any]:
        record = self.returns.get(return_id)
        if record is None:
            raise ApiProblem(404, "return_not_found", f"no return {return_id}")
        return record

    @staticmethod
    def _line(record: dict[str, Any], line_id: str) -> dict[str, Any]:
        found = next((line for line in record["lines"] if line["id"] == line_id), None)
        if found is None:
            raise ApiProblem(422, "unknown_line", f"return {record['id']} has no line {line_id}")
        return found

    # --- the back office: other channels' returns held for the merchant ------------------------

    @route("POST", "/v1/held-returns")
    @problems
    def hold(self, request: httpx.Request) -> httpx.Response:
        body = _body(request)
        key, held = body.get("key"), body.get("return")
        if not isinstance(key, str) or not key.strip() or not isinstance(held, dict):
            raise ApiProblem(422, "invalid_request", "key and return are required")
        with self.lock:
            if any(existing["key"] == key for existing in self.held.values()):
                raise ApiProblem(409, "duplicate_key", f"a held return with key {key} exists")
            record = {"id": f"H-{next(self._numbers)}", "key": key, "status": "open",
                      "source": str(body.get("source") or ""), "return": held, "created_at": _now(),
                      "decision": None}
            self.held[record["id"]] = record
            return self.json_response(201, {"held_return": record})

    @route("GET", "/v1/held-returns")
    @problems
    def list_held(self, request: httpx.Request) -> httpx.Response:
        """Held returns by `key` (one) or by `ids` (at most 100)."""
        key = request.url.params.get("key")
        with self.lock:
            if key is not None:
                found = [held for held in self.held.values() if held["key"] == key]
            else:
                found = [self.held[i] for i in _ids(request.url.params.get("ids")) if i in self.held]
            return self.json_response(200, {"held_returns": found})

    def held_returns(self) -> dict[str, str]:
        with self.lock:
            return {held["key"]: held["id"] for held in self.held.values()}

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """What the merchant does in the back office: pick a decision on the held return, maybe with a note."""
        with self.lock:
            held = self.held[reference]
            held["status"] = "decided"
            held["decision"] = {"kind": PANEL_WORDS[kind], "note": note, "decided_at": _now(), "lines": None}

    # --- hooks of the suites --------------------------------------------------------------------

    def acts_applied(self) -> list[tuple[str, ...]]:
        with self.lock:
            return list(self.applied)

    def add_odd_return(self) -> str:
        """A return in a status and with a reason code the API's next version added, every optional field left out."""
        with self.lock:
            number = next(self._extra)
            order = {"id": f"O-{number}", "lines": [{"id": f"OL-{number}-1", "quantity": 1}]}
            self.orders[order["id"]] = order
            now = _now()
            record = {"id": f"R-{number}", "order_id": order["id"], "status": "awaiting_inspection",
                      "reason_code": "arrived_too_late_v2", "created_at": now, "updated_at": now,
                      "lines": [{"id": f"RL-{number}-1", "order_line_id": f"OL-{number}-1", "quantity": 1}]}
            self.returns[record["id"]] = record
            return record["id"]

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A return as a broken client of the channel can send one: 1e30 items, or an overlong postcode and phone."""
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}; one of {', '.join(self.POISONS)}")
        with self.lock:
            number = next(self._extra)
            now = _now()
            record = {"id": f"R-{number}", "order_id": None, "status": "requested", "reason_code": "other",
                      "currency": CURRENCY, "created_at": now, "updated_at": now,
                      "buyer": buyer(self.data.rng("poison", number)),
                      "lines": [{"id": f"RL-{number}-1", "sku": "TS-100", "quantity": 1, "unit_price": "19.95"}]}
            if poison == "quantity":
                record["lines"][0]["quantity"] = POISON_QUANTITY
            else:
                record["buyer"].update(postcode=POISON_POSTCODE, phone=POISON_PHONE)
            self.returns[record["id"]] = record
            return record["id"]


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        raise ApiProblem(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiProblem(422, "invalid_request", "the body must be a JSON object")
    return body


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(400, "invalid_parameter", "updated_since must be an ISO 8601 time") from None
    return stamp(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))


def _number(value: str, name: str, lowest: int, highest: int) -> int:
    if not value.isdigit() or not lowest <= int(value) <= highest:
        raise ApiProblem(400, "invalid_parameter", f"{name} must be a whole number from {lowest} to {highest}")
    return int(value)


def _ids(value: str | None) -> list[str]:
    ids = [part for part in (value or "").split(",") if part]
    if not ids or len(ids) > MAX_IDS:
        raise ApiProblem(400, "invalid_parameter", f"ids must name 1 to {MAX_IDS} ids, comma-separated")
    return ids
