"""BaseLinker's API, and nothing else: one POST endpoint taking `method` and JSON `parameters`, `X-BLToken`.

Contract: shared/specs/baselinker/NOTES.md. Every answer is JSON with `"status": "SUCCESS"`, or `"status":
"ERROR"` with `error_code` and `error_message` (HTTP 200 either way): those become the kit's errors here, so the
outbox's table decides what they mean. An answer without a `status`, or without the list a method answers, is
`BadPayload` (a garbled page fails and is read again instead of passing as "no returns").

Pacing is not optional: BaseLinker allows 100 requests a minute per token and, past that, blocks the account
for a while instead of answering 429. `TokenPace` holds every request sent with one token from this process (a
channel's pull and decisions, and any other connector of the same account) strictly below that, on a sliding
minute, and below `requests_per_second`; it sits in an httpx request hook, so a retry `ChannelHttp` sends
counts too. Another process using the same token (a second retsync instance) is not seen: give it its own token.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, AuthError, BadPayload, ChannelHttp, Stopped, TransientError
from retsync.kit.payload import obj, text
from retsync.kit.settings import ChannelSettings
from retsync_connectors.baselinker.mapping import numeric_id

log = structlog.get_logger(__name__)

API_URL = "https://api.baselinker.com"
ENDPOINT = "/connector.php"
PAGE_SIZE = 100
"""Returns (and orders, and journal entries) BaseLinker answers per call at most; a shorter answer is the last."""
LIMIT_PER_MINUTE = 100
"""BaseLinker's documented limit per token; the account is blocked (no 429) past it."""
WINDOW = 60.0
READS = frozenset({"getOrderReturns", "getOrderReturnStatusList", "getOrderReturnReasonsList",
                   "getOrderReturnJournalList", "getOrders", "getOrderReturnProductStatuses"})
"""Methods that change nothing: retried by `ChannelHttp` after a timeout or a 5xx like any GET."""
AUTH_CODES = frozenset({"ERROR_BAD_TOKEN", "ERROR_USER_ACCOUNT_BLOCKED_BY_ADMIN"})
TRANSIENT_CODES = frozenset({"ERROR_USER_ACCOUNT_BLOCKED", "ERROR_QUERY_LIMIT_EXCEEDED", "ERROR_INTERNAL",
                             "ERROR_SERVICE_UNAVAILABLE", "ERROR_DATABASE"})
"""Error codes that pass by themselves (a rate block, BaseLinker's own trouble): retried with backoff. The
contract gives no code catalogue (NOTES: "not verified"); these are the codes client authors report, and any
other code fails the decision with its message."""


