"""Amazon's Selling Partner API as the returns flow needs it, and nothing else: Login with Amazon, Reports
2021-06-30, Orders v0 and Feeds 2021-06-30 (contract: shared/specs/amazon-sp-api, NOTES.md).

`ChannelHttp` does retries, the 429 block of the whole channel, response limits and never repeating a write that
may have reached Amazon; this client adds what only SP-API knows:

- the LWA access token in `x-amz-access-token` (not `Authorization`), fetched with the refresh token and cached
  for its hour; fetched again once when Amazon refuses it (401, or 403 `Unauthorized`);
- each operation's usage plan (rate, burst): a token bucket per operation paces the calls below it, and the
  `x-amzn-RateLimit-Limit` header, where Amazon sends it, replaces the documented rate;
- presigned document URLs (reports to read, feeds to upload) fetched without the access token, a GZIP document
  inflated with the channel's size cap.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, AuthError, BadPayload, ChannelHttp, Stopped, error_detail_from
from retsync.kit.payload import obj, objs, text
from retsync.kit.secrets import remember
from retsync.kit.settings import ChannelSettings

REGION_HOSTS = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
"""Production endpoints by region (NOTES.md "Base URLs"); `base_url` overrides (Amazon's sandbox, the emulator)."""
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"

USAGE_PLANS: dict[str, tuple[float, int]] = {
    "createReport": (0.0167, 15), "getReport": (2.0, 15), "getReportDocument": (0.0167, 15),
    "getOrder": (0.5, 30), "getOrderItems": (0.5, 30),
    "createFeedDocument": (0.5, 15), "createFeed": (0.0083, 15), "getFeed": (2.0, 15), "getFeeds": (0.0222, 10),
    "getFeedDocument": (0.0222, 10),
}
"""(requests per second, burst) of each operation used, as each operation's description in the model files
states; `x-amzn-RateLimit-Limit` replaces the rate when Amazon sends it."""
BLOCK_AFTER_429 = 60.0
"""Seconds the channel pauses after a 429 (SP-API sends no Retry-After): a minute refills a token of every usage
plan used here, createReport's and getReportDocument's included. The pacing keeps 429s rare."""
TOKEN_MARGIN = 60.0
"""Seconds before its expiry an access token is renewed."""


def _error_text(body: Mapping[str, Any]) -> str | None:
    """`{"errors": [{"code", "message", "details"}]}` (Orders v0 wraps it beside `payload`) as one line; LWA's
    `{"error", "error_description"}` too."""
    parts = []
    for error in objs(body.get("errors"))[:3]:
        code, message, details = text(error.get("code")), text(error.get("message")), text(error.get("details"))
        line = ": ".join(part for part in (code, message) if part)
        parts.append(f"{line} ({details})" if details and line else line or details or "")
    found = "; ".join(part for part in parts if part)
    if found:
        return found
    error, description = text(body.get("error")), text(body.get("error_description"))
    return ": ".join(part for part in (error, description) if part) or None


def _error_codes(response: httpx.Response | None) -> set[str]:
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return set()
    return {text(error.get("code")) or "" for error in objs(obj(body).get("errors"))}


PACE_MARGIN = 0.9
"""The pacing spends a usage plan at 90% of its rate: Amazon's bucket and ours never tick in step, and a 429
pauses the whole channel a minute."""


class _Bucket:
    """One operation's usage plan as a token bucket: `take` answers how long to wait for the next token."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate * PACE_MARGIN, float(burst) - 1
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(frozen=True)
class Document:
    body: bytes
    charset: str | None


class AmazonClient:
    def __init__(self, channel: str, settings: ChannelSettings, runtime: Runtime, *, base_url: str, token_url: str,
                 client_id: str, client_secret: str, refresh_token: str) -> None:
        self.http = ChannelHttp.for_channel(channel, settings, runtime, base_url=base_url,
                                            headers={"Accept": "application/json"},
                                            error_detail=error_detail_from(_error_text),
                                            block_after_429=BLOCK_AFTER_429)
        self.runtime = runtime
        self.token_url = token_url
        self._grant = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
                       "client_secret": client_secret}
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._buckets = {name: _Bucket(*plan) for name, plan in USAGE_PLANS.items()}
        self.tokens_fetched = 0
        self.paced: list[tuple[str, float]] = []
        """(operation, seconds waited) of every call held back by its usage plan: what a test reads."""

    def close(self) -> None:
        self.http.close()

    # --- Login with Amazon ------------------------------------------------------------------

    def _access_token(self, refused: str | None = None) -> str:
        with self._lock:
            if self._token and self._token != refused and time.monotonic() < self._expires_at - TOKEN_MARGIN:
                return self._token
            try:  # a token request changes nothing at Amazon: safe to repeat after a timeout or a 5xx
                body = self.http.json("POST", self.token_url, data=self._grant, idempotent=True)
            except ApiError as exc:  # LWA answers 400 invalid_grant / invalid_client for bad credentials
                raise AuthError(f"Login with Amazon refused the refresh token or client credentials ({exc}); "
                                "check refresh_token, client_id and client_secret") from None
            token = text(obj(body).get("access_token"))
            if token is None:
                raise BadPayload("the Login with Amazon token answer has no access_token")
            try:
                lifetime = float(obj(body).get("expires_in") or 3600)
            except (TypeError, ValueError):
                lifetime = 3600.0
            remember(token)
            self._token, self._expires_at = token, time.monotonic() + max(60.0, min(lifetime, 3600.0))
            self.tokens_fetched += 1
            return token

    # --- calls ------------------------------------------------------------------------------

    def _pace(self, operation: str) -> None:
        bucket = self._buckets[operation]
        with self._lock:
            wait = bucket.take()
        if wait <= 0:
            return
        self.paced.append((operation, wait))
        if self.runtime.sleep is not None:
            self.runtime.sleep(wait)
        elif self.runtime.stop.wait(wait):
            raise Stopped()

    def _follow_rate(self, operation: str, response: httpx.Response) -> None:
        """`x-amzn-RateLimit-Limit`: the rate Amazon currently applies to this operation, replacing the plan's."""
        try:
            rate = float(response.headers.get("x-amzn-ratelimit-limit", ""))
        except ValueError:
            return
        documented = USAGE_PLANS[operation][0]
        if documented / 10 <= rate <= documented * 10_000:  # a value far off is no rate Amazon applies: kept out
            with self._lock:
                self._buckets[operation].rate = rate * PACE_MARGIN

    def call(self, operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One SP-API operation, paced by its usage plan; a refused access token is renewed once."""
        refused: str | None = None
        for _ in range(2):
            token = self._access_token(refused)
            self._pace(operation)
            try:
                response = self.http.request(method, path, headers={"x-amz-access-token": token}, **kwargs)
            except AuthError:
                refused = token
                continue
            except ApiError as exc:
                if exc.status_code != 403 or "Unauthorized" not in exc.message or refused:
                    raise
                refused = token  # SP-API answers an expired token with 403 Unauthorized
                continue
            self._follow_rate(operation, response)
            return response
        raise AuthError(f"Amazon refused a freshly issued access token on {method} {path}; check the app's "
                        "roles (Inventory and Order Tracking) and that the seller authorised it")

    def json(self, operation: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(operation, method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise BadPayload(f"{operation}: the answer is not valid JSON ({len(response.content)} bytes)") from None
        if not isinstance(body, dict):
            raise BadPayload(f"{operation}: expected a JSON object, got {type(body).__name__}")
        return body

    def download(self, url: str, compression: str | None) -> Document:
        """A presigned document URL (no access token: S3 refuses extra auth), inflated when GZIP."""
        response = self.http.request("GET", url)
        body = response.content
        if (compression or "").upper() == "GZIP":
            body = _gunzip(body, int(self.http.limits.max_response_bytes))
        return Document(body, response.charset_encoding)

    def upload(self, url: str, content: bytes, content_type: str) -> None:
        """The feed's file to its presigned URL; a lost answer leaves only an unused document behind."""
        self.http.request("PUT", url, content=content, headers={"content-type": content_type})

    # --- Reports ----------------------------------------------------------------------------

    def create_report(self, report_type: str, marketplaces: Sequence[str], start: datetime, end: datetime) -> str:
        body = self.json("createReport", "POST", "/reports/2021-06-30/reports", json={
            "reportType": report_type, "marketplaceIds": list(marketplaces),
            "dataStartTime": iso(start), "dataEndTime": iso(end)})
        report_id = text(body.get("reportId"))
        if report_id is None:
            raise BadPayload("createReport: the answer has no reportId")
        return report_id

    def report(self, report_id: str) -> dict[str, Any] | None:
        """getReport, or None when Amazon does not know the report (404: reports are kept 90 days)."""
        try:
            body = self.json("getReport", "GET", f"/reports/2021-06-30/reports/{report_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        if text(body.get("reportId")) is None or text(body.get("processingStatus")) is None:
            raise BadPayload("getReport: the answer is not a Report (no reportId or processingStatus)")
        return body

    def report_document(self, document_id: str) -> Document:
        body = self.json("getReportDocument", "GET", f"/reports/2021-06-30/documents/{document_id}")
        url = text(body.get("url"))
        if url is None:
            raise BadPayload("getReportDocument: the answer has no url")
        return self.download(url, text(body.get("compressionAlgorithm")))

    # --- Orders v0 --------------------------------------------------------------------------

    def order(self, order_id: str) -> dict[str, Any] | None:
        """getOrder's payload, or None when Amazon does not know the order (404)."""
        try:
            body = self.json("getOrder", "GET", f"/orders/v0/orders/{order_id}")
        except ApiError as exc:
            if exc.status_code in (400, 404):
                return None
            raise
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise BadPayload("getOrder: the answer has no payload object")
        return payload

    def order_items(self, order_id: str) -> list[Any]:
        """Every OrderItem of an order, following NextToken."""
        found: list[Any] = []
        params: dict[str, str] = {}
        for _ in range(50):
            body = self.json("getOrderItems", "GET", f"/orders/v0/orders/{order_id}/orderItems", params=params)
            payload = body.get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("OrderItems"), list):
                raise BadPayload("getOrderItems: the answer has no payload.OrderItems list")
            found += payload["OrderItems"]
            token = text(payload.get("NextToken"))
            if token is None:
                break
            params = {"NextToken": token}
        return found

    # --- Feeds ------------------------------------------------------------------------------

    def create_feed_document(self, content_type: str) -> tuple[str, str]:
        body = self.json("createFeedDocument", "POST", "/feeds/2021-06-30/documents",
                         json={"contentType": content_type})
        document_id, url = text(body.get("feedDocumentId")), text(body.get("url"))
        if document_id is None or url is None:
            raise BadPayload("createFeedDocument: the answer has no feedDocumentId and url")
        return document_id, url

    def create_feed(self, feed_type: str, marketplaces: Sequence[str], document_id: str) -> str:
        body = self.json("createFeed", "POST", "/feeds/2021-06-30/feeds", json={
            "feedType": feed_type, "marketplaceIds": list(marketplaces), "inputFeedDocumentId": document_id})
        feed_id = text(body.get("feedId"))
        if feed_id is None:
            raise BadPayload("createFeed: the answer has no feedId")
        return feed_id

    def feed(self, feed_id: str) -> dict[str, Any] | None:
        """getFeed, or None when Amazon does not know the feed."""
        try:
            body = self.json("getFeed", "GET", f"/feeds/2021-06-30/feeds/{feed_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        if text(body.get("feedId")) is None or text(body.get("processingStatus")) is None:
            raise BadPayload("getFeed: the answer is not a Feed (no feedId or processingStatus)")
        return body

    def feeds(self, feed_type: str, marketplaces: Sequence[str], since: datetime, until: datetime) -> list[Any]:
        """The feeds of one type created in [since, until], every page."""
        params: dict[str, Any] = {"feedTypes": feed_type, "marketplaceIds": ",".join(marketplaces),
                                  "pageSize": 100, "createdSince": iso(since), "createdUntil": iso(until)}
        found: list[Any] = []
        for _ in range(20):
            body = self.json("getFeeds", "GET", "/feeds/2021-06-30/feeds", params=params)
            if not isinstance(body.get("feeds"), list):
                raise BadPayload("getFeeds: the answer has no feeds list")
            found += body["feeds"]
            token = text(body.get("nextToken"))
            if token is None:
                break
            params = {"nextToken": token}
        return found

    def feed_document(self, document_id: str) -> Document:
        body = self.json("getFeedDocument", "GET", f"/feeds/2021-06-30/documents/{document_id}")
        url = text(body.get("url"))
        if url is None:
            raise BadPayload("getFeedDocument: the answer has no url")
        return self.download(url, text(body.get("compressionAlgorithm")))


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _gunzip(body: bytes, cap: int) -> bytes:
    """A GZIP document inflated, refused once it grows past the channel's `max_response_size` (a gzip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise BadPayload(f"the GZIP document is broken: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise BadPayload(f"the document inflates past {cap} bytes (max_response_size); not read")
    return out


def decode(document: Document) -> str:
    """The document's text in the charset its URL's Content-Type names; else UTF-8 (with or without a BOM), else
    Windows-1252, which Amazon's flat files use in the NA and EU marketplaces when no charset is named."""
    if document.charset:
        try:
            return document.body.decode(document.charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return document.body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return document.body.decode("cp1252", errors="replace")
