"""Decisions: recorded once by the merchant, pushed to the channel exactly once.

A decision is claimed (state `sending`, attempt counted, a lease set) and that
claim is committed *before* the channel is called. If the daemon dies in the
middle, the lease runs out and the next attempt goes out with `attempt > 1`,
which tells the connector to check the channel before sending again. The
idempotency key is fixed at recording time and the same on every attempt.
On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so several daemons
never claim the same decision.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, insert, or_, select, update

from retsync.connector import Capabilities, Connector, DecisionRequest, PushResult, PushStatus
from retsync.http import ApiError, ChannelError
from retsync.logs import remember_customers
from retsync.model import DecisionKind, DecisionState, utcnow
from retsync.store.models import Channel, Decision, Return, ReturnEvent, ReturnLine

log = structlog.get_logger(__name__)

decisions_t = Decision.__table__
events_t = ReturnEvent.__table__

OPEN_STATES = (DecisionState.PENDING.value, DecisionState.SENDING.value)
PUSHED_ORIGINS = ("merchant", "shop")
"""Decisions the outbox sends: recorded with `retsync decide`, or read back from a shop's back office."""


class DecisionRefused(Exception):
    """The decision cannot be recorded; the message tells the merchant why and what to do."""


@dataclass(frozen=True)
class ReturnRef:
    id: int
    channel: str
    connector: str
    external_id: str
    handled_by_channel: bool


def find_return(conn: Connection, ref: str) -> ReturnRef:
    """RETURN is the internal id or `channel/external_id`."""
    query = select(Return.id, Channel.name, Channel.connector, Return.external_id, Return.handled_by_channel).join(
        Channel, Channel.id == Return.channel_id
    )
    if ref.isdigit():  # an id beyond the 64-bit ids of both databases names no return (and must not reach them)
        row = conn.execute(query.where(Return.id == int(ref))).first() if int(ref) < 2**63 else None
    elif "/" in ref:
        channel, external_id = ref.split("/", 1)
        row = conn.execute(query.where(Channel.name == channel, Return.external_id == external_id)).first()
    else:
        raise DecisionRefused(f"{ref!r} is not a return: give its id or channel/external_id (see `retsync returns list`)")
    if row is None:
        raise DecisionRefused(f"no return {ref!r} in the database (see `retsync returns list`)")
    return ReturnRef(int(row.id), row.name, row.connector, row.external_id, bool(row.handled_by_channel))


@dataclass
class Recorded:
    decision_ids: list[int]
    state: DecisionState
    detail: str | None = None


def record_decision(
    db: Engine,
    ref: str,
    kind: DecisionKind,
    *,
    note: str | None = None,
    line: str | None = None,
    quantity: int | None = None,
    connector_for: Callable[[str], type[Connector] | None],
    source: str = "cli",
    now: datetime | None = None,
    refuse_flagged: bool = False,
) -> Recorded:
    """Record a merchant decision on one line or, without `line`, on every line of the return.

    `refuse_flagged`: refuse an accept or keep on a return flagged as a likely second refund (`retsync decide`
    without --force), in the same transaction that would record it.
    """
    now = now or utcnow()
    with db.begin() as conn:
        target = find_return(conn, ref)
        if refuse_flagged:
            _refuse_if_flagged(conn, target, kind)
        return record_decision_in(conn, target, kind, note=note, line=line, quantity=quantity,
                                  connector_for=connector_for, source=source, now=now)


def _refuse_if_flagged(conn: Connection, target: ReturnRef, kind: DecisionKind) -> None:
    from retsync.flags import blocking_flags

    blocking = blocking_flags(conn, target.id, kind.value)
    if blocking:
        reasons = "; ".join(f"{flag['code']}: {flag['detail']}" for flag in blocking)
        raise DecisionRefused(
            f"return {target.channel}/{target.external_id} is flagged ({reasons}), so {kind.value} may refund "
            f"the customer twice. Check it with `retsync returns show {target.id}`; to record it anyway, "
            f"repeat the command with --force")


