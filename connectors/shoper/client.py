"""The Shoper REST API (`/webapi/rest`), spoken as Shoper speaks it; nothing here knows the unified model.

A private integration signs in as a panel user with API rights: `POST
/webapi/rest/auth` with HTTP basic auth buys a bearer token (fetched again
shortly before it expires and once more on a 401, see `BearerTokenAuth`).
Lists come in an envelope `{count, pages, page, list}` and take `limit`,
`page` and a JSON `filters` object. Shoper counts calls in a leaky bucket per
application and says how full it is in `X-Shop-Api-Limit`,
`X-Shop-Api-Bandwidth` and `X-Shop-Api-Calls` on every answer: the client
holds the channel before the bucket overflows, and a 429 with `Retry-After`
still pauses the whole channel (`ChannelHttp`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import AuthError, BadPayload, BearerTokenAuth, ChannelHttp, TransientError, error_detail_from

if TYPE_CHECKING:
    from retsync_connectors.shoper.connector import ShoperSettings

API_PREFIX = "/webapi/rest"
MAX_LIMIT = 50
"""The most entries Shoper hands out per list request."""
IN_CHUNK = 50
"""Ids per `in` filter, so a filter never outgrows a sensible URL."""


def _shoper_error(body: Mapping[str, Any]) -> str:
    """Shoper's `{error, error_description}` as `description (error)`, so the merchant can search the key."""
    key, description = body.get("error"), body.get("error_description")
    if isinstance(key, str) and isinstance(description, str) and description:
        return f"{description} ({key})"
    for field in ("error_description", "error", "message", "detail"):
        if isinstance(body.get(field), str):
            return body[field]
    return str(body)[:300]


error_detail = error_detail_from(_shoper_error)
"""How a Shoper error answer reads in the merchant's log; answers that are not a JSON object read the common way."""


def bucket_wait(response: httpx.Response) -> float | None:
    """How long to hold the next request so it fits Shoper's leaky bucket, from the `X-Shop-Api-*` headers.

    `Calls` is the bucket's fill after this request, `Limit` its size, `Bandwidth` how many calls leak out per
    second. One call of headroom is kept, so a request already on its way does not overflow the bucket.
    """
    try:
        limit = float(response.headers["x-shop-api-limit"])
        bandwidth = float(response.headers["x-shop-api-bandwidth"])
        calls = float(response.headers["x-shop-api-calls"])
    except (KeyError, ValueError):
        return None
    if bandwidth <= 0:
        return None
    overflow = calls + 2 - limit
    return overflow / bandwidth if overflow > 0 else None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class ShoperAuth(BearerTokenAuth):
    """`POST /webapi/rest/auth` with the panel user's login and password (basic auth) buys a bearer token."""

    def grant(self) -> dict[str, str]:
        return {}

    def accept(self, response: httpx.Response) -> tuple[str, float]:
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"Shoper refused the sign-in (HTTP {response.status_code}: {error_detail(response)}); check login "
                "and password: the panel user needs access to the REST API (Configuration > Administration)"
            )
        if response.status_code != 200:
            raise TransientError(f"Shoper's /webapi/rest/auth answered HTTP {response.status_code}",
                                 retry_after=_seconds(response.headers.get("retry-after")))
        try:
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise BadPayload("Shoper's /webapi/rest/auth answer has no access_token") from None


@dataclass(frozen=True)
class Listing:
    entries: list[dict[str, Any]]
    pages: int
    page: int
    count: int | None


def _listing(body: Any, what: str) -> Listing:
    if not isinstance(body, dict) or not isinstance(body.get("list"), list):
        raise BadPayload(f"{what}: expected Shoper's list envelope {{count, pages, page, list}}, "
                         f"got {type(body).__name__}{' without list' if isinstance(body, dict) else ''}")
    if not all(isinstance(entry, dict) for entry in body["list"]):
        raise BadPayload(f"{what}: the list holds something that is not an object")
    try:
        pages = int(body.get("pages") or 0)
        page = int(body.get("page") or 1)
        count = int(body["count"]) if body.get("count") not in (None, "") else None
    except (TypeError, ValueError):
        raise BadPayload(f"{what}: pages/page/count are not numbers") from None
    return Listing(body["list"], pages, page, count)


