"""Shopify (Admin GraphQL API): returns pulled with their orders, decisions carried out as return mutations, and a
back office for other channels' returns.

Pull: orders by `updated_at` (`sortKey: UPDATED_AT`, `query: "updated_at:>='…'"`, Relay cursors), each with its
line items and its returns (lines, reasons, the customer's note, the fulfillment line item's order line,
processed and refunded quantities, decline, reverse-delivery tracking, refunds), so linking a return to its order
needs no call of its own. Shopify bumps an order's `updatedAt` when one of its returns changes, so the walk sees
returns change; the next walk starts at the newest update seen, less the channel's overlap.

Decide: every act reads the return first (status, processed and refunded quantities, refund notes, the order's
note) and sends only the mutations still missing, so a retry after a lost answer finds what the earlier attempt
did and never approves, refunds or closes twice; refunds carry `[retsync <act key>]` in their note.

The back office (`decisions_from`): a marketplace return is held as a **draft order**. Why a draft order and not
a tagged order: a draft is not a sale (no payment, no fulfillment, not in the orders list, reports or the orders
this connector pulls), its items are custom lines that reserve no stock, and the admin lets the merchant tag it
and edit its note in place; it is deleted or left as it is once decided, and completing it by mistake is the
only way it would become an order. An order would need a payment status, would count in sales and analytics and
could be fulfilled. The draft carries the hold key in a custom attribute (`retsync_key`) and a tag derived from
it (`retsync-<digest>`, found again with `draftOrders(query: "tag:…")` after a lost answer, or among the newest
drafts where the search index has not caught up); the merchant decides
by adding a tag (`held_decision_tags`, default `return-accept`, `return-reject`, …) and writes the note for the
marketplace below the marker line of its note.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

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
from retsync.kit.model import DecisionKind, Order, Return
from retsync.kit.paging import Cursor
from retsync.kit.payload import minor_units, not_after, obj, objs, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.shopify.client import (
    APPROVE,
    CANCEL,
    CLOSE,
    DECLINE,
    DRAFT_CREATE,
    ORDER_NOTE,
    PROCESS,
    REFUND,
    ShopifyClient,
    UserErrors,
)
from retsync_connectors.shopify.mapping import (
    act_marker,
    act_note,
    all_done,
    draft_input,
    gid,
    held_decision,
    held_key,
    hold_tag,
    line_prices,
    lines_left,
    map_order,
    map_return,
    process_input,
    refund_input,
    search_since,
    tail,
    updated_at,
)

if TYPE_CHECKING:
    from retsync_connectors.shopify.emulator import ShopifyEmulator

PROCESS_VERSION = "2025-07"
"""The first API version with `returnProcess`; before it a return is refunded with `returnRefund`."""
ALREADY = ("already declined", "already closed", "already canceled", "already cancelled")
"""userErrors that say the act's end state is there already (someone did it in the admin, or a lost answer)."""
DEFAULT_TAGS = {"return-accept": DecisionKind.ACCEPT, "return-reject": DecisionKind.REJECT,
                "return-keep": DecisionKind.KEEP, "return-repair": DecisionKind.REPAIR,
                "return-exchange": DecisionKind.EXCHANGE, "return-cancel": DecisionKind.CANCEL}