def record_decision_in(
    conn: Connection,
    target: ReturnRef,
    kind: DecisionKind,
    *,
    note: str | None,
    line: str | None,
    quantity: int | None,
    connector_for: Callable[[str], type[Connector] | None],
    source: str,
    now: datetime,
    origin: str = "merchant",
    key_for: Callable[[int], str] | None = None,
) -> Recorded:
    """The same, inside the caller's transaction; `origin` and `key_for` (line id → idempotency key) let a
    decision read back from a shop's back office be recorded once under a key derived from where it came from."""
    if target.handled_by_channel:
        raise DecisionRefused(
            f"return {target.channel}/{target.external_id} is handled by the channel itself "
            f"(fulfilment by the marketplace): nothing can be pushed for it"
        )
    connector = connector_for(target.connector)
    if connector is None:
        raise DecisionRefused(f"connector {target.connector!r} of channel {target.channel} is not installed")
    problem = connector.decision_problem(kind, note)
    if problem:
        raise DecisionRefused(problem)
    lines = conn.execute(
        select(ReturnLine.id, ReturnLine.external_id, ReturnLine.quantity)
        .where(ReturnLine.return_id == target.id)
        .order_by(ReturnLine.id)
    ).all()
    if line is not None:
        lines = [row for row in lines if str(row.id) == line or row.external_id == line]
        if not lines:
            raise DecisionRefused(f"return {target.channel}/{target.external_id} has no line {line!r}")
    if not lines:
        raise DecisionRefused(f"return {target.channel}/{target.external_id} has no lines to decide on")
    if quantity is not None:
        if line is None and len(lines) > 1:
            raise DecisionRefused("--quantity needs --line when the return has several lines")
        if not 1 <= quantity <= lines[0].quantity:
            raise DecisionRefused(f"--quantity must be between 1 and {lines[0].quantity} for that line")
    waiting = conn.execute(
        select(Decision.id, Decision.return_line_id).where(
            Decision.return_line_id.in_([row.id for row in lines]),
            Decision.origin.in_(PUSHED_ORIGINS),
            Decision.state.in_(OPEN_STATES),
        )
    ).first()
    if waiting is not None:
        raise DecisionRefused(
            f"decision {waiting.id} on this return is still waiting to be pushed; "
            f"let it finish (`retsync push`) before recording another"
        )
    capabilities: Capabilities = connector.capabilities
    if capabilities.supports(kind):
        state, detail = DecisionState.PENDING, None
    else:
        state, detail = DecisionState.UNSUPPORTED, capabilities.why_unsupported(kind)
    ids = []
    for row in lines:
        decision_id = conn.execute(
            insert(decisions_t).values(
                return_id=target.id, return_line_id=row.id, kind=kind.value,
                quantity=quantity if quantity is not None else row.quantity, note=note, origin=origin,
                state=state.value, idempotency_key=key_for(row.id) if key_for else str(uuid.uuid4()),
                attempts=0, next_attempt_at=None,
                last_error=detail, reference=None, created_at=now, updated_at=now, pushed_at=None,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        ids.append(int(decision_id))
        conn.execute(insert(events_t).values(
            return_id=target.id, return_line_id=row.id, at=now, kind="decision", old_value=None,
            new_value=kind.value, source=source, detail=note if state is DecisionState.PENDING else detail,
        ))
    return Recorded(ids, state, detail)


@dataclass
class PushSummary:
    pushed: int = 0
    pending: int = 0
    retrying: int = 0
    failed: int = 0
    unsupported: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.pushed + self.pending + self.retrying + self.failed + self.unsupported


class Outbox:
    """Sends due decisions through each channel's connector."""

    def __init__(
        self,
        db: Engine,
        connectors: Mapping[str, Connector],
        *,
        max_attempts: int = 8,
        retry_base: timedelta = timedelta(seconds=30),
        poll_after: timedelta = timedelta(seconds=15),
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.connectors = connectors
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.poll_after = poll_after
        self.lease = lease
        self.clock = clock

    def _claim(self, channels: list[str], limit: int) -> list[tuple[str, DecisionRequest]]:
        now = self.clock()
        with self.db.begin() as conn:
            rows = conn.execute(
                select(
                    Decision.id, Decision.idempotency_key, Decision.kind, Decision.quantity, Decision.note,
                    Decision.attempts, Decision.reference, Channel.name.label("channel"),
                    Return.external_id.label("return_external_id"), Return.order_external_id,
                    ReturnLine.external_id.label("line_external_id"),
                    ReturnLine.order_external_id.label("line_order_external_id"),
                    ReturnLine.order_line_external_id,
                )
                .join(ReturnLine, ReturnLine.id == Decision.return_line_id)
                .join(Return, Return.id == Decision.return_id)
                .join(Channel, Channel.id == Return.channel_id)
                .where(
                    Decision.origin.in_(PUSHED_ORIGINS),
                    Decision.state.in_(OPEN_STATES),
                    or_(Decision.next_attempt_at.is_(None), Decision.next_attempt_at <= now),
                    Channel.name.in_(channels),
                )
                .order_by(Decision.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=decisions_t)
            ).all()
            claimed = []
            for row in rows:
                fresh_send = row.reference is None
                attempts = row.attempts + 1 if fresh_send else row.attempts
                conn.execute(
                    update(decisions_t)
                    .where(decisions_t.c.id == row.id)
                    .values(state=DecisionState.SENDING.value, attempts=attempts,
                            next_attempt_at=now + self.lease, updated_at=now)
                )
                claimed.append((row.channel, DecisionRequest(
                    decision_id=row.id, idempotency_key=row.idempotency_key, kind=DecisionKind(row.kind),
                    quantity=row.quantity, note=row.note, return_external_id=row.return_external_id,
                    line_external_id=row.line_external_id,
                    order_external_id=row.line_order_external_id or row.order_external_id,
                    order_line_external_id=row.order_line_external_id, attempt=max(attempts, 1),
                    reference=row.reference,
                )))
        return claimed

    def _record(self, channel: str, request: DecisionRequest, result: PushResult, summary: PushSummary) -> None:
        now = self.clock()
        values: dict[str, object] = {"updated_at": now}
        state: DecisionState
        # following a reference (polling) does not count as an attempt at claim time; a failure while doing so does
        attempt = request.attempt + (1 if request.reference else 0)
        if result.status is PushStatus.PUSHED:
            state, values["pushed_at"], values["last_error"] = DecisionState.PUSHED, now, None
            values["next_attempt_at"] = None
            summary.pushed += 1
        elif result.status is PushStatus.PENDING:
            state, values["next_attempt_at"] = DecisionState.SENDING, now + self.poll_after
            summary.pending += 1
        elif result.status is PushStatus.RETRY and attempt < self.max_attempts:
            delay = min(self.retry_base * 2 ** (attempt - 1), timedelta(hours=1))
            state, values["attempts"] = DecisionState.PENDING, attempt
            values["next_attempt_at"] = now + delay * random.uniform(0.8, 1.2)
            values["last_error"] = result.detail
            summary.retrying += 1
        elif result.status is PushStatus.UNSUPPORTED:
            state, values["last_error"], values["next_attempt_at"] = DecisionState.UNSUPPORTED, result.detail, None
            summary.unsupported += 1
        else:
            detail = result.detail or "refused by the channel"
            if result.status is PushStatus.RETRY:
                detail = f"gave up after {attempt} attempts: {detail}"
                values["attempts"] = attempt
            state, values["last_error"], values["next_attempt_at"] = DecisionState.FAILED, detail, None
            summary.failed += 1
            summary.errors.append(f"{channel}: decision {request.decision_id}: {detail}")
        values["state"] = state.value
        if result.reference is not None:
            values["reference"] = result.reference
        if result.result is not None:
            values["result"] = dict(result.result)
        with self.db.begin() as conn:
            conn.execute(update(decisions_t).where(decisions_t.c.id == request.decision_id).values(**values))
            if state not in (DecisionState.SENDING, DecisionState.PENDING):  # an outcome, not a step
                owner = conn.execute(select(Decision.return_id, Decision.return_line_id)
                                     .where(Decision.id == request.decision_id)).one()
                conn.execute(insert(events_t).values(
                    return_id=owner.return_id, return_line_id=owner.return_line_id, at=now,
                    kind="decision_state", old_value=DecisionState.SENDING.value, new_value=state.value,
                    source=f"push:{channel}", detail=values.get("last_error") or result.detail,
                ))
        log.info("decision_push", channel=channel, decision_id=request.decision_id, kind=request.kind.value,
                 attempt=request.attempt, outcome=result.status.value, state=state.value, detail=result.detail)

    def push_due(self, channels: list[str] | None = None, limit: int = 200) -> PushSummary:
        """Push every due decision of the given (default: all) channels once."""
        summary = PushSummary()
        names = [name for name in (channels or list(self.connectors)) if name in self.connectors]
        if not names:
            return summary
        while True:
            claimed = self._claim(names, limit)
            customers = self._customers([request.decision_id for _, request in claimed])
            for channel, request in claimed:
                # a channel's refusal, a connector's crash may quote the buyer back: the log redacts them
                remember_customers(customers.get(request.decision_id, ()))
                self._record(channel, request, self._push_one(channel, request), summary)
            if len(claimed) < limit:
                remember_customers(())
                return summary

    def _customers(self, decision_ids: list[int]) -> dict[int, tuple[str | None, ...]]:
        """Per decision: the name, e-mail address and phone of its return's customer."""
        if not decision_ids:
            return {}
        with self.db.connect() as conn:
            return {row.id: (row.customer_name, row.customer_email, row.customer_phone) for row in conn.execute(
                select(Decision.id, Return.customer_name, Return.customer_email, Return.customer_phone)
                .join(Return, Return.id == Decision.return_id).where(Decision.id.in_(decision_ids)))}

    def _push_one(self, channel: str, request: DecisionRequest) -> PushResult:
        connector = self.connectors[channel]
        if not connector.capabilities.supports(request.kind):
            return PushResult(PushStatus.UNSUPPORTED, connector.capabilities.why_unsupported(request.kind))
        try:
            return connector.push(request)
        except ApiError as exc:
            return PushResult(PushStatus.FAILED, str(exc))
        except ChannelError as exc:
            return PushResult(PushStatus.RETRY, str(exc))
        except Exception as exc:  # a connector bug must not lose the decision: it is retried and visible
            log.exception("decision_push_crashed", channel=channel, decision_id=request.decision_id)
            return PushResult(PushStatus.RETRY, f"{type(exc).__name__}: {exc}")
