"""BaseLinker (Base.com): the order hub between Allegro, a shop and the couriers, with its own returns module.

- Pull: the first run walks `getOrderReturns` by `id_from` (100 a call, created since the backfill start); later
  runs read `getOrderReturnJournalList` from the stored `last_log_id` and re-read the returns it names. The
  journal keeps three days: when the last read is older than that, a `date_from` walk over the gap and a re-read
  of the stored open returns stand in for it (logged as `baselinker_journal_gap`). Statuses and reasons are the
  account's own lists, read once an hour.
- Decisions: one act per return, `setOrderReturnStatus` to the status id the merchant maps the decision to
  (`decision_statuses`), after `setOrderReturnRefund` of the decided lines for the kinds in `refund_on` (the
  note as its refund_comment) and, with a note, `setOrderReturnFields` adding it to the admin comments under a
  tag with the act's key (a retry finds it there and does not add it twice). The status comes last: a retry
  that finds the return in it reports the act done.
- Read back: a return the merchant puts into one of the `decision_statuses` in BaseLinker's own panel arrives
  decided by the channel on every line (kept as a `synced` decision: history, never pushed back). A status two
  decisions share is not read back (it cannot say which one was taken).
- Capabilities: every decision can be mapped, so the class declares all six (that is what `retsync decide`
  checks before recording); each connector then builds its own from its settings, and a kind without a mapped
  status is `unsupported` there, naming the key to set: the outbox asks the instance, so such a decision ends
  unsupported with that text and nothing is sent.
- Pace: see `client.TokenPace`: BaseLinker blocks a token past 100 requests a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import Field, field_validator

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
from retsync.kit.model import DecisionKind, Order, Return, ReturnStatus
from retsync.kit.paging import Cursor
from retsync.kit.payload import obj, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration
from retsync_connectors.baselinker.client import API_URL, LIMIT_PER_MINUTE, PAGE_SIZE, BaseLinkerClient
from retsync_connectors.baselinker.mapping import (
    decided_by_status,
    map_order,
    map_return,
    numeric_id,
    refund_amount,
    source,
)

if TYPE_CHECKING:
    from retsync_connectors.baselinker.emulator import BaseLinkerEmulator

log = structlog.get_logger(__name__)

JOURNAL_KEPT = timedelta(days=3)
"""How far back `getOrderReturnJournalList` answers."""
JOURNAL_MARGIN = timedelta(hours=2)
"""A last read this close to the horizon counts as past it: the journal may already have dropped entries."""
LISTS_TTL = 3600.0
"""Seconds the account's status and reason lists are kept before they are read again."""
COMMENTS_LIMIT = 5000
"""Characters of admin comments sent back (the older text first, the note last)."""
OPEN = (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED)
REFUNDABLE = (DecisionKind.ACCEPT, DecisionKind.KEEP)


