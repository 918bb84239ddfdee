"""Pushing: each due decision act carried out at its channel, exactly once.

The decisions recorded together (one act: same `act_key`) are claimed together
(state `sending`, attempt counted, a lease set) and that claim is committed
*before* the channel is called. If the daemon dies in the middle, the lease
runs out and the next attempt goes out with `attempt > 1`, which tells the
connector to check the channel before doing the act again. The act's key is
fixed at recording time and the same on every attempt. On PostgreSQL the claim
uses `FOR UPDATE SKIP LOCKED`, and an act is only taken whole, so several
daemons never claim the same decision nor split an act between them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Engine, Row, func, insert, or_, select, update

from retsync.kit.contract import ActLine, Connector, DecisionAct, PushResult, PushStatus
from retsync.kit.model import DecisionKind, DecisionState, utcnow
from retsync.logs import remember_customers
from retsync.outbox.decisions import OPEN_STATES, PUSHED_ORIGINS, decisions_t, events_t
from retsync.outbox.outcomes import carry_out
from retsync.store.models import Channel, Decision, Return, ReturnLine

log = structlog.get_logger(__name__)


def retry_delay(base: timedelta, attempt: int, ceiling: timedelta = timedelta(hours=1)) -> timedelta:
    """How long before attempt `attempt + 1`: doubling from `base`, at most `ceiling`, give or take a fifth so
    that what failed together (a channel down for a minute) is not retried all at the same moment."""
    return min(base * 2 ** (attempt - 1), ceiling) * random.uniform(0.8, 1.2)


@dataclass
class PushSummary:
    """Decisions (one per return line) by what became of them in one pass."""

    pushed: int = 0
    pending: int = 0
    retrying: int = 0
    failed: int = 0
    unsupported: int = 0
    acts: int = 0
    """Requests made of channels: one per act, however many decisions (lines) it carries."""
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

    def anything_due(self, channels: list[str]) -> bool:
        """Whether a decision of these channels waits to be pushed now: one indexed query (ix_decisions_due),
        cheap enough to ask every couple of seconds, so a decision goes out as soon as it is recorded without the
        push pass itself running that often."""
        now = self.clock()
        with self.db.connect() as conn:
            return conn.execute(
                select(Decision.id)
                .join(Return, Return.id == Decision.return_id)
                .join(Channel, Channel.id == Return.channel_id)
                .where(Decision.origin.in_(PUSHED_ORIGINS), Decision.state.in_(OPEN_STATES),
                       or_(Decision.next_attempt_at.is_(None), Decision.next_attempt_at <= now),
                       Channel.name.in_(channels))
                .limit(1)).first() is not None

    def _claim(self, channels: list[str], limit: int) -> tuple[list[tuple[str, DecisionAct]], bool]:
        """Due acts of these channels, each with all its open decisions; True when there may be more."""
        now = self.clock()
        columns = (Decision.id, Decision.act_key, Decision.kind, Decision.quantity, Decision.note,
                   Decision.attempts, Decision.reference, Channel.name.label("channel"),
                   Return.external_id.label("return_external_id"), Return.order_external_id,
                   ReturnLine.external_id.label("line_external_id"),
                   ReturnLine.order_external_id.label("line_order_external_id"), ReturnLine.order_line_external_id)
        open_ = (Decision.origin.in_(PUSHED_ORIGINS), Decision.state.in_(OPEN_STATES))
        with self.db.begin() as conn:
            due = conn.execute(
                select(Decision.id, Decision.act_key)
                .join(Return, Return.id == Decision.return_id)
                .join(Channel, Channel.id == Return.channel_id)
                .where(*open_, or_(Decision.next_attempt_at.is_(None), Decision.next_attempt_at <= now),
                       Channel.name.in_(channels))
                .order_by(Decision.id).limit(limit)
                .with_for_update(skip_locked=True, of=decisions_t)
            ).all()
            keys = sorted({row.act_key for row in due})
            if not keys:
                return [], False
            rows = conn.execute(  # every open decision of those acts, locked (ours already, or free)
                select(*columns)
                .join(ReturnLine, ReturnLine.id == Decision.return_line_id)
                .join(Return, Return.id == Decision.return_id)
                .join(Channel, Channel.id == Return.channel_id)
                .where(*open_, Decision.act_key.in_(keys))
                .order_by(Decision.id)
                .with_for_update(skip_locked=True, of=decisions_t)
            ).all()
            whole = dict(conn.execute(  # an act partly locked by another daemon is left to it
                select(Decision.act_key, func.count()).where(*open_, Decision.act_key.in_(keys))
                .group_by(Decision.act_key)).all())
            acts: dict[str, list[Row[Any]]] = {}
            for row in rows:
                acts.setdefault(row.act_key, []).append(row)
            claimed = []
            for key, members in acts.items():
                if len(members) != whole.get(key):
                    continue
                first = members[0]
                fresh_send = first.reference is None
                attempts = max(row.attempts for row in members) + (1 if fresh_send else 0)
                conn.execute(
                    update(decisions_t)
                    .where(decisions_t.c.id.in_([row.id for row in members]))
                    .values(state=DecisionState.SENDING.value, attempts=attempts,
                            next_attempt_at=now + self.lease, updated_at=now)
                )
                claimed.append((first.channel, DecisionAct(
                    key=key, kind=DecisionKind(first.kind), note=first.note,
                    return_external_id=first.return_external_id, order_external_id=first.order_external_id,
                    lines=tuple(ActLine(
                        decision_id=row.id, line_external_id=row.line_external_id, quantity=row.quantity,
                        order_external_id=row.line_order_external_id or row.order_external_id,
                        order_line_external_id=row.order_line_external_id,
                    ) for row in members),
                    attempt=max(attempts, 1), reference=first.reference,
                )))
        return claimed, len(due) == limit

    def _record(self, channel: str, act: DecisionAct, result: PushResult, summary: PushSummary) -> None:
        """Settle every decision of the act with the act's outcome, and write each line's history."""
        now = self.clock()
        values: dict[str, object] = {"updated_at": now}
        state: DecisionState
        decisions = len(act.lines)
        # following a reference (polling) does not count as an attempt at claim time; a failure while doing so does
        attempt = act.attempt + (1 if act.reference else 0)
        if result.status is PushStatus.PUSHED:
            state, values["pushed_at"], values["last_error"] = DecisionState.PUSHED, now, None
            values["next_attempt_at"] = None
            summary.pushed += decisions
        elif result.status is PushStatus.PENDING:
            state, values["next_attempt_at"] = DecisionState.SENDING, now + self.poll_after
            summary.pending += decisions
        elif result.status is PushStatus.RETRY and attempt < self.max_attempts:
            state, values["attempts"] = DecisionState.PENDING, attempt
            values["next_attempt_at"] = now + retry_delay(self.retry_base, attempt)
            values["last_error"] = result.detail
            summary.retrying += decisions
        elif result.status is PushStatus.UNSUPPORTED:
            state, values["last_error"], values["next_attempt_at"] = DecisionState.UNSUPPORTED, result.detail, None
            summary.unsupported += decisions
        else:
            detail = result.detail or "refused by the channel"
            if result.status is PushStatus.RETRY:
                detail = f"gave up after {attempt} attempts: {detail}"
                values["attempts"] = attempt
            state, values["last_error"], values["next_attempt_at"] = DecisionState.FAILED, detail, None
            summary.failed += decisions
            ids = ", ".join(str(decision_id) for decision_id in act.decision_ids)
            summary.errors.append(f"{channel}: decision{'s' if decisions > 1 else ''} {ids}: {detail}")
        values["state"] = state.value
        if result.reference is not None:
            values["reference"] = result.reference
        if result.result is not None:
            values["result"] = dict(result.result)
        with self.db.begin() as conn:
            conn.execute(update(decisions_t).where(decisions_t.c.id.in_(act.decision_ids)).values(**values))
            if state not in (DecisionState.SENDING, DecisionState.PENDING):  # an outcome, not a step
                owners = conn.execute(select(Decision.return_id, Decision.return_line_id)
                                      .where(Decision.id.in_(act.decision_ids)).order_by(Decision.id)).all()
                conn.execute(insert(events_t), [dict(
                    return_id=owner.return_id, return_line_id=owner.return_line_id, at=now,
                    kind="decision_state", old_value=DecisionState.SENDING.value, new_value=state.value,
                    source=f"push:{channel}", detail=values.get("last_error") or result.detail,
                ) for owner in owners])
        log.info("decision_push", channel=channel, decision_ids=list(act.decision_ids), kind=act.kind.value,
                 attempt=act.attempt, outcome=result.status.value, state=state.value, detail=result.detail)

    def push_due(self, channels: list[str] | None = None, limit: int = 200) -> PushSummary:
        """Carry out every due act of the given (default: all) channels once."""
        summary = PushSummary()
        names = [name for name in (channels or list(self.connectors)) if name in self.connectors]
        if not names:
            return summary
        while True:
            claimed, more = self._claim(names, limit)
            customers = self._customers([act.decision_ids[0] for _, act in claimed])
            for channel, act in claimed:
                # a channel's refusal, a connector's crash may quote the buyer back: the log redacts them
                remember_customers(customers.get(act.decision_ids[0], ()))
                self._record(channel, act, carry_out(self.connectors[channel], act), summary)
                summary.acts += 1
            if not more or not claimed:  # nothing left, or only acts another daemon holds part of
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
