"""Magento 2 / Adobe Commerce (Admin REST API, `/rest/<store>/V1`).

Two editions, told apart once per connector by asking for the RMA attribute metadata (Open Source has no such
route), or set with `edition`:

- Adobe Commerce: returns are RMAs (`/V1/returns`), read by `date_requested` and, on the last page of each walk,
  the stored open ones again (an RMA has no updated_at); decisions change the RMA's item statuses (one
  `PUT /V1/returns/{id}`), add an offline credit memo (`POST /V1/order/{id}/refund`) where the decision refunds,
  and an RMA comment carrying the act's key.
  An RMA's refund is read from its order's credit memos (one search per page of RMAs, `mapping.rma_memos`): the
  memo a retsync decision made by the act key in its comment, one the merchant made in the admin by its order
  items and quantities; `refund_amount` / `refunded_at` come from them (or from the order's `total_refunded`
  where every refund of the order is this RMA's), `received_at` from the RMA's status history. A credit memo
  updated since the last walk brings its order's RMAs back, so a refund made after the RMA closed is read.
- Magento Open Source: returns are credit memos (`/V1/creditmemos`), refunded returns; only they are pulled, and
  a decision other than a refund is unsupported there.

A credit memo without an RMA on Adobe Commerce (a refund made straight in the admin, "return to stock" or not) is
not a return there. Issue 14 and NOTES.md define the returns per edition: Adobe Commerce's are the RMAs, credit
memos are the returns only where the RMA module is absent. And the REST API could not tell such a memo apart: a
credit memo names no RMA, and neither `sales-data-creditmemo-item-interface` nor its extension attributes say
whether an item went back to stock, so a refund of a parcel that never arrived, a goodwill refund and a real
return look the same. Pulling them as returns would also count the money of a memo that is an RMA's refund twice
(once on the RMA, once on its own) wherever the matching missed it. Such a memo still counts where it fits an RMA's
items: it is then that RMA's refund.

Exactly once: whatever an act makes carries `[retsync <key>]` in its comment (the credit memo's, the RMA's), and
every attempt reads the RMA (and on a retry the order's credit memos) before writing, so a lost answer is found
instead of repeated. Closed RMAs (`closed`, `processed_closed`) are decided already and never edited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

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
from retsync.kit.model import DecisionKind, Order
from retsync.kit.paging import Cursor
from retsync.kit.payload import not_after, obj, text, when
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.magento.client import PAGE_SIZE, MagentoClient, magento_time
from retsync_connectors.magento.mapping import (
    CLOSED,
    CREDIT_MEMO_PREFIX,
    Labels,
    comment_with,
    held_decision,
    held_key,
    held_rma,
    map_creditmemo,
    map_order,
    map_rma,
    marker,
    memo_with,
    order_updated_at,
    parents,
    plan,
    refund_body,
    resolution_id,
)

if TYPE_CHECKING:
    from retsync_connectors.magento.emulator import MagentoEmulator

Edition = Literal["auto", "commerce", "open_source"]
OPEN_SOURCE_ONLY_REFUNDS = ("Magento Open Source has no returns module (RMA): its returns are credit memos, "
                            "refunded already; take {kind} decisions in the Magento admin yourself")


class MagentoSettings(ChannelSettings):
    """The `[channels.<name>]` keys of a Magento 2 / Adobe Commerce channel."""

    poll_interval: Duration = fresh_poll_interval()
    base_url: str = Field(description="the shop's address, e.g. https://shop.example.com (the API is under "
                                      "/rest/<store_code>/V1)")
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="reads in flight at once (the next page of a list while this one is "
        "stored); Magento's core throttles only checkout and payment, your host may: 1 for a small one")
    store_code: str = Field(default="default", pattern=r"^[a-z0-9_]{1,32}$",
                            description="the store view code in the REST path (`default`, or `all` for every store)")
    username: str | None = Field(default=None, description="an admin user allowed to use the REST API (with "
                                                           "`password`); or use `access_token`")
    password: Secret | None = Field(default=None, description="that admin user's password; write env:VAR, "
                                                              "file:/path or keyring:service/user")
    access_token: Secret | None = Field(default=None, description="an integration's access token, sent as Bearer "
                                        "(needs 'Allow OAuth Access Tokens to be used as standalone Bearer tokens')")
    admin_token_lifetime: Duration = Field(default=timedelta(hours=4), description="how long Magento keeps an "
                                           "admin token (Admin Token Lifetime, 4 h by default); bought again on 401")
    edition: Edition = Field(default="auto", description="auto (detected once: the RMA module answers or not), "
                                                         "commerce (Adobe Commerce RMAs) or open_source (credit memos)")
    refund_on_accept: bool = Field(default=True, description="an accepted RMA item that was received is refunded "
                                                             "offline at once (a credit memo, back to stock)")
    repair_resolution: str = Field(default="Repair", description="the RMA resolution option (label or id) a repair "
                                                                 "decision sets")
    exchange_resolution: str = Field(default="Exchange", description="the RMA resolution option (label or id) an "
                                                                     "exchange decision sets")
    notify_buyer: bool = Field(default=False, description="Magento e-mails the buyer about retsync's comments and "
                                                          "credit memos")

    hold_order_id: str | None = Field(default=None, pattern=r"^\d{1,10}$", description="back-office flow (Adobe "
                                      "Commerce; a marketplace channel with decisions_from = this channel): the "
                                      "entity id of one order of yours that its returns are held on as RMAs; it is "
                                      "never stored as a sale")

    @model_validator(mode="after")
    def _credentials(self) -> MagentoSettings:
        if self.access_token is None and (not self.username or self.password is None):
            raise ValueError("set username and password (an admin token is bought with them) or access_token")
        return self


class WalkCursor(Cursor):
    """A walk by a date filter (gteq `since`, the same on each page), the next page, and the newest date seen."""

    since: datetime | None = None
    page: int = 1
    seen: datetime | None = None
    memos_since: datetime | None = None
    """Adobe Commerce: credit memos updated from here on bring their order's RMAs back (an RMA has no
    updated_at, and the merchant often refunds after the RMA closed)."""


class MagentoConnector(Connector[MagentoSettings]):
    name = "magento"
    title = "Magento 2 / Adobe Commerce"
    settings_model = MagentoSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS, Stream.ORDERS),
        decisions={
            DecisionKind.ACCEPT: "RMA items authorized (before receipt) or approved (received), in one PUT "
                                 "/V1/returns/{id}, plus one offline credit memo of every approved line "
                                 "(refund_on_accept), back to stock, and an RMA comment; Open Source: its returns are "
                                 "credit memos, refunded already",
            DecisionKind.REJECT: "RMA items rejected (received) or denied (before receipt), your note as an RMA "
                                 "comment; unsupported on Open Source (no RMA module)",
            DecisionKind.REPAIR: "RMA items approved with the repair_resolution option, your note as a comment; no "
                                 "refund; unsupported on Open Source (no RMA module)",
            DecisionKind.EXCHANGE: "RMA items approved with the exchange_resolution option, your note as a comment; "
                                   "no refund; unsupported on Open Source (no RMA module)",
            DecisionKind.KEEP: "one offline credit memo without return to stock, the items denied (the RMA closes) "
                               "and a comment; Open Source: its returns are credit memos, refunded already",
            DecisionKind.CANCEL: "RMA items denied (the RMA closes) and a comment; unsupported on Open Source (no RMA "
                                 "module)",
        },
        fetches_orders=True,
        holds_returns="Adobe Commerce: an RMA on your order hold_order_id, one item per returned line, the "
                      "marketplace, its return id and items in the RMA's comment (under the hold's key); you decide "
                      "by setting the items' statuses (authorized/approved = accept, with resolution Repair or "
                      "Exchange = repair/exchange; rejected/denied = reject), your newest comment is the note. "
                      "Magento Open Source has no RMA module: there the hold is refused",
    )

    def __init__(self, channel: str, settings: MagentoSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.client = MagentoClient(channel, settings, runtime)
        self._edition: str | None = None if settings.edition == "auto" else settings.edition
        self._labels: Labels | None = None

    def close(self) -> None:
        self.client.close()

    @property
    def edition(self) -> str:
        """commerce or open_source: the setting, else detected once (the RMA module answers or not)."""
        if self._edition is None:
            self._edition = "commerce" if self.client.has_rma() else "open_source"
        return self._edition

    def labels(self) -> Labels:
        """The RMA item attributes' option labels, read once per connector."""
        if self._labels is None:
            self._labels = {code: self.client.attribute_options(code) for code in ("reason", "condition",
                                                                                   "resolution")}
        return self._labels

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        return None

    # --- pull -----------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream is Stream.ORDERS:
            yield from self._pull_orders(context)
        elif self.edition == "commerce":
            yield from self._pull_rmas(context)
        else:
            yield from self._pull_creditmemos(context)

    def _walk(self, context: PullContext, fetch: Any, moment: Any) -> Iterator[tuple[list[Any], WalkCursor, bool]]:
        """Pages of a date-filtered search, stopping on total_count (a page past the end repeats the last one)."""
        cursor = WalkCursor.load(context.cursor, context.now)
        since, page, seen = cursor.since or context.backfill_since, cursor.page, cursor.seen
        upcoming = self.client.http.soon(lambda number: fetch(since, number), page)
        while not self.runtime.stop.is_set():
            entries, total = upcoming()
            last = not entries or page * PAGE_SIZE >= total
            if not last:  # the next page is read while this one is mapped and stored
                upcoming = self.client.http.soon(lambda number: fetch(since, number), page + 1)
            for raw in entries:
                found = moment(raw)
                if found is not None and (seen is None or found > seen):
                    seen = not_after(found, context.now)
            if last:
                after = WalkCursor(since=max(since, seen - context.overlap) if seen else since,
                                   memos_since=cursor.memos_since)
            else:
                after = WalkCursor(since=since, page=page + 1, seen=seen, memos_since=cursor.memos_since)
            yield entries, after, last
            if last:
                return
            page += 1

    def _pull_rmas(self, context: PullContext) -> Iterator[Page]:
        """RMAs by date_requested, each with its refund read from its order's credit memos (`map_rma`). On the
        last page of a walk, two kinds of RMAs are read again: the open ones stored (RMAs have no updated_at), and
        those of orders with a credit memo updated since the last walk (a refund made after the RMA closed). They
        come in pages of their own, each carrying the cursor that does the last page again, the final one the
        walk's end: a page never holds more than PAGE_SIZE RMAs read again, whatever the history."""
        labels = self.labels()
        current = WalkCursor.load(context.cursor, context.now)
        for entries, after, last in self._walk(context, self.client.returns_page,
                                               lambda raw: when(obj(raw).get("date_requested"))):
            if not last:
                yield self._rma_page(entries, after, context, labels)
                current = after
                continue
            listed = {text(obj(raw).get("entity_id")) for raw in entries}
            again = [i for i in context.open_returns() if i not in listed and i.isdigit()]
            listed |= set(again)
            late, final = self._late_refunds(context, after)
            late = [raw for raw in late if text(obj(raw).get("entity_id")) not in listed]
            batches: list[Any] = [entries]
            batches += [again[start:start + PAGE_SIZE] for start in range(0, len(again), PAGE_SIZE)]
            batches += [late[start:start + PAGE_SIZE] for start in range(0, len(late), PAGE_SIZE)]
            for index, batch in enumerate(batches):
                if index and batch and isinstance(batch[0], str):
                    batch = self.client.returns_by_ids(batch)
                yield self._rma_page(batch, final if index == len(batches) - 1 else current, context, labels)
                if self.runtime.stop.is_set():
                    return

    def _rma_page(self, entries: list[Any], cursor: WalkCursor, context: PullContext, labels: Any) -> Page:
        entries = [raw for raw in entries if not self._on_hold_order(raw)]
        memos, orders, missing = self._refunds_for(entries, context)
        sieve = RecordSieve()
        returns = []
        for raw in entries:
            order_id = text(obj(raw).get("order_id")) or ""
            mapped = sieve.map("return", raw, map_rma, raw, labels, memos.get(order_id, []), orders.get(order_id),
                               external_id=obj(raw).get("entity_id"))
            if mapped is not None:
                returns.append(mapped)
        found = (sieve.map("order", orders[key], map_order, orders[key], external_id=key)
                 for key in sorted(missing) if key in orders)
        return Page(returns=returns, orders=[o for o in found if o is not None], cursor=cursor.dump(),
                    quarantined=sieve.take())

    def _refunds_for(self, entries: Sequence[Any], context: PullContext
                     ) -> tuple[dict[str, list[Mapping[str, Any]]], dict[str, Mapping[str, Any]], set[str]]:
        """The credit memos of the RMAs' orders (one search per 50 orders), the orders that have any or that are
        not stored yet (one more), and which of them are not stored."""
        named = {text(obj(raw).get("order_id")) for raw in entries} - {None}
        named_ids = {n for n in named if n}
        missing = named_ids - set(context.stored_orders(named_ids))
        memos: dict[str, list[Mapping[str, Any]]] = {}
        for memo in self.client.creditmemos_of_orders(named_ids) if named_ids else []:
            memos.setdefault(text(obj(memo).get("order_id")) or "", []).append(obj(memo))
        wanted = missing | (set(memos) & named_ids)
        orders = {text(obj(o).get("entity_id")) or "": obj(o) for o in self.client.orders(wanted)} if wanted else {}
        return memos, orders, missing

    def _late_refunds(self, context: PullContext, after: WalkCursor) -> tuple[list[Any], WalkCursor]:
        """The RMAs of orders with a credit memo updated since the last walk. The first walk (a backfill) only
        notes where it started: the memos it would find are read with their RMAs anyway."""
        since = after.memos_since
        if since is None:
            return [], after.model_copy(update={"memos_since": context.now - context.overlap})
        orders: set[str] = set()
        seen, page = None, 1
        while not self.runtime.stop.is_set():
            memos, total = self.client.creditmemos_page(since, page)
            for memo in memos:
                orders |= {text(obj(memo).get("order_id")) or ""} - {""}
                found = order_updated_at(memo)
                if found is not None and (seen is None or found > seen):
                    seen = not_after(found, context.now)
            if not memos or page * PAGE_SIZE >= total:
                break
            page += 1
        hold = self.settings.hold_order_id
        orders.discard(hold or "")
        rmas = self.client.returns_of_orders(sorted(orders)) if orders else []
        moved = max(since, seen - context.overlap) if seen else since
        return rmas, after.model_copy(update={"memos_since": moved})

    def _pull_creditmemos(self, context: PullContext) -> Iterator[Page]:
        for entries, after, _last in self._walk(context, self.client.creditmemos_page, order_updated_at):
            named = {text(obj(raw).get("order_id")) for raw in entries} - {None}
            orders = {text(obj(o).get("entity_id")): obj(o) for o in self.client.orders(n for n in named if n)}
            sieve = RecordSieve()
            returns = [r for r in (sieve.map("return", raw, map_creditmemo, raw,
                                             orders.get(text(obj(raw).get("order_id"))),
                                             external_id=obj(raw).get("entity_id")) for raw in entries)
                       if r is not None]
            mapped = [o for o in (sieve.map("order", raw, map_order, raw, external_id=key)
                                  for key, raw in orders.items()) if o is not None]
            yield Page(returns=returns, orders=mapped, cursor=after.dump(), quarantined=sieve.take())

    def _pull_orders(self, context: PullContext) -> Iterator[Page]:
        for entries, after, _last in self._walk(context, self.client.orders_page, order_updated_at):
            entries = [raw for raw in entries if not self._is_hold_order(raw)]
            sieve = RecordSieve()
            orders = [o for o in (sieve.map("order", raw, map_order, raw, external_id=obj(raw).get("entity_id"))
                                  for raw in entries) if o is not None]
            yield Page(orders=orders, cursor=after.dump(), quarantined=sieve.take())

    def _is_hold_order(self, raw: Any) -> bool:
        """The order marketplace returns are held on: neither a sale nor a return of the shop."""
        hold = self.settings.hold_order_id
        return hold is not None and text(obj(raw).get("entity_id")) == hold

    def _on_hold_order(self, raw: Any) -> bool:
        hold = self.settings.hold_order_id
        return hold is not None and text(obj(raw).get("order_id")) == hold

    def fetch_order(self, external_id: str) -> Order | None:
        if not external_id.isdigit():
            return None
        raw = next((o for o in self.client.orders([external_id]) if text(obj(o).get("entity_id")) == external_id),
                   None)
        return map_fetched("order", raw, map_order, raw, external_id=external_id) if raw is not None else None

    # --- decisions ------------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        if act.return_external_id.startswith(CREDIT_MEMO_PREFIX) or self.edition == "open_source":
            return self._act_on_creditmemo(act)
        rma_id = act.return_external_id
        rma = self.client.rma(rma_id)
        done = comment_with(rma, act.key)
        if done is not None:
            raise AlreadyDone(f"RMA {rma.get('increment_id')} has this decision's comment", reference=rma_id)
        resolution = None
        if act.kind in (DecisionKind.REPAIR, DecisionKind.EXCHANGE):
            wanted = self.settings.repair_resolution if act.kind is DecisionKind.REPAIR \
                else self.settings.exchange_resolution
            resolution = resolution_id(self.labels(), wanted)
            if resolution is None:
                return PushResult(PushStatus.FAILED, f"Magento has no RMA resolution option {wanted!r} "
                                                     f"(set {act.kind.value}_resolution to one of its options)")
        planned = plan(rma, act, resolution, self.settings.refund_on_accept)
        status = text(rma.get("status")) or ""
        if status in CLOSED and (planned.changed or (act.attempt == 1 and not act.reference)):
            # closed by someone else (a retry finds it closed by its own earlier PUT, items already where it puts them)
            return PushResult(PushStatus.FAILED, f"RMA {rma.get('increment_id')} is {status} in Magento: decided "
                                                 "there already, and a closed RMA cannot be edited")
        memo = None
        if planned.refund:
            memo = self._refund(act, text(rma.get("order_id")) or "", planned.refund, planned.to_stock)
        if planned.changed:
            self.client.save_rma({**rma, "items": planned.items})
        note = act.note or f"{act.kind.value} decided in retsync"
        self.client.add_rma_comment(rma_id, f"{note} {marker(act.key)}", None, self.settings.notify_buyer)
        what = f"RMA {rma.get('increment_id')}: {act.kind.value} of {len(act.lines)} item(s)"
        return PushResult(PushStatus.PUSHED, what + (f", credit memo {memo}" if memo else ""), reference=rma_id,
                          result={"rma": rma_id, "creditmemo": memo})

    def _refund(self, act: DecisionAct, order_id: str, quantities: dict[str, int], to_stock: bool) -> str:
        """One offline credit memo. The order's credit memos are read first on every attempt (the key is in the
        comment): a refund is the one write here that must never happen twice, and one read is its price."""
        earlier = memo_with(self.client.creditmemos_of(order_id), act.key)
        if earlier is not None:
            return text(earlier.get("entity_id")) or "?"
        order = next((obj(o) for o in self.client.orders([order_id]) if text(obj(o).get("entity_id")) == order_id), {})
        return self.client.refund(order_id, refund_body(act, quantities, parents(order), to_stock,
                                                        self.settings.notify_buyer))

    def _act_on_creditmemo(self, act: DecisionAct) -> PushResult:
        if act.kind not in (DecisionKind.ACCEPT, DecisionKind.KEEP):
            return PushResult(PushStatus.UNSUPPORTED, OPEN_SOURCE_ONLY_REFUNDS.format(kind=act.kind.value))
        memo = act.return_external_id.removeprefix(CREDIT_MEMO_PREFIX)
        raise AlreadyDone(f"credit memo {memo} refunded these items in Magento", reference=memo)

    # --- the back-office half -------------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """Another channel's return as an RMA on the hold order, once: a retry finds it by the key in its comment."""
        hold = self.settings.hold_order_id
        if hold is None:
            return PushResult(PushStatus.FAILED, "set hold_order_id (the order marketplace returns are held on)")
        if self.edition != "commerce":
            return PushResult(PushStatus.FAILED, "Magento Open Source has no RMA module to hold a return in")
        if request.attempt > 1 or request.reference:
            earlier = next((obj(r) for r in self.client.returns_of_order(hold) if held_key(obj(r)) == request.key),
                           None)
            if earlier is not None:
                return PushResult(PushStatus.PUSHED, f"already held as RMA {earlier.get('increment_id')}",
                                  reference=text(earlier.get("entity_id")))
        order = next((obj(o) for o in self.client.orders([hold]) if text(obj(o).get("entity_id")) == hold), None)
        if order is None:
            return PushResult(PushStatus.FAILED, f"Magento has no order {hold} (hold_order_id)")
        placeholder = next((text(obj(i).get("item_id")) for i in order.get("items") or []
                            if text(obj(i).get("item_id")) and not obj(i).get("parent_item_id")), None)
        if placeholder is None:
            return PushResult(PushStatus.FAILED, f"the hold order {hold} has no item to hold returns on")
        rma = self.client.create_rma(held_rma(request, order, placeholder, magento_time(datetime.now(UTC))))
        return PushResult(PushStatus.PUSHED, f"held as RMA {rma.get('increment_id')} on order {hold}",
                          reference=str(rma["entity_id"]))

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        wanted = [r for r in references if r.isdigit()]
        if not wanted:
            return {}
        labels = self.labels()
        decided = (held_decision(obj(raw), labels) for raw in self.client.returns_by_ids(wanted))
        return {d.reference: d for d in decided if d is not None}

    # --- sandbox --------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> MagentoEmulator:
        from retsync_connectors.magento.emulator import MagentoEmulator

        return MagentoEmulator.sized(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.magento.emulator import SANDBOX_PASSWORD, SANDBOX_USERNAME
        from retsync_connectors.magento.sandbox_data import HOLD_ORDER_ID

        return {"connector": cls.name, "base_url": base_url, "username": SANDBOX_USERNAME,
                "password": SANDBOX_PASSWORD, "hold_order_id": str(HOLD_ORDER_ID)}