class BaseLinkerSettings(ChannelSettings):
    """The `[channels.<name>]` keys of a BaseLinker account, beside the ones every channel has."""

    poll_interval: Duration = Field(
        default=timedelta(minutes=2), description="time between pulls; BaseLinker's 100 requests a minute are the "
        "account's, shared with every other integration on it, so retsync polls every 2 minutes")
    base_url: str = Field(default=API_URL, description="BaseLinker's API host (the endpoint is /connector.php)")
    api_token: Secret = Field(description="the API token (BaseLinker panel: Account & other → My account → API); "
                                          "write env:VAR, file:/path or keyring:service/user, not the token")
    requests_per_second: float | None = Field(
        default=1.5, gt=0, description="spacing of requests; BaseLinker blocks a token past 100 a minute, so "
        "keep it at 1.5 or below unless requests_per_minute holds the minute")
    requests_per_minute: int = Field(
        default=90, ge=1, lt=LIMIT_PER_MINUTE, description="most requests this channel sends in any minute, "
        "pull and decisions together; BaseLinker blocks the account (no 429) past 100")
    statuses: dict[str, ReturnStatus] = Field(
        default_factory=dict, description="your return status ids (getOrderReturnStatusList, or the panel) → "
        "retsync's status (requested, in_transit, received, decided, refunded, closed, cancelled); an id left "
        "out is read from the return's fulfillment_status")
    decision_statuses: dict[DecisionKind, int] = Field(
        default_factory=dict, description="decision (accept, reject, repair, exchange, keep, cancel) → the "
        "return status id it sets; a decision without one is unsupported on this channel. Read back too: a return "
        "put into one of these statuses in BaseLinker's panel is recorded as that decision (never pushed)")
    refund_on: list[DecisionKind] = Field(
        default_factory=list, description="decisions (accept, keep) that also mark the return refunded "
        "(setOrderReturnRefund of the decided lines' price; BaseLinker moves no money)")
    skip_sources: list[str] = Field(
        default_factory=list, description="order_return_source values whose returns are not pulled, e.g. "
        "[\"allegro\"] when the allegro connector already syncs the returns BaseLinker mirrors from Allegro")

    @field_validator("refund_on")
    @classmethod
    def _refundable(cls, kinds: list[DecisionKind]) -> list[DecisionKind]:
        wrong = [k.value for k in kinds if k not in REFUNDABLE]
        if wrong:
            raise ValueError(f"only accept and keep refund; not {', '.join(wrong)}")
        return kinds

    @field_validator("skip_sources")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [value.strip().lower() for value in values if value.strip()]


class ReturnsCursor(Cursor):
    """`phase` backfill: an `id_from` walk over returns created since `since`; journal: entries after
    `last_log_id`, read through at `journal_at`; catch_up: a `date_from` walk over a gap the journal no longer
    covers, then the stored open returns read again."""

    phase: str = "backfill"
    id_from: int = 0
    since: datetime | None = None
    last_log_id: int = 0
    journal_at: datetime | None = None


def _how(kind: DecisionKind) -> str:
    refund = ", after setOrderReturnRefund of the decided lines where refund_on names it" \
        if kind in REFUNDABLE else ""
    return (f"setOrderReturnStatus to the status id decision_statuses.{kind.value} names (the whole return){refund}; "
            f"a note is added to the return's admin comments")


def capabilities_for(settings: BaseLinkerSettings | None) -> Capabilities:
    """What a channel with these settings does; None: what any BaseLinker channel can be set up to do."""
    mapped = set(DecisionKind) if settings is None else set(settings.decision_statuses)
    return Capabilities(
        streams=(Stream.RETURNS,),
        decisions={kind: _how(kind) for kind in DecisionKind if kind in mapped},
        unsupported={kind: f"no BaseLinker return status is mapped to {kind.value}: set decision_statuses."
                           f"{kind.value} = <status id> in this channel's table (ids: getOrderReturnStatusList)"
                     for kind in DecisionKind if kind not in mapped},
        fetches_orders=True,
    )


