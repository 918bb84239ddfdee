"""The template connector: the smallest complete retsync connector, with both halves a channel can have.

- The marketplace half: `pull` walks the returns changed since the cursor and brings the orders they name;
  `act` carries out one decision act (every line the merchant decided together) as ONE request.
- The shop half (the back-office flow, `decisions_from`): `hold_return` puts another channel's return into this
  channel's back office once; `held_decisions` reads back what the merchant decided there.

What a failure means is not decided here: `act` and `hold_return` let `retsync.kit.http`'s errors rise, and the
outbox's one table turns them into retry / failed (README "What a failed push means"). Copy this package, rename
it, and replace the API it speaks (README "Writing a connector").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field
from retsync.kit.contract import (
    AlreadyDone,
    Capabilities,
    Connector,
    DecisionAct,
    HeldDecision,
    HoldRequest,
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
from retsync.kit.payload import not_after, obj, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings

from retsync_connector_template.client import PAGE_SIZE, TemplateClient
from retsync_connector_template.mapping import (
    decision_body,
    held_body,
    held_decision,
    map_order,
    map_return,
    updated_at,
)

if TYPE_CHECKING:
    from retsync_connector_template.emulator import TemplateEmulator


class TemplateSettings(ChannelSettings):
    """The `[channels.<name>]` keys of a template channel, beside the ones every channel has."""

    base_url: str = Field(description="the channel's API host, e.g. https://api.example.com (paths start at /v1)")
    api_key: Secret = Field(description="the API key from the channel's seller settings; write env:VAR, "
                                        "file:/path or keyring:service/user rather than the key itself")
    max_concurrency: int = Field(
        default=2, ge=1, le=16, description="reads in flight at once: the next page of returns is asked for while "
        "this one is stored. Set your connector's default from its API's documented limits (1 where it has none)")


class ReturnsCursor(Cursor):
    """Where the returns walk resumes: the walk's `updated_since` (the same on every page of one walk, since a
    page number only means something for the same query), the next page, and the newest update seen so far,
    from which the next walk starts once this one has read its last page."""

    since: datetime | None = None
    page: int = 1
    seen: datetime | None = None


class TemplateConnector(Connector[TemplateSettings]):
    """The template channel's API v1 (README.md of this package): returns in, decisions out, and a back office."""

    name = "template"
    title = "Template channel (example API v1)"
    settings_model = TemplateSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions={
            DecisionKind.ACCEPT: "one POST /v1/returns/{id}/decisions (refund) with every decided line",
            DecisionKind.KEEP: "one POST /v1/returns/{id}/decisions (refund_keep_item): refunded, the buyer keeps it",
            DecisionKind.REJECT: "one POST /v1/returns/{id}/decisions (reject) with your note, shown to the buyer",
        },
        unsupported={
            DecisionKind.REPAIR: "the channel only refunds or rejects; arrange a repair with the buyer yourself",
            DecisionKind.EXCHANGE: "the channel has no exchanges; refund and let the buyer order again",
            DecisionKind.CANCEL: "only the buyer can withdraw a return on this channel",
        },
        fetches_orders=True,
        holds_returns="a held return in the back office's returns inbox; you decide there (approve, deny, "
                      "refund_keep, …) and your note goes with the decision",
    )

    def __init__(self, channel: str, settings: TemplateSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = TemplateClient(channel, settings, settings.api_key.get_secret_value(), runtime)

    def close(self) -> None:
        self.client.close()

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        """Refused before it is recorded, rather than failed at the channel later."""
        if kind is DecisionKind.REJECT and not (note or "").strip():
            return "the channel shows a rejection to the buyer: say why (--note)"
        return None

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Returns updated since the cursor, a page at a time, each page with the orders its returns name.

        The engine stores each page with its cursor in one transaction, so a pull cut short resumes at the
        page after the last one stored; a record that cannot be read is quarantined with the page.
        """
        if stream is not Stream.RETURNS:
            raise ValueError(f"the {self.name} connector pulls returns (with their orders), not {stream}")
        cursor = ReturnsCursor.load(context.cursor, context.now)
        since = cursor.since or context.backfill_since
        seen = cursor.seen
        pages = walk_pages(lambda page: self.client.returns_page(since, page), cursor.page, size=PAGE_SIZE,
                           stop=self.runtime.stop, ahead=self.client.http.soon)
        for entries, next_page, last in pages:
            sieve = RecordSieve()
            returns = [mapped for mapped in (sieve.map("return", raw, map_return, raw, external_id=obj(raw).get("id"))
                                             for raw in entries) if mapped is not None]
            seen = _newest(seen, (updated_at(raw) for raw in entries), context.now)
            if last:  # the next walk starts at the newest update seen, less the overlap for late writes
                after = ReturnsCursor(since=max(since, seen - context.overlap) if seen else since)
            else:
                after = ReturnsCursor(since=since, page=next_page, seen=seen)
            yield Page(returns=returns, orders=self._orders_for(returns, context, sieve), cursor=after.dump(),
                       quarantined=sieve.take())

    def _orders_for(self, returns: Sequence[Return], context: PullContext, sieve: RecordSieve) -> list[Order]:
        """The orders these returns name that are not stored yet, so their lines can be linked."""
        named = {r.order_external_id for r in returns if r.order_external_id}
        missing = sorted(named - set(context.stored_orders(named)))
        if not missing:
            return []
        found = (sieve.map("order", raw, map_order, raw, external_id=obj(raw).get("id"))
                 for raw in self.client.orders(missing))
        return [order for order in found if order is not None]

    def fetch_order(self, external_id: str) -> Order | None:
        """One order a return names, for linking; None when the channel does not know it or it cannot be read."""
        raw = next((o for o in self.client.orders([external_id]) if text(obj(o).get("id")) == external_id), None)
        return map_fetched("order", raw, map_order, raw, external_id=external_id) if raw is not None else None

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One request for the whole act, under its key. A retry first asks whether an earlier attempt got through
        (its answer lost): the act is then reported done instead of being done twice."""
        if act.attempt > 1 or act.reference:
            self._stop_if_done(act)
        try:
            decision = self.client.decide(act.return_external_id, decision_body(act))
        except ApiError as exc:
            if exc.status_code == 409:  # duplicate_key: another attempt's request got there first
                self._stop_if_done(act)
            raise
        return PushResult(PushStatus.PUSHED, _described(decision, act), reference=str(decision["id"]),
                          result=_result(decision))

    def _stop_if_done(self, act: DecisionAct) -> None:
        """Raise AlreadyDone when the channel holds a decision made under this act's key."""
        earlier = next((d for d in self.client.decisions(act.return_external_id)
                        if text(obj(d).get("key")) == act.key), None)
        if earlier is not None:
            raise AlreadyDone(_described(earlier, act), reference=text(earlier.get("id")), result=_result(earlier))

    # --- the back-office half -------------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """Put another channel's return into the back office once: a retry finds the held return by its key."""
        earlier = self.client.held_with_key(request.key) if request.attempt > 1 or request.reference else []
        held = next((obj(h) for h in earlier if text(obj(h).get("key")) == request.key), None)
        again = held is not None
        if held is None:
            held = self.client.hold(held_body(request))
        where = f"held return {held['id']} in the back office"
        return PushResult(PushStatus.PUSHED, f"already {where}" if again else where, reference=str(held["id"]))

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        """The held returns the merchant has decided in the back office; undecided ones are left out."""
        if not references:
            return {}
        decided = (held_decision(obj(raw)) for raw in self.client.held(list(references)))
        return {d.reference: d for d in decided if d is not None}

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> TemplateEmulator:
        from retsync_connector_template.emulator import TemplateEmulator

        return TemplateEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connector_template.emulator import SANDBOX_API_KEY

        return {"connector": cls.name, "base_url": base_url, "api_key": SANDBOX_API_KEY}


def _newest(seen: datetime | None, moments: Iterator[datetime | None], now: datetime) -> datetime | None:
    """The newest of `seen` and `moments`, never past the pull's start (a record dated 9999 cannot silence the
    channel by dragging the cursor there)."""
    for moment in moments:
        if moment is not None and (seen is None or moment > seen):
            seen = moment
    return not_after(seen, now) if seen is not None else None


def _described(decision: Mapping[str, Any], act: DecisionAct) -> str:
    refund = text(decision.get("refund_amount"))
    what = f"refund of {refund}" if refund else f"{text(decision.get('decision')) or act.kind.value}"
    return f"decision {decision.get('id')} on return {act.return_external_id}: {what} for {len(act.lines)} line(s)"


def _result(decision: Mapping[str, Any]) -> dict[str, Any]:
    return {"decision_id": text(decision.get("id")), "refund_amount": text(decision.get("refund_amount"))}
