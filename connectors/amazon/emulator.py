"""The Amazon sandbox's routes, written from the model files in shared/specs/amazon-sp-api (Reports and Feeds
2021-06-30, Orders v0) and NOTES.md; the seeded records are in sandbox_data.py.

- Login with Amazon: `POST /auth/o2/token` (refresh-token grant, form-encoded) hands out hour-long tokens; every
  SP-API call needs one in `x-amz-access-token`, else 403 `Unauthorized` as SP-API answers.
- Reports: createReport → getReport walks IN_QUEUE → IN_PROGRESS → DONE (`report_polls` polls first; FATAL for
  the next `fatal_reports` reports; CANCELLED once processed when the window holds no rows, as the model says)
  → getReportDocument → a presigned URL (`/_s3/...`, no token) serving the GZIP tab-separated report of the rows
  whose return date lies in the report's window.
- Feeds: createFeedDocument → PUT the flat file to its URL → createFeed (processed at once: each adjustment row
  refunds its order item, refused past the item's price, for an unknown item, or where `refuse_items` says) →
  getFeed walks the same lifecycle (`feed_polls`) → getFeedDocument of the processing report.
- Orders v0: getOrder, getOrderItems.
- Usage plans: each operation's documented rate and burst as a token bucket; beyond it, 429 with an ErrorList.
  Answers carry `x-amzn-RateLimit-Limit` and `x-amzn-RequestId`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE
from retsync_connectors.amazon.sandbox_data import (
    ADJUSTMENT_FEED,
    FBA_HEADER,
    FBA_REPORT,
    MARKETPLACE,
    MFN_HEADER,
    MFN_REPORT,
    AmazonData,
    report_stamp,
    stamp,
    tsv,
    untsv,
)

SANDBOX_CLIENT_ID = "amzn1.application-oa2-client.retsyncsandbox0001"
SANDBOX_CLIENT_SECRET = "amzn1.oa2-cs.v1.retsync-sandbox-client-secret"
SANDBOX_REFRESH_TOKEN = "Atzr|IwEBIretsync-sandbox-refresh-token"
PLANS: dict[str, tuple[float, int]] = {
    "createReport": (0.0167, 15), "getReport": (2.0, 15), "getReportDocument": (0.0167, 15),
    "getOrder": (0.5, 30), "getOrderItems": (0.5, 30),
    "createFeedDocument": (0.5, 15), "createFeed": (0.0083, 15), "getFeed": (2.0, 15), "getFeeds": (0.0222, 10),
    "getFeedDocument": (0.0222, 10),
}
"""Each operation's usage plan (requests per second, burst) as its description in the model files states
(tests/amazon/test_emulator_spec.py reads them back from there)."""
SANDBOX_RATE_SCALE = 10_000.0
"""`retsync demo`, the benchmarks and the contract suite get a sandbox ten thousand times as fast as Amazon's plans:
they measure retsync, not Amazon's usage plans; it says so in `x-amzn-RateLimit-Limit`, which the client follows.
The sandbox of the connector's own tests (`AmazonEmulator.sized`) keeps the documented rates."""
MAX_MFN_SPAN = timedelta(days=60)
"""The MFN returns report covers at most 60 days per request (NOTES.md)."""
TERMINAL = ("DONE", "CANCELLED", "FATAL")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class AmazonEmulator(Emulator):
    data: AmazonData = field(default_factory=lambda: AmazonData(channel="amazon"))
    report_polls: int = 0
    """getReport calls answered IN_QUEUE / IN_PROGRESS before a report is DONE (0: DONE at the first look)."""
    feed_polls: int = 0
    fatal_reports: int = 0
    """The next this many reports end FATAL."""
    rate_limits: bool = True
    rate_scale: float = 1.0
    """Every plan's rate times this (bursts as documented)."""
    refuse_items: dict[tuple[str, str], str] = field(default_factory=dict)
    """(order id, order item id) → the error message an adjustment of that item gets in the processing report."""
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_documents: dict[str, bytes] = field(default_factory=dict)
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunded: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    applied: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(50_001)
        self._faulted = threading.local()
        self._buckets = {name: [float(burst), time.monotonic()] for name, (_, burst) in PLANS.items()}

    @classmethod
    def sized(cls, seed: int = 1, returns: int | None = None, rate_scale: float = 1.0) -> AmazonEmulator:
        return cls(seed=seed, data=AmazonData(channel="amazon", seed=seed, size=returns or 16), rate_scale=rate_scale)

    def rate(self, operation: str) -> float:
        return PLANS[operation][0] * self.rate_scale

    # --- plumbing ---------------------------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _origin(self, request: httpx.Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc.decode()}"

    def _answer(self, status: int, body: Any, operation: str) -> httpx.Response:
        return self.json_response(status, body, **{"x-amzn-RateLimit-Limit": f"{self.rate(operation):g}",
                                                  "x-amzn-RequestId": secrets.token_hex(8)})

    def errors(self, status: int, code: str, message: str, details: str | None = None, operation: str | None = None
               ) -> httpx.Response:
        """An ErrorList; 400 and 404 of an operation carry its rate limit header too, as the model files say."""
        error = {"code": code, "message": message, **({"details": details} if details else {})}
        headers = {"x-amzn-RequestId": secrets.token_hex(8)}
        if operation is not None and status in (400, 404):
            headers["x-amzn-RateLimit-Limit"] = f"{self.rate(operation):g}"
        return Emulator.json_response(status, {"errors": [error]}, **headers)

    def _take_fault(self, request: httpx.Request) -> Any:
        fault = super()._take_fault(request)
        self._faulted.spoiled = fault is not None and fault.kind in ("truncated", "malformed", "invalid_json",
                                                                     "wrong_shape", "lost")
        return fault

    def _throttled(self, operation: str) -> httpx.Response | None:
        """The operation's usage plan as a token bucket: beyond it, 429 QuotaExceeded. A request whose answer a
        test fault spoils is not counted: it stands for trouble on the way, and the client's retries of it would
        otherwise drain the bucket in the milliseconds a test's backoff lasts."""
        if not self.rate_limits or getattr(self._faulted, "spoiled", False):
            return None
        rate, burst = self.rate(operation), PLANS[operation][1]
        with self.lock:
            bucket = self._buckets[operation]
            now = time.monotonic()
            bucket[0] = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if bucket[0] < 1:
                return self.errors(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
            bucket[0] -= 1
        return None

    def changes_state(self, request: httpx.Request) -> bool:
        """createReport is a read: it asks Amazon to prepare the seller's data and changes none of it (the bench's
        floor replays it with the GETs that follow it)."""
        if request.method == "POST" and request.url.path == "/reports/2021-06-30/reports":
            return False
        return super().changes_state(request)

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith(("/auth/", "/_s3/")):
            return None
        token = request.headers.get("x-amz-access-token", "")
        expires = self.tokens.get(token)
        if expires is None or time.monotonic() >= expires:
            return self.errors(403, "Unauthorized", "Access to requested resource is denied.",
                               "The access token you provided is revoked, malformed or invalid.")
        return None

    # --- Login with Amazon ------------------------------------------------------------------

    @route("POST", "/auth/o2/token")
    def token(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[-1] for key, values in urllib.parse.parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return self.json_response(400, {"error": "unsupported_grant_type",
                                            "error_description": "grant_type must be refresh_token"})
        if form.get("client_id") != SANDBOX_CLIENT_ID or form.get("client_secret") != SANDBOX_CLIENT_SECRET:
            return self.json_response(401, {"error": "invalid_client",
                                            "error_description": "Client authentication failed"})
        if form.get("refresh_token") != SANDBOX_REFRESH_TOKEN:
            return self.json_response(400, {"error": "invalid_grant",
                                            "error_description": "The request has an invalid grant parameter : "
                                                                 "refresh_token"})
        return self.json_response(200, {"access_token": self.issue_token(3600),
                                        "refresh_token": SANDBOX_REFRESH_TOKEN, "token_type": "bearer",
                                        "expires_in": 3600})

    def issue_token(self, ttl: float) -> str:
        """An LWA access token as Amazon writes them ("Atza|…"), for the `x-amz-access-token` header."""
        token = super().issue_token(ttl)
        with self.lock:
            self.tokens["Atza|" + token] = self.tokens.pop(token)
        return "Atza|" + token

    # --- Reports ----------------------------------------------------------------------------

    @route("POST", "/reports/2021-06-30/reports")
    def create_report(self, request: httpx.Request) -> httpx.Response:
        throttled = self._throttled("createReport")
        if throttled is not None:
            return throttled
        body = self._body(request)
        report_type = body.get("reportType")
        marketplaces = body.get("marketplaceIds")
        if report_type not in (MFN_REPORT, FBA_REPORT):
            return self.errors(400, "InvalidInput", f"reportType {report_type!r} is not supported by this sandbox",
                               operation="createReport")
        if not isinstance(marketplaces, list) or not marketplaces or len(marketplaces) > 25 \
                or any(m != MARKETPLACE for m in marketplaces):
            return self.errors(400, "InvalidInput", "marketplaceIds must name 1 to 25 marketplaces of the seller",
                               operation="createReport")
        now = datetime.now(timezone.utc)
        end = _moment(body.get("dataEndTime")) if "dataEndTime" in body else now
        start = _moment(body.get("dataStartTime")) if "dataStartTime" in body else (end or now) - timedelta(days=30)
        if start is None or end is None or start > end:
            return self.errors(400, "InvalidInput", "dataStartTime and dataEndTime must be ISO 8601, start first",
                               operation="createReport")
        if report_type == MFN_REPORT and end - start > MAX_MFN_SPAN:
            return self.errors(400, "InvalidInput", "The maximum date range for this report is 60 days",
                               operation="createReport")
        report_id = self._next_id()
        with self.lock:
            fatal = self.fatal_reports > 0
            self.fatal_reports -= 1 if fatal else 0
            self.reports[report_id] = {
                "reportId": report_id, "reportType": report_type, "marketplaceIds": marketplaces,
                "dataStartTime": stamp(start), "dataEndTime": stamp(end), "createdTime": stamp(now),
                "processingStatus": "IN_QUEUE", "_polls": 0, "_fatal": fatal}
        return self._answer(202, {"reportId": report_id}, "createReport")

    @route("GET", "/reports/2021-06-30/reports/{report_id}")
    def get_report(self, request: httpx.Request, report_id: str) -> httpx.Response:
        throttled = self._throttled("getReport")
        if throttled is not None:
            return throttled
        with self.lock:
            report = self.reports.get(report_id)
            if report is None:
                return self.errors(404, "NotFound", f"Report {report_id} was not found", operation="getReport")
            self._advance(report, self.report_polls, self._finish_report)
            shown = {k: v for k, v in report.items() if not k.startswith("_")}
        return self._answer(200, shown, "getReport")

    def _advance(self, record: dict[str, Any], polls: int, finish: Any) -> None:
        """One look at a report or feed: IN_QUEUE, IN_PROGRESS for `polls` looks, then its end."""
        if record["processingStatus"] in TERMINAL:
            return
        record["_polls"] += 1
        now = stamp(datetime.now(timezone.utc))
        if record["_polls"] > polls:
            record.setdefault("processingStartTime", now)
            record["processingEndTime"] = now
            finish(record)
        elif record["_polls"] == polls or record["_polls"] > 1:
            record["processingStatus"] = "IN_PROGRESS"
            record.setdefault("processingStartTime", now)

    def _finish_report(self, report: dict[str, Any]) -> None:
        if report["_fatal"]:
            report["processingStatus"] = "FATAL"
            return
        start, end = _moment(report["dataStartTime"]), _moment(report["dataEndTime"])
        if report["reportType"] == MFN_REPORT:
            columns, rows, date_column = MFN_HEADER, self.data.mfn_rows, "Return request date"
        else:
            columns, rows, date_column = FBA_HEADER, self.data.fba_rows, "return-date"
        chosen = [row for row in rows if (moment := _moment(row.get(date_column))) is not None
                  and start is not None and end is not None and start <= moment <= end]
        if not chosen:  # "an automatic cancellation if there is no data to return" (Report.processingStatus)
            report["processingStatus"] = "CANCELLED"
            return
        document_id = f"amzn1.spdoc.1.4.eu.{secrets.token_hex(8)}"
        self.report_documents[document_id] = gzip.compress(tsv(columns, chosen).encode("utf-8"))
        report["processingStatus"] = "DONE"
        report["reportDocumentId"] = document_id

    @route("GET", "/reports/2021-06-30/documents/{document_id}")
    def get_report_document(self, request: httpx.Request, document_id: str) -> httpx.Response:
        throttled = self._throttled("getReportDocument")
        if throttled is not None:
            return throttled
        if document_id not in self.report_documents:
            return self.errors(404, "NotFound", f"Report document {document_id} was not found",
                               operation="getReportDocument")
        return self._answer(200, {"reportDocumentId": document_id, "compressionAlgorithm": "GZIP",
                                  "url": f"{self._origin(request)}/_s3/reports/{document_id}"}, "getReportDocument")

    @route("GET", "/_s3/reports/{document_id}")
    def report_content(self, request: httpx.Request, document_id: str) -> httpx.Response:
        content = self.report_documents.get(document_id)
        if content is None:
            return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>",
                                  headers={"content-type": "application/xml"})
        return httpx.Response(200, content=content, headers={"content-type": "text/plain; charset=UTF-8"})

    # --- Orders v0 --------------------------------------------------------------------------

    @route("GET", "/orders/v0/orders/{order_id}")
    def get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        throttled = self._throttled("getOrder")
        if throttled is not None:
            return throttled
        order = self.data.orders.get(order_id)
        if order is None:
            return self.errors(404, "NotFound", f"Order {order_id} was not found", operation="getOrder")
        return self._answer(200, {"payload": order}, "getOrder")

    @route("GET", "/orders/v0/orders/{order_id}/orderItems")
    def get_order_items(self, request: httpx.Request, order_id: str) -> httpx.Response:
        throttled = self._throttled("getOrderItems")
        if throttled is not None:
            return throttled
        entries = self.data.order_items.get(order_id)
        if entries is None:
            return self.errors(404, "NotFound", f"Order {order_id} was not found", operation="getOrderItems")
        return self._answer(200, {"payload": {"OrderItems": entries, "AmazonOrderId": order_id}}, "getOrderItems")

    # --- Feeds ------------------------------------------------------------------------------

    @route("POST", "/feeds/2021-06-30/documents")
    def create_feed_document(self, request: httpx.Request) -> httpx.Response:
        throttled = self._throttled("createFeedDocument")
        if throttled is not None:
            return throttled
        body = self._body(request)
        if not isinstance(body.get("contentType"), str) or not body["contentType"]:
            return self.errors(400, "InvalidInput", "contentType is required", operation="createFeedDocument")
        document_id = f"amzn1.tortuga.4.eu.{secrets.token_hex(8)}"
        with self.lock:
            self.feed_documents[document_id] = {"contentType": body["contentType"], "content": None}
        return self._answer(201, {"feedDocumentId": document_id,
                                  "url": f"{self._origin(request)}/_s3/feeds/{document_id}"}, "createFeedDocument")

    @route("PUT", "/_s3/feeds/{document_id}")
    def upload(self, request: httpx.Request, document_id: str) -> httpx.Response:
        with self.lock:
            document = self.feed_documents.get(document_id)
            if document is None or document.get("result"):
                return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
            document["content"] = request.content
        return httpx.Response(200)

    @route("GET", "/_s3/feeds/{document_id}")
    def feed_content(self, request: httpx.Request, document_id: str) -> httpx.Response:
        document = self.feed_documents.get(document_id)
        if document is None or document.get("content") is None:
            return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")
        return httpx.Response(200, content=document["content"], headers={"content-type": document["contentType"]})

    @route("POST", "/feeds/2021-06-30/feeds")
    def create_feed(self, request: httpx.Request) -> httpx.Response:
        throttled = self._throttled("createFeed")
        if throttled is not None:
            return throttled
        body = self._body(request)
        document = self.feed_documents.get(str(body.get("inputFeedDocumentId")))
        if not isinstance(body.get("feedType"), str) or not isinstance(body.get("marketplaceIds"), list):
            return self.errors(400, "InvalidInput", "feedType, marketplaceIds and inputFeedDocumentId are required",
                               operation="createFeed")
        if document is None or document.get("content") is None:
            return self.errors(400, "InvalidInput", "inputFeedDocumentId names no uploaded feed document",
                               operation="createFeed")
        feed_id = self._next_id()
        with self.lock:
            report = self._process(body["feedType"], document["content"])
            result_id = f"amzn1.tortuga.4.eu.{secrets.token_hex(8)}"
            self.feed_documents[result_id] = {"contentType": "text/plain; charset=UTF-8", "result": True,
                                              "content": report.encode("utf-8")}
            self.feeds[feed_id] = {
                "feedId": feed_id, "feedType": body["feedType"], "marketplaceIds": body["marketplaceIds"],
                "createdTime": stamp(datetime.now(timezone.utc)), "processingStatus": "IN_QUEUE", "_polls": 0,
                "_result": result_id, "_input": body["inputFeedDocumentId"]}
        return self._answer(202, {"feedId": feed_id}, "createFeed")

    def _process(self, feed_type: str, content: bytes) -> str:
        """Carry out an adjustment flat file at once (Amazon queues it; the refund is what counts here) and
        answer its processing report."""
        errors: list[tuple[int, str, str, str, str]] = []
        rows = untsv(content.decode("utf-8", "replace")) if feed_type == ADJUSTMENT_FEED else []
        for number, row in enumerate(rows, start=1):
            order_id, item_id = row.get("order-id") or "", row.get("order-item-id") or ""
            problem = self._refund(order_id, item_id, row)
            if problem is not None:
                errors.append((number, order_id, item_id, *problem))
        lines = ["Feed Processing Summary:", f"\tNumber of records processed\t\t{len(rows)}",
                 f"\tNumber of records successful\t\t{len(rows) - len({e[0] for e in errors})}", "",
                 "original-record-number\torder-id\torder-item-id\terror-code\terror-type\terror-message"]
        lines += [f"{n}\t{o}\t{i}\t{code}\tError\t{message}" for n, o, i, code, message in errors]
        return "\n".join(lines) + "\n"

    def _refund(self, order_id: str, item_id: str, row: dict[str, Any]) -> tuple[str, str] | None:
        item = next((i for i in self.data.order_items.get(order_id, []) if i["OrderItemId"] == item_id), None)
        if item is None:
            return "18028", f"The order item {item_id} of order {order_id} was not found"
        if (order_id, item_id) in self.refuse_items:
            return "18999", self.refuse_items[(order_id, item_id)]
        try:
            asked = Decimal(row.get("item-price-adj") or "0")
        except InvalidOperation:
            return "8560", "item-price-adj is not an amount"
        price = Decimal(item["ItemPrice"]["Amount"])
        done = self.refunded.get((order_id, item_id), Decimal(0))
        if asked <= 0 or done + asked > price:
            return "18027", f"The adjustment of {asked} exceeds the refundable amount ({price - done})"
        self.refunded[(order_id, item_id)] = done + asked
        self.applied.append(("refund", order_id, item_id))
        return None

    @route("GET", "/feeds/2021-06-30/feeds/{feed_id}")
    def get_feed(self, request: httpx.Request, feed_id: str) -> httpx.Response:
        throttled = self._throttled("getFeed")
        if throttled is not None:
            return throttled
        with self.lock:
            feed = self.feeds.get(feed_id)
            if feed is None:
                return self.errors(404, "NotFound", f"Feed {feed_id} was not found", operation="getFeed")
            self._advance(feed, self.feed_polls, self._finish_feed)
            shown = {k: v for k, v in feed.items() if not k.startswith("_")}
        return self._answer(200, shown, "getFeed")

    @staticmethod
    def _finish_feed(feed: dict[str, Any]) -> None:
        feed["processingStatus"] = "DONE"
        feed["resultFeedDocumentId"] = feed["_result"]

    @route("GET", "/feeds/2021-06-30/feeds")
    def get_feeds(self, request: httpx.Request) -> httpx.Response:
        throttled = self._throttled("getFeeds")
        if throttled is not None:
            return throttled
        params = request.url.params
        types = set((params.get("feedTypes") or "").split(",")) - {""}
        since, until = _moment(params.get("createdSince")), _moment(params.get("createdUntil"))
        if not types:
            return self.errors(400, "InvalidInput", "feedTypes is required without nextToken", operation="getFeeds")
        found = [{k: v for k, v in feed.items() if not k.startswith("_")} for feed in self.feeds.values()
                 if feed["feedType"] in types
                 and (since is None or _moment(feed["createdTime"]) >= since)  # type: ignore[operator]
                 and (until is None or _moment(feed["createdTime"]) <= until)]  # type: ignore[operator]
        return self._answer(200, {"feeds": found}, "getFeeds")

    @route("GET", "/feeds/2021-06-30/documents/{document_id}")
    def get_feed_document(self, request: httpx.Request, document_id: str) -> httpx.Response:
        throttled = self._throttled("getFeedDocument")
        if throttled is not None:
            return throttled
        if document_id not in self.feed_documents:
            return self.errors(404, "NotFound", f"Feed document {document_id} was not found",
                               operation="getFeedDocument")
        return self._answer(200, {"feedDocumentId": document_id,
                                  "url": f"{self._origin(request)}/_s3/feeds/{document_id}"}, "getFeedDocument")

    @staticmethod
    def _body(request: httpx.Request) -> dict[str, Any]:
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    # --- hooks for the suites ----------------------------------------------------------------

    def _new_mfn_return(self, tag: str, **row: Any) -> str:
        now = datetime.now(timezone.utc)
        rng = self.data.rng("added", tag, len(self.data.mfn_rows))
        order = self.data.add_order(rng, placed=now - timedelta(days=3))
        item = self.data.order_items[order["AmazonOrderId"]][0]
        rma = f"D{rng.randint(10**8, 10**9 - 1)}X"
        entry = self.data.mfn_row(order, item, rma=rma, requested=now - timedelta(seconds=5), status="Approved",
                                  reason="CR-DEFECTIVE", quantity=1)
        entry.update(row)
        with self.lock:
            self.data.mfn_rows.append(entry)
        return rma

    def add_odd_return(self) -> str:
        """A return request in a status and with a reason code nobody documented, its optional columns empty."""
        return self._new_mfn_return("odd", **{
            "Return request status": "PendingSellerReview-2031", "Return Reason": "AMZ-PG-NEW-CODE-2031",
            "Label type": "", "Label cost": "", "Currency code": "", "Return carrier": "", "Tracking ID": "",
            "A-to-Z Claim": "", "Is prime": "", "Item Name": "", "In policy": "", "Return type": "",
            "Resolution": "", "Order Amount": "", "Order quantity": "", "Refunded Amount": ""})

    def add_poison_return(self, poison: str = "quantity") -> str:
        if poison == "quantity":
            return self._new_mfn_return("poison", **{"Return quantity": "1e30"})
        rma = self._new_mfn_return("poison")
        order_id = self.data.mfn_rows[-1]["Order ID"]
        self.data.orders[order_id]["ShippingAddress"] = {"PostalCode": POISON_POSTCODE, "Phone": POISON_PHONE,
                                                         "CountryCode": "DE"}
        return rma

    def cancel_report(self, report_id: str) -> None:
        """What cancelReport does to a report that has not started processing: CANCELLED, never processed."""
        with self.lock:
            report = self.reports[report_id]
            if report["processingStatus"] == "IN_QUEUE":
                report["processingStatus"] = "CANCELLED"

    def add_report_row(self, row: dict[str, str], fba: bool = False) -> None:
        with self.lock:
            (self.data.fba_rows if fba else self.data.mfn_rows).append(row)

    def acts_applied(self) -> list[tuple[str, ...]]:
        """One entry per refunded order item: ("refund", order id, order item id)."""
        with self.lock:
            return list(self.applied)

    def returns_in_window(self) -> set[str]:
        """Every return id the seeded reports hold (MFN by RMA id, FBA as retsync keys them)."""
        mfn = {row["Amazon RMA ID"] for row in self.data.mfn_rows}
        fba = {f"FBA-{row['order-id']}-{row['license-plate-number']}" for row in self.data.fba_rows}
        return mfn | fba

    def report_rows(self) -> int:
        return len(self.data.mfn_rows) + len(self.data.fba_rows)

    def stamp_now(self) -> str:
        return report_stamp(datetime.now(timezone.utc))
