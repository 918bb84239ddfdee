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
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
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
from retsync.kit.http import USER_AGENT, ApiError, AuthError, BadPayload, Stopped, TransientError
from retsync.kit.model import DecisionKind, Order, Return, utc
from retsync.kit.payload import not_after, objs
from retsync.kit.records import RecordSieve, map_fetched
from retsync.kit.secrets import Secret, remember
from retsync.kit.settings import ChannelSettings
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
FORM_CACHE_SIZE = 1_000
NOTE_LIMIT = 250
KEEP_COMMENT = "Zwrot pieniędzy bez zwrotu towaru (refund without return)."
CANCEL_UNSUPPORTED = ("Allegro has no call that cancels a customer return: the buyer withdraws it, or Allegro closes it "
                      "when no parcel arrives; nothing is sent")
NEEDS_NOTE = frozenset({DecisionKind.REJECT, DecisionKind.REPAIR, DecisionKind.EXCHANGE})


class SignInFailed(AuthError):
    """A device-flow sign-in that did not succeed: `retsync auth` prints it as a plain message, no traceback."""


class AllegroSettings(ChannelSettings):
    """`[channels.<name>]` keys of an Allegro channel."""

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
    page_size: int = Field(default=1000, ge=1, le=1000, description="customer returns per list request (Allegro: 1..1000)")
    token_store: Literal["auto", "keyring", "file"] = Field(
        default="auto", description="where the rotating refresh token is kept: the system keyring when one works "
                                    "(auto), or <state_dir>/tokens/<channel>.json with mode 0600")
    refresh_token: Secret | None = Field(
        default=None, description="a refresh token to start from when none is stored yet (the sandbox uses it); "
                                  "normally left out: `retsync auth allegro CHANNEL` signs the channel in")


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


def _decision_texts() -> dict[DecisionKind, str]:
    texts = {
        DecisionKind.ACCEPT: "POST /payments/refunds reason=REFUND (QUANTITY line items, commandId = the decision's "
                             "key), then POST /order/refund-claims when commission_claims = true",
        DecisionKind.KEEP: "a refund without return: POST /payments/refunds reason=REFUND for the kept quantity; "
                           "the buyer keeps the item, no commission claim",
    }
    for kind, code in DECISION_TO_REJECTION.items():
        texts[kind] = f"POST /order/customer-returns/{{id}}/rejection code={code}, the note as reason"
    return texts