def _new_id(body: Any, what: str) -> str:
    """Shoper answers an insert with the new object's id (an integer)."""
    if isinstance(body, bool) or not isinstance(body, (int, str)) or not str(body).strip().isdigit():
        raise BadPayload(f"{what}: expected the new id, got {str(body)[:80]!r}")
    return str(body).strip()


class ShoperClient:
    """One shop's connection. ChannelHttp repeats a GET freely but never a POST or PUT whose answer was lost
    (a refund may already exist); the connector looks in the shop before sending it again."""

    def __init__(self, channel: str, settings: ShoperSettings, runtime: Runtime) -> None:
        base = settings.base_url.rstrip("/") + API_PREFIX
        self.auth = ShoperAuth(settings.token_url or base + "/auth", settings.login,
                               settings.password.get_secret_value())
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            base_url=base,
            headers={"Accept": "application/json"},
            auth=self.auth,
            error_detail=error_detail,
            rate_limit_wait=bucket_wait,
        )
        self.limit = min(MAX_LIMIT, settings.page_size)
        self._currencies: dict[str, str] | None = None

    def close(self) -> None:
        self.http.close()

    # --- reading ---------------------------------------------------------------------------

    def list(self, resource: str, *, filters: Mapping[str, Any] | None = None, page: int = 1,
             limit: int | None = None) -> Listing:
        params: dict[str, Any] = {"limit": limit or self.limit, "page": page}
        if filters:
            params["filters"] = json.dumps(filters, separators=(",", ":"))
        what = f"GET {resource} page {page}"
        response = self.http.request("GET", resource, params=params)
        try:
            body = response.json()
        except ValueError:
            raise BadPayload(f"{what}: the answer is not valid JSON ({len(response.content)} bytes)") from None
        return _listing(body, what)

    def every(self, resource: str, filters: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every entry matching `filters`, page by page (for small sets: one order's refunds, a page's products)."""
        page = 1
        while True:
            listing = self.list(resource, filters=filters, page=page, limit=MAX_LIMIT)
            yield from listing.entries
            if page >= listing.pages or not listing.entries:
                return
            page += 1

    def of_orders(self, resource: str, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Entries of a per-order resource (`/order-products`, `/order-refunds`, ...) grouped by `order_id`."""
        found: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
        wanted = [int(i) if i.isdigit() else i for i in order_ids]
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start:start + IN_CHUNK]
            for entry in self.every(resource, {"order_id": {"in": chunk}}):
                found.setdefault(str(entry.get("order_id")), []).append(entry)
        return found

    def get(self, resource: str, object_id: str) -> dict[str, Any] | None:
        """One object; None when the shop does not know it (deleted, or another shop's id)."""
        response = self.http.request("GET", f"{resource}/{object_id}", ok=(200, 404))
        if response.status_code == 404:
            return None
        try:
            body = response.json()
        except ValueError:
            raise BadPayload(f"GET {resource}/{object_id}: the answer is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadPayload(f"GET {resource}/{object_id}: expected an object, got {type(body).__name__}")
        return body

    def currencies(self) -> dict[str, str]:
        """`currency_id` -> ISO code (`name` in `/currencies`), read once per start."""
        if self._currencies is None:
            self._currencies = {str(c.get("currency_id")): str(c.get("name")).upper()
                                for c in self.every("/currencies", {}) if c.get("currency_id") and c.get("name")}
        return self._currencies

    # --- writing ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Mapping[str, Any]) -> Any:
        return self.http.json(method, path, content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"}, ok=(200, 201))

    def insert(self, resource: str, body: Mapping[str, Any]) -> str:
        """Create one object; answers its id. Never repeated blindly: after a lost answer, look for it first."""
        return _new_id(self._send("POST", resource, body), f"POST {resource}")

    def update(self, resource: str, object_id: str, changes: Mapping[str, Any]) -> None:
        self._send("PUT", f"{resource}/{object_id}", changes)
