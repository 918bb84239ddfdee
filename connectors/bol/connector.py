"""The bol.com connector: four return lists walked page by page, decisions mirrored as handling results.

bol has no "changed since" filter for returns. It has four lists (FBR/FBB x
unhandled/handled); open ones come oldest-first and are read whole, handled
ones come newest-first and are read until a page brings nothing new. A
return that leaves the open lists between two passes may sit deep in the
handled list, so it is fetched by id instead of paging the whole history.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from retsync.kit.contract import (
    Capabilities,
    Connector,
    DecisionRequest,
    Page,
    PullContext,
    PushResult,
    PushStatus,
    Runtime,
    Stream,
)
from retsync.kit.http import ApiError, AuthError, BadPayload, ChannelError, Stopped, TransientError
from retsync.kit.model import DecisionKind, Order, Return, utc
from retsync.kit.payload import objs, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration
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
ORDER_CACHE_SIZE = 5_000
CANCEL_UNSUPPORTED = "bol has no handling result that cancels a return; cancel it in the bol seller dashboard"


class BolSettings(ChannelSettings):
    """`[channels.<name>]` keys of a bol channel."""

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


class BolConnector(Connector):
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

    def __init__(self, channel: str, settings: ChannelSettings, runtime: Runtime) -> None:
        if not isinstance(settings, BolSettings):
            raise TypeError(f"the bol connector needs BolSettings, got {type(settings).__name__}")
        super().__init__(channel, settings, runtime)
        self.bol_settings = settings
        self.client = BolClient(channel, settings, runtime)

    def close(self) -> None:
        self.client.close()

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream != Stream.RETURNS:
            raise ValueError(f"the bol connector pulls returns only, not {stream}")
        phase, page = self._start(context.cursor)
        orders = _OrderCache()
        full_pass = (phase, page) == (0, 1)
        open_now: set[str] = set()
        for index in range(phase, len(PHASES)):
            if index == FIRST_HANDLED_PHASE and full_pass:
                left = set(context.open_returns()) - open_now
                yield from self._left_open_lists(left, context, orders)
                if self.runtime.stop.is_set():
                    return
            yield from self._walk_phase(index, page if index == phase else 1, context, orders, open_now)
            if self.runtime.stop.is_set():
                return

    @staticmethod
    def _start(cursor: Mapping[str, Any] | None) -> tuple[int, int]:
        """Where to resume; anything unreadable starts a fresh pass rather than skipping data."""
        if not cursor:
            return 0, 1
        try:
            phase, page = int(cursor.get("phase", 0)), int(cursor.get("page", 1))
        except (TypeError, ValueError):
            return 0, 1
        if not 0 <= phase < len(PHASES) or page < 1:
            return 0, 1
        return phase, page

    def _walk_phase(
        self, index: int, page: int, context: PullContext, orders: _OrderCache, open_now: set[str]
    ) -> Iterator[Page]:
        fulfilment, handled = PHASES[index]
        while not self.runtime.stop.is_set():
            entries = self.client.list_returns(page, handled, fulfilment)
            if not handled:
                open_now.update(filter(None, (text(entry.get("returnId")) for entry in entries)))
            sieve = RecordSieve()
            returns, new_orders, nothing_new = self._read_entries(entries, context, orders, sieve, handled=handled)
            last = len(entries) < PAGE_SIZE or (handled and nothing_new)
            yield Page(returns=returns, orders=new_orders, cursor=self._cursor_after(index, page, last, context),
                       quarantined=sieve.take())
            if last:
                return
            page += 1

    @staticmethod
    def _cursor_after(index: int, page: int, last: bool, context: PullContext) -> dict[str, Any]:
        if not last:
            return {"phase": index, "page": page + 1}
        if index + 1 < len(PHASES):
            return {"phase": index + 1, "page": 1}
        return {"phase": 0, "page": 1, "last_pass": context.now.isoformat()}

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
            detail = self.client.get_return(return_id)
            at_hand = self._orders_at_hand(entry, stored_orders, orders, new_orders, sieve)
            mapped = sieve.map("return", entry, map_return, entry, detail, at_hand, external_id=return_id)
            if mapped is not None:
                returns.append(mapped)
        return returns, new_orders, nothing_new

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
    ) -> dict[str, Order]:
        """The orders a return's items name that are fetched in this pass (requests happen here, outside the
        mapping, so a failed request fails the page instead of quarantining the return)."""
        at_hand: dict[str, Order] = {}
        for order_id in dict.fromkeys(str(item["orderId"]) for item in objs(entry.get("returnItems"))
                                      if text(item.get("orderId"))):
            order = self._order(order_id, stored_orders, orders, new_orders, sieve)
            if order is not None:
                at_hand[order_id] = order
        return at_hand

    def _order(
        self, order_id: str, stored_orders: Collection[str], orders: _OrderCache, new_orders: list[Order],
        sieve: RecordSieve,
    ) -> Order | None:
        """The order when it was fetched in this pass or is fetched now; stored orders are not fetched again.
        An order that cannot be read is quarantined, and its return is stored without it."""
        if order_id in orders:
            return orders.get(order_id)
        if order_id in stored_orders:
            return None
        body = self.client.get_order(order_id)
        order = sieve.map("order", body, map_order, body, external_id=order_id) if body is not None else None
        orders.put(order_id, order)
        if order is not None:
            new_orders.append(order)
        return order

    def _left_open_lists(self, return_ids: set[str], context: PullContext, orders: _OrderCache) -> Iterator[Page]:
        """Returns stored as open that are not on bol's open lists now, fetched by id, a page's worth at a time.

        bol lists handled returns newest-first by date, so one handled today may sit deep in the handled
        list, past where paging stops; asking for it by id is how its new state is learnt.
        """
        pending = sorted(return_ids)
        cursor = {"phase": FIRST_HANDLED_PHASE, "page": 1}
        for start in range(0, len(pending), PAGE_SIZE):
            if self.runtime.stop.is_set():
                return
            returns: list[Return] = []
            new_orders: list[Order] = []
            sieve = RecordSieve()
            chunk = pending[start : start + PAGE_SIZE]
            revisions = context.stored_revisions(chunk)
            # a return bol no longer knows (None) stays as it is stored
            details = [(return_id, detail) for return_id, detail in zip(chunk, map(self.client.get_return, chunk))
                       if detail is not None]
            entries = [(return_id, sieve.map("return", detail, reduced_from_detail, detail, external_id=return_id),
                        detail) for return_id, detail in details]
            stored_orders = self._stored_orders_of([entry for _, entry, _ in entries if entry is not None], context)

            for return_id, entry, detail in entries:
                revision = sieve.map("return", detail, revision_of, entry, external_id=return_id) if entry is not None else None
                if revision is None or revisions.get(return_id) == revision:
                    continue
                at_hand = self._orders_at_hand(entry, stored_orders, orders, new_orders, sieve)
                mapped = sieve.map("return", detail, map_return, entry, detail, at_hand, external_id=return_id)
                if mapped is not None:
                    returns.append(mapped)
            yield Page(returns=returns, orders=new_orders, cursor=cursor, quarantined=sieve.take())

    # --- push ------------------------------------------------------------------------------

    def push(self, request: DecisionRequest) -> PushResult:
        handling = DECISION_TO_HANDLING.get(request.kind)
        if handling is None:
            return PushResult(PushStatus.UNSUPPORTED, self.capabilities.why_unsupported(request.kind))
        if not request.line_external_id.isdigit():
            return PushResult(PushStatus.FAILED, f"{request.line_external_id!r} is not a bol rmaId (digits only)")
        try:
            return self._push(request, handling)
        except ApiError as exc:
            return PushResult(PushStatus.FAILED, f"bol refused handlingResult={handling}: {exc}")
        except AuthError as exc:
            hint = "" if "client_secret" in str(exc) else "; check client_id and client_secret"
            return PushResult(PushStatus.FAILED, f"bol refused the credentials of channel {self.channel}: {exc}{hint}")
        except (TransientError, BadPayload) as exc:
            return PushResult(PushStatus.RETRY, str(exc))
        except Stopped:
            return PushResult(PushStatus.RETRY, "the daemon stopped before bol was asked")

    def _push(self, request: DecisionRequest, handling: str) -> PushResult:
        attempts = self.bol_settings.process_poll_attempts
        if request.reference:
            status = self.client.get_process_status(request.reference)
            if status is not None:
                return self._follow(status, handling, request, polls=attempts - 1)
            # bol purged the process status: check the return itself before asking again
        if request.attempt > 1 or request.reference:
            if self._already_applied(request, handling):
                return PushResult(PushStatus.PUSHED, f"already applied on bol: handlingResult={handling}")
            in_flight = self._handling_in_flight(request.line_external_id)
            if in_flight is not None:
                return self._follow(in_flight, handling, request, polls=attempts)
        status = self.client.handle_return(request.line_external_id, handling, request.quantity)
        return self._follow(status, handling, request, polls=attempts)

    def _handling_in_flight(self, rma_id: str) -> dict[str, Any] | None:
        """A handling of this item bol is still working on: an earlier attempt whose answer we never saw."""
        statuses = self.client.process_statuses(rma_id, HANDLE_RETURN_ITEM)
        return next((status for status in statuses if status.get("status") == "PENDING"), None)

    def _already_applied(self, request: DecisionRequest, handling: str) -> bool:
        """True when bol already shows our handling result as the item's latest one (a lost answer)."""
        detail = self.client.get_return(request.return_external_id)
        if detail is None:
            return False
        for item in detail["returnItems"]:
            if str(item.get("rmaId")) == request.line_external_id:
                latest = latest_processing_result(item)
                return latest is not None and latest.get("handlingResult") == handling
        return False

    def _follow(self, status: dict[str, Any], handling: str, request: DecisionRequest, *, polls: int) -> PushResult:
        """Check the process status until it leaves PENDING or the polls run out."""
        process_id = str(status["processStatusId"])
        while status.get("status") == "PENDING" and polls > 0 and self._pause():
            polls -= 1
            try:
                fresh = self.client.get_process_status(process_id)
            except (ChannelError, Stopped):
                break  # the handling is with bol now; the next attempt follows the same process id
            if fresh is None:
                break
            status = fresh
        return self._outcome(status, process_id, handling, request)

    def _outcome(
        self, status: Mapping[str, Any], process_id: str, handling: str, request: DecisionRequest
    ) -> PushResult:
        state = status.get("status")
        what = f"handlingResult={handling} quantityReturned={request.quantity} on rma {request.line_external_id}"
        if state == "SUCCESS":
            return PushResult(PushStatus.PUSHED, f"bol applied {what}", reference=process_id)
        if state in ("FAILURE", "TIMEOUT"):
            message = status.get("errorMessage") or status.get("description") or "no message"
            return PushResult(PushStatus.FAILED, f"bol reported {state} for {what}: {message}", reference=process_id)
        return PushResult(PushStatus.PENDING, f"bol is still processing {what}", reference=process_id)

    def _pause(self) -> bool:
        """Wait between process checks the way ChannelHttp waits; False when the daemon is stopping."""
        seconds = self.bol_settings.process_poll_delay.total_seconds()
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


def _return_id(entry: Mapping[str, Any]) -> str | None:
    return text(entry.get("returnId")) if isinstance(entry, Mapping) else None
