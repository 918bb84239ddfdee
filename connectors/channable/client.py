"""Channable's order-connection API, and nothing else: one method per endpoint (shared/specs/channable/).

`ChannelHttp` does retries, Retry-After, pacing, response limits and never repeating a write that may have
reached the channel; this client adds the static company token, the common paths
(`/v1|v2/companies/{company_id}/projects/{project_id}`), how Channable's error bodies read (a
`ChannableErrorResponse` message, or FastAPI's 422 `detail` list) and what a well-formed answer looks like.
Channable counts its rate limit per company (4 requests a second, burst 200, a leaky bucket) and sends no
headers about it: a 429 pauses the whole channel for BLOCK_SECONDS unless it says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, BadPayload, ChannelHttp, error_detail_from
from retsync.kit.payload import obj, objs, text
from retsync.kit.settings import ChannelSettings

PAGE_SIZE = 100
"""Returns asked for per page (Channable allows 1 to 100); a shorter page is the last."""
BLOCK_SECONDS = 1.0
"""How long a 429 pauses the channel when it gives no Retry-After: a leaky bucket at 4 a second has room for a
few requests again by then."""


def _error_text(body: Mapping[str, Any]) -> str | None:
    """`{"status": "error", "message": "..."}`, or the 422 `detail` list as "body.status: Input should be ..."."""
    message = text(body.get("message"))
    if message:
        return message
    problems = [f"{'.'.join(str(part) for part in problem.get('loc') or [])}: {text(problem.get('msg'))}"
                for problem in objs(body.get("detail"))]
    return "; ".join(problems[:5]) or text(body.get("detail"))


def _list(body: Any, key: str, what: str) -> list[Any]:
    found = obj(body).get(key)
    if not isinstance(found, list):
        raise BadPayload(f"Channable's answer to {what} has no `{key}` list")
    return found


def _object(body: Any, key: str, what: str) -> dict[str, Any]:
    found = obj(body).get(key)
    if not isinstance(found, dict) or text(found.get("id")) is None:
        raise BadPayload(f"Channable's answer to {what} has no `{key}` with an id")
    return found


class ChannableClient:
    def __init__(self, channel: str, settings: ChannelSettings, token: str, company_id: int, project_id: int,
                 runtime: Runtime) -> None:
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            error_detail=error_detail_from(_error_text), block_after_429=BLOCK_SECONDS)
        self.v1 = f"/v1/companies/{company_id}/projects/{project_id}"
        self.v2 = f"/v2/companies/{company_id}/projects/{project_id}"

    def close(self) -> None:
        self.http.close()

    def returns_page(self, modified_after: datetime, offset: int) -> list[Any]:
        """Returns modified at or after `modified_after`, newest first, PAGE_SIZE from `offset`."""
        body = self.http.json("GET", f"{self.v1}/returns", params={
            "last_modified_after": modified_after.isoformat(), "offset": offset, "limit": PAGE_SIZE})
        return _list(body, "returns", "GET /v1/.../returns")

    def return_(self, return_id: str) -> dict[str, Any]:
        return _object(self.http.json("GET", f"{self.v1}/returns/{return_id}"), "return", "GET /v1/.../returns/{id}")

    def set_status(self, return_id: str, status: str) -> dict[str, Any]:
        """`POST .../returns/{id}/status`: Channable passes the status on to the marketplace."""
        body = self.http.json("POST", f"{self.v1}/returns/{return_id}/status", json={"status": status})
        if text(obj(body).get("message")) is None:
            raise BadPayload("Channable's answer to POST /v1/.../returns/{id}/status has no `message`")
        return dict(obj(body))

    def order(self, order_id: str) -> dict[str, Any] | None:
        """One Channable order (`GET /v2/.../orders/{id}`), None when Channable does not know it (404) or the id is
        not a Channable order id (they are whole numbers)."""
        if not order_id.isdigit():
            return None
        try:
            body = self.http.json("GET", f"{self.v2}/orders/{order_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _object(body, "order", "GET /v2/.../orders/{id}")
