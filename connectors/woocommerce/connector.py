"""The WooCommerce connector: orders read incrementally, returns recognised in them, decisions as refunds and statuses.

WooCommerce has no returns object (see mapping.py), so one walk over the
orders changed since the cursor serves both: every order is stored, and the
orders that stand for a return (a return status, a returns-plugin request, a
refund) become returns. A refund made in the shop's admin comes back with its
order where it bumps the order's `date_modified`, and through the walk over
`GET /refunds` (WooCommerce 9.0+) where it does not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import Field, field_validator

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
from retsync_connectors.woocommerce.client import PAGE_SIZE, WooCommerceClient
from retsync_connectors.woocommerce.mapping import (
    DECISION_META_PREFIX,
    REFUND_DECISION_META,
    REFUND_KEY_META,
    REFUND_LINE_META,
    ReturnRules,
    gmt_text,
    held_key,
    held_order,
    is_return,
    map_order,
    map_return,
    meta_value,
    money,
    parse_gmt,
    recorded_decisions,
    refund_ids,
    refunds_in_revision,
    revision_of,
)

if TYPE_CHECKING:
    from retsync_connectors.woocommerce.emulator import WooCommerceEmulator

REFUNDS = frozenset({DecisionKind.ACCEPT, DecisionKind.KEEP})

log = structlog.get_logger(__name__)


WALK = WalkKeys(since="modified_after")
"""The cursor keys of the orders and refunds walks (kept as the first release wrote them)."""

LISTED_REFUNDS_KEPT = 10_000
"""Refund ids the orders walk of one pull remembers (the refunds its orders list), so the refunds walk need not
read those orders again; bounded, so a backfill's memory stays flat (past it, orders are simply read again)."""


class WooCommerceSettings(ChannelSettings):
    """`[channels.<name>]` keys of a WooCommerce shop."""

    poll_interval: Duration = fresh_poll_interval()
    max_concurrency: int = Field(
        default=2, ge=1, le=16, description="requests in flight at once: the next page of a list is asked for "
        "while this one is stored; WooCommerce sets no rate limit, the host may: 1 for a small one")
    base_url: str = Field(
        description="the shop's address, e.g. https://shop.example.com (the API is under /wp-json/wc/v3); "
        "use https: WooCommerce accepts the key over plain http only with OAuth 1.0a signatures"
    )
    consumer_key: Secret = Field(
        description="REST API consumer key (ck_...) from WooCommerce > Settings > Advanced > REST API, "
        "read/write; write env:VAR, file:/path or keyring:service/user"
    )
    consumer_secret: Secret = Field(description="the key's consumer secret (cs_...); env:, file: or keyring: too")
    requested_statuses: tuple[str, ...] = Field(
        default=("return-requested",),
        description="order statuses that mean a customer asked to return (WP Swings: return-requested); "
        "write them as the API shows them, without the wc- prefix",
    )
    approved_statuses: tuple[str, ...] = Field(
        default=("return-approved",),
        description="order statuses that mean the return was approved in the shop (read back as an accept)",
    )
    cancelled_statuses: tuple[str, ...] = Field(
        default=("return-cancelled",),
        description="order statuses that mean the request was declined or withdrawn in the shop "
        "(read back as a reject)",
    )
    rma_meta_keys: tuple[str, ...] = Field(
        default=("wps_rma_return_product",),
        description="order meta keys holding the returns plugin's request (the returned items and quantities)",
    )
    rma_line_meta_keys: tuple[str, ...] = Field(
        default=("wps_rma_request_made",),
        description="order meta keys holding the plugin's per-item request state",
    )
    api_refund: bool = Field(
        default=True,
        description="accept/keep refund through the payment gateway (WooCommerce's default); false only records "
        "a manual refund and you pay the customer yourself",
    )
    reject_status: str = Field(
        default="return-cancelled", description="order status set when you reject a return (empty: keep the status)"
    )
    cancel_status: str = Field(
        default="return-cancelled", description="order status set when a return is cancelled (empty: keep it)"
    )
    repair_status: str = Field(
        default="", description="order status set when you decide to repair (empty: keep the status)"
    )
    exchange_status: str = Field(
        default="", description="order status set when you decide to exchange (empty: keep the status)"
    )
    query_string_auth: bool = Field(
        default=False,
        description="send the key as consumer_key/consumer_secret query parameters instead of HTTP basic auth, "
        "for hosts whose server drops the Authorization header (WooCommerce then answers 401 on every call)",
    )
    hold_status: str = Field(
        default="return-requested",
        description="back-office flow (a marketplace channel with decisions_from = this channel): the status of "
        "the order created in the shop for each marketplace return you are to decide here",
    )
    held_decision_statuses: dict[str, DecisionKind] = Field(
        default_factory=lambda: {"return-approved": DecisionKind.ACCEPT, "return-cancelled": DecisionKind.REJECT},
        description="back-office flow: moving such an order to one of these statuses is your decision "
        "(status = accept | reject | repair | exchange | keep | cancel); your newest order note becomes its note",
    )
    refunds_endpoint: bool = Field(
        default=True,
        description="also walk GET /refunds (WooCommerce 9.0 and later) for refunds made since the last pull; "
        "set false on older shops, which answer it with rest_no_route",
    )


    @field_validator("requested_statuses", "approved_statuses", "cancelled_statuses", mode="after")
    @classmethod
    def _without_wc_prefix(cls, statuses: tuple[str, ...]) -> tuple[str, ...]:
        """Plugins and the database say `wc-return-requested`; the API says `return-requested`. Take either."""
        return tuple(status.strip().removeprefix("wc-") for status in statuses if status.strip())

    @field_validator("held_decision_statuses", mode="after")
    @classmethod
    def _decision_statuses_without_wc_prefix(cls, statuses: dict[str, DecisionKind]) -> dict[str, DecisionKind]:
        return {status.strip().removeprefix("wc-"): kind for status, kind in statuses.items() if status.strip()}

    @field_validator("reject_status", "cancel_status", "repair_status", "exchange_status", "hold_status",
                     mode="after")
    @classmethod
    def _status_without_wc_prefix(cls, status: str) -> str:
        return status.strip().removeprefix("wc-")


