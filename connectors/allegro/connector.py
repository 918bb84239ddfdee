"""The Allegro connector: customer returns in; refunds, refund rejections and commission claims out.

New returns are read by creation date (`createdAt.gte`, re-reading the
`overlap` before the newest one seen, so a late-listed return is not
missed). Allegro has no "changed since" filter for returns, so each pass
first re-reads the returns still open in the store, by id, fifty per request
(the recent ones every pass, a long-open backlog in turn; see the engine's
`open_returns`): that is how DISPATCHED, DELIVERED, FINISHED or REJECTED reach
the merchant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import Field

from retsync.kit.contract import (
    ActLine,
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
from retsync.kit.http import USER_AGENT, ApiError, AuthError, BadPayload, Stopped, TransientError
from retsync.kit.model import DecisionKind, Order, Return, utc
from retsync.kit.paging import Cursor, walk_pages
from retsync.kit.payload import count, not_after, objs
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret, remember
from retsync.kit.settings import ChannelSettings, Duration, fresh_poll_interval
from retsync.kit.tokens import TokenStore, TokenStoreError
from retsync_connectors.allegro.client import AllegroClient, RefreshTokenAuth, errors_detail
from retsync_connectors.allegro.mapping import (
    DECISION_TO_REJECTION,
    line_item_for_offer,
    map_order,
    map_return,
    minor_units,
    offer_of,
    parse_datetime,
    revision_of,
    text,
)

if TYPE_CHECKING:
    from retsync_connectors.allegro.emulator import AllegroEmulator

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM_CACHE_SIZE = 200
"""Checkout forms a pass keeps after mapping them, for the next returns of the same order (mostly on the same or
the next page); a form is 15 to 30 kB once parsed, and 1,000 of them made a backfill's memory grow with it."""
FORMS_AT_ONCE = 100
"""Checkout forms read side by side and mapped before the next ones are read, instead of a whole page's (up to
1,000) held at once."""
NOTE_LIMIT = 250
KEEP_COMMENT = "Zwrot pieniędzy bez zwrotu towaru (refund without return)."
CANCEL_UNSUPPORTED = ("Allegro has no call that cancels a customer return: the buyer withdraws it, or Allegro closes it "
                      "when no parcel arrives; nothing is sent")
NEEDS_NOTE = frozenset({DecisionKind.REJECT, DecisionKind.REPAIR, DecisionKind.EXCHANGE})


class SignInFailed(AuthError):
    """A device-flow sign-in that did not succeed: `retsync auth` prints it as a plain message, no traceback."""


class AllegroSettings(ChannelSettings):
    """`[channels.<name>]` keys of an Allegro channel."""

    poll_interval: Duration = fresh_poll_interval()
    client_id: str = Field(description="Client ID of your app from apps.developer.allegro.pl (device flow enabled)")
    client_secret: Secret = Field(description="Client Secret of that app; write env:VAR, file:/path or keyring:service/user")
    base_url: str = Field(default="https://api.allegro.pl",
                          description="REST API host; https://api.allegro.pl.allegrosandbox.pl for Allegro's sandbox")
    auth_url: str = Field(default="https://allegro.pl",
                          description="OAuth host (device flow and tokens); https://allegro.pl.allegrosandbox.pl for "
                                      "Allegro's sandbox")
    commission_claims: bool = Field(default=True,
                                    description="after an accepted return is refunded, claim the sales commission back "
                                                "(POST /order/refund-claims)")
    requests_per_second: float | None = Field(default=20.0, gt=0,
                                              description="client-side pacing; Allegro allows 25 req/s per user on "
                                                          "customer returns and 9000 req/min per client id")
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="checkout forms read at once; `requests_per_second` still spaces them, "
        "so this only lets the pacing be reached when each answer takes longer than 1/20 s (Allegro: too many "
        "parallel requests are answered 429)")
    page_size: int = Field(default=1000, ge=1, le=1000, description="customer returns per list request (Allegro: 1..1000)")
    token_store: Literal["auto", "keyring", "file"] = Field(
        default="auto", description="where the rotating refresh token is kept: the system keyring when one works "
                                    "(auto), or <state_dir>/tokens/<channel>.json with mode 0600")
    refresh_token: Secret | None = Field(
        default=None, description="a refresh token to start from when none is stored yet (the sandbox uses it); "
                                  "normally left out: `retsync auth allegro CHANNEL` signs the channel in")


