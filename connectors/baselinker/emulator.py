"""BaseLinker's sandbox: `POST /connector.php` with form fields `method` and `parameters` (JSON), `X-BLToken`,
written from shared/specs/baselinker/NOTES.md, not from the connector.

Its rules, as the contract states them: every answer is HTTP 200 with `status` SUCCESS or ERROR (`error_code`,
`error_message`); 100 requests a minute per token, and the 101st BLOCKS the account for `block_seconds`
(every request then answers ERROR, never 429); the return journal answers the last three days only;
`setOrderReturnRefund` replaces the amount (it moves no money); statuses are the account's own ids. `clock`
(the minute) and `wall` (unix time of the journal) are swappable, so a test can run an hour of pacing in no time.
Error codes are the sandbox's own (NOTES: the catalogue is not verified): ERROR_BAD_TOKEN,
ERROR_USER_ACCOUNT_BLOCKED, ERROR_UNKNOWN_METHOD, ERROR_RETURN_NOT_FOUND, ERROR_STATUS_NOT_FOUND,
ERROR_BAD_PARAMETERS.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from retsync.kit.emulator import Emulator, TruncateBody, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY
from retsync_connectors.baselinker.sandbox_data import FULFILMENT, REASONS, STATUSES, BaseLinkerData

SANDBOX_TOKEN = "3001234-3005678-SANDBOX0BL0TOKEN0Q7W2E9R4T6Y1U8I3"
SANDBOX_TABLE: dict[str, Any] = {
    "api_token": SANDBOX_TOKEN,
    "requests_per_second": 500,  # the sandbox answers at once; the minute's budget below still holds
    "requests_per_minute": 99,  # the most allowed: the contract suite runs two channels of one token per test
    "statuses": {"1001": "requested", "1002": "in_transit", "1003": "received", "1004": "decided",
                 "1005": "decided", "1006": "refunded", "1007": "closed", "1008": "cancelled", "1009": "decided",
                 "1010": "decided", "1011": "refunded"},
    "decision_statuses": {"accept": 1004, "reject": 1005, "repair": 1009, "exchange": 1010, "keep": 1011,
                          "cancel": 1008},
    "refund_on": ["accept", "keep"],
}
"""The `[channels.<name>]` table of the sandbox account (`BaseLinkerConnector.sandbox_channel`)."""
LIMIT = 100
WINDOW = 60.0
PAGE = 100
JOURNAL_DAYS = 3
READS = frozenset({"getOrderReturns", "getOrderReturnStatusList", "getOrderReturnReasonsList",
                   "getOrderReturnJournalList", "getOrders", "getOrderReturnProductStatuses"})


class Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class BaseLinkerEmulator(Emulator):
    n_returns: int = 30
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    block_seconds: float = 600.0
    applied: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int | None) -> BaseLinkerEmulator:
        return cls(seed=seed) if returns is None else cls(seed=seed, n_returns=max(10, returns))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = BaseLinkerData(seed=self.seed, size=self.n_returns)
        self.orders, self.returns, self.logs = self.data.orders, self.data.returns, self.data.logs
        self.statuses = {sid: {"id": sid, "name": name, "name_for_customer": public, "color": color}
                         for sid, name, public, color in STATUSES}
        self.refunds: dict[int, dict[str, Any]] = {}
        self.sent: deque[float] = deque()
        self.blocked_until: float | None = None
        self.blocks = 0
        self.most_in_a_minute = 0
        self._lose: set[str] = set()
        self._log_ids = itertools.count(len(self.logs) + 1)
        self._extra = itertools.count(90_000)

    # --- the API's rules for every request ------------------------------------------------------

    @staticmethod
    def api_method(request: httpx.Request) -> str:
        form = parse_qs((request.content or b"").decode("utf-8", "replace"))
        return (form.get("method") or [""])[0]

    def changes_state(self, request: httpx.Request) -> bool:
        """Every call is a POST: the get* methods read, the set* ones write (a `lost` fault hits writes only)."""
        return self.api_method(request) not in READS

    def lose_answer_of(self, method: str) -> None:
        """The next call of `method` is carried out and its answer never arrives."""
        with self.lock:
            self._lose.add(method)

    def _rate(self) -> bool:
        """Count the request against the token's minute; False when the account is (now) blocked."""
        with self.lock:
            now = self.clock()
            if self.blocked_until is not None and now < self.blocked_until:
                return False
            self.blocked_until = None
            self.sent.append(now)
            while self.sent and self.sent[0] <= now - WINDOW:
                self.sent.popleft()
            self.most_in_a_minute = max(self.most_in_a_minute, len(self.sent))
            if len(self.sent) > LIMIT:
                self.blocks += 1
                self.blocked_until = now + self.block_seconds
                self.sent.clear()
                return False
            return True

    def malformed_body(self) -> bytes:
        return b'{"status":"SUCCESS","returns":[{"return_id":40001,"order_id":'

    @staticmethod
    def error(code: str, message: str) -> httpx.Response:
        return Emulator.json_response(200, {"status": "ERROR", "error_code": code, "error_message": message})

    @route("POST", "/connector.php")
    def connector(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-bltoken") != SANDBOX_TOKEN:
            return self.error("ERROR_BAD_TOKEN", "Invalid user token")
        if not self._rate():
            self.count_over_limit()
            return self.error("ERROR_USER_ACCOUNT_BLOCKED",
                              "Query limit exceeded, the account is blocked for a while (100 requests a minute)")
        form = parse_qs((request.content or b"").decode("utf-8", "replace"))
        method = (form.get("method") or [""])[0]
        try:
            params = json.loads((form.get("parameters") or ["{}"])[0])
            if not isinstance(params, dict):
                raise ValueError
        except ValueError:
            return self.error("ERROR_BAD_PARAMETERS", "parameters must be a JSON object")
        handler = getattr(self, f"m_{method}", None) if method else None
        if handler is None:
            return self.error("ERROR_UNKNOWN_METHOD", f"Unknown method {method!r}")
        try:
            with self.lock:
                body = handler(params)
        except Refusal as refusal:
            return self.error(refusal.code, refusal.message)
        response = self.json_response(200, {"status": "SUCCESS", **body})
        with self.lock:
            if method in self._lose:
                self._lose.discard(method)
                raise TruncateBody(response)
        return response

    # --- reads --------------------------------------------------------------------------------

    def m_getOrderReturnStatusList(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"statuses": list(self.statuses.values())}

    def m_getOrderReturnReasonsList(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"return_reasons": [{"return_reason_id": rid, "name": name} for rid, name in REASONS]}

    def m_getOrderReturnProductStatuses(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"order_return_product_statuses": [{"status_id": 1, "name": "Przyjęty"},
                                                  {"status_id": 2, "name": "Odrzucony"}]}

    def m_getOrderReturns(self, params: dict[str, Any]) -> dict[str, Any]:
        """Oldest id first, 100 at most, filtered by return_id, order_id, id_from, date_from, status_id."""
        found = sorted(self.returns.values(), key=lambda r: r["return_id"])
        for key, test in (("return_id", lambda r, v: r["return_id"] == v), ("order_id", lambda r, v: r["order_id"] == v),
                          ("id_from", lambda r, v: r["return_id"] >= v), ("date_from", lambda r, v: r["date_add"] >= v),
                          ("status_id", lambda r, v: r["status_id"] == v)):
            if params.get(key) is not None:
                value = _int(params[key], key)
                found = [r for r in found if test(r, value)]
        return {"returns": found[:PAGE]}

    def m_getOrderReturnJournalList(self, params: dict[str, Any]) -> dict[str, Any]:
        """Entries after `last_log_id` of the last three days, oldest first, 100 at most."""
        after = _int(params.get("last_log_id", 0), "last_log_id")
        horizon = self.wall() - JOURNAL_DAYS * 86400
        kept = [entry for entry in self.logs if entry["id"] > after and entry["date"] >= horizon]
        if params.get("return_id") is not None:
            kept = [entry for entry in kept if entry["return_id"] == _int(params["return_id"], "return_id")]
        return {"logs": kept[:PAGE]}

    def m_getOrders(self, params: dict[str, Any]) -> dict[str, Any]:
        found = sorted(self.orders.values(), key=lambda o: o["order_id"])
        if params.get("order_id") is not None:
            found = [o for o in found if o["order_id"] == _int(params["order_id"], "order_id")]
        if params.get("id_from") is not None:
            found = [o for o in found if o["order_id"] >= _int(params["id_from"], "id_from")]
        return {"orders": found[:PAGE]}

    # --- writes -------------------------------------------------------------------------------

    def _return(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.returns.get(_int(params.get("return_id"), "return_id"))
        if record is None:
            raise Refusal("ERROR_RETURN_NOT_FOUND", f"Return {params.get('return_id')} not found")
        return record

    def _log(self, record: dict[str, Any], log_type: int, object_id: int = 0) -> None:
        self.logs.append({"id": next(self._log_ids), "return_id": record["return_id"], "log_type": log_type,
                          "object_id": object_id, "date": int(self.wall())})

    def _set_status(self, record: dict[str, Any], status_id: int) -> None:
        record["status_id"] = status_id
        record["fulfillment_status"] = FULFILMENT.get(status_id, record["fulfillment_status"])
        record["date_in_status"] = int(self.wall())
        self.applied.append(("status", str(record["return_id"]), str(status_id)))
        self._log(record, 11)

    def m_setOrderReturnStatus(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._return(params)
        status_id = _int(params.get("status_id"), "status_id")
        if status_id not in self.statuses:
            raise Refusal("ERROR_STATUS_NOT_FOUND", f"Return status {status_id} does not exist")
        self._set_status(record, status_id)
        return {}

    def m_setOrderReturnStatuses(self, params: dict[str, Any]) -> dict[str, Any]:
        ids = params.get("return_ids")
        status_id = _int(params.get("status_id"), "status_id")
        if not isinstance(ids, list) or not ids:
            raise Refusal("ERROR_BAD_PARAMETERS", "return_ids must be a list of return ids")
        if status_id not in self.statuses:
            raise Refusal("ERROR_STATUS_NOT_FOUND", f"Return status {status_id} does not exist")
        records = [self._return({"return_id": rid}) for rid in ids]
        for record in records:
            self._set_status(record, status_id)
        return {}

    def m_setOrderReturnFields(self, params: dict[str, Any]) -> dict[str, Any]:
        """The editable fields of addOrderReturn; retsync sends admin_comments only."""
        record = self._return(params)
        editable = {"admin_comments", "reference_number", "email", "phone", "extra_field_1", "extra_field_2",
                    "delivery_fullname", "delivery_address", "delivery_postcode", "delivery_city"}
        changes = {key: value for key, value in params.items() if key != "return_id"}
        if not changes or set(changes) - editable:
            raise Refusal("ERROR_BAD_PARAMETERS", f"no editable field among {sorted(changes)}")
        record.update(changes)
        if "admin_comments" in changes:
            self.applied.append(("comment", str(record["return_id"]), str(changes["admin_comments"])[-80:]))
        self._log(record, 10)
        return {}

    def m_setOrderReturnRefund(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._return(params)
        amount = params.get("order_refund_done")
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0:
            raise Refusal("ERROR_BAD_PARAMETERS", "order_refund_done must be a non-negative amount")
        self.refunds[record["return_id"]] = {
            "order_refund_done": float(amount), "refund_date": params.get("refund_date"),
            "refund_comment": params.get("refund_comment"), "external_refund_id": params.get("external_refund_id")}
        record["refunded"] = True
        self.applied.append(("refund", str(record["return_id"]), f"{float(amount):.2f}"))
        self._log(record, 5)
        return {}

    # --- hooks of the suites --------------------------------------------------------------------

    def acts_applied(self) -> list[tuple[str, ...]]:
        with self.lock:
            return list(self.applied)

    def _new_return(self, **changes: Any) -> dict[str, Any]:
        number = next(self._extra)
        now = int(self.wall())
        order_id = 8_000_000 + number
        self.orders[order_id] = {"order_id": order_id, "date_add": now - 86400, "currency": "PLN",
                                 "products": [{"order_product_id": 990_000 + number, "name": "Sweter", "quantity": 1,
                                               "price_brutto": 120.0}]}
        record = {"return_id": number, "order_id": order_id, "status_id": 1001, "date_add": now,
                  "fulfillment_status": 0, "currency": "PLN",
                  "products": [{"order_product_id": 990_000 + number, "name": "Sweter", "quantity": 1,
                                "price_brutto": 120.0}], **changes}
        self.returns[number] = record
        self._log(record, 1)
        return record

    def add_odd_return(self) -> str:
        """A status id the account's list lacks, a fulfillment_status BaseLinker may add, a reason id unknown, and
        every optional field left out."""
        with self.lock:
            record = self._new_return(status_id=4242, fulfillment_status=9)
            record["products"][0]["return_reason_id"] = 77
            return str(record["return_id"])

    def add_poison_return(self, poison: str = "quantity") -> str:
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}; one of {', '.join(self.POISONS)}")
        with self.lock:
            record = self._new_return()
            if poison == "quantity":
                record["products"][0]["quantity"] = POISON_QUANTITY
            else:
                record.update(delivery_postcode=POISON_POSTCODE, phone=POISON_PHONE)
            return str(record["return_id"])


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise Refusal("ERROR_BAD_PARAMETERS", f"{name} must be a whole number")
    return int(value)
