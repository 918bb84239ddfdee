"""The Channable connector: the returns of every marketplace a merchant reaches through Channable's order
connection (bol, Amazon, Fruugo, Zalando, Miravia, ToBeDressed, Walmart, ...), and decisions written back as
Channable return statuses, which Channable passes on to the marketplace.

- `pull` walks `GET /v1/.../returns` by `last_modified_after` (newest first, offset/limit 100, until a short
  page) and brings the Channable orders the returns name (`GET /v2/.../orders/{id}`) for linking.
- `act` carries out one decision as ONE `POST /v1/.../returns/{id}/status` (a Channable return is one item, so
  the act is the whole return), after reading the return (done already? every unit decided?). A 409 (already in that status, or no longer changeable) is looked up: done when
  the return is in the status asked for, else the channel's refusal (failed at once, never retried forever).
- A return that arrives already decided (at the marketplace: fulfilled by it, or decided in Channable) carries
  that decision as the channel's, stored as history and never pushed.

What a failure means is the outbox's one table (README "What a failed push means").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from retsync.kit.http import ApiError
from retsync.kit.model import DecisionKind, Order, Return
from retsync.kit.paging import Cursor, walk_pages
from retsync.kit.payload import OutOfRange, count, not_after, obj, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.channable.client import PAGE_SIZE, ChannableClient
from retsync_connectors.channable.mapping import map_order, map_return, modified_at, status_word

if TYPE_CHECKING:
    from retsync_connectors.channable.emulator import ChannableEmulator

_ONE_POST = ("one POST /v1/.../returns/{{id}}/status ({word}) for the whole return, passed on by Channable to the "
             "marketplace; your note stays in retsync (the status takes no text)")


class ChannableSettings(ChannelSettings):
    """The `[channels.<name>]` keys of a Channable project, beside the ones every channel has."""

    poll_interval: Duration = fresh_poll_interval()
    api_token: Secret = Field(description="the company's Channable API token (company settings → Channable API; "
                                          "valid a year); write env:VAR, file:/path or keyring:service/user")
    company_id: int = Field(gt=0, description="your Channable company id (shown beside the API token)")
    project_id: int = Field(gt=0, description="the Channable project whose order connection holds the returns "
                                              "(project settings → Project id)")
    base_url: str = Field(default="https://api.channable.com", description="Channable API host")
    requests_per_second: float | None = Field(
        default=3.5, gt=0, description="client-side pacing; Channable allows 4 requests a second per company "
                                       "(burst 200), shared by every token and tool of the company")


class ReturnsCursor(Cursor):
    """Where the returns walk resumes: its `last_modified_after` (the same on every page of one walk), the next
    offset, the newest `modified` seen, and when the walk began; the next walk starts at the earlier of those
    two, less the overlap (a return changed while the walk ran is read by the next one)."""

    since: datetime | None = None
    offset: int = 0
    seen: datetime | None = None
    started: datetime | None = None


class ChannableConnector(Connector[ChannableSettings]):
    """Channable order-connection API v1 (returns) and v2 (orders)."""

    name = "channable"
    title = "Channable"
    settings_model = ChannableSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions={kind: _ONE_POST.format(word=word) for kind, word in (
            (DecisionKind.ACCEPT, "accepted"), (DecisionKind.REJECT, "rejected"), (DecisionKind.REPAIR, "repaired"),
            (DecisionKind.EXCHANGE, "exchanged"), (DecisionKind.KEEP, "keeps"), (DecisionKind.CANCEL, "cancelled"))},
        unsupported={},
        fetches_orders=True,
        holds_returns=None,
    )

    def __init__(self, channel: str, settings: ChannableSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = ChannableClient(channel, settings, settings.api_token.get_secret_value(), settings.company_id,
                                      settings.project_id, runtime)

    def close(self) -> None:
        self.client.close()

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Returns modified since the cursor, a page at a time, each page with the orders its returns name."""
        if stream is not Stream.RETURNS:
            raise ValueError(f"the {self.name} connector pulls returns (with their orders), not {stream}")
        cursor = ReturnsCursor.load(context.cursor, context.now)
        since = cursor.since or context.backfill_since
        seen, started = cursor.seen, cursor.started or context.now
        pages = walk_pages(lambda offset: self.client.returns_page(since, offset), cursor.offset, size=PAGE_SIZE,
                           stop=self.runtime.stop, by_offset=True)
        for entries, next_offset, last in pages:
            sieve = RecordSieve()
            returns = [mapped for mapped in (sieve.map("return", raw, map_return, raw, external_id=obj(raw).get("id"))
                                             for raw in entries) if mapped is not None]
            seen = _newest(seen, (modified_at(raw) for raw in entries), context.now)
            if last:
                after = ReturnsCursor(since=max(since, min(seen, started) - context.overlap) if seen else since)
            else:
                after = ReturnsCursor(since=since, offset=next_offset, seen=seen, started=started)
            yield Page(returns=returns, orders=self._orders_for(returns, context, sieve), cursor=after.dump(),
                       quarantined=sieve.take())

    def _orders_for(self, returns: Sequence[Return], context: PullContext, sieve: RecordSieve) -> list[Order]:
        """The Channable orders these returns name that are not stored yet, so their lines can be linked."""
        named = {r.order_external_id for r in returns if r.order_external_id}
        missing = sorted(named - set(context.stored_orders(named)))
        found = []
        for order_id in missing:
            raw = self.client.order(order_id)
            if raw is not None:
                mapped = sieve.map("order", raw, map_order, raw, external_id=raw.get("id"))
                if mapped is not None:
                    found.append(mapped)
        return found

    def fetch_order(self, external_id: str) -> Order | None:
        raw = self.client.order(external_id)
        return map_fetched("order", raw, map_order, raw, external_id=external_id) if raw is not None else None

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One status change for the whole return. Channable takes no idempotency key and its status covers the
        return's every unit, so the return is read first: already in the status asked for, the act is done (an
        earlier attempt's answer was lost, or someone set it in Channable); a decision on fewer units than the
        return holds is refused here rather than sent as the whole return's. A 409 on the change is read the same
        way: done when the return is now in that status, else Channable's refusal (failed at once)."""
        word = status_word(act)
        held = self._stop_if_done(act, word)
        decided = sum(line.quantity for line in act.lines)
        if held and decided < held:
            return PushResult(PushStatus.FAILED, f"Channable sets the status of return {act.return_external_id} for "
                                                 f"all its {held} units, and this decision covers {decided}: decide "
                                                 f"all {held}, or settle the rest at the marketplace")
        try:
            answer = self.client.set_status(act.return_external_id, word)
        except ApiError as exc:
            if exc.status_code == 409:  # already in that status (done) or no longer changeable (refused)
                self._stop_if_done(act, word)
            raise
        return PushResult(PushStatus.PUSHED, f"return {act.return_external_id} set to {word}: {text(answer.get('message'))}",
                          reference=act.return_external_id, result={"status": word})

    def _stop_if_done(self, act: DecisionAct, word: str) -> int | None:
        """Raise AlreadyDone when Channable holds the return in `word`; else answer its units (None: unreadable)."""
        record = self.client.return_(act.return_external_id)
        if text(record.get("status")) == word:
            raise AlreadyDone(f"return {act.return_external_id} is {word} on Channable",
                              reference=act.return_external_id, result={"status": word})
        try:
            return count(obj(obj(record.get("data")).get("item")).get("quantity")) or None
        except OutOfRange:
            return None

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> ChannableEmulator:
        from retsync_connectors.channable.emulator import ChannableEmulator

        return ChannableEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.channable.emulator import SANDBOX_TOKEN
        from retsync_connectors.channable.sandbox_data import COMPANY_ID, PROJECT_ID

        return {"connector": cls.name, "base_url": base_url, "api_token": SANDBOX_TOKEN, "company_id": COMPANY_ID,
                "project_id": PROJECT_ID, "requests_per_second": 100_000}


def _newest(seen: datetime | None, moments: Iterator[datetime | None], now: datetime) -> datetime | None:
    """The newest of `seen` and `moments`, never past the pull's start."""
    for moment in moments:
        if moment is not None and (seen is None or moment > seen):
            seen = moment
    return not_after(seen, now) if seen is not None else None