def _order_ids(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """The checkout forms (orders) these customer returns came from."""
    return {order_id for order_id in (text(entry.get("orderId")) for entry in entries) if order_id}


class _FormCache:
    """Checkout forms fetched in this pass (None: Allegro said 404), bounded so a long backfill stays small."""

    def __init__(self, size: int = FORM_CACHE_SIZE) -> None:
        self._size = size
        self._forms: OrderedDict[str, dict[str, Any] | None] = OrderedDict()

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._forms

    def get(self, order_id: str) -> dict[str, Any] | None:
        self._forms.move_to_end(order_id)
        return self._forms[order_id]

    def put(self, order_id: str, form: dict[str, Any] | None) -> None:
        self._forms[order_id] = form
        while len(self._forms) > self._size:
            self._forms.popitem(last=False)


class NewReturnsCursor(Cursor):
    """Where the walk over new returns (by `createdAt`) resumes. The keys are the ones stored since the first
    release, so an existing database resumes where it was."""

    newest: datetime | None = None
    """The newest `createdAt` seen; the next pass starts `overlap` before it, so a late-listed return is read."""
    created_from: datetime | None = None
    """`createdAt.gte` of the pass cut short at `offset` (an offset means something only for the same query)."""
    offset: int = Field(default=0, ge=0)
    last_pass: datetime | None = None
    """When the last pass reached the end of the list."""

    def resume(self, context: PullContext) -> tuple[datetime, int]:
        """(createdAt.gte, offset) to go on from: inside a pass cut short, else from the newest return seen less
        the overlap, else from the backfill date."""
        if self.created_from is not None and self.offset > 0:
            return utc(self.created_from), self.offset
        if self.newest is not None:
            return utc(self.newest) - context.overlap, 0
        return utc(context.backfill_since), 0

    def saw(self, created: datetime | None, now: datetime) -> None:
        """A return created then was listed; none dated after the pull's start counts (a return dated 9999 must
        not silence the channel)."""
        if created is None:
            return
        created = not_after(utc(created), now)
        if self.newest is None or created > self.newest:
            self.newest = created

    def finish(self, now: datetime) -> None:
        """The list is read to its end: the next pass starts from the newest return seen."""
        self.created_from, self.offset, self.last_pass = None, 0, now


@dataclass(frozen=True)
class _Refunding:
    """The checkout-form line items one act refunds (Allegro refunds line items, retsync decides return lines)."""

    form: Mapping[str, Any]
    items: dict[str, Mapping[str, Any]]
    """Line item id → the checkout form's line item."""
    units: dict[str, int]
    """Line item id → units to refund, in the act's order."""

    @classmethod
    def of(cls, form: Mapping[str, Any], act: DecisionAct) -> tuple[_Refunding, str | None]:
        """The act's line items, and the first return line the order has no line item for (None: all found)."""
        items: dict[str, Mapping[str, Any]] = {}
        units: dict[str, int] = {}
        for line in act.lines:
            item = _line_item(form, line)
            if item is None:
                return cls(form, items, units), line.line_external_id
            line_id = str(item["id"])
            items[line_id] = item
            units[line_id] = units.get(line_id, 0) + line.quantity
        return cls(form, items, units), None


def _line_item(form: Mapping[str, Any], line: ActLine) -> Mapping[str, Any] | None:
    """The checkout form line item a return line came from: the one stored with it, else the one of its offer."""
    if line.order_line_external_id:
        found = next((item for item in objs(form.get("lineItems"))
                      if text(item.get("id")) == line.order_line_external_id), None)
        if found is not None:
            return found
    return line_item_for_offer(form, offer_of(line.line_external_id))


def _distinct(first: list[dict[str, Any]], more: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refunds once each, in order (one refund may cover several line items)."""
    seen: dict[str, dict[str, Any]] = {}
    for refund in [*first, *more]:
        seen.setdefault(str(refund["id"]), refund)
    return list(seen.values())


def _claims_detail(claims: list[dict[str, Any]]) -> str:
    named = [str(claim.get("claim_id") or claim.get("claim")) for claim in claims]
    return f"commission claim{'s' if len(named) > 1 else ''} {', '.join(named)}"


def _decision_texts() -> dict[DecisionKind, str]:
    texts = {
        DecisionKind.ACCEPT: "one POST /payments/refunds reason=REFUND with every line decided together (QUANTITY "
                             "line items, commandId = the decision's key), then POST /order/refund-claims per line "
                             "item when commission_claims = true",
        DecisionKind.KEEP: "a refund without return: one POST /payments/refunds reason=REFUND for the kept "
                           "quantities; the buyer keeps the items, no commission claim",
    }
    for kind, code in DECISION_TO_REJECTION.items():
        texts[kind] = f"POST /order/customer-returns/{{id}}/rejection code={code}, the note as reason"
    return texts


class AllegroConnector(Connector[AllegroSettings]):
    """Allegro REST API: customer returns (BETA), checkout forms, refunds and commission refund claims."""

    name = "allegro"
    title = "Allegro (REST API, customer returns BETA)"
    settings_model = AllegroSettings
    capabilities = Capabilities(
        streams=(Stream.RETURNS,),
        decisions=_decision_texts(),
        unsupported={DecisionKind.CANCEL: CANCEL_UNSUPPORTED},
        fetches_orders=True,
    )

    def __init__(self, channel: str, settings: AllegroSettings, runtime: Runtime) -> None:
        super().__init__(channel, settings, runtime)
        self.tokens = TokenStore(channel, runtime.state_dir, settings.token_store)
        self.auth = RefreshTokenAuth(
            channel, self.token_url, settings.client_id, settings.client_secret.get_secret_value(), self.tokens,
            bootstrap=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
        )
        self.client = AllegroClient(channel, settings, runtime, self.auth)

    @property
    def token_url(self) -> str:
        return self.settings.token_url or self.settings.auth_url.rstrip("/") + "/auth/oauth/token"

    def close(self) -> None:
        self.client.close()

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        """Allegro shows a rejection's reason to the buyer and takes 1..250 characters; refuse it before recording."""
        if kind not in NEEDS_NOTE:
            return None
        reason = (note or "").strip()
        if not reason:
            return (f"Allegro needs a reason for a `{kind}` decision (it is shown to the buyer): "
                    f"give --note with 1 to {NOTE_LIMIT} characters")
        if len(reason) > NOTE_LIMIT:
            return f"Allegro takes at most {NOTE_LIMIT} characters as the reason; the note has {len(reason)}"
        return None

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if stream != Stream.RETURNS:
            raise ValueError(f"the allegro connector pulls returns only, not {stream}")
        forms = _FormCache()
        cursor = NewReturnsCursor.load(context.cursor, context.now)
        created_from, offset = cursor.resume(context)
        if offset == 0:
            yield from self._reread_open(context, forms)
            if self.runtime.stop.is_set():
                return
        yield from self._walk_new(cursor, created_from, offset, context, forms)

    def _walk_new(
        self, cursor: NewReturnsCursor, created_from: datetime, offset: int, context: PullContext, forms: _FormCache,
    ) -> Iterator[Page]:
        """New returns by creation date, a page of `page_size` at a time; each page's cursor resumes after it."""
        size = self.settings.page_size
        since = created_from.isoformat(timespec="milliseconds").replace("+00:00", "Z")

        def page_at(position: int) -> list[dict[str, Any]]:
            return self.client.list_returns({"createdAt.gte": since, "limit": size, "offset": position})

        for entries, next_offset, last in walk_pages(page_at, offset, size=size, stop=self.runtime.stop,
                                                      by_offset=True):
            for entry in objs(entries):
                cursor.saw(parse_datetime(entry.get("createdAt")), context.now)
            sieve = RecordSieve()
            returns, orders = self._read(list(entries), context, forms, sieve)
            if last:
                cursor.finish(context.now)
            else:
                cursor.created_from, cursor.offset = created_from, next_offset
            yield Page(returns=returns, orders=orders, cursor=cursor.dump(), quarantined=sieve.take())

    def _reread_open(self, context: PullContext, forms: _FormCache) -> Iterator[Page]:
        """Returns stored as open, read again by id so their new status is learnt; the cursor stays as stored."""
        open_ids = sorted(context.open_returns())
        step = 50
        for start in range(0, len(open_ids), step):
            if self.runtime.stop.is_set():
                return
            entries = self.client.returns_by_id(open_ids[start:start + step])
            sieve = RecordSieve()
            returns, orders = self._read(entries, context, forms, sieve)
            if returns or orders or sieve.quarantined:
                yield Page(returns=returns, orders=orders, cursor=None, quarantined=sieve.take())

    def _read(
        self, entries: list[dict[str, Any]], context: PullContext, forms: _FormCache, sieve: RecordSieve
    ) -> tuple[list[Return], list[Order]]:
        """Map the entries Allegro reports anything new about, with the checkout forms they came from.

        The store is asked once per page (revisions, stored orders), never once per return; an order of an
        earlier page is stored by the time the next page is read, so nothing of a whole pass is kept here.
        """
        readable = []
        for entry in entries:
            return_id = text(entry.get("id")) if isinstance(entry, Mapping) else None
            revision = sieve.map("return", entry, revision_of, entry, external_id=return_id) if return_id else None
            if return_id is None:
                sieve.set_aside("return", entry, "the customer return has no id")
            elif revision is not None:
                readable.append((return_id, revision, entry))
        revisions = context.stored_revisions([return_id for return_id, _, _ in readable])
        changed = [entry for return_id, revision, entry in readable if revisions.get(return_id) != revision]
        stored = set(context.stored_orders(_order_ids(changed)))
        returns: list[Return] = []
        orders: list[Order] = []
        for n, entry in enumerate(changed):
            if n % FORMS_AT_ONCE == 0:
                self._fetch_forms(_order_ids(changed[n:n + FORMS_AT_ONCE]), forms)
            order_id = text(entry.get("orderId"))
            form = self._form(order_id, forms) if order_id else None
            if form is not None and order_id is not None and order_id not in stored:
                order = sieve.map("order", form, map_order, form, external_id=order_id)
                if order is not None:
                    orders.append(order)
                    stored.add(order_id)
            mapped = sieve.map("return", entry, map_return, entry, form, external_id=entry.get("id"))
            if mapped is not None:
                returns.append(mapped)
        return returns, orders

    def _fetch_forms(self, order_ids: Iterable[str], forms: _FormCache) -> None:
        """The checkout forms a page needs and this pass has not read yet, read side by side (the pacing of
        `requests_per_second` still spaces them)."""
        wanted = sorted(order_id for order_id in order_ids if order_id not in forms)
        for order_id, form in zip(wanted, self.client.get_checkout_forms(wanted)):
            forms.put(order_id, form)

    def _form(self, order_id: str, forms: _FormCache) -> dict[str, Any] | None:
        """The checkout form, fetched once per pass even when the order is stored: only it names the line item ids."""
        if order_id not in forms:
            forms.put(order_id, self.client.get_checkout_form(order_id))
        return forms.get(order_id)

    def fetch_order(self, external_id: str) -> Order | None:
        form = self.client.get_checkout_form(external_id)
        return map_fetched("order", form, map_order, form, external_id=external_id) if form is not None else None

    # --- decisions -------------------------------------------------------------------------

    def act(self, act: DecisionAct) -> PushResult:
        """One act at Allegro per decision act: one refund with every line (plus a commission claim per line item
        on accept), or one rejection of the whole return."""
        if act.kind in DECISION_TO_REJECTION:
            return self._reject(act, DECISION_TO_REJECTION[act.kind])
        return self._refund(act)

    # rejections -------------------------------------------------------------------------------

    def _reject(self, act: DecisionAct, code: str) -> PushResult:
        """One rejection per return (Allegro rejects the whole return); one already there means it was done."""
        return_id = act.return_external_id
        current = self.client.get_return(return_id)
        if current is None:
            return PushResult(PushStatus.FAILED, f"Allegro does not know customer return {return_id}")
        if current.get("rejection"):
            raise self._already_rejected(current, code)
        try:
            updated = self.client.reject_return(return_id, code, (act.note or "").strip() or None)
        except ApiError as exc:
            if exc.status_code != 422:
                raise
            again = self.client.get_return(return_id)  # a 422 may mean an earlier attempt's rejection is there
            if again is not None and again.get("rejection"):
                raise self._already_rejected(again, code) from None
            raise
        return PushResult(PushStatus.PUSHED, f"Allegro rejected the refund of return {return_id} with {code}",
                          result={"rejection_code": code, "return_status": updated.get("status")})

    @staticmethod
    def _already_rejected(current: Mapping[str, Any], code: str) -> AlreadyDone:
        existing = text(dict(current.get("rejection") or {}).get("code"))
        detail = f"the return's refund is rejected with {existing}"
        if existing != code:
            detail += f" (not {code}: the earlier rejection stands)"
        return AlreadyDone(detail, result={"rejection_code": existing, "return_status": current.get("status")})

    # refunds ----------------------------------------------------------------------------------

    def _refund(self, act: DecisionAct) -> PushResult:
        """Refund the act's line items that no refund covers yet, in one refund, then claim the commissions.

        Allegro's refunds are looked at first on every attempt: an earlier attempt's refund whose answer was
        lost, or one the merchant made in Allegro, is found instead of being paid out twice."""
        order_id = act.order_external_id or next((line.order_external_id for line in act.lines
                                                  if line.order_external_id), None)
        form = self.client.get_checkout_form(order_id) if order_id else None
        if form is None:
            return PushResult(PushStatus.FAILED, f"Allegro does not know order {order_id} of return "
                                                 f"{act.return_external_id}: nothing to refund")
        refunding, missing = _Refunding.of(form, act)
        if missing is not None:
            return PushResult(PushStatus.FAILED, f"order {order_id} has no line item for offer {offer_of(missing)}")
        made, before = self._refund_the_rest(act, refunding, self._refunds_of_lines(refunding))
        if made is not None:
            made = self._read_back(made)
        refunds = _distinct([made] if made is not None else [], before.values())
        result = self._refund_result(refunds[0])
        detail = self._refund_detail(made, refunds)
        if act.kind is DecisionKind.ACCEPT and self.settings.commission_claims:
            claims = self._claims(refunding, detail)
            result["claims"] = claims
            detail += "; " + _claims_detail(claims)
        if made is None:
            raise AlreadyDone(detail, reference=str(refunds[0]["id"]), result=result)
        return PushResult(PushStatus.PUSHED, detail, reference=str(made["id"]), result=result)

    def _refund_the_rest(
        self, act: DecisionAct, refunding: _Refunding, before: dict[str, dict[str, Any]],
    ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """(the one refund of the line items no refund covers yet, or None when every one is covered already;
        the refunds found covering line items before it)."""
        due = {line_id: units for line_id, units in refunding.units.items() if line_id not in before}
        if not due:
            return None, before
        try:
            return self.client.refund(self._refund_body(act, refunding.form, due)), before
        except ApiError as exc:
            if exc.status_code != 422:
                raise
            covered = self._refunds_of_lines(refunding)  # a 422 may mean it exists by now
            if any(line_id not in covered for line_id in refunding.units):
                raise
            return None, covered

    def _refund_body(self, act: DecisionAct, form: Mapping[str, Any], units: Mapping[str, int]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "payment": {"id": dict(form.get("payment") or {}).get("id")},
            "order": {"id": form["id"]},
            "commandId": act.key,
            "reason": "REFUND",
            "lineItems": [{"id": line_id, "type": "QUANTITY", "quantity": quantity}
                          for line_id, quantity in units.items()],
        }
        if act.kind is DecisionKind.KEEP:
            body["sellerComment"] = KEEP_COMMENT
        return body

    def _refunds_of_lines(self, refunding: _Refunding) -> dict[str, dict[str, Any]]:
        """Line item id → a refund Allegro already holds for it that leaves no room for this act's units: ours
        from a lost answer, or one the merchant made in Allegro. Counted in units, so the second unit of a line
        item bought twice and returned one unit at a time is still refunded when its own return is accepted. A
        refund by AMOUNT says no units, so it counts as the whole line item: better asked than paid twice."""
        bought = {line_id: count(item.get("quantity")) for line_id, item in refunding.items.items()}
        refunded: dict[str, int] = {}
        latest: dict[str, dict[str, Any]] = {}
        for refund in self.client.refunds(order_id=str(refunding.form["id"])):
            if refund.get("status") in ("CANCELED", "VALIDATE_FAILED"):
                continue
            for item in objs(refund.get("lineItems")):
                line_id = text(item.get("id"))
                if line_id in refunding.units:
                    units = count(item.get("quantity")) if item.get("type") == "QUANTITY" else bought[line_id]
                    refunded[line_id] = refunded.get(line_id, 0) + units
                    latest.setdefault(line_id, refund)
        return {line_id: latest[line_id] for line_id, units in refunding.units.items()
                if line_id in refunded and refunded[line_id] + units > bought[line_id]}

    def _read_back(self, refund: dict[str, Any]) -> dict[str, Any]:
        """The refund as Allegro lists it now, so the stored status is Allegro's, not the POST's first word."""
        listed = self.client.refunds(id=str(refund["id"]))
        return listed[0] if listed else refund

    @staticmethod
    def _refund_result(refund: Mapping[str, Any]) -> dict[str, Any]:
        amount, currency = minor_units(refund.get("totalValue"))
        total = dict(refund.get("totalValue") or {})
        return {"refund_id": refund.get("id"), "refund_status": refund.get("status"), "refund_amount": amount,
                "currency": currency,
                "refund_amount_text": f"{total.get('amount')} {total.get('currency')}" if total else None}

    @staticmethod
    def _refund_detail(made: Mapping[str, Any] | None, refunds: list[dict[str, Any]]) -> str:
        """What the merchant reads: the refund made now, and any that covered some of the lines before."""
        earlier = [str(refund["id"]) for refund in refunds if made is None or refund["id"] != made["id"]]
        if made is None:
            return f"refund {', '.join(earlier)}"
        total = dict(made.get("totalValue") or {})
        detail = (f"Allegro refunded {total.get('amount')} {total.get('currency')} "
                  f"(refund {made['id']}, {made.get('status')})")
        if earlier:
            detail += f"; the other line items were refunded before (refund {', '.join(earlier)})"
        return detail

    # commission claims ------------------------------------------------------------------------

    def _claims(self, refunding: _Refunding, refund_detail: str) -> list[dict[str, Any]]:
        """Claim the commission back once per line item (Allegro's claims are per line item); one that exists is
        found, not claimed again. When Allegro cannot be asked, the act is retried and finds the refund made."""
        try:
            return [self._claim(refunding.items[line_id], units) for line_id, units in refunding.units.items()]
        except (TransientError, BadPayload) as exc:
            raise TransientError(f"{refund_detail}; the commission claim could not be sent yet ({exc})") from exc

    def _claim(self, line: Mapping[str, Any], quantity: int) -> dict[str, Any]:
        line_id = str(line["id"])
        offer_id = text(dict(line.get("offer") or {}).get("id")) or ""
        try:
            for claim in self.client.claims_for_offer(offer_id):
                if text(dict(claim.get("lineItem") or {}).get("id")) == line_id and claim.get("status") != "CANCELLED":
                    return {"line_item_id": line_id, "claim_id": claim.get("id"), "claim_status": claim.get("status")}
            created = self.client.claim_commission(line_id, quantity)
        except ApiError as exc:  # the refund went out; a refused claim is told, it does not undo the decision
            return {"line_item_id": line_id, "claim": f"refused by Allegro: {exc.message}"}
        return {"line_item_id": line_id, "claim_id": created.get("id"), "claim_status": "IN_PROGRESS"}

    # --- sign-in ---------------------------------------------------------------------------

    def authorize(self, say: Callable[[str], None]) -> None:
        """OAuth device flow: the merchant confirms a code on allegro.pl; the refresh token is then stored."""
        try:
            with httpx.Client(transport=self.runtime.transport, timeout=self.settings.timeout.total_seconds(),
                              headers={"User-Agent": USER_AGENT, "Accept": "application/json"}) as http:
                start = self._device_start(http)
                say(f"Open {start.get('verification_uri_complete') or start.get('verification_uri')} and confirm "
                    f"the code {start['user_code']} while signed in to the Allegro seller account of channel "
                    f"{self.channel}.")
                say("Waiting for the confirmation…")
                refresh = self._device_poll(http, str(start["device_code"]), start)
        except (httpx.HTTPError, BadPayload) as exc:
            raise SignInFailed(f"the sign-in at {self.settings.auth_url} failed: {exc}; nothing was stored") from None
        try:
            self.tokens.save(refresh)
        except TokenStoreError as exc:
            raise SignInFailed(str(exc)) from None
        say(f"Signed in; the refresh token is kept in {self.tokens.location}.")

    def _basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.settings.client_id, self.settings.client_secret.get_secret_value())

    def _device_start(self, http: httpx.Client) -> dict[str, Any]:
        url = self.settings.auth_url.rstrip("/") + "/auth/oauth/device"
        response = http.post(url, data={"client_id": self.settings.client_id}, auth=self._basic())
        if response.status_code != 200:
            raise SignInFailed(f"Allegro would not start the sign-in (HTTP {response.status_code}: "
                            f"{errors_detail(response)}); check client_id and client_secret, and that the app "
                            f"allows the device flow")
        body = response.json()
        if not isinstance(body, dict) or not body.get("device_code") or not body.get("user_code"):
            raise BadPayload("Allegro's device endpoint answered without device_code and user_code")
        return body

    def _device_poll(self, http: httpx.Client, device_code: str, start: Mapping[str, Any]) -> str:
        interval = float(start.get("interval") or 5)
        left = float(start.get("expires_in") or 3600)
        data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        while True:
            if left <= 0:
                raise SignInFailed(f"the code expired before it was confirmed; run `retsync auth allegro "
                                f"{self.channel}` again")
            self._wait(interval)
            left -= interval
            response = http.post(self.token_url, data=data, auth=self._basic())
            if response.status_code == 200:
                return self._signed_in(response)
            if response.status_code == 429 or response.status_code >= 500:
                continue  # Allegro is busy; the code stays valid, so ask again at the next interval
            error = self._oauth_error(response)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if error == "access_denied":
                raise SignInFailed("the sign-in was refused on allegro.pl; nothing was stored")
            raise SignInFailed(f"the code is no longer valid ({error}); run `retsync auth allegro {self.channel}` again")

    @staticmethod
    def _oauth_error(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        return str(body.get("error")) if isinstance(body, dict) and body.get("error") else f"HTTP {response.status_code}"

    @staticmethod
    def _signed_in(response: httpx.Response) -> str:
        try:
            body = response.json()
            access, refresh = str(body["access_token"]), str(body["refresh_token"])
        except (ValueError, KeyError, TypeError):
            raise BadPayload("Allegro's token endpoint answered without access_token and refresh_token") from None
        remember(access)
        remember(refresh)
        return refresh

    def _wait(self, seconds: float) -> None:
        if self.runtime.sleep is not None:
            self.runtime.sleep(seconds)
        elif self.runtime.stop.wait(seconds):
            raise Stopped()
        if self.runtime.stop.is_set():
            raise Stopped()

    # --- sandbox ---------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> AllegroEmulator:
        from retsync_connectors.allegro.emulator import AllegroEmulator

        return AllegroEmulator(seed=seed) if returns is None else AllegroEmulator(seed=seed, n_returns=returns)

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        """The emulator serves the API and the OAuth host on one address and honours a fixed refresh token,
        so a sandbox channel needs no device flow; its rotated tokens go to a file under the state directory."""
        from retsync_connectors.allegro.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN

        return {
            "connector": cls.name,
            "base_url": base_url,
            "auth_url": base_url,
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
            "token_store": "file",
            "requests_per_second": 100_000,
        }
