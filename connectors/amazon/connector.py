"""Amazon (Selling Partner API): returns read from the returns reports, refunds written as order-adjustment feeds.

SP-API has no returns resource for marketplace orders (NOTES.md): returns come from two reports, requested for a
moving window, and the only thing that can be written back is money.

Pulling. Each report type (MFN returns, FBA customer returns) has its window in the cursor: the `dataEndTime` of
its last DONE report, and the id of a report requested and not DONE yet. A pull looks at a pending report ONCE:
not DONE yet, nothing is stored and the pull goes on (the next poll looks again: the Reports API allows about one
createReport a minute, so it is never polled in a loop); FATAL, or CANCELLED before it was processed, it is logged
and dropped, and asked for again next time; DONE, its rows are stored and the window's end moves to its
`dataEndTime`, and only then (or when Amazon processed it and cancelled it for want of data, as the model file says
it does: an empty window is read too, or a quiet seller's cursor would never move).
The next window starts at that end less `overlap` (at most 30 days, so a window always moves on): reports come
hours late, and rows read twice are the same
returns (keyed by the report's natural keys, with the same revision). A backfill walks the history in windows of
at most 60 days (the MFN report's limit). The request of a report is stored with its own page, so a daemon that
dies while Amazon prepares it looks at the same report next time instead of asking for another.

Deciding. accept and keep on an MFN return are ONE order-adjustment flat-file feed with a row per decided line
(its order item found by SKU in getOrderItems, refunded at its price and tax per unit): createFeedDocument, upload,
createFeed, then getFeed; the act is pushed when the processing report shows every row done, failed with the
report's errors otherwise, and PENDING (with the feed id as its reference) while Amazon processes the feed. Before
createFeed the act's key is written to a small journal in the state folder, and the feed id once known: a retry
after a lost answer checks that feed (or finds the one submitted at that moment) before submitting again.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field

from retsync.kit.contract import (
    AlreadyDone,
    Capabilities,
    Connector,
    DecisionAct,
    Page,
    PullContext,
    PushResult,
    PushStatus,
    Runtime,
    Stream,
)
from retsync.kit.files import private_dir, replace_file
from retsync.kit.http import BadPayload
from retsync.kit.model import DecisionKind, Order, Return
from retsync.kit.paging import Cursor
from retsync.kit.payload import OutOfRange, moment, not_after, obj, text, when
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration
from retsync_connectors.amazon.client import LWA_TOKEN_URL, REGION_HOSTS, AmazonClient, decode
from retsync_connectors.amazon.mapping import (
    ADJUSTMENT_COLUMNS,
    ADJUSTMENT_FEED,
    FBA_REPORT,
    MFN_REPORT,
    FlatFile,
    adjustment_row,
    fba_key,
    group_mfn_lines,
    map_fba_return,
    map_mfn_return,
    map_order,
    order_item_for,
    read_flat_file,
    read_processing_report,
    write_flat_file,
)

if TYPE_CHECKING:
    from retsync_connectors.amazon.emulator import AmazonEmulator

log = structlog.get_logger(__name__)

REPORTS = {"mfn": MFN_REPORT, "fba": FBA_REPORT}
REQUIRED_COLUMNS = {"mfn": ("Order ID", "Return request date"), "fba": ("order-id", "return-date")}
"""Columns a report must have: a document without them is not the report asked for (BadPayload, read again)."""
MAX_SPAN = timedelta(days=60)
"""Longest window of one report (the MFN returns report's documented limit; the FBA one is kept to the same)."""
WINDOWS_PER_PULL = 64
"""Reports one pull asks for per type at most: a backfill of ten years is 61 windows. Past createReport's burst of
15 each waits its minute (the pull stores each window as it goes, and stops at once when the daemon does)."""
PAGE_RETURNS = 100
"""Returns stored per page (each with its orders): a report of thousands of rows is stored as it is read, and a
pull cut short resumes with the same report (its earlier pages re-read unchanged, their orders not fetched again)."""
CAUGHT_UP = timedelta(minutes=5)
MIN_PROGRESS = timedelta(days=1)
"""A pull asks for the next window at once only while each moves the cursor on by at least this (a backfill's
60-day windows); a report whose dataEndTime Amazon set short of the one asked for ends the pull instead."""
FEED_CONTENT_TYPE = "text/tab-separated-values; charset=UTF-8"
OPEN = ("IN_QUEUE", "IN_PROGRESS")
JOURNAL_DAYS = 30


class AmazonSettings(ChannelSettings):
    region: Literal["na", "eu", "fe"] = Field(
        default="eu", description="SP-API region of the seller account: na (US, CA, MX, BR), eu (UK, DE, FR, IT, ES, "
        "NL, BE, SE, PL, TR, AE, SA, EG, IN, ZA, IE) or fe (JP, AU, SG); picks the endpoint unless base_url is set")
    client_id: Secret = Field(description="the LWA client id of your SP-API app (amzn1.application-oa2-client…)")
    client_secret: Secret = Field(description="the LWA client secret of your SP-API app; env:VAR, file:/path or "
                                              "keyring:service/user")
    refresh_token: Secret = Field(description="the refresh token (Atzr|…) the seller's authorisation of your app "
                                              "gave; env:VAR, file:/path or keyring:service/user")
    marketplace_ids: list[str] = Field(min_length=1, max_length=25, description="marketplaces whose returns are "
                                       "read and refunded, e.g. [\"A1PA6795UKMFR9\"] (amazon.de)")
    mfn_returns: bool = Field(default=True, description="read the returns of orders you ship yourself (the "
                                                        "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE report)")
    fba_returns: bool = Field(default=True, description="read FBA customer returns (the "
                                                        "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA report); Amazon "
                                                        "decides them, retsync stores them decided")
    report_every: Duration = Field(
        default=timedelta(minutes=30), description="shortest time between two requests of the same report once "
        "the history is read (Amazon allows about one createReport a minute and reports come hours late)")
    fetch_orders: bool = Field(default=True, description="read the orders returns name (getOrder, getOrderItems) "
                                                         "to link return lines to order items")
    buyer_data: bool = Field(default=False, description="read the buyer's name, e-mail, phone and postcode where "
                             "getOrder gives them; Amazon gives them only to an app with the restricted role and a "
                             "Restricted Data Token, which retsync does not request")
    accept_reason_code: str = Field(default="CustomerReturn", description="adjustment-reason-code of the refund "
                                                                          "an accept decision sends")
    keep_reason_code: str = Field(default="GeneralAdjustment", description="adjustment-reason-code of the refund "
                                                                           "a keep decision sends (no return)")
    overlap: Duration = Field(default=timedelta(hours=24), description="each report window starts this long before "
                              "the last one ended: Amazon's reports come hours late")


class ReportsCursor(Cursor):
    """Per report type: the `dataEndTime` of its last DONE report (the next window starts there less the overlap),
    the report requested and not DONE yet, and when it was requested."""

    mfn_end: datetime | None = None
    mfn_pending: str | None = None
    mfn_requested: datetime | None = None
    fba_end: datetime | None = None
    fba_pending: str | None = None
    fba_requested: datetime | None = None


class FeedJournal:
    """`<state_dir>/amazon/<channel>-feeds.json`: act key → when its feed was submitted and, once known, its id.

    Written (temp file, rename) before createFeed and after it, so a retry after a lost answer knows whether
    and when a feed was submitted, and which feeds are other acts'."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("amazon_feed_journal_unreadable", path=str(self.path), error=str(exc))
            return {}
        return {key: value for key, value in data.items() if isinstance(value, dict)} if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._load().get(key, {}))

    def claimed(self, besides: str) -> set[str]:
        with self._lock:
            return {str(entry["feed"]) for key, entry in self._load().items() if key != besides and entry.get("feed")}

    def record(self, key: str, **fields: Any) -> None:
        with self._lock:
            data = self._load()
            oldest = (datetime.now(timezone.utc) - timedelta(days=JOURNAL_DAYS)).isoformat()
            data = {k: v for k, v in data.items() if str(v.get("at", "")) >= oldest}
            entry = {**data.get(key, {}), **fields, "at": datetime.now(timezone.utc).isoformat()}
            data[key] = {k: v for k, v in entry.items() if v is not None}
            private_dir(self.path.parent)
            replace_file(self.path, json.dumps(data))


class AmazonConnector(Connector[AmazonSettings]):
    """Amazon Selling Partner API: returns from the MFN and FBA returns reports, refunds as adjustment feeds."""

    name = "amazon"
    title = "Amazon (Selling Partner API)"
    settings_model = AmazonSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions={
            DecisionKind.ACCEPT: "a refund of the decided items (price and tax per unit, adjustment reason "
                                 "`accept_reason_code`) as ONE order-adjustment feed "
                                 "(POST_FLAT_FILE_PAYMENT_ADJUSTMENT_DATA); pushed once Amazon's processing report "
                                 "shows every line refunded; MFN returns only (FBA returns are Amazon's own)",
            DecisionKind.KEEP: "the same refund without the goods coming back (adjustment reason "
                               "`keep_reason_code`), ONE order-adjustment feed",
        },
        unsupported={
            DecisionKind.REJECT: "SP-API cannot refuse or close a return request: that is a Seller Central action "
                                 "(Orders > Manage Returns); record it there",
            DecisionKind.REPAIR: "SP-API has no repair of returned goods: arrange it with the buyer and close the "
                                 "return in Seller Central",
            DecisionKind.EXCHANGE: "replacements are a Seller Central action (Manage Returns > issue a "
                                   "replacement); SP-API cannot create one for a return",
            DecisionKind.CANCEL: "only the buyer withdraws a return request; SP-API cannot close it (Seller "
                                 "Central's Manage Returns can)",
        },
        fetches_orders=True,
    )

    def __init__(self, channel: str, settings: AmazonSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = AmazonClient(
            channel, settings, runtime, base_url=settings.base_url or REGION_HOSTS[settings.region],
            token_url=settings.token_url or LWA_TOKEN_URL, client_id=settings.client_id.get_secret_value(),
            client_secret=settings.client_secret.get_secret_value(),
            refresh_token=settings.refresh_token.get_secret_value())
        self.journal = FeedJournal(Path(runtime.state_dir) / "amazon" / f"{channel}-feeds.json")

    def close(self) -> None:
        self.client.close()

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream is not Stream.RETURNS:
            raise ValueError(f"the {self.name} connector pulls returns (with their orders), not {stream}")
        cursor = ReportsCursor.load(context.cursor, context.now)
        kinds = [kind for kind, wanted in (("mfn", self.settings.mfn_returns), ("fba", self.settings.fba_returns))
                 if wanted]
        for kind in kinds:
            yield from self._pull_reports(kind, cursor, context)

    def _pull_reports(self, kind: str, cursor: ReportsCursor, context: PullContext) -> Iterator[Page]:
        for _ in range(WINDOWS_PER_PULL):
            if self.runtime.stop.is_set():
                return
            pending: str | None = getattr(cursor, f"{kind}_pending")
            if pending is None:
                end: datetime | None = getattr(cursor, f"{kind}_end")
                requested: datetime | None = getattr(cursor, f"{kind}_requested")
                caught_up = end is not None and requested is not None and end >= requested - CAUGHT_UP
                if caught_up and requested is not None and context.now - requested < self.settings.report_every:
                    return
                start = min(end - min(self.settings.overlap, MAX_SPAN / 2) if end else context.backfill_since,
                            context.now)
                pending = self.client.create_report(REPORTS[kind], self.settings.marketplace_ids, start,
                                                    min(start + MAX_SPAN, context.now))
                setattr(cursor, f"{kind}_pending", pending)
                setattr(cursor, f"{kind}_requested", context.now)
                yield Page(cursor=cursor.dump())  # the request is kept: the next pull looks at this report
            report = self.client.report(pending) or {"processingStatus": "UNKNOWN TO AMAZON"}
            status = text(report.get("processingStatus"))
            if status in OPEN:
                log.info("amazon_report_not_ready", channel=self.channel, report=REPORTS[kind], report_id=pending,
                         status=status)
                return
            empty = status == "CANCELLED" and text(report.get("processingStartTime")) is not None
            if status != "DONE" and not empty:  # FATAL, cancelled before processing, or a status added later
                log.warning("amazon_report_failed", channel=self.channel, report=REPORTS[kind], report_id=pending,
                            status=status, detail="dropped; requested again on the next pull")
                setattr(cursor, f"{kind}_pending", None)
                yield Page(cursor=cursor.dump())
                return
            before: datetime | None = getattr(cursor, f"{kind}_end")
            if empty:  # Amazon processed it and cancelled it "if there is no data to return": the window is read
                log.info("amazon_report_empty", channel=self.channel, report=REPORTS[kind], report_id=pending)
                header: tuple[str, ...] = ()
                chunks: list[list[Any]] = [[]]
            else:
                header, chunks = self._report_records(kind, report)
            for number, chunk in enumerate(chunks, start=1):
                if self.runtime.stop.is_set():
                    return
                page = self._records_page(kind, header, chunk, context)
                if number == len(chunks):  # the report's last page moves the window: it is read
                    ended = when(report.get("dataEndTime")) or getattr(cursor, f"{kind}_requested") or context.now
                    ended = max(ended, before) if before is not None else ended  # never back
                    setattr(cursor, f"{kind}_end", not_after(ended, context.now))
                    setattr(cursor, f"{kind}_pending", None)
                    page.cursor = cursor.dump()
                yield page
            after: datetime = getattr(cursor, f"{kind}_end")
            if after >= context.now - CAUGHT_UP or (before is not None and after - before < MIN_PROGRESS):
                return  # caught up; or Amazon ended the window short of what was asked: the next poll goes on

    def _report_records(self, kind: str, report: Mapping[str, Any]) -> tuple[tuple[str, ...], list[list[Any]]]:
        """The report's header and its records (an MFN return's lines, an FBA line) in pages of PAGE_RETURNS (at
        least one), kept as text until their page is mapped."""
        document_id = text(report.get("reportDocumentId"))
        if document_id is None:
            raise BadPayload(f"getReport: report {text(report.get('reportId'))} is DONE without a reportDocumentId")
        try:
            flat = read_flat_file(decode(self.client.report_document(document_id)))
        except OutOfRange as exc:
            raise BadPayload(f"{REPORTS[kind]} report {text(report.get('reportId'))}: {exc}") from None
        missing = [column for column in REQUIRED_COLUMNS[kind] if column not in flat.header]
        if flat.header and missing:
            raise BadPayload(f"the {REPORTS[kind]} document has no {', '.join(missing)} column: not that report")
        records: list[Any] = list(group_mfn_lines(flat).items()) if kind == "mfn" else flat.lines
        return flat.header, [records[at:at + PAGE_RETURNS] for at in range(0, len(records), PAGE_RETURNS)] or [[]]

    def _records_page(self, kind: str, header: tuple[str, ...], records: Sequence[Any], context: PullContext) -> Page:
        """One page of a report's records, mapped (one that cannot be read set aside), with their orders."""
        sieve = RecordSieve()
        returns: list[Return] = []
        flat = FlatFile(header)
        for record in records:
            if kind == "mfn":
                key, lines = record
                rows = [flat.row(line) for line in lines]
                if key is None:
                    for row in rows:
                        sieve.set_aside("return", row, "a row without Order ID or Return request date")
                    continue
                mapped = sieve.map("return", rows, map_mfn_return, rows, external_id=key)
            else:
                row = flat.row(record)
                mapped = sieve.map("return", row, map_fba_return, row, external_id=_safe(fba_key, row))
            if mapped is not None:
                returns.append(mapped)
        returns = _unique(returns)
        return Page(returns=returns, orders=self._orders_for(returns, context, sieve), quarantined=sieve.take())

    def _orders_for(self, returns: list[Return], context: PullContext, sieve: RecordSieve) -> list[Order]:
        """The orders these returns name that are not stored yet. The report names no order item id: the core
        links each line to its order item by SKU (a product-based link, marked so)."""
        if not self.settings.fetch_orders:
            return []
        named = {r.order_external_id for r in returns if r.order_external_id}
        missing = sorted(named - set(context.stored_orders(named)))
        orders: list[Order] = []
        for order_id in missing:
            if self.runtime.stop.is_set():
                break
            fetched = self._fetch(order_id, sieve)
            if fetched is not None:
                orders.append(fetched)
        return orders

    def _fetch(self, order_id: str, sieve: RecordSieve | None) -> Order | None:
        raw = self.client.order(order_id)
        if raw is None:
            return None
        order_items = self.client.order_items(order_id)
        if sieve is None:
            return map_fetched("order", raw, map_order, raw, order_items, external_id=order_id,
                               buyer_data=self.settings.buyer_data)
        return sieve.map("order", raw, map_order, raw, order_items, external_id=order_id,
                         buyer_data=self.settings.buyer_data)

    def fetch_order(self, external_id: str) -> Order | None:
        return self._fetch(external_id, None)

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """ONE adjustment feed for the whole act; a retry looks for the feed an earlier attempt submitted."""
        if act.return_external_id.startswith("FBA-"):
            return PushResult(PushStatus.FAILED, "an FBA return is Amazon's own: Amazon refunds it, not the seller")
        earlier = self.journal.get(act.key)
        feed_id = act.reference or text(earlier.get("feed"))
        found_again = act.reference is None and feed_id is not None
        if feed_id is None and earlier.get("submitted"):
            feed_id, problem = self._submitted_feed(act, moment(earlier["submitted"]))
            if problem is not None:
                return PushResult(PushStatus.FAILED, problem)
            found_again = feed_id is not None
        if feed_id is None:
            prepared = self._adjustments(act)
            if isinstance(prepared, PushResult):
                return prepared
            document_id, url = self.client.create_feed_document(FEED_CONTENT_TYPE)
            self.client.upload(url, write_flat_file(ADJUSTMENT_COLUMNS, prepared).encode("utf-8"), FEED_CONTENT_TYPE)
            self.journal.record(act.key, submitted=datetime.now(timezone.utc).isoformat(), document=document_id)
            feed_id = self.client.create_feed(ADJUSTMENT_FEED, self.settings.marketplace_ids, document_id)
            self.journal.record(act.key, feed=feed_id)
        result = self._settle(act, feed_id)
        if found_again and result.status is PushStatus.PUSHED:
            raise AlreadyDone(result.detail or f"feed {feed_id}", reference=feed_id, result=result.result)
        return result

    def _adjustments(self, act: DecisionAct) -> list[dict[str, str]] | PushResult:
        """The feed's rows, one per decided line; FAILED when Amazon's order has no item for a line."""
        order_id = act.order_external_id or next((line.order_external_id for line in act.lines
                                                  if line.order_external_id), None)
        if order_id is None:
            return PushResult(PushStatus.FAILED, "the return names no Amazon order to refund")
        order_items = self.client.order_items(order_id)
        code = self.settings.keep_reason_code if act.kind is DecisionKind.KEEP else self.settings.accept_reason_code
        rows = []
        for line in act.lines:
            sku = re.sub(r"#\d+$", "", line.line_external_id[len(act.return_external_id) + 1:])
            item = order_item_for(order_items, sku or None, line.order_line_external_id)
            if item is None:
                return PushResult(PushStatus.FAILED, f"Amazon's order {order_id} has no item {sku!r} to refund")
            try:
                rows.append(adjustment_row(order_id, item, line.quantity, code))
            except (KeyError, ValueError) as exc:
                return PushResult(PushStatus.FAILED, f"cannot refund {sku!r} of order {order_id}: {exc}")
        return rows

    def _submitted_feed(self, act: DecisionAct, submitted: datetime | None) -> tuple[str | None, str | None]:
        """The feed an earlier attempt submitted without hearing its id: the adjustment feed Amazon lists as
        created at that moment that no other act claims. (None, None): nothing was submitted, send it now."""
        if submitted is None:
            return None, None
        slack = timedelta(seconds=self.client.http.limits.deadline + 60)
        listed = self.client.feeds(ADJUSTMENT_FEED, self.settings.marketplace_ids, submitted - timedelta(seconds=5),
                                   submitted + slack)
        others = self.journal.claimed(act.key)
        candidates = sorted({text(obj(feed).get("feedId")) or "" for feed in listed} - others - {""})
        if len(candidates) == 1:
            self.journal.record(act.key, feed=candidates[0])
            return candidates[0], None
        if not candidates:
            self.journal.record(act.key, submitted=None)
            return None, None
        return None, (f"an earlier attempt's answer was lost and Amazon lists {len(candidates)} adjustment feeds "
                      f"submitted at that moment ({', '.join(candidates)}); check the order's refunds in Seller "
                      "Central before deciding again, so it is not refunded twice")

    def _settle(self, act: DecisionAct, feed_id: str) -> PushResult:
        feed = self.client.feed(feed_id)
        if feed is None:
            return PushResult(PushStatus.FAILED, f"Amazon does not know feed {feed_id} any more; check the order's "
                                                 "refunds in Seller Central")
        status = text(feed.get("processingStatus"))
        if status in OPEN:
            return PushResult(PushStatus.PENDING, f"refund submitted as feed {feed_id}; Amazon is processing it",
                              reference=feed_id)
        if status != "DONE":
            return PushResult(PushStatus.FAILED, f"Amazon ended feed {feed_id} {status}: nothing was refunded",
                              reference=feed_id)
        result_id = text(feed.get("resultFeedDocumentId"))
        if result_id is None:
            raise BadPayload(f"getFeed: feed {feed_id} is DONE without a resultFeedDocumentId")
        report = read_processing_report(decode(self.client.feed_document(result_id)))
        if report.processed is None and not report.errors:
            raise BadPayload(f"the processing report of feed {feed_id} is not one retsync can read")
        refused = {number: report.errors[number] for number in range(1, len(act.lines) + 1) if number in report.errors}
        outcome = {"feed_id": feed_id, "processed": report.processed, "successful": report.successful,
                   "errors": {str(n): messages for n, messages in refused.items()}}
        if not refused:
            return PushResult(PushStatus.PUSHED, f"refunded through feed {feed_id} ({len(act.lines)} "
                              f"item{'s' if len(act.lines) != 1 else ''})", reference=feed_id, result=outcome)
        words = "; ".join(f"{act.lines[n - 1].line_external_id}: {' / '.join(m)}" for n, m in refused.items())
        done = len(act.lines) - len(refused)
        prefix = f"Amazon refunded {done} of {len(act.lines)} items but refused" if done else "Amazon refused"
        return PushResult(PushStatus.FAILED, f"{prefix} the refund in feed {feed_id}: {words}", reference=feed_id,
                          result=outcome)

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> AmazonEmulator:
        from retsync_connectors.amazon.emulator import SANDBOX_RATE_SCALE, AmazonEmulator

        return AmazonEmulator.sized(seed, returns, rate_scale=SANDBOX_RATE_SCALE)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.amazon.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN
        from retsync_connectors.amazon.sandbox_data import MARKETPLACE

        return {"connector": cls.name, "base_url": base_url, "token_url": base_url + "/auth/o2/token",
                "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET,
                "refresh_token": SANDBOX_REFRESH_TOKEN, "marketplace_ids": [MARKETPLACE], "report_every": "0s"}


def _safe(key: Any, row: Any) -> str | None:
    try:
        return key(row)
    except (KeyError, TypeError, AttributeError):
        return None


def _unique(returns: Sequence[Return]) -> list[Return]:
    """One return per id (the same row twice in a report is one return: the last wins)."""
    return list({ret.external_id: ret for ret in returns}.values())