class ShopifySettings(ChannelSettings):
    """The `[channels.<name>]` keys of a Shopify shop."""

    poll_interval: Duration = fresh_poll_interval()
    shop: str = Field(description="the shop's myshopify.com domain, e.g. my-shop.myshopify.com (the admin's "
                                  "domain, not a custom storefront domain)")
    access_token: Secret = Field(description="the Admin API access token of the custom app (shpat_…) with "
                                             "read_orders, read_returns, write_returns (and write_draft_orders for the "
                                             "back office); env:VAR, file:/path or keyring:service/user")
    api_version: str = Field(default="2026-10", pattern=r"^\d{4}-(01|04|07|10)$",
                             description="the Admin API version retsync speaks, pinned (YYYY-MM, a quarterly "
                                         "release); before 2025-07 returns are refunded with returnRefund, from "
                                         "2025-07 processed and refunded with returnProcess, from 2026-01 return lines name "
                                         "their reason definitions")
    max_concurrency: int = Field(
        default=2, ge=1, le=16, description="queries in flight at once: the next page of orders is asked for while "
        "this one is stored; each query's cost still comes out of the shop's leaky bucket, which paces them")
    notify_customer: bool = Field(default=False, description="Shopify e-mails the buyer when retsync approves, "
                                                             "declines, processes or cancels a return")
    decline_reason: Literal["FINAL_SALE", "OTHER", "RETURN_PERIOD_ENDED"] = Field(
        default="OTHER", description="the ReturnDeclineReason a reject decision sends (your note goes with it)")
    restock_location_id: str | None = Field(
        default=None, description="the location (id or gid://shopify/Location/…) an accepted return's items are "
                                  "restocked at (API 2025-07+); unset: they are marked for processing in the admin")
    held_decision_tags: dict[str, DecisionKind] = Field(
        default_factory=lambda: dict(DEFAULT_TAGS),
        description="back office: the draft-order tags that decide a held marketplace return, and what each means")

    @field_validator("shop")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().removeprefix("https://").removeprefix("http://").strip("/").lower()
        return domain if "." in domain else f"{domain}.myshopify.com"

    @field_validator("held_decision_tags")
    @classmethod
    def _lower(cls, value: dict[str, DecisionKind]) -> dict[str, DecisionKind]:
        return {tag.strip().lower(): kind for tag, kind in value.items()}


class OrdersCursor(Cursor):
    """The orders walk: its `updated_at` start (the same on every page of one walk), Shopify's end cursor of the
    last page stored, and the newest update seen, from which the next walk starts."""

    since: datetime | None = None
    after: str | None = Field(default=None, max_length=1000)
    seen: datetime | None = None


