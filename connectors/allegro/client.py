"""The Allegro REST API, spoken as Allegro speaks it; nothing here knows the unified model.

Customer returns are a BETA resource with their own media type (the public
one gets 406 there); everything else uses `application/vnd.allegro.public.v1+json`.
Every answer is checked for the shape the spec promises before anyone reads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import (
    ApiError,
    AuthError,
    BadPayload,
    BearerTokenAuth,
    ChannelHttp,
    TransientError,
    error_detail_from,
)
from retsync.kit.tokens import TokenStore, TokenStoreError

if TYPE_CHECKING:
    from retsync_connectors.allegro.connector import AllegroSettings

PUBLIC = "application/vnd.allegro.public.v1+json"
BETA = "application/vnd.allegro.beta.v1+json"
BLOCK_SECONDS = 60.0
"""Allegro blocks a client for a minute after a 429 and sends no Retry-After; we wait that minute."""
REREAD_BATCH = 50
"""Return ids per `customerReturnId` re-read request: short enough for any URL length limit."""


def _allegro_error(body: Mapping[str, Any]) -> str:
    """An ErrorsHolder (or AuthError) body as one line: `code: message (path)`; userMessage when there is no message.

    Anything else Allegro may answer is shown as it came (cut at 300 characters), not guessed at."""
    if isinstance(body.get("errors"), list):
        parts = [_one_error(error) for error in body["errors"] if isinstance(error, Mapping)]
        if parts:
            return "; ".join(parts)
    if isinstance(body.get("error"), str):
        described = body.get("error_description")
        return f"{body['error']}: {described}" if described else body["error"]
    return str(body)[:300]


def _one_error(error: Mapping[str, Any]) -> str:
    text = error.get("message") or error.get("userMessage") or "no message"
    code = f"{error['code']}: " if error.get("code") else ""
    where = f" ({error['path']})" if error.get("path") else ""
    return f"{code}{text}{where}"


errors_detail = error_detail_from(_allegro_error)
"""What an Allegro error answer says, for ChannelHttp and the sign-in messages."""


class RefreshTokenAuth(BearerTokenAuth):
    """A user access token kept fresh with a rotating refresh token.

    Every refresh returns a new refresh token and retires the old one about a
    minute later, so the new one is stored (atomically) before it is used;
    when storing fails the old one is still on disk and still valid for that
    minute. A refused refresh token means the merchant must sign in again.
    """

    def __init__(
        self,
        channel: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        *,
        bootstrap: str | None = None,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, client_id, client_secret, refresh_margin=refresh_margin, clock=clock)
        self.channel = channel
        self.store = store
        self._bootstrap = bootstrap

    @property
    def refreshes(self) -> int:
        return self.tokens_fetched

    def sign_in_again(self, why: str) -> AuthError:
        return AuthError(f"{why}; run `retsync auth allegro {self.channel}` again to sign channel {self.channel} in")

    def _refresh_token(self) -> str:
        try:
            token = self.store.load()
        except TokenStoreError as exc:
            raise AuthError(str(exc)) from None
        token = token or self._bootstrap
        if not token:
            raise self.sign_in_again(f"channel {self.channel} has no Allegro sign-in yet")
        return token

    def grant(self) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": self._refresh_token()}

    def accept(self, response: httpx.Response) -> tuple[str, float]:
        if response.status_code in (400, 401):
            raise self.sign_in_again(f"Allegro refused the refresh token ({errors_detail(response)})")
        if response.status_code != 200:
            retry = response.headers.get("retry-after")
            raise TransientError(f"Allegro's token endpoint answered HTTP {response.status_code}",
                                 retry_after=float(retry) if retry and retry.isdigit() else None)
        try:
            body = response.json()
            access, refresh = str(body["access_token"]), str(body["refresh_token"])
            expires_in = float(body.get("expires_in", 43199))
        except (ValueError, KeyError, TypeError):
            raise BadPayload("Allegro's token endpoint answered without access_token and refresh_token") from None
        try:
            self.store.save(refresh)  # before anything else: the old refresh token dies a minute after its use
        except TokenStoreError as exc:
            raise AuthError(f"{exc}; the previous refresh token is still stored") from None
        return access, expires_in


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadPayload(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def _check_return(body: Any, what: str) -> dict[str, Any]:
    entry = _object(body, what)
    if not isinstance(entry.get("id"), str) or not entry["id"]:
        raise BadPayload(f"{what}: a customer return without id")
    if not isinstance(entry.get("createdAt"), str):
        raise BadPayload(f"{what}: customer return {entry['id']} has no createdAt")
    if not isinstance(entry.get("items", []), list):
        raise BadPayload(f"{what}: customer return {entry['id']} has no items array")
    return entry


def _list(body: Any, key: str, what: str) -> list[Any]:
    entries = _object(body, what).get(key)
    if not isinstance(entries, list):
        raise BadPayload(f"{what}: no `{key}` array")
    return entries


class AllegroClient:
    """One channel's connection to Allegro; pacing, retries and the 429 block come from ChannelHttp."""

    def __init__(self, channel: str, settings: AllegroSettings, runtime: Runtime, auth: RefreshTokenAuth) -> None:
        self.auth = auth
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            headers={"Accept": PUBLIC},
            auth=auth,
            error_detail=errors_detail,
            block_after_429=BLOCK_SECONDS,
        )

    def close(self) -> None:
        self.http.close()

    # --- customer returns (BETA) -----------------------------------------------------------

    def list_returns(self, params: Mapping[str, Any] | Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        what = "GET /order/customer-returns"
        body = self.http.json("GET", "/order/customer-returns", params=params, headers={"Accept": BETA})
        return [_check_return(entry, what) for entry in _list(body, "customerReturns", what)]

    def returns_by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        """The current state of these returns, in one request per batch."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), REREAD_BATCH):
            batch = ids[start:start + REREAD_BATCH]
            params = [("customerReturnId", return_id) for return_id in batch] + [("limit", str(len(batch)))]
            found.extend(self.list_returns(params))
        return found

    def get_return(self, return_id: str) -> dict[str, Any] | None:
        what = f"GET /order/customer-returns/{return_id}"
        try:
            body = self.http.json("GET", f"/order/customer-returns/{return_id}", headers={"Accept": BETA})
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _check_return(body, what)

    def reject_return(self, return_id: str, code: str, reason: str | None) -> dict[str, Any]:
        rejection: dict[str, Any] = {"code": code}
        if reason:
            rejection["reason"] = reason
        body = self.http.json(
            "POST",
            f"/order/customer-returns/{return_id}/rejection",
            content=json.dumps({"rejection": rejection}).encode(),
            headers={"Accept": BETA, "Content-Type": BETA},
        )
        return _check_return(body, f"POST /order/customer-returns/{return_id}/rejection")

    # --- orders ----------------------------------------------------------------------------

    def get_checkout_forms(self, order_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """`get_checkout_form` of each id, side by side up to the channel's `max_concurrency`, in the ids' order."""
        return self.http.read_all(self.get_checkout_form, order_ids)

    def get_checkout_form(self, order_id: str) -> dict[str, Any] | None:
        what = f"GET /order/checkout-forms/{order_id}"
        try:
            body = self.http.json("GET", f"/order/checkout-forms/{order_id}")
        except ApiError as exc:
            if exc.status_code in (400, 404):  # 400: not a UUID, so certainly not an order of this seller
                return None
            raise
        form = _object(body, what)
        if not isinstance(form.get("id"), str):
            raise BadPayload(f"{what}: a checkout form without id")
        if not isinstance(form.get("lineItems"), list):
            raise BadPayload(f"{what}: a checkout form without lineItems")
        return form

    # --- refunds ---------------------------------------------------------------------------

    def refund(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.http.json("POST", "/payments/refunds", content=json.dumps(body).encode(),
                                headers={"Content-Type": PUBLIC})
        refund = _object(answer, "POST /payments/refunds")
        if not isinstance(refund.get("id"), str):
            raise BadPayload("POST /payments/refunds: a refund without id")
        return refund

    def refunds(self, **filters: str) -> list[dict[str, Any]]:
        params = {key.replace("_", "."): value for key, value in filters.items()}
        what = "GET /payments/refunds"
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self.http.json("GET", "/payments/refunds", params={**params, "limit": 100, "offset": offset})
            page = [_object(entry, what) for entry in _list(body, "refunds", what)]
            found.extend(page)
            if len(page) < 100:
                return found
            offset += len(page)

    # --- commission refund claims ----------------------------------------------------------

    def claim_commission(self, line_item_id: str, quantity: int) -> dict[str, Any]:
        body = self.http.json("POST", "/order/refund-claims",
                              content=json.dumps({"lineItem": {"id": line_item_id}, "quantity": quantity}).encode(),
                              headers={"Content-Type": PUBLIC}, ok=(200, 201))
        return _object(body, "POST /order/refund-claims")

    def claims_for_offer(self, offer_id: str) -> list[dict[str, Any]]:
        what = "GET /order/refund-claims"
        body = self.http.json("GET", "/order/refund-claims", params={"lineItem.offer.id": offer_id, "limit": 100})
        return [_object(entry, what) for entry in _list(body, "refundClaims", what)]
