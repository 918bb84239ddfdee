"""Pushing: each due decision sent to its channel's connector, exactly once.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, insert, or_, select, update

from retsync.kit.contract import Connector, DecisionRequest, PushResult, PushStatus
from retsync.kit.http import ApiError, ChannelError
from retsync.kit.model import DecisionKind, DecisionState, utcnow
from retsync.logs import remember_customers
from retsync.outbox.decisions import OPEN_STATES, PUSHED_ORIGINS, decisions_t, events_t
from retsync.store.models import Channel, Decision, Return, ReturnLine

log = structlog.get_logger(__name__)


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
