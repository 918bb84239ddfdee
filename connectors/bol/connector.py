"""The bol.com connector: four return lists walked page by page, decisions mirrored as handling results.

bol has no "changed since" filter for returns. It has four lists (FBR/FBB x
unhandled/handled); open ones come oldest-first and are read whole, handled
ones come newest-first and are read until a page brings nothing new. A
return that leaves the open lists between two passes may sit deep in the
handled list, so it is fetched by id instead of paging the whole history.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_serializer

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
from retsync.kit.http import ApiError, ChannelError, Stopped
from retsync.kit.model import DecisionKind, Order, Return, utc
from retsync.kit.paging import Cursor
from retsync.kit.payload import objs, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.bol.client import PAGE_SIZE, BolClient
from retsync_connectors.bol.mapping import (
    DECISION_TO_HANDLING,
    latest_processing_result,
    map_order,
    map_return,
    parse_datetime,
    reduced_from_detail,
    revision_of,
)

if TYPE_CHECKING:
    from retsync_connectors.bol.emulator import BolEmulator

PHASES: tuple[tuple[str, bool], ...] = (("FBR", False), ("FBB", False), ("FBR", True), ("FBB", True))
"""(fulfilment method, handled) in walking order: open returns first, because they need the merchant."""

FIRST_HANDLED_PHASE = 2
HANDLE_RETURN_ITEM = "HANDLE_RETURN_ITEM"
FINISHED = frozenset({"SUCCESS", "FAILURE", "TIMEOUT"})
"""Process statuses bol is done with; any other (PENDING, or one bol adds) is still running."""
REFERENCE_LENGTH = 200
"""Room for an act's reference in the database (decisions.reference is a varchar(200))."""
ORDER_CACHE_SIZE = 5_000
TAIL_STEPS_BACK = 3
"""Pages an open list's end is looked for before it, when it got shorter since the last pass, before the list is
read from its start instead (a merchant who handled 150 returns in an hour has the whole list read once)."""
CANCEL_UNSUPPORTED = "bol has no handling result that cancels a return; cancel it in the bol seller dashboard"


class BolSettings(ChannelSettings):
    """`[channels.<name>]` keys of a bol channel."""

    poll_interval: Duration = fresh_poll_interval()
    base_url: str = Field(default="https://api.bol.com", description="API host; point it at a sandbox to test")
    token_url: str = Field(default="https://login.bol.com/token", description="OAuth token endpoint")
    client_id: str = Field(description="API client id from the bol seller dashboard (Settings > API)")
    client_secret: Secret = Field(description="API client secret; write env:VAR, file:/path or keyring:service/user")
    process_poll_attempts: int = Field(
        default=3, ge=0, description="how often a pushed decision's process status is checked before leaving it pending"
    )
    process_poll_delay: Duration = Field(
        default=timedelta(seconds=1), description="pause between process status checks"
    )
    full_pass_every: Duration = Field(
        default=timedelta(hours=1), description="how often a pull walks bol's open lists whole and asks by id for "
        "the returns that left them (handled in the seller dashboard); the pulls between read only the end of each "
        "open list, where new returns join, so a poll costs a few requests however many returns are open")
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="return details and orders read at once; bol counts per endpoint and "
        "says in every answer how many requests its window has left (x-ratelimit-remaining), which caps this too")


class BolCursor(Cursor):
    """Where a pass over the four lists stands: the phase (index into PHASES) and its next page.

    `last_pass` is when the last pass ended, `full_pass` when the last one that walked the open lists whole did,
    and `tails` the last page of the open FBR and FBB lists then: where the next pass that reads only the lists'
    ends starts looking (`tail_walk`: this pass is one of those).
    """

    phase: int = Field(default=0, ge=0, lt=len(PHASES))
    page: int = Field(default=1, ge=1)
    last_pass: datetime | None = None
    full_pass: datetime | None = None
    tails: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    tail_walk: bool | None = None

    @field_serializer("last_pass", "full_pass")
    def _iso(self, value: datetime | None) -> str | None:
        """ISO 8601 with `+00:00`, as stored before the cursor was typed."""
        return value.isoformat() if value is not None else None

    @property
    def fresh(self) -> bool:
        """At the start of a pass: the one moment the open lists are complete in this pass."""
        return (self.phase, self.page) == (0, 1)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass
