"""The PrestaShop connector: orders and merchandise returns read by `date_upd`, decisions as return states,
credit slips and customer messages.

One pull walks, each from its own cursor, the orders changed since (every order is stored; on 1.7/8 the orders
with returned or refunded quantities become returns), the merchandise returns changed since (PrestaShop 9's
`order_returns`), and the credit slips changed since (a refund made in the back office does not touch its
order, so the slips are walked to see it). A pass cut short resumes in the walk and at the offset it was in.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from pydantic import Field, field_validator, model_validator

from retsync.kit.contract import (
    AlreadyDone,
    Capabilities,
    Connector,
    DecisionAct,
    HeldDecision,
    HoldRequest,
    Outcome,
    Page,
    PullContext,
    PushResult,
    PushStatus,
    Runtime,
    Stream,
)
from retsync.kit.http import ApiError, AuthError
from retsync.kit.model import DecisionKind, Order, Return
from retsync.kit.paging import ChangedSinceWalk, WalkKeys
from retsync.kit.payload import objs, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.prestashop.client import FAR_FUTURE, PAGE_SIZE, AdminApiClient, PrestaShopClient
from retsync_connectors.prestashop.mapping import (
    SLIP_RETURN_PREFIX,
    STATE_MEANINGS,
    STOCK_RETURN_STATES,
    STOCK_STATE_NAMES,
    Lookups,
    StateTable,
    count,
    date_text,
    decision_record,
    held_key,
    hold_mark,
    hold_question,
    is_held_return,
    is_hold_order,
    map_order,
    map_order_as_return,
    map_order_return,
    merchant_note,
    parse_date,
    recorded_decisions,
    recorded_keys,
    slip_body,
    slip_quantities,
)

if TYPE_CHECKING:
    from retsync_connectors.prestashop.emulator import PrestaShopEmulator

log = structlog.get_logger(__name__)
RETURNS, SLIPS, ORDERS = "order_returns", "order_slip", "orders"


WALK = WalkKeys(position="offset", first=0)
"""The webservice pages by `limit=offset,count`: the walks keep an offset."""


def _slip_return_id(order: Mapping[str, Any]) -> str | None:
    """The id a 1.7/8 return is stored under (`order-<id>`), for the quarantine; None without an order id."""
    order_id = text(order.get("id"))
    return SLIP_RETURN_PREFIX + order_id if order_id else None


def _as_sent(node: str, record: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
    """What a return was read from, for the quarantine: the record, and its order's details and credit slips,
    where its lines and quantities are (a merchant looking for the quantity of 1e30 finds it there)."""
    order_id = text(record.get("id_order") if node == "order_return" else record.get("id")) or ""
    return {node: record, "order_details": list((lookups.details or {}).get(order_id, ())),
            "order_slips": list((lookups.slips or {}).get(order_id, ()))}


@dataclass(frozen=True)
class SlipPlan:
    """An act's one credit slip: `found`, made by an earlier attempt whose answer was lost, or `body`, to make."""

    found: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None