class AllegroConnector(Connector):
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

    def __init__(self, channel: str, settings: ChannelSettings, runtime: Runtime) -> None:
        if not isinstance(settings, AllegroSettings):
            raise TypeError(f"the allegro connector needs AllegroSettings, got {type(settings).__name__}")
        super().__init__(channel, settings, runtime)
        self.allegro = settings
        self.tokens = TokenStore(channel, runtime.state_dir, settings.token_store)
        self.auth = RefreshTokenAuth(
            channel, self.token_url, settings.client_id, settings.client_secret.get_secret_value(), self.tokens,
            bootstrap=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
        )
        self.client = AllegroClient(channel, settings, runtime, self.auth)

    @property
    def token_url(self) -> str:
        return self.allegro.token_url or self.allegro.auth_url.rstrip("/") + "/auth/oauth/token"

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
        created_from, offset, newest = self._start(context)
        if offset == 0:
            yield from self._reread_open(context, forms)
            if self.runtime.stop.is_set():
                return
        yield from self._walk_new(created_from, offset, newest, context, forms)

    @staticmethod
    def _start(context: PullContext) -> tuple[datetime, int, datetime | None]:
        """(createdAt.gte, offset, newest createdAt seen); anything unreadable starts from the backfill date."""
        cursor = context.cursor or {}
        newest = parse_datetime(cursor.get("newest"))
        newest = not_after(utc(newest), context.now) if newest is not None else None  # one stored before the bound
        resume = parse_datetime(cursor.get("created_from"))
        try:
            offset = int(cursor.get("offset", 0))
        except (TypeError, ValueError):
            offset = 0
        if resume is not None and offset > 0:
            return utc(resume), offset, newest
        if newest is not None:
            return utc(newest) - context.overlap, 0, utc(newest)
        return utc(context.backfill_since), 0, None

    def _walk_new(
        self, created_from: datetime, offset: int, newest: datetime | None, context: PullContext,
        forms: _FormCache,
    ) -> Iterator[Page]:
        size = self.allegro.page_size
        since = created_from.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        while not self.runtime.stop.is_set():
            entries = self.client.list_returns({"createdAt.gte": since, "limit": size, "offset": offset})
            for entry in objs(entries):
                created = parse_datetime(entry.get("createdAt"))
                if created is not None:
                    created = not_after(utc(created), context.now)  # a return dated 9999 must not silence the channel
                    if newest is None or created > newest:
                        newest = created
            sieve = RecordSieve()
            returns, orders = self._read(entries, context, forms, sieve)
            offset += len(entries)
            last = len(entries) < size
            cursor: dict[str, Any] = {"newest": newest.isoformat() if newest else None}
            if last:
                cursor["last_pass"] = context.now.isoformat()
            else:
                cursor.update(created_from=created_from.isoformat(), offset=offset)
            yield Page(returns=returns, orders=orders, cursor=cursor, quarantined=sieve.take())
            if last:
                return

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
        order_ids = {order_id for order_id in (text(entry.get("orderId")) for entry in changed) if order_id}
        stored = set(context.stored_orders(order_ids))
        returns: list[Return] = []
        orders: list[Order] = []
        for entry in changed:
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

    def _form(self, order_id: str, forms: _FormCache) -> dict[str, Any] | None:
        """The checkout form, fetched once per pass even when the order is stored: only it names the line item ids."""
        if order_id not in forms:
            forms.put(order_id, self.client.get_checkout_form(order_id))
        return forms.get(order_id)

    def fetch_order(self, external_id: str) -> Order | None:
        form = self.client.get_checkout_form(external_id)
        return map_fetched("order", form, map_order, form, external_id=external_id) if form is not None else None

    # --- push ------------------------------------------------------------------------------

    def push(self, request: DecisionRequest) -> PushResult:
        if request.kind not in self.capabilities.decisions:
            return PushResult(PushStatus.UNSUPPORTED, self.capabilities.why_unsupported(request.kind))
        try:
            if request.kind in DECISION_TO_REJECTION:
                return self._reject(request, DECISION_TO_REJECTION[request.kind])
            return self._refund(request)
        except AuthError as exc:
            return PushResult(PushStatus.RETRY, str(exc))
        except ApiError as exc:
            return PushResult(PushStatus.FAILED, f"Allegro refused the {request.kind} decision: {exc}")
        except (TransientError, BadPayload) as exc:
            return PushResult(PushStatus.RETRY, str(exc))
        except Stopped:
            return PushResult(PushStatus.RETRY, "the daemon stopped before Allegro was asked")

    # rejections -------------------------------------------------------------------------------

    def _reject(self, request: DecisionRequest, code: str) -> PushResult:
        """One rejection per return (Allegro rejects the whole return): a second line finds it already there."""
        return_id = request.return_external_id
        current = self.client.get_return(return_id)
        if current is None:
            return PushResult(PushStatus.FAILED, f"Allegro does not know customer return {return_id}")
        if current.get("rejection"):
            return self._already_rejected(current, code)
        try:
            updated = self.client.reject_return(return_id, code, (request.note or "").strip() or None)
        except ApiError as exc:
            if exc.status_code != 422:
                raise
            again = self.client.get_return(return_id)
            if again is not None and again.get("rejection"):
                return self._already_rejected(again, code)
            return PushResult(PushStatus.FAILED, f"Allegro refused the rejection {code} of return {return_id}: "
                                                 f"{exc.message}")
        return PushResult(PushStatus.PUSHED, f"Allegro rejected the refund of return {return_id} with {code}",
                          result={"rejection_code": code, "return_status": updated.get("status")})

    @staticmethod
    def _already_rejected(current: Mapping[str, Any], code: str) -> PushResult:
        existing = text(dict(current.get("rejection") or {}).get("code"))
        detail = f"already applied on Allegro: the return's refund is rejected with {existing}"
        if existing != code:
            detail += f" (not {code}: the earlier rejection stands)"
        return PushResult(PushStatus.PUSHED, detail,
                          result={"rejection_code": existing, "return_status": current.get("status")})

    # refunds ----------------------------------------------------------------------------------

    def _refund(self, request: DecisionRequest) -> PushResult:
        order_id = request.order_external_id
        form = self.client.get_checkout_form(order_id) if order_id else None
        if form is None:
            return PushResult(PushStatus.FAILED, f"Allegro does not know order {order_id} of return "
                                                 f"{request.return_external_id}: nothing to refund")
        line = self._line_item(form, request)
        if line is None:
            return PushResult(PushStatus.FAILED, f"order {order_id} has no line item for offer "
                                                 f"{offer_of(request.line_external_id)}")
        line_id = str(line["id"])
        refund = self._refund_of_line(form, line_id)
        already = refund is not None
        if refund is None:
            try:
                refund = self.client.refund(self._refund_body(request, form, line_id))
            except ApiError as exc:
                if exc.status_code != 422:
                    raise
                refund = self._refund_of_line(form, line_id)
                if refund is None:
                    return PushResult(PushStatus.FAILED, f"Allegro refused the refund: {exc.message}")
                already = True
        refund = self._read_back(refund)
        result = self._refund_result(refund)
        detail = (f"already applied on Allegro: refund {refund['id']}" if already
                  else f"Allegro refunded {result.get('refund_amount_text')} (refund {refund['id']}, {refund.get('status')})")
        if request.kind is DecisionKind.ACCEPT and self.allegro.commission_claims:
            claim = self._claim(line, request.quantity)
            if claim is None:
                return PushResult(PushStatus.RETRY, f"{detail}; the commission claim could not be sent yet")
            result.update(claim)
            detail += f"; commission claim {claim.get('claim_id') or claim.get('claim')}"
        return PushResult(PushStatus.PUSHED, detail, reference=str(refund["id"]), result=result)

    @staticmethod
    def _line_item(form: Mapping[str, Any], request: DecisionRequest) -> Mapping[str, Any] | None:
        if request.order_line_external_id:
            found = next((item for item in objs(form.get("lineItems"))
                          if text(item.get("id")) == request.order_line_external_id), None)
            if found is not None:
                return found
        return line_item_for_offer(form, offer_of(request.line_external_id))

    def _refund_body(self, request: DecisionRequest, form: Mapping[str, Any], line_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "payment": {"id": dict(form.get("payment") or {}).get("id")},
            "order": {"id": form["id"]},
            "commandId": request.idempotency_key,
            "reason": "REFUND",
            "lineItems": [{"id": line_id, "type": "QUANTITY", "quantity": request.quantity}],
        }
        if request.kind is DecisionKind.KEEP:
            body["sellerComment"] = KEEP_COMMENT
        return body

    def _refund_of_line(self, form: Mapping[str, Any], line_id: str) -> dict[str, Any] | None:
        """A refund Allegro already holds for this line item (ours from a lost answer, or one made in Allegro)."""
        for refund in self.client.refunds(order_id=str(form["id"])):
            if refund.get("status") in ("CANCELED", "VALIDATE_FAILED"):
                continue
            if any(text(item.get("id")) == line_id for item in objs(refund.get("lineItems"))):
                return refund
        return None

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

    def _claim(self, line: Mapping[str, Any], quantity: int) -> dict[str, Any] | None:
        """Claim the commission back once per line item; None when Allegro could not be asked (try again later)."""
        offer_id = text(dict(line.get("offer") or {}).get("id")) or ""
        try:
            for claim in self.client.claims_for_offer(offer_id):
                if text(dict(claim.get("lineItem") or {}).get("id")) == line["id"] and claim.get("status") != "CANCELLED":
                    return {"claim_id": claim.get("id"), "claim_status": claim.get("status")}
            created = self.client.claim_commission(str(line["id"]), quantity)
        except ApiError as exc:
            return {"claim": f"refused by Allegro: {exc.message}"}
        except (TransientError, BadPayload):
            return None
        return {"claim_id": created.get("id"), "claim_status": "IN_PROGRESS"}

    # --- sign-in ---------------------------------------------------------------------------

    def authorize(self, say: Callable[[str], None]) -> None:
        """OAuth device flow: the merchant confirms a code on allegro.pl; the refresh token is then stored."""
        try:
            with httpx.Client(transport=self.runtime.transport, timeout=self.allegro.timeout.total_seconds(),
                              headers={"User-Agent": USER_AGENT, "Accept": "application/json"}) as http:
                start = self._device_start(http)
                say(f"Open {start.get('verification_uri_complete') or start.get('verification_uri')} and confirm "
                    f"the code {start['user_code']} while signed in to the Allegro seller account of channel "
                    f"{self.channel}.")
                say("Waiting for the confirmation…")
                refresh = self._device_poll(http, str(start["device_code"]), start)
        except (httpx.HTTPError, BadPayload) as exc:
            raise SignInFailed(f"the sign-in at {self.allegro.auth_url} failed: {exc}; nothing was stored") from None
        try:
            self.tokens.save(refresh)
        except TokenStoreError as exc:
            raise SignInFailed(str(exc)) from None
        say(f"Signed in; the refresh token is kept in {self.tokens.location}.")

    def _basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.allegro.client_id, self.allegro.client_secret.get_secret_value())

    def _device_start(self, http: httpx.Client) -> dict[str, Any]:
        url = self.allegro.auth_url.rstrip("/") + "/auth/oauth/device"
        response = http.post(url, data={"client_id": self.allegro.client_id}, auth=self._basic())
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