class TokenPace:
    """At most `per_minute` requests in any `WINDOW` seconds and one every `1 / per_second`, for every request
    sent with one token from this process (`for_token`: the pull, the decisions and a second connector of the same
    account alike). `clock` is swappable (a test's fake clock, moved by the runtime's sleep); a wait the minute's
    budget forces (not the plain spacing) is logged, once a minute, so a slow pull explains itself."""

    _shared: dict[tuple[str, ...], TokenPace] = {}
    _shared_lock = threading.Lock()

    def __init__(self, per_minute: int, per_second: float | None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.per_minute = per_minute
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self.waited = 0.0
        """Seconds spent waiting for the budget (not the spacing) since the last `take_waited`."""

    @classmethod
    def for_token(cls, token: str, base_url: str, state_dir: str, per_minute: int, per_second: float | None
                  ) -> TokenPace:
        """The pace of this token at this host for this daemon's state (the strictest settings any of its
        channels asked for); the token itself is kept only as a hash."""
        key = (hashlib.sha256(token.encode()).hexdigest(), base_url, state_dir)
        with cls._shared_lock:
            pace = cls._shared.get(key)
            if pace is None:
                pace = cls._shared[key] = cls(per_minute, per_second)
            pace.per_minute = min(pace.per_minute, per_minute)
            pace.interval = max(pace.interval, 1.0 / per_second if per_second else 0.0)
            return pace

    def _slot(self) -> tuple[float, float, bool]:
        with self._lock:
            now = self.clock()
            while self._sent and self._sent[0] <= now - WINDOW:
                self._sent.popleft()
            slot = max(now, self._sent[-1] + self.interval) if self._sent else now
            budget = False
            if len(self._sent) >= self.per_minute:
                # the request `per_minute` back must have left the window (a millisecond's margin)
                earliest = self._sent[-self.per_minute] + WINDOW + 0.001
                if earliest > slot:
                    slot, budget = earliest, True
            self._sent.append(slot)
            return now, slot, budget

    def wait(self, channel: str, stop: threading.Event, sleep: Callable[[float], None] | None) -> None:
        """Wait for the next request's slot: with `sleep` where the runtime lends one, else on `stop`."""
        now, slot, budget = self._slot()
        wait = slot - now
        if wait <= 0:
            return
        if budget:
            self.waited += wait
            if self._logged_at is None or now - self._logged_at >= WINDOW:
                self._logged_at = now
                log.info("baselinker_paced", channel=channel, wait_s=round(wait, 2), per_minute=self.per_minute,
                         detail="BaseLinker blocks a token past 100 requests a minute: this pull waits its turn")
        if sleep is not None:
            sleep(wait)
            if stop.is_set():
                raise Stopped()
        elif stop.wait(wait):
            raise Stopped()

    def take_waited(self) -> float:
        waited, self.waited = self.waited, 0.0
        return waited


def _error(body: Mapping[str, Any], method: str) -> Exception:
    code = text(body.get("error_code")) or "ERROR"
    message = f"{method}: {code}: {text(body.get('error_message')) or 'no message'}"
    if code in AUTH_CODES:
        return AuthError(f"BaseLinker refused the API token ({message}); check api_token")
    if code in TRANSIENT_CODES:
        return TransientError(message)
    return ApiError(200, message)


def _list(body: Mapping[str, Any], key: str, method: str) -> list[Any]:
    found = body.get(key)
    if not isinstance(found, list):
        raise BadPayload(f"BaseLinker's answer to {method} has no `{key}` list")
    return found


class BaseLinkerClient:
    def __init__(self, channel: str, settings: ChannelSettings, token: str, runtime: Runtime, *,
                 per_minute: int) -> None:
        # the pacing is TokenPace's (below BaseLinker's limit on a sliding minute), not ChannelHttp's plain spacing
        self.http = ChannelHttp.for_channel(channel, settings.model_copy(update={"requests_per_second": None}),
                                            runtime, headers={"X-BLToken": token, "Accept": "application/json"})
        self.pace = TokenPace.for_token(token, str(self.http.client.base_url), str(runtime.state_dir), per_minute,
                                        settings.requests_per_second)

        def paced(_request: Any) -> None:
            self.pace.wait(channel, runtime.stop, runtime.sleep)

        self.http.client.event_hooks = {"request": [paced], "response": []}

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, **parameters: Any) -> dict[str, Any]:
        """One API call; its answer when `status` is SUCCESS, else the error it stands for."""
        body = self.http.json("POST", ENDPOINT, idempotent=method in READS,
                              data={"method": method, "parameters": json.dumps(parameters, separators=(",", ":"))})
        if not isinstance(body, dict) or text(body.get("status")) not in ("SUCCESS", "ERROR"):
            raise BadPayload(f"BaseLinker's answer to {method} has no status")
        if body["status"] == "ERROR":
            raise _error(body, method)
        return body

    # --- reads --------------------------------------------------------------------------------

    def statuses(self) -> list[Any]:
        return _list(self.call("getOrderReturnStatusList"), "statuses", "getOrderReturnStatusList")

    def reasons(self) -> list[Any]:
        return _list(self.call("getOrderReturnReasonsList"), "return_reasons", "getOrderReturnReasonsList")

    def returns(self, *, id_from: int | None = None, date_from: int | None = None,
                return_id: str | None = None) -> list[Any]:
        """At most PAGE_SIZE returns, from return id `id_from` on (created from `date_from` on), or one by id."""
        params: dict[str, Any] = {}
        if return_id is not None:
            params["return_id"] = numeric_id(return_id) or 0
        if id_from is not None:
            params["id_from"] = id_from
        if date_from is not None:
            params["date_from"] = date_from
        return _list(self.call("getOrderReturns", **params), "returns", "getOrderReturns")

    def returns_by_id(self, ids: Iterable[str]) -> list[Any]:
        """The returns with these ids that BaseLinker still holds: walked by `id_from` from the smallest wanted id,
        so a burst of changes costs a call per hundred returns instead of one per return."""
        wanted = sorted({n for n in (numeric_id(i) for i in ids) if n is not None})
        found: list[Any] = []
        while wanted:
            page = self.returns(id_from=wanted[0])
            got = {text(obj(raw).get("return_id")): raw for raw in page}
            found += [got[str(i)] for i in wanted if str(i) in got]
            highest = max((n for n in (numeric_id(k) for k in got) if n is not None), default=None)
            if len(page) < PAGE_SIZE or highest is None:
                break  # the rest are gone
            wanted = [i for i in wanted if i > highest]
        return found

    def journal(self, last_log_id: int) -> list[Any]:
        return _list(self.call("getOrderReturnJournalList", last_log_id=last_log_id), "logs",
                     "getOrderReturnJournalList")

    def order(self, order_id: str) -> dict[str, Any] | None:
        """One order by id (getOrders takes one `order_id`), unconfirmed ones too; None when BaseLinker has none."""
        number = numeric_id(order_id)
        if number is None:
            return None  # no order BaseLinker can hold
        params: dict[str, Any] = {"order_id": number, "get_unconfirmed_orders": True}
        orders = _list(self.call("getOrders", **params), "orders", "getOrders")
        return next((dict(raw) for raw in orders if text(obj(raw).get("order_id")) == order_id), None)

    # --- writes -------------------------------------------------------------------------------

    def set_status(self, return_id: str, status_id: int) -> None:
        self.call("setOrderReturnStatus", return_id=int(return_id), status_id=status_id)

    def set_refund(self, return_id: str, amount: float, *, when: int, comment: str | None, key: str) -> None:
        self.call("setOrderReturnRefund", return_id=int(return_id), order_refund_done=amount, refund_date=when,
                  refund_comment=comment or "", external_refund_id=key)

    def set_admin_comments(self, return_id: str, comments: str) -> None:
        self.call("setOrderReturnFields", return_id=int(return_id), admin_comments=comments)