class PrestaShopSettings(ChannelSettings):
    """`[channels.<name>]` keys of a PrestaShop shop."""

    poll_interval: Duration = fresh_poll_interval()
    base_url: str = Field(description="the shop's address, e.g. https://shop.example.com (the webservice is /api/)")
    api_key: Secret = Field(
        description="the 32-character webservice key (Advanced parameters > Webservice) with GET on orders, "
        "order_details, order_slip, order_returns, customers, currencies and PUT/POST for decisions; "
        "write env:VAR, file:/path or keyring:service/user")
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="look-ups of a page (order details, credit slips, customers, threads) "
        "read at once; PrestaShop's core sets no rate limit, the host may: lower it for a small shared host")
    shop_timezone: str = Field(default="UTC", description="the shop's time zone (its dates carry no offset), "
                               "e.g. Europe/Paris")
    returns_source: Literal["auto", "order_returns", "order_slip"] = Field(
        default="auto", description="where returns come from: order_returns (PrestaShop 9), order_slip (1.7/8: "
        "credit slips and returned quantities on order details), or auto (order_returns where the shop has it)")
    return_states: dict[str, str] = Field(
        default_factory=lambda: dict(STOCK_RETURN_STATES),
        description="merchandise-return state id -> meaning (requested, in_transit, received, rejected, completed, "
        "cancelled, repair, exchange, refunded); ids not listed are stored verbatim and stay open")
    accept_state: str = Field(default="2", description="state set on accept (stock 2 Waiting for package)")
    reject_state: str = Field(default="4", description="state set on reject (stock 4 Return denied)")
    cancel_state: str = Field(default="4", description="state set on cancel (4, or a state of your own)")
    keep_state: str = Field(default="5", description="state set on keep, with a credit slip (5 Return completed)")
    repair_state: str = Field(default="3", description="state set on repair (no stock state: yours, or 3)")
    exchange_state: str = Field(default="3", description="state set on exchange (no stock state: yours, or 3)")
    contact_id: str = Field(default="2", description="the contact (Customer service = 2) your messages to the "
                            "customer are filed under")
    hold_order_id: str | None = Field(
        default=None, description="back-office flow (PrestaShop 9; a marketplace channel with decisions_from = this "
        "channel): the id of one order of yours that its returns are filed under as merchandise returns (create a "
        "customer \"Marketplace returns\" and one order for them once); it is never stored as a sale")
    hold_state: str = Field(default="1", description="back-office flow: the merchandise-return state each held "
                            "return is created in (stock 1 Waiting for confirmation)")
    held_decision_states: dict[str, DecisionKind] = Field(
        default_factory=lambda: {"2": DecisionKind.ACCEPT, "5": DecisionKind.ACCEPT, "4": DecisionKind.REJECT},
        description="back-office flow: moving a held return to one of these merchandise-return states is your "
        "decision (stock 2 Waiting for package and 5 Return completed = accept, 4 Return denied = reject); your "
        "newest reply on its thread (Customer service) is the note")
    admin_api_client_id: str | None = Field(
        default=None, description="PrestaShop 9 Admin API (Advanced parameters > Admin API) client id with scopes "
        "order_return_read and order_return_write: return states are then set with one PATCH")
    admin_api_client_secret: Secret | None = Field(default=None, description="that client's secret (env:, file:, "
                                                   "keyring:)")
    admin_api_url: str | None = Field(default=None, description="the Admin API's address (default base_url + "
                                      "/admin-api)")

    @model_validator(mode="after")
    def _admin_api_pair(self) -> PrestaShopSettings:
        if (self.admin_api_client_id is None) != (self.admin_api_client_secret is None):
            raise ValueError("admin_api_client_id and admin_api_client_secret go together: set both or neither")
        return self

    @field_validator("return_states", mode="after")
    @classmethod
    def _known_meanings(cls, table: dict[str, str]) -> dict[str, str]:
        wrong = {state: meaning for state, meaning in table.items() if meaning not in STATE_MEANINGS}
        if wrong:
            raise ValueError(f"unknown meaning {sorted(set(wrong.values()))} for state(s) {sorted(wrong)}; "
                             f"one of {', '.join(STATE_MEANINGS)}")
        return {str(state).strip(): meaning for state, meaning in table.items()}

    @field_validator("shop_timezone", mode="after")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name (e.g. UTC, Europe/Paris)") from None
        return value


def _decision_texts() -> dict[DecisionKind, str]:
    return {
        DecisionKind.ACCEPT: "PrestaShop 9: return state accept_state (2 Waiting for package; PUT order_returns, or "
        "the Admin API's PATCH where configured); 1.7/8: one credit slip (order_slip) for all the decided lines; "
        "your note as a customer message",
        DecisionKind.KEEP: "one credit slip (order_slip) for all the decided lines, and on PrestaShop 9 state "
        "keep_state (5 Return completed); the slip is the document, pay the customer in your payment module",
        DecisionKind.REJECT: "return state reject_state (4 Return denied) + your note as a customer message",
        DecisionKind.CANCEL: "return state cancel_state (4) + a customer message",
        DecisionKind.REPAIR: "return state repair_state + a customer message (1.7/8: the message only)",
        DecisionKind.EXCHANGE: "return state exchange_state + a customer message (1.7/8: the message only)",
    }