class _Pass:
    """What a pass learns as it goes and every cursor it writes carries on."""

    tail_walk: bool
    tails: list[int]
    full_pass: datetime | None

    def cursor(self, **where: Any) -> dict[str, Any]:
        return BolCursor(tails=(self.tails[0], self.tails[1]), full_pass=self.full_pass, **where).dump()


class _OrderCache:
    """Orders already fetched in this pass (None: bol said 404), bounded so a long pass stays small."""

    def __init__(self, size: int = ORDER_CACHE_SIZE) -> None:
        self._size = size
        self._orders: OrderedDict[str, Order | None] = OrderedDict()

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._orders

    def get(self, order_id: str) -> Order | None:
        if order_id in self._orders:
            self._orders.move_to_end(order_id)
        return self._orders.get(order_id)

    def put(self, order_id: str, order: Order | None) -> None:
        self._orders[order_id] = order
        self._orders.move_to_end(order_id)
        while len(self._orders) > self._size:
            self._orders.popitem(last=False)


def _decision_texts() -> dict[DecisionKind, str]:
    return {
        kind: f"PUT /retailer/returns/{{rmaId}} handlingResult={handling}"
        for kind, handling in DECISION_TO_HANDLING.items()
    }


class BolConnector(Connector[BolSettings]):
    """bol.com Retailer API v10: returns in, handling results out."""

    name = "bol"
    title = "Bol.com (Retailer API v10)"
    settings_model = BolSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions=_decision_texts(),
        unsupported={DecisionKind.CANCEL: CANCEL_UNSUPPORTED},
        fetches_orders=True,
    )

    def __init__(self, channel: str, settings: BolSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = BolClient(channel, self.settings, runtime)

    def close(self) -> None:
        self.client.close()

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """A pass over the four lists. bol lists open returns oldest-first with no "changed since" filter, so a
        new return joins the end of its open list: between full passes (`full_pass_every`) a pass reads only the
        end of each open list, from the page it ended on last time, and the newest pages of the handled lists.
        A full pass walks the open lists whole and asks by id for the returns that left them."""
        if stream != Stream.RETURNS:
            raise ValueError(f"the bol connector pulls returns only, not {stream}")
        start = BolCursor.load(context.cursor, context.now)  # anything unreadable starts a fresh pass
        tail_walk = self._tail_walk_due(start, context) if start.fresh else bool(start.tail_walk)
        state = _Pass(tail_walk=tail_walk, tails=list(start.tails or (1, 1)), full_pass=start.full_pass)
        orders = _OrderCache()
        open_now: set[str] = set()
        for index in range(start.phase, len(PHASES)):
            if index == FIRST_HANDLED_PHASE and start.fresh and not tail_walk:
                left = set(context.open_returns()) - open_now
                yield from self._left_open_lists(left, context, orders, state)
                if self.runtime.stop.is_set():
                    return
            page = start.page if index == start.phase else 1
            first: list[dict[str, Any]] | None = None
            if tail_walk and not PHASES[index][1] and page == 1:
                page, first = self._find_tail(index, state.tails[index], context)
            yield from self._walk_phase(index, page, context, orders, open_now, state, first)
            if self.runtime.stop.is_set():
                return

    def _tail_walk_due(self, start: BolCursor, context: PullContext) -> bool:
        """Whether this pass may read only the open lists' ends: a full pass ended recently enough."""
        return (start.tails is not None and start.full_pass is not None
                and context.now - start.full_pass < self.settings.full_pass_every)

    def _find_tail(self, index: int, page: int, context: PullContext) -> tuple[int, list[dict[str, Any]]]:
        """The page of an open list that new returns can start on, and its entries: the page it ended on last
        time, or an earlier one when that page is now empty or starts with a return not stored (the list got
        shorter, so new returns begin before it). A page that starts with a stored return has every newer
        return on it or after it. After `TAIL_STEPS_BACK` steps back the list is read from its start."""
        fulfilment, handled = PHASES[index]
        for _ in range(TAIL_STEPS_BACK + 1):
            entries = self.client.list_returns(page, handled, fulfilment)
            first_id = _return_id(entries[0]) if entries else None
            if page == 1 or (first_id is not None and first_id in context.stored_revisions([first_id])):
                return page, entries
            page -= 1
        return 1, self.client.list_returns(1, handled, fulfilment)

    def _walk_phase(
        self, index: int, page: int, context: PullContext, orders: _OrderCache, open_now: set[str], state: _Pass,
        first: list[dict[str, Any]] | None = None,
    ) -> Iterator[Page]:
        """One list from `page` on (`first`: that page's entries, already read) until its last page."""
        fulfilment, handled = PHASES[index]
        while not self.runtime.stop.is_set():
            entries = first if first is not None else self.client.list_returns(page, handled, fulfilment)
            first = None
            if not handled:
                open_now.update(filter(None, (text(entry.get("returnId")) for entry in entries)))
            sieve = RecordSieve()
            returns, new_orders, nothing_new = self._read_entries(entries, context, orders, sieve, handled=handled)
            last = len(entries) < PAGE_SIZE or (handled and nothing_new)
            if last and not handled:
                state.tails[index] = page if entries or page == 1 else page - 1
            if last and index + 1 == len(PHASES) and not state.tail_walk:
                state.full_pass = context.now
            yield Page(returns=returns, orders=new_orders, cursor=self._cursor_after(index, page, last, context, state),
                       quarantined=sieve.take())
            if last:
                return
            page += 1

    @staticmethod
    def _cursor_after(index: int, page: int, last: bool, context: PullContext, state: _Pass) -> dict[str, Any]:
        """The next page of this list, else the next list, else a new pass (noting when this one ended)."""
        walking = True if state.tail_walk else None
        if not last:
            return state.cursor(phase=index, page=page + 1, tail_walk=walking)
        if index + 1 < len(PHASES):
            return state.cursor(phase=index + 1, page=1, tail_walk=walking)
        return state.cursor(last_pass=context.now)

    def _read_entries(
        self, entries: list[dict[str, Any]], context: PullContext, orders: _OrderCache, sieve: RecordSieve, *,
        handled: bool,
    ) -> tuple[list[Return], list[Order], bool]:
        """Map the entries bol reports anything new about; the flag says the page brought nothing new. An entry
        that cannot be read is set aside in `sieve`, the others are mapped."""
        returns: list[Return] = []
        new_orders: list[Order] = []
        nothing_new = True
        revisions = context.stored_revisions([return_id for return_id in map(_return_id, entries) if return_id])
        stored_orders = self._stored_orders_of(entries, context)

        changed: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            return_id = _return_id(entry)
            revision = sieve.map("return", entry, revision_of, entry, external_id=return_id) if return_id else None
            if return_id is None or revision is None:
                if return_id is None:
                    sieve.set_aside("return", entry, "the entry has no returnId")
                nothing_new = False
                continue
            if revisions.get(return_id) == revision or (handled and self._before_backfill(entry, context)):
                continue  # old handled history is what the merchant chose not to backfill
            nothing_new = False
            changed.append((return_id, entry))
        # the reads a page needs do not depend on each other: details, then the orders they name, side by side
        details = self.client.get_returns([return_id for return_id, _ in changed])
        fetched = self._fetch_orders([entry for _, entry in changed], stored_orders, orders)
        for (return_id, entry), detail in zip(changed, details):
            at_hand = self._orders_at_hand(entry, stored_orders, orders, new_orders, sieve, fetched)
            mapped = sieve.map("return", entry, map_return, entry, detail, at_hand, external_id=return_id)
            if mapped is not None:
                returns.append(mapped)
        return returns, new_orders, nothing_new

    def _fetch_orders(
        self, entries: Iterable[Mapping[str, Any]], stored_orders: Collection[str], orders: _OrderCache
    ) -> dict[str, dict[str, Any] | None]:
        """The orders these entries name that are neither stored nor fetched earlier in this pass, read side by
        side; None where bol does not know the order."""
        wanted = list(dict.fromkeys(
            order_id for entry in entries for order_id in _order_ids(entry)
            if order_id not in stored_orders and order_id not in orders))
        return dict(zip(wanted, self.client.get_orders(wanted)))

    @staticmethod
    def _stored_orders_of(entries: Iterable[Mapping[str, Any]], context: PullContext) -> Collection[str]:
        """One look-up per page for the orders its returns reference, instead of one per return."""
        order_ids = {str(item["orderId"]) for entry in objs(list(entries)) for item in objs(entry.get("returnItems"))
                     if text(item.get("orderId"))}
        return set(context.stored_orders(order_ids))

    @staticmethod
    def _before_backfill(entry: Mapping[str, Any], context: PullContext) -> bool:
        registered = parse_datetime(entry.get("registrationDateTime"))
        return registered is not None and utc(registered) < utc(context.backfill_since)

    def _orders_at_hand(
        self,
        entry: Mapping[str, Any],
        stored_orders: Collection[str],
        orders: _OrderCache,
        new_orders: list[Order],
        sieve: RecordSieve,
        fetched: Mapping[str, dict[str, Any] | None],
    ) -> dict[str, Order]:
        """The orders a return's items name that are fetched in this pass (requests happen outside the mapping,
        so a failed request fails the page instead of quarantining the return)."""
        at_hand: dict[str, Order] = {}
        for order_id in _order_ids(entry):
            order = self._order(order_id, stored_orders, orders, new_orders, sieve, fetched)
            if order is not None:
                at_hand[order_id] = order
        return at_hand

    def _order(
        self, order_id: str, stored_orders: Collection[str], orders: _OrderCache, new_orders: list[Order],
        sieve: RecordSieve, fetched: Mapping[str, dict[str, Any] | None],
    ) -> Order | None:
        """The order when it was fetched in this pass (`fetched` for this page); stored orders are not fetched
        again. An order that cannot be read is quarantined, and its return is stored without it."""
        if order_id in orders:
            return orders.get(order_id)
        if order_id in stored_orders:
            return None
        body = fetched[order_id] if order_id in fetched else self.client.get_order(order_id)
        order = sieve.map("order", body, map_order, body, external_id=order_id) if body is not None else None
        orders.put(order_id, order)
        if order is not None:
            new_orders.append(order)
        return order

    def _left_open_lists(
        self, return_ids: set[str], context: PullContext, orders: _OrderCache, state: _Pass
    ) -> Iterator[Page]:
        """Returns stored as open that are not on bol's open lists now, fetched by id, a page's worth at a time.

        bol lists handled returns newest-first by date, so one handled today may sit deep in the handled
        list, past where paging stops; asking for it by id is how its new state is learnt.
        """
        pending = sorted(return_ids)
        cursor = state.cursor(phase=FIRST_HANDLED_PHASE, page=1)
        for start in range(0, len(pending), PAGE_SIZE):
            if self.runtime.stop.is_set():
                return
            returns: list[Return] = []
            new_orders: list[Order] = []
            sieve = RecordSieve()
            chunk = pending[start : start + PAGE_SIZE]
            revisions = context.stored_revisions(chunk)
            # a return bol no longer knows (None) stays as it is stored
            details = [(return_id, detail) for return_id, detail in zip(chunk, self.client.get_returns(chunk))
                       if detail is not None]
            entries = [(return_id, sieve.map("return", detail, reduced_from_detail, detail, external_id=return_id),
                        detail) for return_id, detail in details]
            stored_orders = self._stored_orders_of([entry for _, entry, _ in entries if entry is not None], context)
            changed = []
            for return_id, entry, detail in entries:
                revision = sieve.map("return", detail, revision_of, entry, external_id=return_id) if entry is not None else None
                if revision is not None and revisions.get(return_id) != revision:
                    changed.append((return_id, entry, detail))
            fetched = self._fetch_orders([entry for _, entry, _ in changed], stored_orders, orders)
            for return_id, entry, detail in changed:
                at_hand = self._orders_at_hand(entry, stored_orders, orders, new_orders, sieve, fetched)
                mapped = sieve.map("return", detail, map_return, entry, detail, at_hand, external_id=return_id)
                if mapped is not None:
                    returns.append(mapped)
            yield Page(returns=returns, orders=new_orders, cursor=cursor, quarantined=sieve.take())

    # --- decisions -------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One handling result for every item of the act: one PUT per rmaId, followed until bol is done.

        A retry (a later attempt, or one following an earlier reference) first asks bol what it already did:
        an item whose process the reference names is followed; one bol shows handled with our result, or is
        still handling, is not sent again; only the rest is PUT.
        """
        handling = DECISION_TO_HANDLING[act.kind]
        items = _items_of(act)
        not_rmas = [rma_id for rma_id in items if not rma_id.isdigit()]
        if not_rmas:  # refused before anything is sent, so no item is handled without the others
            return PushResult(PushStatus.FAILED, f"not a bol rmaId (digits only): {', '.join(map(repr, not_rmas))}")
        handlings = [_Handling(rma_id, quantity) for rma_id, quantity in items.items()]
        known = _processes_in(act.reference, list(items))
        for item in handlings:
            if item.rma_id in known:
                item.status = self.client.get_process_status(known[item.rma_id])  # None: bol purged it
        unknown = [item for item in handlings if item.status is None]
        if unknown and (act.attempt > 1 or act.reference):
            self._recall(act.return_external_id, handling, unknown)
        self._send(handling, handlings)
        attempts = self.settings.process_poll_attempts
        self._follow(handlings, polls=attempts if any(item.fresh for item in handlings) else attempts - 1)
        return self._outcome(handling, handlings)

    def _send(self, handling: str, handlings: list[_Handling]) -> None:
        """PUT every item bol has not got yet. A refusal names its rma, and the items that did go through, so
        a merchant whose act failed halfway knows what bol holds."""
        for item in handlings:
            if item.status is not None or item.done_before:
                continue
            try:
                item.status = self.client.handle_return(item.rma_id, handling, item.quantity)
            except ApiError as exc:
                through = [other for other in handlings if other.status is not None or other.done_before]
                also = f"; {_rmas(through)} went through" if through else ""
                raise ApiError(exc.status_code, f"rma {item.rma_id}: {exc.message}{also}") from exc
            item.fresh = True

    def _recall(self, return_id: str, handling: str, handlings: list[_Handling]) -> None:
        """What bol did with these items on an earlier attempt whose answer we never saw: an item shows our
        handling result as its latest (done before), or bol is still processing one (followed from here)."""
        detail = self.client.get_return(return_id)
        items = detail["returnItems"] if detail is not None else []
        latest = {str(item.get("rmaId")): latest_processing_result(item) for item in items}
        for item in handlings:
            result = latest.get(item.rma_id)
            if result is not None and result.get("handlingResult") == handling:
                item.done_before = True
            else:
                item.status = self._handling_in_flight(item.rma_id)
                item.fresh = item.status is not None

    def _handling_in_flight(self, rma_id: str) -> dict[str, Any] | None:
        """A handling of this item bol is still working on: an earlier attempt whose answer we never saw."""
        statuses = self.client.process_statuses(rma_id, HANDLE_RETURN_ITEM)
        return next((status for status in statuses if status.get("status") == "PENDING"), None)

    def _follow(self, handlings: list[_Handling], *, polls: int) -> None:
        """Check the running processes until bol is done with them all or the polls run out."""
        while polls > 0 and any(item.running for item in handlings) and self._pause():
            polls -= 1
            for item in [item for item in handlings if item.running]:
                try:
                    fresh = self.client.get_process_status(item.process_id)
                except (ChannelError, Stopped):
                    return  # the handlings are with bol now; the next attempt follows the same processes
                if fresh is not None:
                    item.status = fresh

    @staticmethod
    def _outcome(handling: str, handlings: list[_Handling]) -> PushResult:
        """Pushed once bol handled every item, pending while it still processes any, failed if it refused one."""
        reference = _reference(handlings)
        if all(item.done_before for item in handlings):
            raise AlreadyDone(_what(handling, handlings), reference=reference)
        running = [item for item in handlings if item.running]
        if running:
            return PushResult(PushStatus.PENDING, f"bol is still processing {_what(handling, running)}",
                              reference=reference)
        refused = [item for item in handlings if not item.done_before and item.state != "SUCCESS"]
        done = [item for item in handlings if item not in refused]
        if refused:
            reports = "; ".join(f"bol reported {item.state} for {_what(handling, [item])}: {item.message}"
                                for item in refused)
            applied = f" (applied on {_rmas(done)})" if done else ""
            return PushResult(PushStatus.FAILED, reports + applied, reference=reference)
        applied = [item for item in handlings if not item.done_before]
        before = [item for item in handlings if item.done_before]
        earlier = f"; {_rmas(before)} had it already" if before else ""
        return PushResult(PushStatus.PUSHED, f"bol applied {_what(handling, applied)}{earlier}", reference=reference)

    def _pause(self) -> bool:
        """Wait between process checks the way ChannelHttp waits; False when the daemon is stopping."""
        seconds = self.settings.process_poll_delay.total_seconds()
        if self.runtime.sleep is not None:
            self.runtime.sleep(seconds)
            return not self.runtime.stop.is_set()
        return not self.runtime.stop.wait(seconds)

    # --- orders ----------------------------------------------------------------------------

    def fetch_order(self, external_id: str) -> Order | None:
        body = self.client.get_order(external_id)
        return map_fetched("order", body, map_order, body, external_id=external_id) if body is not None else None

    # --- sandbox ---------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> BolEmulator:
        from retsync_connectors.bol.emulator import BolEmulator

        return BolEmulator(seed=seed) if returns is None else BolEmulator(seed=seed, n_returns=returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.bol.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

        return {
            "connector": cls.name,
            "base_url": base_url,
            "token_url": base_url + "/token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        }


def _order_ids(entry: Mapping[str, Any]) -> list[str]:
    """The orders a return's items name, each once, in their order."""
    return list(dict.fromkeys(str(item["orderId"]) for item in objs(entry.get("returnItems"))
                              if text(item.get("orderId"))))


def _return_id(entry: Mapping[str, Any]) -> str | None:
    return text(entry.get("returnId")) if isinstance(entry, Mapping) else None


@dataclass
class _Handling:
    """One rmaId of an act: what bol is asked, and what bol last said about it."""

    rma_id: str
    quantity: int
    status: Mapping[str, Any] | None = None
    """The process bol handles the item in, as last reported; None: not sent yet, or lost track of."""
    done_before: bool = False
    """bol showed our handling result on the item before this attempt sent anything."""
    fresh: bool = False
    """Its process was started or found in this attempt, not followed from the act's reference."""

    @property
    def process_id(self) -> str:
        return str(self.status["processStatusId"]) if self.status is not None else ""

    @property
    def state(self) -> str | None:
        return str(self.status.get("status")) if self.status is not None else None

    @property
    def running(self) -> bool:
        return self.status is not None and self.state not in FINISHED

    @property
    def message(self) -> str:
        status = self.status or {}
        return str(status.get("errorMessage") or status.get("description") or "no message")


def _items_of(act: DecisionAct) -> dict[str, int]:
    """rmaId -> units, in the act's order: an item named twice is asked for once, never PUT twice."""
    items: dict[str, int] = {}
    for line in act.lines:
        items[line.line_external_id] = items.get(line.line_external_id, 0) + line.quantity
    return items


def _processes_in(reference: str | None, rma_ids: list[str]) -> dict[str, str]:
    """rmaId -> processStatusId an earlier attempt left in the act's reference."""
    if not reference:
        return {}
    try:
        parsed = json.loads(reference)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return {str(rma_id): process_id for rma_id, process_id in parsed.items()
                if str(rma_id) in rma_ids and isinstance(process_id, str)}
    # a decision pending since before acts holds its one item's process id as it is
    return {rma_ids[0]: reference} if len(rma_ids) == 1 else {}


def _reference(handlings: list[_Handling]) -> str | None:
    """The processes to follow as a JSON object rmaId -> processStatusId, running ones first. Whatever does
    not fit in the reference column is left out: a retry finds those items by asking bol (`_recall`)."""
    entries = {item.rma_id: item.process_id for item in sorted(handlings, key=lambda item: not item.running)
               if item.status is not None}
    while entries:
        encoded = json.dumps(entries, separators=(",", ":"))
        if len(encoded) <= REFERENCE_LENGTH:
            return encoded
        entries.popitem()
    return None


def _what(handling: str, handlings: list[_Handling]) -> str:
    """`handlingResult=X quantityReturned=N on rma R` for one item, the quantity per rma for several."""
    if len(handlings) == 1:
        return f"handlingResult={handling} quantityReturned={handlings[0].quantity} on rma {handlings[0].rma_id}"
    items = ", ".join(f"rma {item.rma_id} (quantityReturned={item.quantity})" for item in handlings)
    return f"handlingResult={handling} on {items}"


def _rmas(handlings: list[_Handling]) -> str:
    return "rma " + ", ".join(item.rma_id for item in handlings)