def _decision_texts() -> dict[DecisionKind, str]:
    return {
        DecisionKind.ACCEPT: "POST /orders/{id}/refunds with the returned line_items, api_restock=true",
        DecisionKind.KEEP: "POST /orders/{id}/refunds with the line_items, api_restock=false (customer keeps it)",
        DecisionKind.REJECT: "order status reject_status + a customer note with your note",
        DecisionKind.CANCEL: "order status cancel_status + a note",
        DecisionKind.REPAIR: "an order note + order status repair_status",
        DecisionKind.EXCHANGE: "an order note + order status exchange_status",
    }


class WooCommerceConnector(Connector[WooCommerceSettings]):
    """WooCommerce REST API v3: orders and returns in, refunds, statuses and notes out."""

    name = "woocommerce"
    title = "WooCommerce (REST API wc/v3)"
    settings_model = WooCommerceSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,), decisions=_decision_texts(),
        holds_returns="an unpaid order in status hold_status with the returned items; you decide by moving it to "
        "a status in held_decision_statuses (your newest order note is the note)",
    )
    outcomes = {
        # retried like on every channel, but in the shop's words: WooCommerce answers 401 both for a wrong key
        # and for a read-only one, and the merchant fixes either under Settings > Advanced > REST API
        AuthError: Outcome(PushStatus.RETRY, "{title} refused the shop's keys ({error}); check consumer_key and "
                           "consumer_secret (they need read/write permission): {what} is retried and goes out once "
                           "they are fixed"),
    }

    def __init__(self, channel: str, settings: WooCommerceSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.rules = ReturnRules(
            requested_statuses=settings.requested_statuses,
            approved_statuses=settings.approved_statuses,
            cancelled_statuses=settings.cancelled_statuses,
            rma_meta_keys=settings.rma_meta_keys,
            line_state_meta_keys=settings.rma_line_meta_keys,
        )
        self.client = WooCommerceClient(channel, settings, runtime)
        self._orderby = "modified"
        self._no_refunds_route = False

    def close(self) -> None:
        self.client.close()

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        if kind is DecisionKind.REJECT and not (note or "").strip():
            return "a rejection goes to the customer as an order note: say why (--note)"
        return None

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Orders changed since the cursor, then (where the shop has `GET /refunds`) refunds made since it.

        The refunds walk is a safety net: it finds a refund even where the shop did not bump its order's
        `date_modified`. The cursor holds both walks, so a pass cut short resumes in the walk it was in.
        A refund whose order was already read with it listed (stored at a revision naming it, or read by this
        pull's orders walk) costs no second read of the order, so a poll with nothing new is one page of each
        walk however long the history (more only if over 100 orders or refunds changed within the overlap).
        """
        if stream != Stream.RETURNS:
            raise ValueError(f"the woocommerce connector pulls returns (with their orders), not {stream}")
        cursor = dict(context.cursor or {})
        orders_walk = ChangedSinceWalk.load(cursor, "", context.backfill_since, WALK, now=context.now)
        refunds_walk = ChangedSinceWalk.load(cursor, "refunds_", context.backfill_since, WALK, now=context.now)
        walk_refunds = self.settings.refunds_endpoint and not self._no_refunds_route
        listed: set[str] = set()
        if cursor.get("phase") != "refunds" or not walk_refunds:
            after_orders = "refunds" if walk_refunds else "orders"
            for listing, last in self._pages(orders_walk, context, self._list_orders):
                if walk_refunds:
                    _remember_refunds(listed, listing)
                sieve = RecordSieve()
                returns = self._returns_of(listing, context, sieve)
                yield Page(returns=returns, orders=self._orders_of(listing, sieve), quarantined=sieve.take(),
                           cursor=self._cursor(orders_walk, refunds_walk, after_orders if last else "orders"))
            if self.runtime.stop.is_set():
                return
        if not walk_refunds:
            return
        for listing, last in self._pages(refunds_walk, context, self._list_refunds):
            sieve = RecordSieve()
            returns, orders = self._returns_of_refunds(listing, context, sieve, listed)
            yield Page(returns=returns, orders=orders, quarantined=sieve.take(),
                       cursor=self._cursor(orders_walk, refunds_walk, "orders" if last else "refunds"))

    def _list_orders(self, since: datetime, page: int) -> tuple[list[dict[str, Any]], int | None, str]:
        """Oldest change first where the shop can sort by it; older cores only sort by date, which is still
        complete (the walk reads every page of the same query and remembers the newest change it saw)."""
        params = {"modified_after": gmt_text(since), "dates_are_gmt": "true", "orderby": self._orderby,
                  "order": "asc", "page": page, "per_page": PAGE_SIZE}
        try:
            listing = self.client.list_orders(params)
        except ApiError as exc:
            if self._orderby != "modified" or exc.status_code != 400 or "orderby" not in exc.message:
                raise
            self._orderby = "date"
            listing = self.client.list_orders({**params, "orderby": "date"})
        return listing.entries, listing.total_pages, "date_modified_gmt"

    def _list_refunds(self, since: datetime, page: int) -> tuple[list[dict[str, Any]], int | None, str]:
        listing = self.client.list_refunds({
            "after": gmt_text(since), "dates_are_gmt": "true", "orderby": "date", "order": "asc",
            "page": page, "per_page": PAGE_SIZE,
        })
        if listing is None:
            self._no_refunds_route = True  # asked once per start, not once per pull
            log.warning("refunds_endpoint_missing", channel=self.channel,
                        hint="the shop has no GET /wc/v3/refunds (WooCommerce before 9.0); "
                             "set refunds_endpoint = false to stop asking")
            return [], None, "date_created_gmt"
        return listing.entries, listing.total_pages, "date_created_gmt"

    def _pages(self, walk: ChangedSinceWalk, context: PullContext,
               fetch: Callable[[datetime, int], tuple[list[dict[str, Any]], int | None, str]],
               ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Page through one "changed since" list, advancing `walk` as each page is handed out."""
        since = walk.since - context.overlap
        upcoming = self.client.http.soon(lambda page: fetch(since, page), walk.position)
        while not self.runtime.stop.is_set():
            entries, total_pages, date_field = upcoming()
            for entry in objs(entries):
                walk.saw(parse_gmt(entry.get(date_field)))
            last = len(entries) < PAGE_SIZE or (total_pages is not None and walk.position >= total_pages)
            if not last:  # the next page is asked for while this one is mapped and stored
                upcoming = self.client.http.soon(lambda page: fetch(since, page), walk.position + 1)
            if last:
                walk.finish()
            else:
                walk.position += 1
            yield entries, last
            if last:
                return

    @staticmethod
    def _cursor(orders: ChangedSinceWalk, refunds: ChangedSinceWalk, phase: str) -> dict[str, Any]:
        return {"phase": phase, **orders.dump(""), **refunds.dump("refunds_")}

    def _returns_of(self, orders: list[dict[str, Any]], context: PullContext, sieve: RecordSieve) -> list[Return]:
        """The returns these orders stand for, skipping those stored at this revision (no refund fetch then).

        An order that cannot be read is set aside in `sieve` (and left out of `_orders_of`); its refunds are
        fetched outside the mapping, so a failed request fails the page instead.
        """
        readable: list[tuple[str, dict[str, Any]]] = []
        for order in orders:
            order_id = _order_id(order)
            if order_id is None:
                sieve.set_aside("return", order, "the order has no id")
            else:
                readable.append((order_id, order))
        stored = context.stored_revisions([order_id for order_id, _ in readable])
        returns: list[Return] = []
        for order_id, order in readable:
            was_return = order_id in stored
            if not sieve.map("return", order, self._to_read, order, stored.get(order_id), was_return=was_return,
                             external_id=order_id):
                continue
            refunds = self.client.order_refunds(order_id) if refund_ids(order) else []
            mapped = sieve.map("return", order, map_return, order, refunds, self.rules, was_return=was_return,
                               external_id=order_id)
            if mapped is not None:
                returns.append(mapped)
        return returns

    def _to_read(self, order: Mapping[str, Any], stored_revision: str | None, *, was_return: bool) -> bool:
        """A return (or an order stored as one) that is not stored at this revision."""
        return stored_revision != revision_of(order) and (was_return or is_return(order, self.rules))

    def _returns_of_refunds(self, refunds: list[dict[str, Any]], context: PullContext, sieve: RecordSieve,
                            listed: Collection[str] = frozenset()) -> tuple[list[Return], list[Order]]:
        """The orders these refunds belong to, read again with all their refunds, unless stored at that revision.

        An order is not read again for a refund it was already read with: one whose stored return names the
        refund in its revision, or one the orders walk of this pull read with the refund listed (its page may
        still be on its way to the store). A later change to such an order bumps its `date_modified` into the
        next orders walk, so a poll with nothing new asks for no order here.
        """
        wanted = [(str(r.get("parent_id")), text(r.get("id")) or "") for r in objs(refunds)
                  if str(r.get("parent_id", "")).isdigit()]
        wanted = [(order_id, refund_id) for order_id, refund_id in wanted if refund_id not in listed]
        stored = context.stored_revisions({order_id for order_id, _ in wanted})
        parents = list(dict.fromkeys(order_id for order_id, refund_id in wanted
                                     if refund_id not in refunds_in_revision(stored.get(order_id))))
        if not parents:
            return [], []
        orders = self.client.list_orders({"include": ",".join(parents), "per_page": PAGE_SIZE}).entries
        returns = self._returns_of(orders, context, sieve)
        return returns, self._orders_of(orders, sieve)

    @staticmethod
    def _orders_of(listing: list[dict[str, Any]], sieve: RecordSieve) -> list[Order]:
        """The shop's own sales: an order holding another channel's return is not one. An order already set
        aside as a return is not read again."""
        aside = {(item.kind, item.external_id) for item in sieve.quarantined}
        sales: list[Order] = []
        for order in listing:
            order_id = _order_id(order)
            if order_id is None or ("return", order_id) in aside:
                continue
            sale = sieve.map("order", order, _sale, order, external_id=order_id)
            if sale is not None:
                sales.append(sale)
        return sales

    # --- decisions -------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One refund carrying every line of the act (accept, keep), or one order update (the other kinds):
        the customer sees one refund and one e-mail for one return, however many lines it has."""
        order_id = act.order_external_id or act.return_external_id
        if act.kind in REFUNDS:
            return self._refund(act, order_id)
        return self._set_status(act, order_id)

    def _refund(self, act: DecisionAct, order_id: str) -> PushResult:
        """A retry looks for the refund an earlier attempt made (its key is in the refund's meta) before asking
        for one, so an answer lost on the way back never refunds the customer twice."""
        if act.attempt > 1 or act.reference:
            earlier = self._refund_with_key(order_id, act.key)
            if earlier is not None:
                raise AlreadyDone(_refund_text(earlier, act), reference=str(earlier["id"]),
                                  result=_refund_result(earlier))
        order = self.client.get_order(order_id)
        if order is None:
            return PushResult(PushStatus.FAILED, f"the shop has no order {order_id} (deleted?)")
        items = {str(item.get("id")): item for item in objs(order.get("line_items"))}
        wanted = _quantities_by_item(act)
        missing = [item_id for item_id in wanted if item_id not in items]
        if missing:
            return PushResult(PushStatus.FAILED, f"order {order_id} has no item {', '.join(missing)} to refund; "
                              "refund it in the shop's admin")
        body = self._refund_body(act, [(items[item_id], quantity) for item_id, quantity in wanted.items()])
        left = self._left_to_refund(order)
        if left is not None and Decimal(body["amount"]) > left:
            return PushResult(PushStatus.FAILED, f"order {order_id} has only {money(left)} left to refund, "
                              f"{body['amount']} asked: was it refunded in the shop already?")
        refund = self.client.create_refund(order_id, body)
        detail = f"the shop recorded {_refund_text(refund, act)}"
        if refund.get("refunded_payment") is False:
            detail += " (a manual refund: pay the customer yourself)"
        return PushResult(PushStatus.PUSHED, detail, reference=str(refund["id"]), result=_refund_result(refund))

    @staticmethod
    def _left_to_refund(order: Mapping[str, Any]) -> Decimal | None:
        """Checked here because WooCommerce refuses too much with a 500, which would look worth retrying."""
        try:
            total = Decimal(str(order.get("total")))
            refunded = sum((abs(Decimal(str(r.get("total") or 0))) for r in order.get("refunds") or []
                            if isinstance(r, Mapping)), Decimal(0))
        except ArithmeticError:
            return None
        return total - refunded if total.is_finite() else None

    def _refund_with_key(self, order_id: str, key: str) -> dict[str, Any] | None:
        """A refund an earlier attempt created (its answer lost): found by the act's key in its meta."""
        return next((refund for refund in self.client.order_refunds(order_id)
                     if meta_value(refund.get("meta_data"), REFUND_KEY_META) == key), None)

    def _refund_body(self, act: DecisionAct, parts: Sequence[tuple[Mapping[str, Any], int]]) -> dict[str, Any]:
        """One refund of every returned item: each line's share of what the customer paid, the amount their sum."""
        lines = [_refund_line(item, quantity) for item, quantity in parts]
        keep = act.kind is DecisionKind.KEEP
        default_reason = "Refund, customer keeps the item" if keep else "Return accepted"
        return {
            "amount": money(sum((amount for _, amount in lines), Decimal(0))),
            "reason": (act.note or "").strip() or default_reason,
            "api_refund": self.settings.api_refund,
            "api_restock": not keep,
            "line_items": [line for line, _ in lines],
            "meta_data": [
                {"key": REFUND_KEY_META, "value": act.key},
                {"key": REFUND_DECISION_META, "value": act.kind.value},
                {"key": REFUND_LINE_META, "value": ",".join(str(item["id"]) for item, _ in parts)},
                {"key": "retsync_return_id", "value": act.return_external_id},
            ],
        }

    def _status_for(self, kind: DecisionKind) -> str:
        return {
            DecisionKind.REJECT: self.settings.reject_status,
            DecisionKind.CANCEL: self.settings.cancel_status,
            DecisionKind.REPAIR: self.settings.repair_status,
            DecisionKind.EXCHANGE: self.settings.exchange_status,
        }[kind].strip()

    @staticmethod
    def _note_for(act: DecisionAct) -> tuple[str, bool]:
        """Your note goes to the customer; without one, an internal note records the decision for the shop staff."""
        note = (act.note or "").strip()
        if note:
            return note, True
        return f"Return decision (retsync): {act.kind.value}, {_items_text(act)}", False

    def _set_status(self, act: DecisionAct, order_id: str) -> PushResult:
        """Note first, then status and our record in one order update: the update is what makes it done.

        A retry finds the record in the order's meta and stops; a note whose answer was lost is found by its text.
        """
        order = self.client.get_order(order_id)
        if order is None:
            return PushResult(PushStatus.FAILED, f"the shop has no order {order_id} (deleted?)")
        if act.key in recorded_decisions(order.get("meta_data")):
            raise AlreadyDone(f"{act.kind} on order {order_id}", result={"status": order.get("status")})
        text, to_customer = self._note_for(act)
        notes = self.client.order_notes(order_id)
        if not any(n.get("note") == text and bool(n.get("customer_note")) == to_customer for n in notes):
            self.client.add_note(order_id, text, to_customer=to_customer)
        record = {"kind": act.kind.value, "lines": _quantities_by_item(act), "return": act.return_external_id,
                  "at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
        changes: dict[str, Any] = {"meta_data": [{"key": DECISION_META_PREFIX + act.key, "value": record}]}
        status = self._status_for(act.kind)
        if status and status != order.get("status"):
            changes["status"] = status
        shown = self.client.update_order(order_id, changes).get("status")
        where = f"order {order_id} is now {shown}" if status else f"order {order_id} keeps status {shown}"
        told = "the customer was told" if to_customer else "an internal note records it"
        return PushResult(PushStatus.PUSHED, f"{act.kind}: {where}; {told}", result={"status": shown})

    # --- the back-office flow --------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """One order per marketplace return: a retry first looks for the order the earlier attempt made.
        Failures go to the outbox's table, as for decisions."""
        earlier = self._held_order(request)
        if earlier is not None:
            return PushResult(PushStatus.PUSHED, f"already in the shop as order {earlier['id']}",
                              reference=str(earlier["id"]))
        created = self.client.create_order(held_order(request.ret, request.key, request.source_title,
                                                      self.settings.hold_status))
        return PushResult(PushStatus.PUSHED, f"order {created['id']} in status {created.get('status')}",
                          reference=str(created["id"]))

    def _held_order(self, request: HoldRequest) -> dict[str, Any] | None:
        """The order an earlier attempt created for this return, if any (found by the hold key in its meta)."""
        if request.reference:
            order = self.client.get_order(request.reference)
            if order is not None and held_key(order) == request.key:
                return order
        if request.attempt <= 1:
            return None
        since = request.requested_at - self.settings.overlap
        page = 1
        while True:
            listing = self.client.list_orders({"modified_after": gmt_text(since), "dates_are_gmt": "true",
                                               "orderby": "date", "order": "asc", "page": page,
                                               "per_page": PAGE_SIZE})
            for order in listing.entries:
                if held_key(order) == request.key:
                    return order
            if len(listing.entries) < PAGE_SIZE or (listing.total_pages is not None and page >= listing.total_pages):
                return None
            page += 1

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        """Held orders moved to a decision status; the note is the newest note a person wrote on the order."""
        wanted = [ref for ref in references if ref.isdigit()]
        if not wanted:
            return {}
        orders = self.client.list_orders({"include": ",".join(wanted), "per_page": PAGE_SIZE}).entries
        decided: dict[str, HeldDecision] = {}
        for order in orders:
            status = str(order.get("status") or "")
            kind = self.settings.held_decision_statuses.get(status)
            if kind is None or not held_key(order):
                continue
            reference = str(order["id"])
            notes = [n for n in self.client.order_notes(reference)
                     if str(n.get("author") or "").lower() not in ("system", "woocommerce", "retsync")]
            note = str(notes[0].get("note") or "").strip() or None if notes else None
            decided[reference] = HeldDecision(
                reference=reference, kind=kind, note=note or f"decided in the shop (order status {status})",
                decided_at=parse_gmt(order.get("date_modified_gmt")), shop_status=status,
            )
        return decided

    # --- orders ----------------------------------------------------------------------------

    def fetch_order(self, external_id: str) -> Order | None:
        body = self.client.get_order(external_id)
        return map_fetched("order", body, map_order, body, external_id=external_id) if body is not None else None

    # --- sandbox ---------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> WooCommerceEmulator:
        from retsync_connectors.woocommerce.emulator import WooCommerceEmulator

        return WooCommerceEmulator(seed=seed) if returns is None else WooCommerceEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.woocommerce.emulator import SANDBOX_KEY, SANDBOX_SECRET

        return {"connector": cls.name, "base_url": base_url, "consumer_key": SANDBOX_KEY,
                "consumer_secret": SANDBOX_SECRET}


def _remember_refunds(listed: set[str], orders: list[dict[str, Any]]) -> None:
    """Add the refund ids these orders list, up to LISTED_REFUNDS_KEPT."""
    for order in orders:
        if len(listed) >= LISTED_REFUNDS_KEPT:
            return
        if isinstance(order, Mapping):
            listed.update(refund_ids(order))


def _order_id(order: Any) -> str | None:
    return text(order.get("id")) if isinstance(order, Mapping) else None


def _sale(order: Mapping[str, Any]) -> Order | None:
    """The order as a sale of this shop; None for one holding another channel's return."""
    return None if held_key(order) else map_order(order)


def _quantities_by_item(act: DecisionAct) -> dict[str, int]:
    """Units decided per order item: WooCommerce keys a refund's items by order item, so two lines of one item
    are one entry."""
    quantities: dict[str, int] = {}
    for line in act.lines:
        item_id = line.order_line_external_id or line.line_external_id
        quantities[item_id] = quantities.get(item_id, 0) + line.quantity
    return quantities


def _items_text(act: DecisionAct) -> str:
    return ", ".join(f"{quantity} × item {item_id}" for item_id, quantity in _quantities_by_item(act).items())


def _refund_line(item: Mapping[str, Any], quantity: int) -> tuple[dict[str, Any], Decimal]:
    """One refund line (the returned quantity's share of what the customer paid for the item, tax by tax rate)
    and what it gives back, tax included."""
    ordered = Decimal(str(item.get("quantity") or 0))
    share = Decimal(quantity) / ordered if ordered > 0 else Decimal(0)
    line_total = Decimal(str(item.get("total") or 0)) * share
    taxes = [{"id": tax["id"], "refund_total": float(money(Decimal(str(tax.get("total") or 0)) * share))}
             for tax in item.get("taxes") or [] if isinstance(tax, Mapping) and tax.get("id") is not None]
    if taxes:
        tax = sum((Decimal(str(t["refund_total"])) for t in taxes), Decimal(0))
    else:  # no per-rate taxes to name: the item's tax share goes into the amount only
        tax = Decimal(str(item.get("total_tax") or 0)) * share
    line = {"id": item["id"], "quantity": quantity, "refund_total": float(money(line_total)), "refund_tax": taxes}
    return line, Decimal(money(line_total + tax))


def _refund_text(refund: Mapping[str, Any], act: DecisionAct) -> str:
    return f"refund {refund['id']} of {refund.get('amount') or '?'} for {_items_text(act)}"


def _refund_result(refund: Mapping[str, Any]) -> dict[str, Any]:
    """What the merchant may need later: which refund, how much, and whether the gateway paid it."""
    return {"refund_id": str(refund["id"]), "amount": str(refund.get("amount") or "?"),
            "refunded_payment": refund.get("refunded_payment")}