class BaseLinkerConnector(Connector[BaseLinkerSettings]):
    """BaseLinker's order returns module over its one-endpoint API."""

    name = "baselinker"
    title = "BaseLinker"
    settings_model = BaseLinkerSettings
    capabilities = capabilities_for(None)

    def __init__(self, channel: str, settings: BaseLinkerSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.capabilities = capabilities_for(settings)  # type: ignore[misc]  # this channel's own mapping
        self.client = BaseLinkerClient(channel, settings, settings.api_token.get_secret_value(), runtime,
                                       per_minute=settings.requests_per_minute)
        self._lists_at: float | None = None
        self._status_names: dict[str, str] = {}
        self._reason_names: dict[str, str] = {}
        self._decided = decided_by_status(settings.decision_statuses)

    def close(self) -> None:
        self.client.close()

    @property
    def pace(self) -> Any:
        return self.client.pace

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream is not Stream.RETURNS:
            raise ValueError(f"the {self.name} connector pulls returns (with their orders), not {stream}")
        self.client.pace.take_waited()
        try:
            yield from self._pull(context)
        finally:
            waited = self.client.pace.take_waited()
            if waited > 0:
                log.info("baselinker_pull_paced", channel=self.channel, waited_s=round(waited, 1),
                         detail="the pull waited for BaseLinker's 100 requests a minute")

    def _pull(self, context: PullContext) -> Iterator[Page]:
        self._read_lists()
        cursor = ReturnsCursor.load(context.cursor, context.now)
        if cursor.phase == "journal" and (cursor.journal_at is None
                                          or context.now - cursor.journal_at > JOURNAL_KEPT - JOURNAL_MARGIN):
            since = (cursor.journal_at or context.backfill_since) - context.overlap
            log.warning("baselinker_journal_gap", channel=self.channel, last_read=str(cursor.journal_at),
                        detail="the return journal keeps 3 days and was last read before that: returns created "
                               "since then are walked by date_from and the open ones read again")
            cursor = ReturnsCursor(phase="catch_up", since=since, last_log_id=cursor.last_log_id)
        if cursor.phase in ("backfill", "catch_up"):
            yield from self._walk(cursor, context)
        else:
            yield from self._journal(cursor, context)

    def _read_lists(self) -> None:
        now = time.monotonic()
        if self._lists_at is not None and now - self._lists_at < LISTS_TTL:
            return
        self._status_names = {k: v for k, v in ((text(obj(s).get("id")), text(obj(s).get("name")))
                                                for s in self.client.statuses()) if k and v}
        self._reason_names = {k: v for k, v in ((text(obj(r).get("return_reason_id")), text(obj(r).get("name")))
                                                for r in self.client.reasons()) if k and v}
        self._lists_at = now

    def _walk(self, cursor: ReturnsCursor, context: PullContext) -> Iterator[Page]:
        """Returns created since the walk's start, by `id_from`; the journal takes over after the last page."""
        since = cursor.since or context.backfill_since
        date_from = int(since.timestamp())
        catch_up = cursor.phase == "catch_up"
        id_from = cursor.id_from
        while not self.runtime.stop.is_set():
            entries = self.client.returns(id_from=id_from, date_from=date_from)
            last = len(entries) < PAGE_SIZE
            highest = max((i for i in (numeric_id(obj(raw).get("return_id")) for raw in entries)
                           if i is not None), default=None)
            if highest is None or highest < id_from:
                last = True  # nothing to page on from: a walk that cannot move ends rather than loops
            returns, orders, aside = self._page(entries, context)
            if last and catch_up:
                reread, more_orders, more_aside = self._page(
                    self.client.returns_by_id(set(context.open_returns()) - {r.external_id for r in returns}),
                    context)
                returns, orders, aside = returns + reread, orders + more_orders, aside + more_aside
            after = (ReturnsCursor(phase="journal", last_log_id=cursor.last_log_id, journal_at=context.now)
                     if last else ReturnsCursor(phase=cursor.phase, id_from=(highest or id_from) + 1, since=since,
                                                last_log_id=cursor.last_log_id))
            yield Page(returns=returns, orders=orders, cursor=after.dump(), quarantined=aside)
            if last:
                return
            id_from = (highest or id_from) + 1

    def _journal(self, cursor: ReturnsCursor, context: PullContext) -> Iterator[Page]:
        """Entries after `last_log_id`, a hundred at a time, each batch with the returns it names read again."""
        last_log_id = cursor.last_log_id
        while not self.runtime.stop.is_set():
            logs = self.client.journal(last_log_id)
            newest = max([last_log_id, *(i for i in (numeric_id(obj(entry).get("id")) for entry in logs)
                                          if i is not None)])
            changed = {str(i) for i in (numeric_id(obj(entry).get("return_id")) for entry in logs) if i is not None}
            returns, orders, aside = self._page(self.client.returns_by_id(changed), context) if changed else ([], [], [])
            done = len(logs) < PAGE_SIZE or newest == last_log_id
            yield Page(returns=returns, orders=orders, quarantined=aside, cursor=ReturnsCursor(
                phase="journal", last_log_id=newest, journal_at=context.now).dump())
            last_log_id = newest
            if done:
                return

    def _page(self, entries: Sequence[Any], context: PullContext) -> tuple[list[Return], list[Order], list[Any]]:
        sieve = RecordSieve()
        skipped = [raw for raw in entries if source(raw) in self.settings.skip_sources]
        if skipped:
            log.info("baselinker_returns_skipped", channel=self.channel, count=len(skipped),
                     sources=sorted({source(raw) or "" for raw in skipped}),
                     detail="skip_sources: another channel of retsync syncs these returns")
        returns = [mapped for mapped in (
            sieve.map("return", raw, map_return, raw, self.settings.statuses, self._status_names,
                      self._reason_names, self._decided, external_id=obj(raw).get("return_id"))
            for raw in entries if source(raw) not in self.settings.skip_sources) if mapped is not None]
        named = {r.order_external_id for r in returns if r.order_external_id}
        orders = []
        for order_id in sorted(named - set(context.stored_orders(named))):
            raw = self.client.order(order_id)
            if raw is not None:
                mapped = sieve.map("order", raw, map_order, raw, external_id=order_id)
                if mapped is not None:
                    orders.append(mapped)
        return returns, orders, sieve.take()

    def fetch_order(self, external_id: str) -> Order | None:
        raw = self.client.order(external_id)
        return map_fetched("order", raw, map_order, raw, external_id=external_id) if raw is not None else None

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """The whole return to the mapped status, once: a retry first reads the return, and an act an earlier
        attempt carried out (its answer lost) is reported done instead of being done again."""
        status_id = self.settings.decision_statuses[act.kind]
        return_id = act.return_external_id
        if numeric_id(return_id) is None:
            return PushResult(PushStatus.FAILED, f"{return_id!r} is no BaseLinker return id")
        refund = act.kind in self.settings.refund_on
        retry = act.attempt > 1 or act.reference is not None
        raw: Mapping[str, Any] | None = None
        if refund or retry or act.note:
            raw = next((obj(r) for r in self.client.returns(return_id=return_id)
                        if text(obj(r).get("return_id")) == return_id), None)
            if raw is None:
                return PushResult(PushStatus.FAILED, f"BaseLinker has no return {return_id}")
        refunded = raw is not None and _refunded(raw)
        if retry and raw is not None and text(raw.get("status_id")) == str(status_id) and (refunded or not refund):
            raise AlreadyDone(f"return {return_id} is in status {status_id} already", reference=return_id,
                              result={"status_id": status_id})
        result: dict[str, Any] = {"status_id": status_id}
        if refund and raw is not None and not (retry and refunded):
            amount = refund_amount(raw, {line.line_external_id: line.quantity for line in act.lines})
            self.client.set_refund(return_id, amount, when=int(time.time()), comment=act.note, key=act.key)
            result["refund"] = f"{amount:.2f}"
        if act.note and raw is not None:
            comments = text(raw.get("admin_comments")) or ""
            tag = _note_tag(act)
            if tag not in comments:  # an earlier attempt's note is not added again
                self.client.set_admin_comments(return_id, f"{comments}\n{tag} {act.note}".strip()[:COMMENTS_LIMIT])
                result["note"] = True
        self.client.set_status(return_id, status_id)
        what = f"return {return_id} set to status {status_id}"
        if "refund" in result:
            what += f", marked refunded {result['refund']}"
        if result.get("note"):
            what += ", the note added to its admin comments"
        return PushResult(PushStatus.PUSHED, what, reference=return_id, result=result)

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> BaseLinkerEmulator:
        from retsync_connectors.baselinker.emulator import BaseLinkerEmulator

        return BaseLinkerEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.baselinker.emulator import SANDBOX_TABLE

        return {"connector": cls.name, "base_url": base_url, **SANDBOX_TABLE}


def _note_tag(act: DecisionAct) -> str:
    """What marks the merchant's note in BaseLinker's admin comments: the decision and its act's key."""
    return f"[retsync {act.kind.value} {act.key[:12]}]"


def _refunded(raw: Mapping[str, Any]) -> bool:
    value = raw.get("refunded")
    return bool(value) and text(value) not in ("0", "false", "0.00")
