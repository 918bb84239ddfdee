"""Decisions from the shop's back office: a marketplace's returns decided in the merchant's own shop panel.

A marketplace channel with `decisions_from = "<shop channel>"` hands each of
its open, undecided returns to that shop once (a row in `held_returns`, one
per return, claimed and committed before the shop is called, with a key the
shop stores beside what it creates, so a retry after a lost answer finds it
instead of creating a second). After each pull of the shop, the decisions the
merchant took there are read back and recorded as decisions on the
marketplace return (origin `shop`) in the same transaction that marks the
held row decided, under keys derived from the held row: reading the same
decision again records nothing. The ordinary outbox then mirrors them to the
marketplace, exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Row, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from retsync.config import Config
from retsync.kit import model
from retsync.kit.contract import Connector, HeldDecision, HoldRequest, PushResult, PushStatus
from retsync.kit.model import utcnow
from retsync.outbox.decisions import DecisionRefused, ReturnRef, record_decision_in
from retsync.outbox.outcomes import carry_out_hold
from retsync.outbox.push import retry_delay
from retsync.store.models import Channel, Decision, HeldReturn, Return, ReturnLine

log = structlog.get_logger(__name__)

held_t = HeldReturn.__table__

OPEN_STATUSES = (model.ReturnStatus.REQUESTED.value, model.ReturnStatus.IN_TRANSIT.value,
                 model.ReturnStatus.RECEIVED.value)
KEY_NAMESPACE = uuid.UUID("6f1d3c52-2a43-4b8e-9a51-3f0c7d1e9b27")


class HoldState(StrEnum):
    PENDING = "pending"
    """Waiting to be created in the shop (first time, or again after a transient failure)."""
    SENDING = "sending"
    """Claimed; the shop is being called. A lapsed lease means the call may or may not have landed."""
    HELD = "held"
    """In the shop, waiting for the merchant's decision there."""
    DECIDED = "decided"
    """The merchant's decision was read back and recorded for the marketplace."""
    FAILED = "failed"
    """The shop refused it; `last_error` says why."""


def hold_key(channel: str, external_id: str) -> str:
    return f"{channel}/{external_id}"


def act_key(hold_key_: str, kind: str) -> str:
    """Stable per held return and decision: the act the marketplace sees is the same however often it is read."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"{hold_key_}|{kind}"))


def decision_key(hold_key_: str, line_id: int, kind: str) -> str:
    """Stable per held return, line and decision: the unique idempotency key makes a second read a no-op."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"{hold_key_}|{line_id}|{kind}"))


@dataclass
class BackOfficeSummary:
    queued: int = 0
    held: int = 0
    retrying: int = 0
    failed: int = 0
    decisions: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Claimed:
    hold_id: int
    key: str
    return_id: int
    source_channel: str
    shop_channel: str
    attempt: int
    reference: str | None
    requested_at: datetime


