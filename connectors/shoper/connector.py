"""The Shoper connector: orders read by status change, returns recognised in them, decisions as refunds and statuses.

Shoper's REST API has no returns resource and orders carry no general
"updated at" (see mapping.py). One walk over the orders whose `status_date`
is at or after the cursor serves both streams of facts: every order is stored
as a sale, and the orders that stand for a return (a configured return
status, a refund, a decision retsync applied) become returns. A refund made
in the panel does not touch its order's `status_date`, so a second walk over
`/order-refunds` created since the cursor brings their orders back too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from pydantic import BeforeValidator, Field, field_validator

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
from retsync.kit.paging import ChangedSinceWalk
from retsync.kit.payload import objs, text
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync_connectors.shoper.client import IN_CHUNK, ShoperClient
from retsync_connectors.shoper.mapping import (
    REFUND_FINISHED,
    REFUND_PENDING,
    ReturnRules,
    decision_marker,
    held_key,
    held_order,
    held_products,
    id_of,
    is_return,
    local_text,
    map_order,
    map_return,
    merchant_words,
    money,
    parse_local,
    recorded_decisions,
    refund_comment,
    refund_facts,
    revision_of,
    status_id,
    with_line,
)

if TYPE_CHECKING:
    from retsync_connectors.shoper.emulator import ShoperEmulator

REFUNDS = frozenset({DecisionKind.ACCEPT, DecisionKind.KEEP})

log = structlog.get_logger(__name__)


def _status_text(value: Any) -> Any:
    """Status ids may be written as numbers in TOML; Shoper sends them as strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def _status_list(value: Any) -> Any:
    """A list of ids, or one string of them separated by commas (how an environment variable can say it)."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return tuple(_status_text(v) for v in value)
    return _status_text(value)


def _status_table(value: Any) -> Any:
    """A TOML table `{ "16" = "accept" }`, or one string `16=accept, 17=reject` (for environment variables)."""
    if isinstance(value, str):
        table = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            status, sep, kind = part.partition("=")
            if not sep:
                raise ValueError(f"{part!r}: write status_id=decision, e.g. 16=accept")
            table[status.strip()] = kind.strip()
        return table
    return value


def _check_ids(value: str) -> str:
    if value and not value.isdigit():
        raise ValueError(f"{value!r} is not a Shoper id: write the number (a status_id from GET /statuses, or the "
                         "number in the panel's address when you edit it)")
    return value


StatusId = Annotated[str, BeforeValidator(_status_text)]
StatusIds = Annotated[tuple[str, ...], BeforeValidator(_status_list)]


class ShoperSettings(ChannelSettings):
    """`[channels.<name>]` keys of a Shoper shop."""

    poll_interval: Duration = fresh_poll_interval()
    base_url: str = Field(description="the shop's address, e.g. https://shop.example.com or "
                          "https://example.shoparena.pl (the API is under /webapi/rest)")
    max_concurrency: int = Field(
        default=2, ge=1, le=16, description="calls in flight at once: the next page of a list is asked for while "
        "this one is stored; Shoper's leaky bucket (X-Shop-Api-Calls) still paces every call")
    login: str = Field(description="a panel user with access to the REST API (Configuration > Administration, "
                       "system > Administrators: API access)")
    password: Secret = Field(description="that user's password; write env:VAR, file:/path or keyring:service/user")
    timezone: str = Field(default="Europe/Warsaw", description="the shop's time zone: Shoper's dates carry none")
    page_size: int = Field(default=50, ge=1, le=50, description="entries per list request (Shoper: at most 50)")
    requested_statuses: StatusIds = Field(
        default=(), description="order status ids that mean a customer asked to return (your return statuses)")
    received_statuses: StatusIds = Field(
        default=(), description="order status ids that mean the returned parcel arrived")
    accepted_statuses: StatusIds = Field(
        default=(), description="order status ids that mean you accepted the return in the panel (read back as "
        "an accept)")
    rejected_statuses: StatusIds = Field(
        default=(), description="order status ids that mean you rejected it in the panel (read back as a reject)")
    reason_field_id: StatusId = Field(
        default="", description="id of an order additional field holding the customer's return reason "
        "(a returns form); empty: no reason")
    accept_status: StatusId = Field(default="", description="status id set when you accept (empty: keep it)")
    reject_status: StatusId = Field(default="", description="status id set when you reject (empty: keep it)")
    repair_status: StatusId = Field(default="", description="status id set when you decide to repair")
    exchange_status: StatusId = Field(default="", description="status id set when you decide to exchange")
    cancel_status: StatusId = Field(default="", description="status id set when a return is cancelled")
    keep_status: StatusId = Field(default="", description="status id set when the customer keeps the item and "
                                  "is refunded (empty: the refund only)")
    refund_status: Literal["finished", "pending"] = Field(
        default="finished", description="status of the order refund retsync records for accept/keep: finished "
        "(you pay out / your gateway did) or pending (you finish it in the panel)")
    hold_status: StatusId = Field(
        default="", description="back-office flow (a marketplace channel with decisions_from = this channel): "
        "status id of the order created for each marketplace return you are to decide here")
    hold_payment_id: StatusId = Field(default="", description="payment method id for those orders")
    hold_shipping_id: StatusId = Field(default="", description="shipping method id for those orders")
    held_decision_statuses: Annotated[dict[str, DecisionKind], BeforeValidator(_status_table)] = Field(
        default_factory=dict, description="status id -> decision: moving a held order to that status is your "
        "decision; your words in its private notes go with it")

    @field_validator("requested_statuses", "received_statuses", "accepted_statuses", "rejected_statuses")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_ids(v) for v in value if v)

    @field_validator("reason_field_id", "accept_status", "reject_status", "repair_status", "exchange_status",
                     "cancel_status", "keep_status", "hold_status", "hold_payment_id", "hold_shipping_id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_ids(value)

    @field_validator("held_decision_statuses")
    @classmethod
    def _held(cls, value: dict[str, DecisionKind]) -> dict[str, DecisionKind]:
        return {_check_ids(str(k).strip()): kind for k, kind in value.items()}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Warsaw)") from None
        return value


def _decision_texts() -> dict[DecisionKind, str]:
    return {
        DecisionKind.ACCEPT: "one POST /order-refunds for every line decided together (returned quantity × "
        "price, one amount, against the order's payment transaction) + order status accept_status; your note in "
        "notes_pub",
        DecisionKind.KEEP: "one POST /order-refunds for every line decided together (the customer keeps the items) "
        "+ order status keep_status if set",
        DecisionKind.REJECT: "order status reject_status + your note in notes_pub (the customer sees it)",
        DecisionKind.CANCEL: "order status cancel_status; the order's pending refunds set to canceled",
        DecisionKind.REPAIR: "order status repair_status + your note in notes_pub",
        DecisionKind.EXCHANGE: "order status exchange_status + your note in notes_pub",
    }


class ShoperConnector(Connector[ShoperSettings]):
    """Shoper REST (webapi/rest): orders and returns in, order refunds and statuses out."""

    name = "shoper"
    title = "Shoper (REST webapi/rest)"
    settings_model = ShoperSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,), decisions=_decision_texts(),
        holds_returns="an order in status hold_status with the returned items as order products and the key "
        "[retsync-hold:<channel>/<return id>] in its private notes (notes_priv); you decide by moving it to a "
        "status in held_decision_statuses (your words in the private notes are the note)",
    )

    def __init__(self, channel: str, settings: ShoperSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.zone = ZoneInfo(settings.timezone)
        self.rules = ReturnRules(
            requested_statuses=settings.requested_statuses, received_statuses=settings.received_statuses,
            accepted_statuses=settings.accepted_statuses, rejected_statuses=settings.rejected_statuses,
            reason_field_id=settings.reason_field_id,
        )
        self.client = ShoperClient(channel, settings, runtime)
        if not self.rules.return_statuses:
            log.warning("no_return_statuses", channel=channel,
                        hint="no requested/received/accepted/rejected_statuses configured: only orders with "
                             "refunds are returns")

    def close(self) -> None:
        self.client.close()

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        if kind is DecisionKind.REJECT and not (note or "").strip():
            return "a rejection goes to the customer in the order's public notes: say why (--note)"
        return None

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Orders whose status changed since the cursor, then refunds created since it, with their orders.

        The cursor holds both walks, so a pass cut short resumes in the walk it was in.
        """
        if stream != Stream.RETURNS:
            raise ValueError(f"the shoper connector pulls returns (with their orders), not {stream}")
        cursor = dict(context.cursor or {})
        # Orders list by id, and a status change only ever moves an order *into* the query: a change during
        # a walk repeats an entry, never skips one.
        orders_walk = ChangedSinceWalk.load(cursor, "", context.backfill_since, now=context.now)
        refunds_walk = ChangedSinceWalk.load(cursor, "refunds_", context.backfill_since, now=context.now)
        if cursor.get("phase") != "refunds":
            for entries, last in self._pages(orders_walk, context, "/orders", "status_date"):
                sieve = RecordSieve()
                returns, orders = self._page(entries, context, sieve)
                yield Page(returns=returns, orders=orders, quarantined=sieve.take(),
                           cursor=self._cursor(orders_walk, refunds_walk, "refunds" if last else "orders"))
            if self.runtime.stop.is_set():
                return
        for entries, last in self._pages(refunds_walk, context, "/order-refunds", "date"):
            order_ids = list(dict.fromkeys(str(r.get("order_id")) for r in objs(entries) if text(r.get("order_id"))))
            sieve = RecordSieve()
            returns, orders = self._page(self._orders(order_ids), context, sieve)
            yield Page(returns=returns, orders=orders, quarantined=sieve.take(),
                       cursor=self._cursor(orders_walk, refunds_walk, "orders" if last else "refunds"))

    def _pages(self, walk: ChangedSinceWalk, context: PullContext, resource: str, date_field: str,
               ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Page through one "since" list, advancing `walk` as each page is handed out."""
        since = local_text(walk.since - context.overlap, self.zone)

        def page_at(number: int) -> Any:
            return self.client.list(resource, filters={date_field: {">=": since}}, page=number)

        upcoming = self.client.http.soon(page_at, walk.position)
        while not self.runtime.stop.is_set():
            listing = upcoming()
            for entry in objs(listing.entries):
                walk.saw(parse_local(entry.get(date_field), self.zone))
            last = not listing.entries or walk.position >= listing.pages
            if not last:  # the next page is asked for while this one is mapped and stored
                upcoming = self.client.http.soon(page_at, walk.position + 1)
            if last:
                walk.finish()
            else:
                walk.position += 1
            yield listing.entries, last
            if last:
                return

    @staticmethod
    def _cursor(orders: ChangedSinceWalk, refunds: ChangedSinceWalk, phase: str) -> dict[str, Any]:
        return {"phase": phase, **orders.dump(""), **refunds.dump("refunds_")}

    def _orders(self, order_ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        wanted = [int(i) if i.isdigit() else i for i in order_ids]
        for start in range(0, len(wanted), IN_CHUNK):
            found.extend(self.client.every("/orders", {"order_id": {"in": wanted[start:start + IN_CHUNK]}}))
        return found

    def _page(self, entries: list[dict[str, Any]], context: PullContext, sieve: RecordSieve,
              ) -> tuple[list[Return], list[Order]]:
        """The shop's own sales on this page, and the returns among them (skipping those stored unchanged).

        An order holding another channel's return is neither: it is left out before anything is fetched for it.
        An order that cannot be read is set aside in `sieve`; requests are made for the whole page first.
        """
        orders, ids = [], []
        for entry in entries:
            order_id = sieve.map("return", entry, _sale_id, entry, external_id=_raw_id(entry))
            if order_id:
                orders.append(entry)
                ids.append(order_id)
        if not ids:
            return [], []
        currencies = self.client.currencies()
        refunds = self.client.of_orders("/order-refunds", ids)
        products = self.client.of_orders("/order-products", ids)
        stored = context.stored_revisions(ids)
        returns: list[Return] = []

        def as_return(order_id: str, order: dict[str, Any]) -> Return | None:
            was_return = order_id in stored
            mine = refunds.get(order_id, [])
            if stored.get(order_id) == revision_of(order, mine) or not (was_return or is_return(order, mine,
                                                                                               self.rules)):
                return None
            return map_return(order, products.get(order_id, []), mine, self.rules, currencies, self.zone,
                              was_return=was_return)

        sales: list[Order] = []
        for order_id, order in zip(ids, orders):
            before = len(sieve.quarantined)
            raw = {"order": order, "products": products.get(order_id, []), "refunds": refunds.get(order_id, [])}
            mapped = sieve.map("return", raw, as_return, order_id, order, external_id=order_id)
            if mapped is not None:
                returns.append(mapped)
            if len(sieve.quarantined) > before:
                continue  # the order is in quarantine as the return it stands for
            sale = sieve.map("order", raw, map_order, order, products.get(order_id, []), currencies, self.zone,
                             external_id=order_id)
            if sale is not None:
                sales.append(sale)
        return returns, sales

    # --- decisions -------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One act, one change in the shop: accept and keep are ONE order refund covering every line of the act,
        then one order update (status, your note and our record), so the buyer sees one refund and one e-mail."""
        order_id = act.order_external_id or act.return_external_id
        order = self.client.get("/orders", order_id)
        if order is None:
            return PushResult(PushStatus.FAILED, f"the shop has no order {order_id} (deleted?)")
        if held_key(order):
            return PushResult(PushStatus.FAILED, f"order {order_id} holds another channel's return; "
                              "decide it in the panel")
        if act.kind not in REFUNDS:
            return self._set_status(act, order, None)
        refund = self._refund(act, order)
        if isinstance(refund, PushResult):
            return refund
        if act.kind is DecisionKind.KEEP and not self.settings.keep_status:
            if refund.again:
                raise AlreadyDone(f"{refund.what} is in the shop", reference=refund.refund_id, result=refund.result)
            return PushResult(PushStatus.PUSHED, f"the shop recorded {refund.what}", reference=refund.refund_id,
                              result=refund.result)
        return self._set_status(act, order, refund)

    def _refund(self, act: DecisionAct, order: Mapping[str, Any]) -> _Refund | PushResult:
        """The act's one order refund, its comment carrying the act's key: a retry finds it before making one.

        FAILED when the shop cannot take it as asked (a product gone from the order, too little left to refund,
        no payment transaction); checked here because Shoper would record a refund of more than was paid.
        """
        order_id, lines = id_of(order, "order_id", "GET /orders"), _lines(act)
        refunds = self.client.of_orders("/order-refunds", [order_id]).get(order_id, [])
        if act.attempt > 1 or act.reference:
            earlier = next((r for r in refunds if act.key in recorded_decisions(r.get("comment"))), None)
            if earlier is not None:
                return _Refund.of(earlier, lines, again=True)
        products = {str(p.get("id")): p for p in
                    self.client.of_orders("/order-products", [order_id]).get(order_id, [])}
        missing = [line for line, _ in lines if line not in products]
        if missing:
            return PushResult(PushStatus.FAILED, f"order {order_id} has no product {', '.join(missing)} to refund; "
                              "refund it in the panel")
        # in whole cents, as the shop keeps its totals and as it is sent: 59.99 less 10 % asks 53.99, not 53.991
        amount = Decimal(money(sum((_amount(products[line], quantity) for line, quantity in lines), Decimal(0))))
        left = self._left_to_refund(order, refunds)
        if left is not None and amount > left:
            return PushResult(PushStatus.FAILED, f"order {order_id} has only {money(left)} left to refund, "
                              f"{money(amount)} asked: was it refunded in the panel already?")
        transaction = self._transaction(order_id)
        if transaction is None:
            return PushResult(PushStatus.FAILED, f"order {order_id} has no payment transaction to refund against "
                              "(an unpaid or cash-on-delivery order?); refund it in the panel")
        words = (act.note or "").strip() or ("Refund, the customer keeps the item"
                                             if act.kind is DecisionKind.KEEP else "Return accepted")
        currency_id = str(transaction.get("currency_id") or order.get("currency_id") or "")
        body = {
            "transaction_id": int(str(transaction["transaction_id"])),
            "currency_id": int(currency_id) if currency_id.isdigit() else currency_id,
            "currency_value": float(money(amount)),
            "status": int(REFUND_FINISHED if self.settings.refund_status == "finished" else REFUND_PENDING),
            "status_description": "Refund recorded by retsync",
            "comment": refund_comment(act.key, act.kind, lines, words),
        }
        refund_id = self.client.insert("/order-refunds", body)
        return _Refund.of({"refund_id": refund_id, **body}, lines, again=False)

    def _transaction(self, order_id: str) -> dict[str, Any] | None:
        """The order's payment transaction, which Shoper refunds against."""
        wanted = int(order_id) if order_id.isdigit() else order_id
        return next((t for t in self.client.every("/order-transactions", {"order_id": wanted})
                     if t.get("transaction_id")), None)

    def _left_to_refund(self, order: Mapping[str, Any], refunds: list[dict[str, Any]]) -> Decimal | None:
        """What the buyer paid less what was refunded (canceled and failed refunds gave nothing back)."""
        try:
            total = Decimal(str(order.get("sum")))
        except ArithmeticError:
            return None
        if not total.is_finite():
            return None
        facts = [f for f in (refund_facts(r, self.zone) for r in refunds) if f is not None and f.counts]
        return total - Decimal(sum(f.amount for f in facts)) / 100

    def _status_for(self, kind: DecisionKind) -> str:
        return {
            DecisionKind.ACCEPT: self.settings.accept_status,
            DecisionKind.REJECT: self.settings.reject_status,
            DecisionKind.CANCEL: self.settings.cancel_status,
            DecisionKind.REPAIR: self.settings.repair_status,
            DecisionKind.EXCHANGE: self.settings.exchange_status,
            DecisionKind.KEEP: self.settings.keep_status,
        }[kind]

    def _set_status(self, act: DecisionAct, order: Mapping[str, Any], refund: _Refund | None) -> PushResult:
        """Status, your note and our record in one order update: the update is what makes the act done, so a
        retry that finds the record stops there."""
        order_id = id_of(order, "order_id", "GET /orders")
        result = dict(refund.result) if refund else {}
        reference = refund.refund_id if refund else None
        if act.key in recorded_decisions(order.get("notes_priv")):
            done = f"{refund.what}; " if refund else ""
            raise AlreadyDone(f"{done}{act.kind} on order {order_id}", reference=reference,
                              result={**result, "status_id": status_id(order)})
        if act.kind is DecisionKind.CANCEL:
            self._cancel_pending_refunds(order_id)
        changes: dict[str, Any] = {"notes_priv": with_line(order.get("notes_priv"),
                                                           decision_marker(act.key, act.kind, _lines(act)))}
        status = self._status_for(act.kind)
        if status and status != status_id(order):
            changes["status_id"] = status
        note = (act.note or "").strip()
        if note and note not in str(order.get("notes_pub") or ""):
            changes["notes_pub"] = with_line(order.get("notes_pub"), note)
        self.client.update("/orders", order_id, changes)
        where = f"order {order_id} is now in status {status}" if "status_id" in changes \
            else f"order {order_id} keeps status {status_id(order)}"
        told = "your note is in its public notes" if note else "its private notes record it"
        detail = f"{act.kind}: {where}; {told}"
        if refund is not None:
            detail = f"{'already in the shop' if refund.again else 'the shop recorded'} {refund.what}; {detail}"
        return PushResult(PushStatus.PUSHED, detail, reference=reference,
                          result={**result, "status_id": changes.get("status_id", status_id(order))})

    def _cancel_pending_refunds(self, order_id: str) -> None:
        for refund in self.client.of_orders("/order-refunds", [order_id]).get(order_id, []):
            if str(refund.get("status")) == REFUND_PENDING and refund.get("refund_id"):
                self.client.update("/order-refunds", str(refund["refund_id"]), {"status": 2})

    # --- the back-office flow --------------------------------------------------------------

    def hold_return(self, request: HoldRequest) -> PushResult:
        """One order per marketplace return: a retry first looks for the order an earlier attempt made."""
        missing = [key for key in ("hold_status", "hold_payment_id", "hold_shipping_id")
                   if not getattr(self.settings, key)]
        if missing:
            return PushResult(PushStatus.FAILED, f"set {', '.join(missing)} in [channels.{self.channel}] to hold "
                              "other channels' returns in this shop")
        earlier = self._held_order(request)
        if earlier is None:
            currency_id = next((cid for cid, code in self.client.currencies().items()
                                if code == (request.ret.currency or "").upper()), None)
            body = held_order(request.ret, request.key, request.source_title, status=self.settings.hold_status,
                              payment_id=self.settings.hold_payment_id, shipping_id=self.settings.hold_shipping_id,
                              currency_id=currency_id)
            order_id = self.client.insert("/orders", body)
            existing: list[dict[str, Any]] = []
        else:
            order_id = id_of(earlier, "order_id", "GET /orders")
            existing = self.client.of_orders("/order-products", [order_id]).get(order_id, [])
        have = [(str(p.get("name")), str(p.get("quantity"))) for p in existing]
        for product in held_products(request.ret, order_id):
            wanted = (product["name"], product["quantity"])
            if wanted in have:
                have.remove(wanted)
                continue
            self.client.insert("/order-products", product)
        again = "already in the shop as" if earlier is not None else "created"
        return PushResult(PushStatus.PUSHED, f"{again} order {order_id} in status {self.settings.hold_status}",
                          reference=order_id)

    def _held_order(self, request: HoldRequest) -> dict[str, Any] | None:
        """The order an earlier attempt created for this return, if any (found by the hold key in its notes)."""
        if request.reference:
            order = self.client.get("/orders", request.reference)
            if order is not None and held_key(order) == request.key:
                return order
        if request.attempt <= 1:
            return None
        since = local_text(request.requested_at - self.settings.overlap, self.zone)
        for order in self.client.every("/orders", {"date": {">=": since}}):
            if held_key(order) == request.key:
                return order
        return None

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        """Held orders moved to a decision status; the note is what you wrote in the order's private notes."""
        wanted = [ref for ref in references if ref.isdigit()]
        decided: dict[str, HeldDecision] = {}
        for order in self._orders(wanted):
            status = status_id(order) or ""
            kind = self.settings.held_decision_statuses.get(status)
            if kind is None or not held_key(order):
                continue
            reference = id_of(order, "order_id", "GET /orders")
            note = merchant_words(order.get("notes_priv")) or merchant_words(order.get("notes_pub"))
            decided[reference] = HeldDecision(
                reference=reference, kind=kind, note=note or f"decided in the shop (order status {status})",
                decided_at=parse_local(order.get("status_date"), self.zone), shop_status=status,
            )
        return decided

    # --- orders ----------------------------------------------------------------------------

    def fetch_order(self, external_id: str) -> Order | None:
        order = self.client.get("/orders", external_id)
        if order is None or held_key(order):
            return None
        products = self.client.of_orders("/order-products", [external_id]).get(external_id, [])
        return map_fetched("order", order, map_order, order, products, self.client.currencies(), self.zone,
                           external_id=external_id)

    # --- sandbox ---------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> ShoperEmulator:
        from retsync_connectors.shoper.emulator import ShoperEmulator

        return ShoperEmulator.roomy(seed, returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        from retsync_connectors.shoper.emulator import SANDBOX_CHANNEL

        return {"connector": cls.name, "base_url": base_url, **SANDBOX_CHANNEL}


def _raw_id(entry: Any) -> Any:
    return entry.get("order_id") if isinstance(entry, Mapping) else None


def _sale_id(entry: Mapping[str, Any]) -> str | None:
    """The order's id, or None for an order holding another channel's return (not a sale of this shop)."""
    return None if held_key(entry) else id_of(entry, "order_id", "GET /orders")


def _lines(act: DecisionAct) -> list[tuple[str, int]]:
    """The order products an act decides, with the units of each (a Shoper return line is an order product)."""
    return [(line.order_line_external_id or line.line_external_id, line.quantity) for line in act.lines]


def _amount(product: Mapping[str, Any], quantity: int) -> Decimal:
    """What `quantity` units of an order product cost the buyer: its price less the line's discount."""
    price = Decimal(str(product.get("price") or 0))
    discount = Decimal(str(product.get("discount_perc") or 0))
    return price * (Decimal(100) - discount) / 100 * quantity


@dataclass(frozen=True)
class _Refund:
    """An act's order refund: made by this attempt, or found where an earlier attempt made it (`again`)."""

    refund_id: str
    amount: str
    status: str
    what: str
    again: bool

    @classmethod
    def of(cls, refund: Mapping[str, Any], lines: Sequence[tuple[str, int]], *, again: bool) -> _Refund:
        amount = str(refund.get("currency_value") or "?")
        products = ", ".join(f"{quantity} × product {line}" for line, quantity in lines)
        return cls(refund_id=str(refund["refund_id"]), amount=amount, status=str(refund.get("status")),
                   what=f"order refund {refund['refund_id']} of {amount} for {products}", again=again)

    @property
    def result(self) -> dict[str, str]:
        """What the merchant may need later: which refund, how much, in what state."""
        return {"refund_id": self.refund_id, "amount": self.amount, "refund_status": self.status}
