"""The WooCommerce REST API (wc/v3), spoken as WooCommerce speaks it; nothing here knows the unified model.

Every answer is checked for the shape the docs promise before anyone reads
it, so a plugin that breaks the JSON (a PHP notice printed before it is a
classic) stops a sync with a clear `BadPayload` instead of a KeyError deep in
the mapping, or worse, a silently empty page.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, BadPayload, ChannelHttp, error_detail_from

if TYPE_CHECKING:
    from retsync_connectors.woocommerce.connector import WooCommerceSettings

API_PREFIX = "/wp-json/wc/v3"
PAGE_SIZE = 100
"""WordPress caps `per_page` at 100."""


def _wordpress_error(body: Mapping[str, Any]) -> str | None:
    """A WordPress REST error `{code, message, data.status}` as `message (code)`, so the merchant can search it."""
    message, code = body.get("message"), body.get("code")
    if isinstance(message, str) and isinstance(code, str):
        return f"{message} ({code})"
    return next((body[key] for key in ("message", "detail", "code") if isinstance(body.get(key), str)), None)


error_detail = error_detail_from(_wordpress_error)


def _objects(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise BadPayload(f"{what}: expected a JSON array, got {type(body).__name__}")
    for entry in body:
        if not isinstance(entry, dict) or isinstance(entry.get("id"), bool) or entry.get("id") in (None, ""):
            raise BadPayload(f"{what}: an entry without id")
    return body


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        raise BadPayload(f"{what}: expected an object with an id, got {type(body).__name__}")
    return body


def _total_pages(response: httpx.Response, what: str) -> int | None:
    value = response.headers.get("x-wp-totalpages")
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise BadPayload(f"{what}: X-WP-TotalPages is {value!r}, not a number") from None


class _QueryStringAuth(httpx.Auth):
    """WooCommerce's fallback for servers that drop the Authorization header: the key in the query string."""

    def __init__(self, key: str, secret: str) -> None:
        self._params = {"consumer_key": key, "consumer_secret": secret}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params(self._params)
        yield request


def _auth(settings: WooCommerceSettings) -> httpx.Auth:
    key, secret = settings.consumer_key.get_secret_value(), settings.consumer_secret.get_secret_value()
    return _QueryStringAuth(key, secret) if settings.query_string_auth else httpx.BasicAuth(key, secret)


@dataclass(frozen=True)
class Listing:
    entries: list[dict[str, Any]]
    total_pages: int | None


class WooCommerceClient:
    """One shop's connection: consumer key and secret over HTTPS basic auth, retries from ChannelHttp.

    ChannelHttp repeats a GET freely but never a POST whose answer was lost (a
    refund may already exist); the connector looks in the shop before sending
    it again.
    """

    def __init__(self, channel: str, settings: WooCommerceSettings, runtime: Runtime) -> None:
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            base_url=settings.base_url.rstrip("/") + API_PREFIX,
            headers={"Accept": "application/json"},
            auth=_auth(settings),
            error_detail=error_detail,
        )

    def close(self) -> None:
        self.http.close()

    def _list(self, path: str, params: Mapping[str, Any]) -> Listing:
        what = f"GET {path} page {params.get('page', 1)}"
        response = self.http.request("GET", path, params=dict(params))
        try:
            body = response.json()
        except ValueError:
            raise BadPayload(f"{what}: the answer is not valid JSON ({len(response.content)} bytes)") from None
        return Listing(_objects(body, what), _total_pages(response, what))

    def _write(self, method: str, path: str, body: Mapping[str, Any], ok: tuple[int, ...] = (200, 201)) -> Any:
        return self.http.json(method, path, content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"}, ok=ok)

    # --- orders ----------------------------------------------------------------------------

    def list_orders(self, params: Mapping[str, Any]) -> Listing:
        """One page of orders; a page past the end (the list shrank since the cursor was saved) is empty."""
        try:
            return self._list("/orders", params)
        except ApiError as exc:
            if exc.status_code == 400 and "rest_post_invalid_page_number" in exc.message:
                return Listing([], None)
            raise

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """One order; None when the shop does not know it (deleted, or another shop's id)."""
        try:
            body = self.http.json("GET", f"/orders/{order_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _object(body, f"GET /orders/{order_id}")

    def create_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """A new order (e.g. one standing for a marketplace return, carrying `retsync_source_return` in its meta).

        Not repeated blindly either: after a lost answer, look for the meta among orders changed since."""
        return _object(self._write("POST", "/orders", order), "POST /orders")

    def update_order(self, order_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return _object(self._write("PUT", f"/orders/{order_id}", changes), f"PUT /orders/{order_id}")

    # --- refunds ---------------------------------------------------------------------------

    def order_refunds(self, order_id: str) -> list[dict[str, Any]]:
        """Every refund of one order (a shop rarely has more than a page of them per order)."""
        refunds: list[dict[str, Any]] = []
        page = 1
        while True:
            listing = self._list(f"/orders/{order_id}/refunds", {"page": page, "per_page": PAGE_SIZE})
            refunds.extend(listing.entries)
            if len(listing.entries) < PAGE_SIZE or (listing.total_pages is not None and page >= listing.total_pages):
                return refunds
            page += 1

    def list_refunds(self, params: Mapping[str, Any]) -> Listing | None:
        """`GET /refunds` (WooCommerce 9.0 and later): refunds of every order, each naming its `parent_id`;
        None when the shop is older and has no such route."""
        try:
            return self._list("/refunds", params)
        except ApiError as exc:
            if exc.status_code == 404 and "rest_no_route" in exc.message:
                return None
            raise

    def create_refund(self, order_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        what = f"POST /orders/{order_id}/refunds"
        return _object(self._write("POST", f"/orders/{order_id}/refunds", body), what)

    # --- notes -----------------------------------------------------------------------------

    def order_notes(self, order_id: str) -> list[dict[str, Any]]:
        body = self.http.json("GET", f"/orders/{order_id}/notes", params={"type": "any"})
        return _objects(body, f"GET /orders/{order_id}/notes")

    def add_note(self, order_id: str, note: str, *, to_customer: bool) -> dict[str, Any]:
        body = {"note": note, "customer_note": to_customer}
        return _object(self._write("POST", f"/orders/{order_id}/notes", body), f"POST /orders/{order_id}/notes")