class ShopifyConnector(Connector[ShopifySettings]):
    """Shopify's Admin GraphQL API (NOTES.md in the Shopify contract)."""

    name = "shopify"
    title = "Shopify (Admin GraphQL API)"
    settings_model = ShopifySettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions={
            DecisionKind.ACCEPT: "returnApproveRequest where the return is still requested, then returnProcess of "
                                 "the decided units with a refund to the original payment (restocked at "
                                 "restock_location_id; returnRefund on API versions before 2025-07), then "
                                 "returnClose once every unit of the return is processed",
            DecisionKind.KEEP: "as accept, with the items not restocked (the buyer keeps them): approved, refunded, "
                               "closed",
            DecisionKind.REJECT: "returnDeclineRequest with decline_reason and your note (a requested return); an "
                                 "approved one is closed without a refund, your note on the order",
            DecisionKind.REPAIR: "returnApproveRequest, returnProcess of the decided units without a refund and not "
                                 "restocked, your note on the order (orderUpdate, \"repair: …\"), returnClose once "
                                 "every unit is processed; send the repaired item back yourself (before 2025-07: "
                                 "approved and noted only, the return left open)",
            DecisionKind.EXCHANGE: "returnApproveRequest, returnProcess of the decided units without a refund and not "
                                   "restocked, your note on the order (orderUpdate, \"exchange: …\"), returnClose "
                                   "once every unit is processed; create the replacement order in the admin (before "
                                   "2025-07: approved and noted only, the return left open)",
            DecisionKind.CANCEL: "returnCancel while nothing of the return is processed or refunded; after that "
                                 "it fails with the reason (close it in the admin instead)",
        },
        fetches_orders=True,
        holds_returns="a draft order (not a sale: custom lines, no stock reserved, not in your orders) tagged "
                      "retsync-hold, with the marketplace's return in its note; decide by adding a tag "
                      "(held_decision_tags: return-accept, return-reject, …) and write your note below its "
                      "marker line",
    )

    def __init__(self, channel: str, settings: ShopifySettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = ShopifyClient(channel, settings, settings.access_token.get_secret_value(), runtime)

    def close(self) -> None:
        self.client.close()

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Orders updated since the cursor, a page at a time, each page with the returns of its orders."""
        if stream is not Stream.RETURNS:
            raise ValueError(f"the {self.name} connector pulls returns (with their orders), not {stream}")
        cursor = OrdersCursor.load(context.cursor, context.now)
        since = cursor.since or context.backfill_since
        after, seen = cursor.after, cursor.seen
        query = search_since(since)
        upcoming = self.client.http.soon(lambda position: self.client.orders_page(query, position), after)
        while not self.runtime.stop.is_set():
            nodes, more, end = upcoming()
            if more:  # the next page is asked for while this one is mapped and stored
                upcoming = self.client.http.soon(lambda position: self.client.orders_page(query, position), end)
            sieve = RecordSieve()
            returns: list[Return] = []
            orders: list[Order] = []
            for node in nodes:
                order, found = self._order_with_returns(node, sieve)
                returns += found
                if order is not None and found:
                    orders.append(order)
            for node in nodes:
                moment = updated_at(node)
                if moment is not None and (seen is None or moment > seen):
                    seen = not_after(moment, context.now)
            if more:
                next_cursor = OrdersCursor(since=since, after=end, seen=seen)
            else:
                next_cursor = OrdersCursor(since=max(since, seen - context.overlap) if seen else since)
            yield Page(returns=returns, orders=orders, cursor=next_cursor.dump(), quarantined=sieve.take())
            if not more:
                return
            after = end

    def _order_with_returns(self, node: Mapping[str, Any], sieve: RecordSieve) -> tuple[Order | None, list[Return]]:
        """An order node's order and returns, completed by follow-up queries where a connection overflowed."""
        order_gid = text(node.get("id"))
        lines = objs(obj(node.get("lineItems")).get("nodes"))
        raw_returns = objs(obj(node.get("returns")).get("nodes"))
        overflow = obj(obj(node.get("returns")).get("pageInfo")).get("hasNextPage") is True or any(
            obj(obj(r.get("returnLineItems")).get("pageInfo")).get("hasNextPage") is True for r in raw_returns)
        if order_gid and overflow:
            raw_returns = self.client.order_returns(order_gid)
        if not raw_returns:
            return None, []
        if order_gid and obj(obj(node.get("lineItems")).get("pageInfo")).get("hasNextPage") is True:
            lines = self.client.order_lines(order_gid)
        order = sieve.map("order", node, map_order, node, lines, external_id=tail(node.get("id")))
        prices = line_prices(lines)
        returns = [r for r in (sieve.map("return", raw, map_return, raw, node, prices, external_id=tail(raw.get("id")))
                               for raw in raw_returns) if r is not None]
        return order, returns

    def fetch_order(self, external_id: str) -> Order | None:
        node = self.client.order(gid("Order", external_id))
        if node is None:
            return None
        lines = objs(obj(node.get("lineItems")).get("nodes"))
        if obj(obj(node.get("lineItems")).get("pageInfo")).get("hasNextPage") is True:
            lines = self.client.order_lines(gid("Order", external_id))
        return map_fetched("order", node, map_order, node, lines, external_id=external_id)

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One decision act: the return read first, then only the mutations still missing (see the module)."""
        return_gid = gid("Return", act.return_external_id)
        state = self.client.return_state(return_gid)
        if state is None:
            return PushResult(PushStatus.FAILED, f"Shopify has no return {act.return_external_id}")
        name = text(state.get("name")) or act.return_external_id
        status = text(state.get("status")) or ""
        if act.kind is DecisionKind.REJECT:
            return self._reject(act, return_gid, name, status, state)
        if act.kind is DecisionKind.CANCEL:
            return self._cancel(act, return_gid, name, status, state)
        return self._settle(act, return_gid, name, status, state)

    def _mutate(self, document: str, mutation: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        """A mutation; a userError saying its end state is there already means the act is done."""
        try:
            return self.client.mutate(document, mutation, variables)
        except UserErrors as refused:
            if any(words in refused.messages.lower() for words in ALREADY):
                raise AlreadyDone(f"{mutation}: {refused.messages}") from None
            raise

    def _settle(self, act: DecisionAct, return_gid: str, name: str, status: str, state: Mapping[str, Any]
                ) -> PushResult:
        """accept / keep / repair / exchange: approve, process (refunding for accept and keep), note, close."""
        refund = act.kind in (DecisionKind.ACCEPT, DecisionKind.KEEP)
        if status in ("DECLINED", "CANCELED"):
            return PushResult(PushStatus.FAILED, f"return {name} is {status} on Shopify; it cannot be "
                                                 f"{act.kind.value}ed any more")
        earlier = self._refund_of(act, state)
        if status == "CLOSED":
            raise AlreadyDone(f"return {name} is closed on Shopify already", reference=return_gid,
                              result=self._result(return_gid, "CLOSED", earlier))
        steps: list[str] = []
        if status == "REQUESTED":
            self._mutate(APPROVE, "returnApproveRequest",
                         {"input": {"id": return_gid, "notifyCustomer": self.settings.notify_customer}})
            steps.append("approved")
        modern = self.settings.api_version >= PROCESS_VERSION
        done_key = "processedQuantity" if modern else "refundedQuantity"
        if modern or refund:
            left = lines_left(act, state, done_key) if earlier is None else []
            if left:
                steps.append(self._process(act, return_gid, left, refund, modern))
        if act.kind in (DecisionKind.REPAIR, DecisionKind.EXCHANGE) and self._note_order(act, state, act.kind.value):
            steps.append("note on the order")
        fresh = self.client.return_state(return_gid) if steps else state
        earlier = self._refund_of(act, obj(fresh)) or earlier
        if obj(fresh).get("status") == "OPEN" and all_done(obj(fresh), done_key):
            self._mutate(CLOSE, "returnClose", {"id": return_gid})
            steps.append("closed")
        result = self._result(return_gid, text(obj(fresh).get("status")), earlier)
        if not steps:
            raise AlreadyDone(f"return {name}: nothing left to do for this {act.kind.value} decision",
                              reference=result.get("refund_id") or return_gid, result=result)
        return PushResult(PushStatus.PUSHED, f"return {name}: {', '.join(steps)}",
                          reference=result.get("refund_id") or return_gid, result=result)

    def _process(self, act: DecisionAct, return_gid: str, left: list[tuple[str, int]], refund: bool,
                 modern: bool) -> str:
        units = sum(quantity for _, quantity in left)
        if not modern:  # the documented path before 2025-07: returnRefund refunds the returned quantities
            self._mutate(REFUND, "returnRefund", {"input": refund_input(return_gid, left,
                                                                        self.settings.notify_customer)})
            return f"{units} unit(s) refunded (returnRefund)"
        if act.kind is DecisionKind.ACCEPT:
            disposition = "RESTOCKED" if self.settings.restock_location_id else "PROCESSING_REQUIRED"
        else:
            disposition = "NOT_RESTOCKED"
        location = self.settings.restock_location_id
        self._mutate(PROCESS, "returnProcess", {"input": process_input(
            return_gid, left, disposition, refund, self.settings.notify_customer,
            act_note(act, act.kind.value), gid("Location", location) if location else None)})
        return f"{units} unit(s) processed ({disposition.lower()}{', refunded' if refund else ', no refund'})"

    def _note_order(self, act: DecisionAct, state: Mapping[str, Any], what: str) -> bool:
        """Your note appended to the order's note once (a retry finds the act's marker in it)."""
        order = obj(state.get("order"))
        order_gid, existing = text(order.get("id")), text(order.get("note")) or ""
        if order_gid is None or act_marker(act) in existing:
            return False
        note = act_note(act, what)
        self._mutate(ORDER_NOTE, "orderUpdate", {"input": {"id": order_gid,
                                                           "note": f"{existing}\n{note}" if existing else note}})
        return True

    def _reject(self, act: DecisionAct, return_gid: str, name: str, status: str, state: Mapping[str, Any]
                ) -> PushResult:
        if status == "DECLINED":
            raise AlreadyDone(f"return {name} is declined on Shopify already", reference=return_gid)
        if status == "REQUESTED":
            body: dict[str, Any] = {"id": return_gid, "declineReason": self.settings.decline_reason,
                                    "notifyCustomer": self.settings.notify_customer}
            if act.note:
                body["declineNote"] = act.note[:500]
            self._mutate(DECLINE, "returnDeclineRequest", {"input": body})
            return PushResult(PushStatus.PUSHED, f"return {name} declined ({self.settings.decline_reason})",
                              reference=return_gid, result={"return_id": return_gid, "status": "DECLINED"})
        if status == "CLOSED":
            if self._refunded(state):
                return PushResult(PushStatus.FAILED, f"return {name} is closed and refunded on Shopify; it cannot "
                                                     "be rejected any more")
            raise AlreadyDone(f"return {name} is closed on Shopify already", reference=return_gid)
        if status != "OPEN":
            return PushResult(PushStatus.FAILED, f"return {name} is {status} on Shopify; it cannot be rejected")
        noted = self._note_order(act, state, "rejected")
        self._mutate(CLOSE, "returnClose", {"id": return_gid})
        return PushResult(PushStatus.PUSHED, f"return {name} (approved before) closed without a refund"
                          + (", your note on the order" if noted else ""), reference=return_gid,
                          result={"return_id": return_gid, "status": "CLOSED"})

    def _cancel(self, act: DecisionAct, return_gid: str, name: str, status: str, state: Mapping[str, Any]
                ) -> PushResult:
        if status == "CANCELED":
            raise AlreadyDone(f"return {name} is canceled on Shopify already", reference=return_gid)
        processed = any(obj(line).get("processedQuantity") or obj(line).get("refundedQuantity")
                        for line in objs(obj(state.get("returnLineItems")).get("nodes")))
        if status not in ("REQUESTED", "OPEN") or processed or self._refunded(state):
            return PushResult(PushStatus.FAILED, f"return {name} is {status.lower()}"
                              f"{' with items processed or refunded' if processed else ''}: Shopify cancels only "
                              "returns nothing was processed of; close it in the admin instead")
        self._mutate(CANCEL, "returnCancel", {"id": return_gid, "notify": self.settings.notify_customer})
        return PushResult(PushStatus.PUSHED, f"return {name} canceled", reference=return_gid,
                          result={"return_id": return_gid, "status": "CANCELED"})

    @staticmethod
    def _refunded(state: Mapping[str, Any]) -> bool:
        return bool(objs(obj(state.get("refunds")).get("nodes")))

    @staticmethod
    def _refund_of(act: DecisionAct, state: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The refund an earlier attempt of this act made (its note carries the act's marker)."""
        return next((r for r in objs(obj(state.get("refunds")).get("nodes"))
                     if act_marker(act) in (text(r.get("note")) or "")), None)

    @staticmethod
    def _result(return_gid: str, status: str | None, refund: Mapping[str, Any] | None) -> dict[str, Any]:
        money = obj(obj(obj(refund).get("totalRefundedSet")).get("shopMoney"))
        found = {"return_id": return_gid, "status": status, "refund_id": text(obj(refund).get("id")),
                 "refund_amount": minor_units(money.get("amount")), "currency": text(money.get("currencyCode"))}
        return {key: value for key, value in found.items() if value is not None}

    # --- the back-office half -------------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """A draft order per marketplace return; a retry first looks for the draft by its tag and key."""
        if request.attempt > 1 or request.reference:
            earlier = next((d for d in self.client.drafts_tagged(hold_tag(request.key))
                            if held_key(d) == request.key), None)
            if earlier is None:  # Shopify's search may not know a draft made seconds ago: the newest, by id
                earlier = next((d for d in self.client.recent_drafts() if held_key(d) == request.key), None)
            if earlier is not None:
                return PushResult(PushStatus.PUSHED, f"already held as draft order {text(earlier.get('name'))}",
                                  reference=text(earlier.get("id")))
        payload = self.client.mutate(DRAFT_CREATE, "draftOrderCreate",
                                     {"input": draft_input(request, self.settings.held_decision_tags)})
        draft = obj(payload.get("draftOrder"))
        reference = text(draft.get("id"))
        if reference is None:
            return PushResult(PushStatus.RETRY, "Shopify created no draft order and said no reason")
        return PushResult(PushStatus.PUSHED, f"held as draft order {text(draft.get('name'))}", reference=reference)

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        wanted = [ref for ref in references if ref.startswith("gid://shopify/DraftOrder/")]
        if not wanted:
            return {}
        decided = (held_decision(draft, self.settings.held_decision_tags) for draft in self.client.drafts(wanted))
        return {d.reference: d for d in decided if d is not None}

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> ShopifyEmulator:
        from retsync_connectors.shopify.emulator import ShopifyEmulator

        return ShopifyEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.shopify.emulator import SANDBOX_SHOP, SANDBOX_TOKEN

        return {"connector": cls.name, "shop": SANDBOX_SHOP, "base_url": base_url, "access_token": SANDBOX_TOKEN}