class PrestaShopConnector(Connector[PrestaShopSettings]):
    """PrestaShop webservice: orders, merchandise returns and credit slips in; states, slips and messages out."""

    name = "prestashop"
    title = "PrestaShop (webservice /api, 1.7 to 9)"
    settings_model = PrestaShopSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,), decisions=_decision_texts(),
        holds_returns="PrestaShop 9: a merchandise return (order_returns) in state hold_state on the order "
        "hold_order_id, the marketplace return and its items in its question, with a customer-service thread; you "
        "decide by moving it to a state in held_decision_states (your newest reply on the thread is the note)",
    )

    outcomes = {AuthError: Outcome(PushStatus.RETRY, "{title} did not accept the webservice key ({error}); check "
                                   "api_key and its permissions: {what} is retried, and goes out once they are "
                                   "fixed")}
    """Retried like on every channel; the wording is PrestaShop's: its 401s (codes 16-20) are a missing, wrong or
    inactive webservice key, fixed in Advanced parameters > Webservice, where the key's permissions are too."""

    def __init__(self, channel: str, settings: PrestaShopSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.zone = ZoneInfo(settings.shop_timezone)
        self.states = StateTable(settings.return_states)
        self.client = PrestaShopClient(channel, settings, runtime)
        self.admin = AdminApiClient(channel, settings, runtime) if settings.admin_api_client_id else None
        self._source: str | None = None if settings.returns_source == "auto" else settings.returns_source
        self._currencies: dict[str, str] | None = None

    def close(self) -> None:
        self.client.close()
        if self.admin is not None:
            self.admin.close()

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        if kind is DecisionKind.REJECT and not (note or "").strip():
            return "a rejection goes to the customer as a message: say why (--note)"
        return None

    # --- what the shop has -----------------------------------------------------------------

    def source(self) -> str:
        """order_returns where the shop lists them (PrestaShop 9), else credit slips; asked once per start."""
        if self._source is None:
            try:
                self.client.list(RETURNS, {"limit": "0,1", "display": "[id]"})
                self._source = RETURNS
            except ApiError as exc:
                if exc.status_code not in (400, 404):
                    raise
                log.info("prestashop_without_order_returns", channel=self.channel,
                         hint="no order_returns resource (PrestaShop before 9): returns come from credit slips "
                              "and returned quantities")
                self._source = SLIPS
        return self._source

    def currencies(self) -> dict[str, str]:
        if self._currencies is None:
            self._currencies = {str(c["id"]): str(c.get("iso_code") or "") for c in
                                self.client.list_all("currencies", {"display": "[id,iso_code]"})}
        return self._currencies

    def _customers(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.client.by_ids("customers", "id", ids, display="[id,email,firstname,lastname]") if ids else []

    def _lookups(self, orders: Sequence[Mapping[str, Any]] = (), *, details: bool = False,
                 customers: Sequence[str] = (), order_ids: Sequence[str] | None = None,
                 also: Sequence[Callable[[], list[dict[str, Any]]]] = ()) -> tuple[Lookups, list[Any]]:
        """What mapping a page's orders and returns needs besides them, read in one round side by side: the
        customers, and with `details` each order's details, credit slips and messages (the messages need the
        threads first). `order_ids` asks for the details before the orders themselves are at hand; `also` are
        reads of the caller's for the same round, whose results come back beside the look-ups."""
        ids = list(order_ids) if order_ids is not None else [str(o["id"]) for o in orders]
        people = list(customers) + [str(o.get("id_customer")) for o in orders]
        reads: list[Callable[[], list[dict[str, Any]]]] = [lambda: self._customers(people)]
        if details and ids:
            reads += [lambda: self.client.by_ids("order_details", "id_order", ids),
                      lambda: self.client.by_ids(SLIPS, "id_order", ids),
                      lambda: self.client.by_ids("customer_threads", "id_order", ids, display="[id,id_order]")]
        results = self.client.at_once(*reads, *also)
        people_found, found, extra = results[0], results[1:len(reads)], results[len(reads):]
        found_details: dict[str, list[Mapping[str, Any]]] = {}
        found_slips: dict[str, list[Mapping[str, Any]]] = {}
        recorded: dict[str, Mapping[str, DecisionKind]] = {}
        if found:
            details_found, slips, threads_found = found
            for detail in details_found:
                found_details.setdefault(str(detail.get("id_order")), []).append(detail)
            for slip in slips:
                found_slips.setdefault(str(slip.get("id_order")), []).append(slip)
            threads = {str(t["id"]): str(t.get("id_order")) for t in threads_found}
            said: dict[str, list[Mapping[str, Any]]] = {}
            for message in self.client.by_ids("customer_messages", "id_customer_thread", list(threads)):
                said.setdefault(threads.get(str(message.get("id_customer_thread")), ""), []).append(message)
            recorded = {order_id: recorded_decisions(messages) for order_id, messages in said.items()}
        return Lookups(zone=self.zone, currencies=self.currencies(), customers={str(c["id"]): c for c in people_found},
                       orders={str(o["id"]): o for o in orders}, details=found_details, slips=found_slips,
                       recorded=recorded, hold_order=self.settings.hold_order_id), extra

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream != Stream.RETURNS:
            raise ValueError(f"the prestashop connector pulls returns (with their orders), not {stream}")
        phases = [ORDERS, RETURNS, SLIPS] if self.source() == RETURNS else [ORDERS, SLIPS]
        cursor = dict(context.cursor or {})
        walks = {phase: ChangedSinceWalk.load(cursor, phase + "_", context.backfill_since, WALK, now=context.now)
                 for phase in phases}
        start = phases.index(cursor["phase"]) if cursor.get("phase") in phases else 0
        for index in range(start, len(phases)):
            phase = phases[index]
            handle = {ORDERS: self._orders_page, RETURNS: self._returns_page, SLIPS: self._slips_page}[phase]
            walk = walks[phase]
            since = walk.since - context.overlap

            def page_at(position: int, phase: str = phase, since: datetime = since) -> list[dict[str, Any]]:
                return self.client.list(phase, {
                    "filter[date_upd]": f"[{date_text(since, self.zone)},{FAR_FUTURE}]", "date": "1",
                    "sort": "[date_upd_ASC,id_ASC]", "limit": f"{position},{PAGE_SIZE}"})

            upcoming = self.client.http.soon(page_at, walk.position)
            while not self.runtime.stop.is_set():
                entries = upcoming()
                if len(entries) == PAGE_SIZE:  # the next page is read while this one's look-ups are
                    upcoming = self.client.http.soon(page_at, walk.position + len(entries))
                sieve = RecordSieve()
                returns, orders = handle(entries, context, sieve)
                for entry in objs(entries):
                    walk.saw(parse_date(entry.get("date_upd"), self.zone))
                last = len(entries) < PAGE_SIZE
                if last:
                    walk.finish()
                else:
                    walk.position += len(entries)
                following = phases[(index + 1) % len(phases)] if last else phase
                yield Page(returns=returns, orders=orders, quarantined=sieve.take(),
                           cursor={"phase": following, **{k: v for p, w in walks.items() for k, v in
                                                           w.dump(p + "_").items()}})
                if last:
                    break
            if self.runtime.stop.is_set():
                return

    def _changed(self, returns: list[Return], context: PullContext) -> list[Return]:
        stored = context.stored_revisions([r.external_id for r in returns])
        return [r for r in returns if stored.get(r.external_id) != r.revision]

    def _orders_page(self, entries: list[dict[str, Any]], context: PullContext, sieve: RecordSieve, *,
                     sales_too: bool = True) -> tuple[list[Return], list[Order]]:
        """The shop's own sales (a held order is none); on 1.7/8 also the returns they stand for.

        Each order is mapped through `sieve`: one that cannot be read is set aside, with the details and slips
        its return was read from; the requests for those are made before any mapping, so a failed one fails
        the page instead."""
        sales = [o for o in objs(entries) if not is_hold_order(o, self.settings.hold_order_id)]
        slips_mode = self.source() == SLIPS
        lookups, _ = self._lookups(sales, details=slips_mode)
        returns: list[Return] = []
        orders: list[Order] = []
        for o in sales:
            if slips_mode:
                ret = sieve.map("return", _as_sent("order", o, lookups), map_order_as_return, o, lookups,
                                external_id=_slip_return_id(o))
                if ret is not None:
                    returns.append(ret)
            order = sieve.map("order", o, map_order, o, lookups, external_id=o.get("id")) if sales_too else None
            if order is not None:
                orders.append(order)
        return self._changed(returns, context), orders

    def _returns_page(self, entries: list[dict[str, Any]], context: PullContext, sieve: RecordSieve
                      ) -> tuple[list[Return], list[Order]]:
        """Merchandise returns with their orders' details and slips; the orders not stored yet come along.

        A merchandise return holding another channel's return (the back-office flow) is left out: that return
        is stored under its own channel, and its decision is read back by `held_decisions`. One that cannot be
        read is set aside in `sieve` with the order details and slips it was read from (its lines are there)."""
        entries = [r for r in objs(entries) if not is_held_return(r, self.settings.hold_order_id)]
        if not entries:
            return [], []
        order_ids = [text(r.get("id_order")) or "" for r in entries]
        # the orders, their other returns and the look-ups all follow from the entries' ids: one round
        lookups, (orders, on_the_orders) = self._lookups(
            details=True, order_ids=order_ids, customers=[text(r.get("id_customer")) or "" for r in entries],
            also=(lambda: self.client.by_ids(ORDERS, "id", order_ids),
                  lambda: self.client.by_ids(RETURNS, "id_order", order_ids, display="[id,id_order]")))
        unknown = [str(o.get("id_customer")) for o in orders if str(o.get("id_customer")) not in lookups.customers]
        customers = {**lookups.customers, **{str(c["id"]): c for c in self._customers(unknown)}}
        siblings = Counter(text(r.get("id_order")) or "" for r in on_the_orders)
        lookups = replace(lookups, customers=customers, orders={str(o["id"]): o for o in orders},
                          returns_on_order=siblings)
        returns = [ret for ret in (sieve.map("return", _as_sent("order_return", record, lookups), map_order_return,
                                             record, self.states, lookups, external_id=record.get("id"))
                                   for record in entries) if ret is not None]
        stored = context.stored_orders([text(o.get("id")) or "" for o in orders])
        fresh = [order for order in (sieve.map("order", o, map_order, o, lookups, external_id=o.get("id"))
                                     for o in orders if text(o.get("id")) not in stored
                                     and not is_hold_order(o, self.settings.hold_order_id)) if order is not None]
        return self._changed(returns, context), fresh

    def _slips_page(self, entries: list[dict[str, Any]], context: PullContext, sieve: RecordSieve
                    ) -> tuple[list[Return], list[Order]]:
        """Refunds made since: the returns of their orders are read again."""
        order_ids = [text(s.get("id_order")) or "" for s in objs(entries)]
        if not order_ids:
            return [], []
        if self.source() == RETURNS:
            return self._returns_page(self.client.by_ids(RETURNS, "id_order", order_ids), context, sieve)
        orders = self.client.by_ids(ORDERS, "id", order_ids)
        return self._orders_page(orders, context, sieve, sales_too=False)

    # --- decision acts ---------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One act on the shop for all the act's lines: one state change (PrestaShop 9) or one credit slip (1.7/8,
        and keep on 9), one note to the customer, and one private record of the act with its key."""
        if act.return_external_id.startswith(SLIP_RETURN_PREFIX):
            return self._act_on_order(act)
        return self._act_on_order_return(act)

    def _state_for(self, kind: DecisionKind) -> str:
        return {DecisionKind.ACCEPT: self.settings.accept_state, DecisionKind.REJECT: self.settings.reject_state,
                DecisionKind.CANCEL: self.settings.cancel_state, DecisionKind.KEEP: self.settings.keep_state,
                DecisionKind.REPAIR: self.settings.repair_state,
                DecisionKind.EXCHANGE: self.settings.exchange_state}[kind]

    def _act_on_order_return(self, act: DecisionAct) -> PushResult:
        """Note, slip (keep), state, then retsync's record on the order's thread: the record makes it done, so a
        retry that finds it stops, and the next pull reads each line's decision as the one retsync pushed."""
        record = self.client.get(RETURNS, act.return_external_id)
        if record is None:
            return PushResult(PushStatus.FAILED, f"the shop has no merchandise return {act.return_external_id}")
        order = self.client.get(ORDERS, str(record.get("id_order")))
        if order is None:
            return PushResult(PushStatus.FAILED, f"the shop has no order {record.get('id_order')} (deleted?)")
        thread, said = self._conversation(order)
        if act.key in recorded_keys(said):
            raise AlreadyDone(f"{act.kind} on return {record['id']} is recorded in the shop (state "
                              f"{record.get('state')})", result={"state": str(record.get("state"))})
        slip = self._slip_plan(order, act) if act.kind is DecisionKind.KEEP else None
        if isinstance(slip, PushResult):
            return slip
        thread, told = self._tell(order, thread, said, act)
        slip_text = f"; credit slip {self._make_slip(slip)['id']}" if slip is not None else ""
        shown = self._set_state(record, self._state_for(act.kind))
        self._record(thread, act)
        return PushResult(PushStatus.PUSHED, f"{act.kind}: return {record['id']} is in state {shown}{slip_text}; "
                          f"{told}", result={"state": shown})

    def _set_state(self, record: Mapping[str, Any], state: str) -> str:
        """The return's state, set once (a retry finds it set): one PATCH where the Admin API is configured, else
        a PUT of the whole object (PrestaShop replaces it)."""
        shown = str(record.get("state"))
        if shown == state:
            return shown
        if self.admin is not None:
            return str(self.admin.set_return_state(str(record["id"]), state).get("orderReturnStateId"))
        fields = {k: record.get(k) for k in ("id_customer", "id_order", "question", "date_add")}
        return str(self.client.update(RETURNS, str(record["id"]), {**fields, "state": state}).get("state"))

    def _act_on_order(self, act: DecisionAct) -> PushResult:
        """PrestaShop 1.7/8 has no return to set a state on: a refund is one credit slip, the rest a message."""
        order_id = act.order_external_id or act.return_external_id.removeprefix(SLIP_RETURN_PREFIX)
        order = self.client.get(ORDERS, order_id)
        if order is None:
            return PushResult(PushStatus.FAILED, f"the shop has no order {order_id} (deleted?)")
        thread, said = self._conversation(order)
        if act.key in recorded_keys(said):
            raise AlreadyDone(f"{act.kind} on order {order_id} is recorded in the shop")
        if act.kind not in (DecisionKind.ACCEPT, DecisionKind.KEEP):
            thread, told = self._tell(order, thread, said, act)
            self._record(thread, act)
            return PushResult(PushStatus.PUSHED, f"{act.kind} on order {order_id}: {told}")
        slip = self._slip_plan(order, act)
        if isinstance(slip, PushResult):
            return slip
        thread, told = self._tell(order, thread, said, act)
        made = self._make_slip(slip)
        self._record(thread, act)
        return PushResult(PushStatus.PUSHED, f"{act.kind}: credit slip {made['id']} on order {order_id}; {told}",
                          reference=str(made["id"]), result={"slip_id": str(made["id"])})

    def _refunds(self, act: DecisionAct) -> dict[str, int]:
        """order detail id -> units the act refunds (a line without an order line is its own order detail)."""
        wanted: dict[str, int] = {}
        for line in act.lines:
            detail_id = line.order_line_external_id or line.line_external_id
            wanted[detail_id] = wanted.get(detail_id, 0) + line.quantity
        return wanted

    def _slip_plan(self, order: Mapping[str, Any], act: DecisionAct) -> SlipPlan | PushResult:
        """The act's one credit slip: the slip an earlier attempt made (its answer lost), else the body of a new
        one for every line; a line the order does not have, or has no units left to refund, refuses the act
        before anything is written."""
        order_id = str(order["id"])
        wanted = self._refunds(act)
        if not wanted:
            return PushResult(PushStatus.FAILED, f"return {act.return_external_id} names no lines to refund")
        if act.attempt > 1 or act.reference:
            for slip in self.client.by_ids(SLIPS, "id_order", [order_id]):
                if slip_quantities(slip) == wanted:
                    return SlipPlan(found=slip)
        details = {str(d.get("id")): d for d in self.client.by_ids("order_details", "id_order", [order_id])}
        refunds: list[tuple[Mapping[str, Any], int]] = []
        for detail_id, quantity in wanted.items():
            detail = details.get(detail_id)
            if detail is None:
                return PushResult(PushStatus.FAILED, f"order {order_id} has no line {detail_id} to refund")
            left = count(detail.get("product_quantity")) - count(detail.get("product_quantity_refunded"))
            if quantity > left:
                return PushResult(PushStatus.FAILED, f"line {detail_id} of order {order_id} has only {left} left "
                                  f"to refund, {quantity} asked: refunded in the shop already?")
            refunds.append((detail, quantity))
        return SlipPlan(body=slip_body(order, refunds))

    def _make_slip(self, plan: SlipPlan) -> Mapping[str, Any]:
        return plan.found if plan.found is not None else self.client.create(SLIPS, plan.body or {})

    def _conversation(self, order: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The order's customer-service thread (BO > Customer service) and its messages, if there is one."""
        threads = self.client.by_ids("customer_threads", "id_order", [str(order["id"])])
        if not threads:
            return None, []
        said = self.client.by_ids("customer_messages", "id_customer_thread", [str(t["id"]) for t in threads])
        return threads[0], said

    def _tell(self, order: Mapping[str, Any], thread: dict[str, Any] | None, said: Sequence[Mapping[str, Any]],
              act: DecisionAct) -> tuple[dict[str, Any], str]:
        """Your note to the customer on the order's thread: once per act, however many lines it covers, and not
        again on a retry that finds it said."""
        if thread is None:
            customer = self.client.get("customers", str(order.get("id_customer"))) or {}
            thread = self.client.create("customer_threads", {
                "id_lang": order.get("id_lang") or "1", "id_shop": order.get("id_shop") or "1",
                "id_order": order["id"], "id_customer": order.get("id_customer"),
                "id_contact": self.settings.contact_id, "email": customer.get("email") or "noreply@example.invalid",
                "token": secrets.token_hex(6), "status": "open"})
        note = (act.note or "").strip()
        if not note:
            return thread, "a private message records it"
        if any(str(m.get("message") or "").strip() == note for m in said):
            return thread, "the customer was told already"
        self.client.create("customer_messages", {"id_customer_thread": thread["id"], "id_employee": "0",
                                                 "message": note, "private": "0"})
        return thread, "the customer was told"

    def _record(self, thread: Mapping[str, Any], act: DecisionAct) -> None:
        """One private message for the whole act, written last: finding its key means the act is done."""
        self.client.create("customer_messages", {
            "id_customer_thread": thread["id"], "id_employee": "0", "private": "1",
            "message": decision_record(act.kind, list(self._refunds(act).items()), act.return_external_id,
                                       act.key)})

    # --- the back-office flow --------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """One merchandise return per marketplace return, on the order `hold_order_id`, and a thread to reply on.

        The webservice runs an order POST through a payment module's validateOrder (a real cart, a paid order,
        stock taken, the customer e-mailed), so a held return is a merchandise return instead, which changes
        nothing else in the shop. A retry looks for the return and the thread by the hold mark first.
        """
        if self.settings.hold_order_id is None:
            return PushResult(PushStatus.FAILED, f"channel {self.channel} has no hold_order_id: create a customer "
                              "\"Marketplace returns\" and one order for them, and set hold_order_id to its id")
        if self.source() != RETURNS:
            return PushResult(PushStatus.FAILED, "holding returns needs PrestaShop 9 (its order_returns "
                              "resource); this shop has none")
        again = request.attempt > 1 or request.reference is not None
        held = self._held_record(request) if again else None
        if held is None:
            holder = self._hold_order()
            if holder is None:
                return PushResult(PushStatus.FAILED, f"the shop has no order {self.settings.hold_order_id} "
                                  "(hold_order_id)")
            held = self.client.create(RETURNS, {
                "id_customer": holder.get("id_customer"), "id_order": holder["id"],
                "question": hold_question(request.ret, request.key, request.source_title),
                "state": self.settings.hold_state})
            again = False
        self._hold_thread(request, held, look_first=again)
        return PushResult(PushStatus.PUSHED, f"merchandise return {held['id']} in state {held.get('state')} on "
                          f"order {self.settings.hold_order_id}", reference=str(held["id"]))

    def _hold_order(self) -> dict[str, Any] | None:
        return self.client.get(ORDERS, str(self.settings.hold_order_id))

    def _held_record(self, request: HoldRequest) -> dict[str, Any] | None:
        """The merchandise return an earlier attempt created for this return (its answer lost), if any."""
        if request.reference:
            record = self.client.get(RETURNS, request.reference)
            if record is not None and held_key(record) == request.key:
                return record
        found = self.client.list_all(RETURNS, {"filter[id_order]": f"[{self.settings.hold_order_id}]",
                                               "filter[question]": f"%[{hold_mark(request.key)}]%"})
        return next((record for record in found if held_key(record) == request.key), None)

    def _marked_messages(self, key: str) -> list[dict[str, Any]]:
        return [m for m in self.client.list_all("customer_messages", {"filter[message]": f"%[{hold_mark(key)}]%"})
                if held_key(m) == key]

    def _hold_thread(self, request: HoldRequest, held: Mapping[str, Any], *, look_first: bool) -> None:
        """A customer-service thread on the hold order, opened by a private message with the return: where the
        merchant replies with the note of their decision."""
        if look_first and self._marked_messages(request.key):
            return
        holder = self._hold_order() or {}
        customer = self.client.get("customers", str(holder.get("id_customer"))) or {}
        thread = self.client.create("customer_threads", {
            "id_lang": holder.get("id_lang") or "1", "id_shop": holder.get("id_shop") or "1",
            "id_order": self.settings.hold_order_id, "id_customer": holder.get("id_customer"),
            "id_contact": self.settings.contact_id, "email": customer.get("email") or "noreply@example.invalid",
            "token": secrets.token_hex(6), "status": "open"})
        self.client.create("customer_messages", {
            "id_customer_thread": thread["id"], "id_employee": "0", "private": "1",
            "message": f"Merchandise return {held['id']}: " + str(held.get("question") or
                                                                  hold_question(request.ret, request.key,
                                                                                request.source_title))})

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        """Held returns moved to a decision state; the note is the newest reply staff wrote on their thread."""
        decided: dict[str, HeldDecision] = {}
        for record in self.client.by_ids(RETURNS, "id", list(references)):
            state = str(record.get("state") or "")
            kind = self.settings.held_decision_states.get(state)
            key = held_key(record)
            if kind is None or key is None:
                continue
            threads = {str(m.get("id_customer_thread")) for m in self._marked_messages(key)}
            said = self.client.by_ids("customer_messages", "id_customer_thread", sorted(threads)) if threads else []
            reference = str(record["id"])
            name = STOCK_STATE_NAMES.get(state, "")
            decided[reference] = HeldDecision(
                reference=reference, kind=kind, note=merchant_note(said) or f"decided in the shop (return state "
                f"{state}{' ' + name if name else ''})", decided_at=parse_date(record.get("date_upd"), self.zone),
                shop_status=state)
        return decided

    # --- orders ----------------------------------------------------------------------------

    def fetch_order(self, external_id: str) -> Order | None:
        if not external_id.isdigit():
            return None
        order = self.client.get(ORDERS, external_id)
        if order is None or is_hold_order(order, self.settings.hold_order_id):
            return None
        return map_fetched("order", order, map_order, order, self._lookups([order])[0], external_id=external_id)

    # --- sandbox ---------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> PrestaShopEmulator:
        from retsync_connectors.prestashop.emulator import PrestaShopEmulator

        return PrestaShopEmulator(seed=seed) if returns is None else PrestaShopEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.prestashop.emulator import HOLD_ORDER_ID, SANDBOX_KEY

        return {"connector": cls.name, "base_url": base_url, "api_key": SANDBOX_KEY,
                "hold_order_id": str(HOLD_ORDER_ID)}
