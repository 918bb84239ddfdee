"""The template channel's API, and nothing else: one method per endpoint (README.md, "The API").

`ChannelHttp` does the hard parts once for every channel (retries on 429/5xx and network errors, Retry-After,
pacing, response size and time limits, never repeating a write that may have reached the channel); this client
adds what only this API knows: its key header, its paths, how its error body reads, and what a well-formed answer
looks like. An answer of the wrong shape raises `BadPayload`, so a page the channel garbled fails (and is read
again) instead of passing as "no returns".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from retsync.kit.contract import Runtime
from retsync.kit.http import BadPayload, ChannelHttp, error_detail_from
from retsync.kit.payload import obj, text
from retsync.kit.settings import ChannelSettings

PAGE_SIZE = 50
"""Returns asked for per page (the API allows 1 to 100); a shorter page is the last."""
IDS_PER_REQUEST = 100
"""Ids the API takes in one `ids` parameter."""


def _error_text(body: Mapping[str, Any]) -> str | None:
    """`{"error": {"code": "line_decided", "message": "..."}}` as "line_decided: ..." for the merchant's log."""
    error = obj(body.get("error"))
    code, message = text(error.get("code")), text(error.get("message"))
    return f"{code}: {message}" if code and message else code or message


def _list(body: Any, key: str, what: str) -> list[Any]:
    """The list under `key` of an answer, or BadPayload when the answer is not shaped like one."""
    found = obj(body).get(key)
    if not isinstance(found, list):
        raise BadPayload(f"the channel's answer to {what} has no `{key}` list")
    return found


def _object(body: Any, key: str, what: str) -> dict[str, Any]:
    found = obj(body).get(key)
    if not isinstance(found, dict) or text(found.get("id")) is None:
        raise BadPayload(f"the channel's answer to {what} has no `{key}` with an id")
    return found


class TemplateClient:
    def __init__(self, channel: str, settings: ChannelSettings, api_key: str, runtime: Runtime) -> None:
        self.http = ChannelHttp.for_channel(channel, settings, runtime,
                                            headers={"X-Api-Key": api_key, "Accept": "application/json"},
                                            error_detail=error_detail_from(_error_text))

    def close(self) -> None:
        self.http.close()

    def returns_page(self, updated_since: datetime, page: int) -> list[Any]:
        body = self.http.json("GET", "/v1/returns", params={
            "updated_since": updated_since.isoformat(), "page": page, "per_page": PAGE_SIZE})
        return _list(body, "returns", "GET /v1/returns")

    def orders(self, ids: Iterable[str]) -> list[Any]:
        """The orders with these ids that the channel knows, asked IDS_PER_REQUEST at a time."""
        wanted, found = list(ids), []
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            body = self.http.json("GET", "/v1/orders", params={"ids": ",".join(wanted[start:start + IDS_PER_REQUEST])})
            found += _list(body, "orders", "GET /v1/orders")
        return found

    def decisions(self, return_id: str) -> list[Any]:
        return _list(self.http.json("GET", f"/v1/returns/{return_id}/decisions"), "decisions",
                     "GET /v1/returns/{id}/decisions")

    def decide(self, return_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return _object(self.http.json("POST", f"/v1/returns/{return_id}/decisions", json=body), "decision",
                       "POST /v1/returns/{id}/decisions")

    def hold(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _object(self.http.json("POST", "/v1/held-returns", json=body), "held_return", "POST /v1/held-returns")

    def held_with_key(self, key: str) -> list[Any]:
        return _list(self.http.json("GET", "/v1/held-returns", params={"key": key}), "held_returns",
                     "GET /v1/held-returns")

    def held(self, ids: Sequence[str]) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(ids), IDS_PER_REQUEST):
            body = self.http.json("GET", "/v1/held-returns", params={"ids": ",".join(ids[start:start + IDS_PER_REQUEST])})
            found += _list(body, "held_returns", "GET /v1/held-returns")
        return found