class BackOffice:
    """The back-office flow of one config: which marketplace channel is decided in which shop channel."""

    def __init__(
        self,
        db: Engine,
        config: Config,
        connectors: Mapping[str, Connector],
        channel_ids: Mapping[str, int],
        *,
        connector_for: Callable[[str], type[Connector] | None],
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = 8,
        retry_base: timedelta = timedelta(seconds=30),
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.connectors = connectors
        self.channel_ids = channel_ids
        self.connector_for = connector_for
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.lease = lease
        self.shop_of = {name: settings.decisions_from for name, settings in config.channels.items()
                        if settings.decisions_from is not None}

    def marketplaces_of(self, shop: str) -> list[str]:
        return [name for name, held_in in self.shop_of.items() if held_in == shop]

    # --- marketplace → shop --------------------------------------------------------------------

    def enqueue(self, marketplace: str) -> int:
        """Queue the marketplace's open returns that nobody has decided yet and that are not in the shop."""
        shop = self.shop_of.get(marketplace)
        if shop is None or marketplace not in self.channel_ids or shop not in self.channel_ids:
            return 0
        now = self.clock()
        decided = exists().where(Decision.return_id == Return.id)
        already = exists().where(HeldReturn.return_id == Return.id)
        with self.db.begin() as conn:
            rows = conn.execute(
                select(Return.id, Return.external_id).where(
                    Return.channel_id == self.channel_ids[marketplace],
                    Return.handled_by_channel.is_(False),
                    Return.status.in_(OPEN_STATUSES),
                    ~decided,
                    ~already,
                ).order_by(Return.id)
            ).all()
        queued = 0
        for row in rows:
            try:
                with self.db.begin() as conn:
                    conn.execute(insert(held_t).values(
                        return_id=row.id, shop_channel_id=self.channel_ids[shop],
                        key=hold_key(marketplace, row.external_id), state=HoldState.PENDING.value, attempts=0,
                        next_attempt_at=now, created_at=now, updated_at=now,
                    ))
                queued += 1
            except IntegrityError:  # another instance queued it first: one row per return, whoever wins
                continue
        if queued:
            log.info("returns_queued_for_shop", channel=marketplace, shop=shop, returns=queued)
        return queued

    def hold_due(self, limit: int = 100) -> BackOfficeSummary:
        """Create every due held return in its shop (one call each); several daemons never take the same one."""
        summary = BackOfficeSummary()
        for marketplace in self.shop_of:
            summary.queued += self.enqueue(marketplace)
        while True:
            claimed = self._claim(limit)
            for item in claimed:
                self._record(item, self._hold_one(item), summary)
            if len(claimed) < limit:
                return summary

    def _claim(self, limit: int) -> list[_Claimed]:
        shops = [name for name in set(self.shop_of.values()) if name in self.connectors]
        if not shops:
            return []
        now = self.clock()
        with self.db.begin() as conn:
            source = Channel.__table__.alias("source")
            shop = Channel.__table__.alias("shop")
            rows = conn.execute(
                select(held_t.c.id, held_t.c.key, held_t.c.return_id, held_t.c.attempts, held_t.c.reference,
                       held_t.c.created_at, source.c.name.label("source"), shop.c.name.label("shop"))
                .join(Return, Return.id == held_t.c.return_id)
                .join(source, source.c.id == Return.channel_id)
                .join(shop, shop.c.id == held_t.c.shop_channel_id)
                .where(
                    held_t.c.state.in_((HoldState.PENDING.value, HoldState.SENDING.value)),
                    or_(held_t.c.next_attempt_at.is_(None), held_t.c.next_attempt_at <= now),
                    shop.c.name.in_(shops),
                )
                .order_by(held_t.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=held_t)
            ).all()
            claimed = []
            for row in rows:
                attempt = row.attempts + 1
                conn.execute(update(held_t).where(held_t.c.id == row.id).values(
                    state=HoldState.SENDING.value, attempts=attempt, next_attempt_at=now + self.lease,
                    updated_at=now))
                claimed.append(_Claimed(row.id, row.key, row.return_id, row.source, row.shop, attempt,
                                        row.reference, row.created_at))
        return claimed

    def _hold_one(self, item: _Claimed) -> PushResult:
        shop = self.connectors[item.shop_channel]
        source_cls = self.connector_for(self.connectors[item.source_channel].name) \
            if item.source_channel in self.connectors else None
        with self.db.connect() as conn:
            ret = load_return(conn, item.return_id)
        return carry_out_hold(shop, HoldRequest(
            hold_id=item.hold_id, key=item.key, source_channel=item.source_channel,
            source_title=source_cls.title if source_cls else item.source_channel, ret=ret,
            attempt=item.attempt, requested_at=item.requested_at, reference=item.reference,
        ))

    def _record(self, item: _Claimed, result: PushResult, summary: BackOfficeSummary) -> None:
        now = self.clock()
        values: dict[str, object] = {"updated_at": now}
        if result.reference is not None:
            values["reference"] = result.reference
        if result.status is PushStatus.PUSHED:
            values.update(state=HoldState.HELD.value, next_attempt_at=None, last_error=None)
            summary.held += 1
        elif result.status in (PushStatus.RETRY, PushStatus.PENDING) and item.attempt < self.max_attempts:
            values.update(state=HoldState.PENDING.value, last_error=result.detail,
                          next_attempt_at=now + retry_delay(self.retry_base, item.attempt))
            summary.retrying += 1
        else:
            detail = result.detail or "refused by the shop"
            if result.status in (PushStatus.RETRY, PushStatus.PENDING):
                detail = f"gave up after {item.attempt} attempts: {detail}"
            values.update(state=HoldState.FAILED.value, last_error=detail, next_attempt_at=None)
            summary.failed += 1
            summary.errors.append(f"{item.shop_channel}: return {item.key}: {detail}")
        with self.db.begin() as conn:
            conn.execute(update(held_t).where(held_t.c.id == item.hold_id).values(**values))
        level = log.info if result.status is PushStatus.PUSHED else log.warning
        level("return_held_in_shop", channel=item.source_channel, shop=item.shop_channel, key=item.key,
              attempt=item.attempt, state=values["state"], reference=result.reference, detail=result.detail)

    # --- shop → marketplace --------------------------------------------------------------------

    def read_back(self, shop: str) -> int:
        """Record the decisions the merchant took in this shop on held returns; answer how many were new."""
        connector = self.connectors.get(shop)
        if connector is None or shop not in self.channel_ids or not self.marketplaces_of(shop):
            return 0
        with self.db.connect() as conn:
            rows = conn.execute(
                select(held_t.c.id, held_t.c.key, held_t.c.reference, held_t.c.return_id, held_t.c.last_error)
                .where(held_t.c.shop_channel_id == self.channel_ids[shop], held_t.c.state == HoldState.HELD.value,
                       held_t.c.reference.is_not(None))
                .order_by(held_t.c.id)
            ).all()
        recorded = 0
        for start in range(0, len(rows), 100):
            chunk = rows[start:start + 100]
            decisions = connector.held_decisions([row.reference for row in chunk])
            for row in chunk:
                decision = decisions.get(row.reference)
                if decision is not None:
                    recorded += self._take(shop, row, decision)
        return recorded

    def _take(self, shop: str, row: Row[Any], decision: HeldDecision) -> int:
        """One held return's decision, recorded for the marketplace once, with the held row marked decided."""
        now = self.clock()
        hold_id: int = row.id
        key: str = row.key
        with self.db.connect() as conn:
            target = _return_ref(conn, row.return_id)
        try:
            with self.db.begin() as conn:
                recorded = record_decision_in(
                    conn, target, decision.kind, note=decision.note,
                    lines=dict(decision.lines) if decision.lines else None,
                    connector_for=self.connector_for, source=f"shop:{shop}", now=now, origin="shop",
                    act_key=act_key(key, decision.kind.value),
                    key_for=lambda line_id: decision_key(key, line_id, decision.kind.value),
                )
                ids = recorded.decision_ids
                conn.execute(update(held_t).where(held_t.c.id == hold_id, held_t.c.state == HoldState.HELD.value)
                             .values(state=HoldState.DECIDED.value, decided_kind=decision.kind.value,
                                     decided_at=decision.decided_at or now, last_error=None, updated_at=now))
        except IntegrityError:  # another instance recorded it a moment ago
            return 0
        except DecisionRefused as exc:
            message = f"decision {decision.kind} from the shop cannot go to {target.channel}: {exc}"
            if message != row.last_error:
                log.warning("shop_decision_refused", shop=shop, key=key, reference=decision.reference, error=message)
                with self.db.begin() as conn:
                    conn.execute(update(held_t).where(held_t.c.id == hold_id).values(last_error=message,
                                                                                       updated_at=now))
            return 0
        log.info("shop_decision_recorded", shop=shop, key=key, kind=decision.kind.value, decisions=len(ids),
                 shop_status=decision.shop_status)
        return 1


def _return_ref(conn: Connection, return_id: int) -> ReturnRef:
    row = conn.execute(
        select(Return.id, Channel.name, Channel.connector, Return.external_id, Return.handled_by_channel)
        .join(Channel, Channel.id == Return.channel_id).where(Return.id == return_id)
    ).one()
    return ReturnRef(int(row.id), row.name, row.connector, row.external_id, bool(row.handled_by_channel))


def load_return(conn: Connection, return_id: int) -> model.Return:
    """A stored return in the unified model, as a shop connector needs it to create the return there."""
    returns_t, lines_t = Return.__table__, ReturnLine.__table__
    ret = conn.execute(select(returns_t).where(returns_t.c.id == return_id)).one()
    lines: Sequence[Row[Any]] = conn.execute(
        select(lines_t).where(lines_t.c.return_id == return_id).order_by(lines_t.c.id)
    ).all()
    return model.Return(
        external_id=ret.external_id, order_external_id=ret.order_external_id, status=_status(ret.status),
        channel_status=ret.channel_status, reason=_reason(ret.reason), channel_reason=ret.channel_reason,
        created_at=ret.created_at, received_at=ret.received_at, decided_at=ret.decided_at,
        refunded_at=ret.refunded_at, refund_amount=ret.refund_amount, currency=ret.currency,
        customer=model.Customer(email=ret.customer_email, name=ret.customer_name, phone=ret.customer_phone,
                                postcode=ret.customer_postcode),
        handled_by_channel=ret.handled_by_channel, tracking_number=ret.tracking_number, carrier=ret.carrier,
        revision=ret.revision, extra=dict(ret.extra or {}),
        lines=tuple(model.ReturnLine(
            external_id=line.external_id, order_external_id=line.order_external_id,
            order_line_external_id=line.order_line_external_id, sku=line.sku, ean=line.ean, title=line.title,
            quantity=line.quantity, reason=_reason(line.reason), channel_reason=line.channel_reason,
            customer_comment=line.customer_comment, channel_status=line.channel_status,
            unit_price=line.unit_price, currency=line.currency,
        ) for line in lines),
    )


def _status(value: str) -> model.ReturnStatus:
    try:
        return model.ReturnStatus(value)
    except ValueError:
        return model.ReturnStatus.REQUESTED


def _reason(value: str | None) -> model.ReturnReason:
    try:
        return model.ReturnReason(value) if value else model.ReturnReason.UNKNOWN
    except ValueError:
        return model.ReturnReason.UNKNOWN
