"""The returns webhook: `POST /hooks/<channel>` creates or updates a return of a manual channel.

For a return service, a shop plug-in or an automation tool (n8n, Make, Zapier) that can send a request but
offers no API to read. A request is believed only when it proves it knows the channel's `webhook_secret`:

    X-Retsync-Delivery:  the sender's id of this delivery (1-200 characters; the same on every retry of it)
    X-Retsync-Timestamp: when it was sent, in Unix seconds; refused beyond `max_clock_skew` (5 minutes)
    X-Retsync-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." followed by the exact body bytes>

The timestamp is signed with the body, so a captured request cannot be sent again later; the delivery id is
recorded with the return in one transaction, so a request sent twice within the window (a retry after a lost
answer, a replay) is answered 200 "duplicate" and changes nothing. Signatures are compared in constant time.
Nothing is read beyond `max_body`, and nothing is parsed, let alone stored, before the signature holds.

The body is one return (`HookReturn`); its answer is JSON: 201 created, 200 updated/unchanged/duplicate, 4xx
with `error` saying what is wrong (400 unreadable, 401 not signed as the channel's, 404 no webhook for that
channel, 413 too large, 422 a field the return cannot have).

Starlette and uvicorn serve it, as they serve the web console: a streamed body with a hard cap and a server
that shuts down cleanly with the daemon, without writing HTTP parsing by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from retsync.config import Config
from retsync.intake.records import IntakeError, IntakeWriter, Written, entered_by_people
from retsync.intake.settings import ReturnsWebhookSettings
from retsync.kit.model import Customer, Return, ReturnLine, ReturnReason, ReturnStatus, UTCDateTime, utcnow
from retsync.kit.reasons import reason_from_words
from retsync.kit.settings import ChannelSettings
from retsync.store.channels import ensure_channel
from retsync.store.models import WebhookDelivery

log = structlog.get_logger(__name__)

DELIVERY_HEADER = "X-Retsync-Delivery"
TIMESTAMP_HEADER = "X-Retsync-Timestamp"
SIGNATURE_HEADER = "X-Retsync-Signature"
_DELIVERY = re.compile(r"[\x21-\x7e]{1,200}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Retsync-Signature of a request: what a sender computes, and what is checked here."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                                hashlib.sha256).hexdigest()


class HookCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    postcode: str | None = Field(default=None, max_length=20)


class HookLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=200,
                           description="the line's id at the sender; default: its SKU, else EAN, else position")
    sku: str | None = Field(default=None, max_length=200)
    ean: str | None = Field(default=None, max_length=50)
    title: str | None = Field(default=None, max_length=2000)
    quantity: int = Field(ge=1, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=2000)
    comment: str | None = Field(default=None, max_length=5000)
    unit_price: Decimal | None = Field(default=None, ge=0, le=Decimal("1e15"), description="in the currency's units")


class HookReturn(BaseModel):
    """The JSON body of `POST /hooks/<channel>`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="the return's id at the sender: the same id updates it")
    order: str | None = Field(default=None, min_length=1, max_length=200)
    status: ReturnStatus = ReturnStatus.REQUESTED
    status_text: str | None = Field(default=None, max_length=200, description="the sender's own status word")
    reason: str | None = Field(default=None, max_length=2000)
    created_at: UTCDateTime | None = None
    received_at: UTCDateTime | None = None
    customer: HookCustomer = HookCustomer()
    tracking_number: str | None = Field(default=None, max_length=200)
    carrier: str | None = Field(default=None, max_length=50)
    refund_amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e15"))
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    lines: list[HookLine] = Field(min_length=1, max_length=500)

    def unified(self, settings: ChannelSettings, now: datetime) -> Return:
        lines = []
        for position, line in enumerate(self.lines, start=1):
            lines.append(ReturnLine(
                external_id=line.id or line.sku or line.ean or str(position), sku=line.sku, ean=line.ean,
                title=line.title, quantity=line.quantity,
                reason=reason_from_words(line.reason) if line.reason else ReturnReason.UNKNOWN,
                channel_reason=line.reason, customer_comment=line.comment,
                unit_price=int(line.unit_price * 100) if line.unit_price is not None else None,
                currency=self.currency))
        carrier = self.carrier or getattr(settings, "tracking_carrier", None)
        return Return(
            external_id=self.id, order_external_id=self.order, status=self.status,
            channel_status=self.status_text or self.status.value,
            reason=reason_from_words(self.reason) if self.reason else ReturnReason.UNKNOWN,
            channel_reason=self.reason, created_at=self.created_at or now, received_at=self.received_at,
            refund_amount=int(self.refund_amount * 100) if self.refund_amount is not None else None,
            currency=self.currency, customer=Customer(**self.customer.model_dump()),
            tracking_number=self.tracking_number,
            carrier=carrier.lower() if carrier and self.tracking_number else None, lines=tuple(lines))


class Duplicate(Exception):
    """This delivery was stored before: the request changes nothing."""


