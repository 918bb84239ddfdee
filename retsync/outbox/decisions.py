"""Recording a decision: checked against the return, its lines and its channel, then queued for the outbox.

Everything that can be refused is refused here, in the merchant's words, before anything is stored: a decision
that is recorded is one the channel can be asked to carry out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, insert, select, update

from retsync.kit.contract import Capabilities, Connector
from retsync.kit.model import DecisionKind, DecisionState, ReturnStatus, utcnow
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
    lines: Mapping[str, int | None] | None = None,
    connector_for: Callable[[str], type[Connector] | None],
    source: str = "cli",
    now: datetime | None = None,
    refuse_flagged: bool = False,
    refuse_contradicting: bool = False,
    override_hint: str = "repeat the command with --force",
) -> Recorded:
    """Record a merchant decision on one line (`line`, with `quantity` units), on several (`lines`: line →
    units, None for all of it) or, with neither, on every line of the return: one act at the channel.

    `refuse_flagged`: refuse an accept or keep on a return flagged as a likely second refund; `refuse_contradicting`:
    refuse a decision the channel's final state contradicts (`retsync decide` without --force, the web console
    without "record anyway"); both in the same transaction that would record it, so a refusal records nothing.
    `source` says who decided (`cli:<user>`, `web:<user>`): it goes into the return's history.
    """
    now = now or utcnow()
    if line is not None:
        if lines is not None:
            raise ValueError("give `line` or `lines`, not both")
        lines = {line: quantity}
    elif quantity is not None and lines is None:
        lines = {"": quantity}  # every line, this many units: refused below unless the return has one line
    with db.begin() as conn:
        target = find_return(conn, ref)
        if refuse_flagged:
            _refuse_if_flagged(conn, target, kind, override_hint)
        if refuse_contradicting:
            _refuse_if_contradicting(conn, target, kind, override_hint)
        return record_decision_in(conn, target, kind, note=note, lines=lines,
                                  connector_for=connector_for, source=source, now=now)


def _refuse_if_flagged(conn: Connection, target: ReturnRef, kind: DecisionKind, override_hint: str) -> None:
    from retsync.reconcile.flags import blocking_flags

    blocking = blocking_flags(conn, target.id, kind.value)
    if blocking:
        reasons = "; ".join(f"{flag['code']}: {flag['detail']}" for flag in blocking)
        raise DecisionRefused(
            f"return {target.channel}/{target.external_id} is flagged ({reasons}), so {kind.value} may refund "
            f"the customer twice. Check it with `retsync returns show {target.id}`; to record it anyway, "
            f"{override_hint}")


FINAL_AT_CHANNEL = ("pushed", "synced")
"""Decision states that mean the channel has carried the decision out (or reported it itself)."""


def channel_outcome(conn: Connection, return_id: int) -> tuple[str, tuple[DecisionKind, ...]] | None:
    """What the channel has already settled for this return, and the decisions that agree with it.

    The latest decision the channel carried out (pushed) or reported (synced) settles it; without one, a refunded
    return was accepted (an accept or a keep agree), a cancelled one was cancelled. None: nothing is final yet.
    """
    settled = conn.execute(
        select(Decision.kind, Decision.state).where(Decision.return_id == return_id,
                                                    Decision.state.in_(FINAL_AT_CHANNEL))
        .order_by(Decision.id.desc()).limit(1)).first()
    if settled is not None:
        verb = "accepted" if settled.kind == DecisionKind.ACCEPT.value else f"decided {settled.kind}"
        return (f"{verb} at the channel ({'pushed' if settled.state == 'pushed' else 'reported by the channel'})",
                (DecisionKind(settled.kind),))
    status = conn.execute(select(Return.status).where(Return.id == return_id)).scalar_one()
    if status == ReturnStatus.REFUNDED.value:
        return "refunded at the channel (status refunded)", (DecisionKind.ACCEPT, DecisionKind.KEEP)
    if status == ReturnStatus.CANCELLED.value:
        return "cancelled at the channel (status cancelled)", (DecisionKind.CANCEL,)
    return None


def _refuse_if_contradicting(conn: Connection, target: ReturnRef, kind: DecisionKind, override_hint: str) -> None:
    outcome = channel_outcome(conn, target.id)
    if outcome is not None and kind not in outcome[1]:
        state, _ = outcome
        raise DecisionRefused(
            f"return {target.channel}/{target.external_id} is already {state}: {kind.value} contradicts it and "
            f"the channel would be asked to undo what it did. To record it anyway, {override_hint}")


def record_decision_in(
    conn: Connection,
    target: ReturnRef,
    kind: DecisionKind,
    *,
    note: str | None,
    lines: Mapping[str, int | None] | None,
    connector_for: Callable[[str], type[Connector] | None],
    source: str,
    now: datetime,
    origin: str = "merchant",
    act_key: str | None = None,
    key_for: Callable[[int], str] | None = None,
) -> Recorded:
    """The same, inside the caller's transaction; `origin`, `act_key` and `key_for` (line id → idempotency key)
    let a decision read back from a shop's back office be recorded once under keys derived from where it came
    from. `lines` maps a line (its id or the channel's line id; "" for the only line) to units, None for all."""
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
    chosen = _chosen_lines(conn, target, lines)
    waiting = conn.execute(
        select(Decision.id, Decision.return_line_id).where(
            Decision.return_line_id.in_([row.id for row, _ in chosen]),
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
    act_key = act_key or str(uuid.uuid4())
    ids = []
    for row, units in chosen:
        decision_id = conn.execute(
            insert(decisions_t).values(
                return_id=target.id, return_line_id=row.id, kind=kind.value, quantity=units, note=note,
                origin=origin, state=state.value, act_key=act_key,
                idempotency_key=key_for(row.id) if key_for else str(uuid.uuid4()),
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


def _chosen_lines(conn: Connection, target: ReturnRef, lines: Mapping[str, int | None] | None
                  ) -> list[tuple[Any, int]]:
    """The return's lines a decision covers, each with its units; refused when a line or quantity is wrong."""
    rows = conn.execute(
        select(ReturnLine.id, ReturnLine.external_id, ReturnLine.quantity)
        .where(ReturnLine.return_id == target.id)
        .order_by(ReturnLine.id)
    ).all()
    if not rows:
        raise DecisionRefused(f"return {target.channel}/{target.external_id} has no lines to decide on")
    if not lines:
        return [(row, row.quantity) for row in rows]
    chosen: dict[int, tuple[Any, int]] = {}
    for ref, units in lines.items():
        if ref == "":
            if len(rows) > 1:
                raise DecisionRefused("--quantity needs --line when the return has several lines")
            found = rows
        else:
            found = [row for row in rows if str(row.id) == ref or row.external_id == ref]
        if not found:
            raise DecisionRefused(f"return {target.channel}/{target.external_id} has no line {ref!r}")
        row = found[0]
        if units is not None and not 1 <= units <= row.quantity:
            raise DecisionRefused(f"--quantity must be between 1 and {row.quantity} for line {row.external_id}")
        if row.id in chosen:
            raise DecisionRefused(f"line {ref!r} is named twice")
        chosen[row.id] = (row, row.quantity if units is None else units)
    return list(chosen.values())


def retry_failed(db: Engine, decision_id: int, *, source: str, now: datetime | None = None) -> list[int]:
    """Send a failed decision again: every failed decision of its act goes back to pending, due now, so the next
    push carries the act out once more under the same key (a channel that already did it answers so)."""
    now = now or utcnow()
    with db.begin() as conn:
        row = conn.execute(select(Decision.act_key, Decision.state, Decision.return_id)
                           .where(Decision.id == decision_id)).first()
        if row is None:
            raise DecisionRefused(f"no decision {decision_id}")
        if row.state != DecisionState.FAILED.value:
            raise DecisionRefused(f"decision {decision_id} is {row.state}, not failed: nothing to retry")
        members = conn.execute(select(Decision.id, Decision.return_line_id, Decision.kind).where(
            Decision.act_key == row.act_key, Decision.state == DecisionState.FAILED.value)).all()
        conn.execute(update(decisions_t).where(decisions_t.c.id.in_([m.id for m in members])).values(
            state=DecisionState.PENDING.value, next_attempt_at=None, updated_at=now))
        for member in members:
            conn.execute(insert(events_t).values(
                return_id=row.return_id, return_line_id=member.return_line_id, at=now, kind="decision_retry",
                old_value=DecisionState.FAILED.value, new_value=DecisionState.PENDING.value, source=source,
                detail=f"decision {member.id} ({member.kind}) sent again"))
    return [m.id for m in members]