def _answer(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class ReturnsWebhook:
    """The application; one per daemon (or `retsync serve`), over the config's manual channels."""

    def __init__(self, config: Config, db: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.settings = config.settings.returns_webhook or ReturnsWebhookSettings()
        self.app = Starlette(routes=[Route("/hooks/{channel}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> JSONResponse:
        channel = request.path_params["channel"]
        settings = self.config.enabled_channels.get(channel)
        secret = getattr(settings, "webhook_secret", None) if settings is not None else None
        if settings is None or not entered_by_people(settings.connector) or secret is None:
            return _answer(404, error=f"no returns webhook for channel {channel!r} (a manual channel with a "
                                      f"webhook_secret)")
        limit = int(self.settings.max_body)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _answer(413, error=f"the body is larger than the {limit} bytes this webhook takes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _answer(413, error=f"the body is larger than the {limit} bytes this webhook takes")
        problem = self._unauthenticated(request, secret.get_secret_value(), bytes(body))
        if problem is not None:
            log.warning("webhook_refused", channel=channel, reason=problem)
            return _answer(401, error=problem)
        delivery = request.headers[DELIVERY_HEADER]
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):
            return _answer(400, error="the body is not JSON (or nests deeper than any return does)")
        try:
            hook = HookReturn.model_validate(raw)
        except ValidationError as exc:
            return _answer(422, error="the return cannot be taken as sent", problems=[
                f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)[:20]])
        try:
            written = await run_in_threadpool(self._store, channel, settings, delivery, hook)
        except Duplicate:
            return _answer(200, result="duplicate", delivery=delivery)
        except IntakeError as exc:
            return _answer(422, error=str(exc))
        result = "created" if written.new else "updated" if written.updated else "unchanged"
        log.info("webhook_return", channel=channel, delivery=delivery, external_id=hook.id, result=result)
        return _answer(201 if written.new else 200, result=result, **{"return": f"{channel}/{hook.id}"},
                       delivery=delivery, linked=written.linked.get(hook.id), not_linked=written.unlinked.get(hook.id))

    def _unauthenticated(self, request: Request, secret: str, body: bytes) -> str | None:
        """Why the request is not the channel's, or None."""
        delivery = request.headers.get(DELIVERY_HEADER)
        if delivery is None or not _DELIVERY.fullmatch(delivery):
            return f"{DELIVERY_HEADER} is missing or not 1-200 visible ASCII characters"
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not stamp.isdigit() or len(stamp) > 12:
            return f"{TIMESTAMP_HEADER} is missing or not Unix seconds"
        skew = abs(self.clock().timestamp() - int(stamp))
        allowed = self.settings.max_clock_skew.total_seconds()
        if skew > allowed:
            return (f"{TIMESTAMP_HEADER} is {int(skew)} s away from this server's clock (at most {int(allowed)} s): "
                    f"send it at once, and keep both clocks right")
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), sign(secret, stamp, body).encode("ascii")):
            return f"{SIGNATURE_HEADER} does not match: sign \"<timestamp>.<body>\" with the channel's webhook_secret"
        return None

    def _store(self, channel: str, settings: ChannelSettings, delivery: str, hook: HookReturn) -> Written:
        now = self.clock()
        channel_id = ensure_channel(self.db, channel, settings.connector, now)
        with self.db.connect() as conn:
            if conn.execute(select(WebhookDelivery.id).where(WebhookDelivery.channel_id == channel_id,
                                                             WebhookDelivery.delivery_id == delivery)).first():
                raise Duplicate()

        def remember(conn: Connection) -> None:
            conn.execute(insert(WebhookDelivery.__table__).values(
                channel_id=channel_id, delivery_id=delivery, return_external_id=hook.id, received_at=now))

        writer = IntakeWriter(self.db, channel, settings, source=f"webhook:{delivery}"[:200],
                              orders_from=getattr(settings, "orders_from", ()))
        try:
            return writer.write([hook.unified(settings, now)], now, conn_hook=remember)
        except IntegrityError:  # the same delivery, stored by a request that ran alongside this one
            raise Duplicate() from None


class WebhookListener:
    """The webhook served in a thread of `retsync run`, stopped with the daemon."""

    def __init__(self, config: Config, db: Engine, *, clock: Callable[[], datetime] = utcnow,
                 host: str | None = None, port: int | None = None) -> None:
        settings = config.settings.returns_webhook or ReturnsWebhookSettings()
        self.app = ReturnsWebhook(config, db, clock=clock).app
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=host or settings.host, port=settings.port if port is None else port, log_config=None,
            access_log=False, lifespan="off", server_header=False))
        self.thread = threading.Thread(target=self.server.run, name="returns-webhook", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wait_started(self, timeout: float = 5.0) -> bool:
        """True once the server listens (tests use it before the first request)."""
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self.server.started:
                return True
            deadline.wait(0.01)
        return self.server.started

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the webhook is not listening")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> int:
    """`retsync serve`: only the webhook, in the foreground, until SIGINT/SIGTERM."""
    from retsync.store.db import make_engine, require_current_schema

    db = make_engine(config.settings.database_url())
    require_current_schema(db)
    settings = config.settings.returns_webhook or ReturnsWebhookSettings()
    app = ReturnsWebhook(config, db).app
    log.info("webhook_listening", host=host or settings.host, port=port or settings.port,
             channels=sorted(name for name, ch in config.enabled_channels.items()
                             if getattr(ch, "webhook_secret", None) is not None))
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_config=None, access_log=False,
                lifespan="off", server_header=False)
    db.dispose()
    return 0
