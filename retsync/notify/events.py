"""What is worth telling someone, read from the database and written into the notifications outbox once.

Every event has a key — its kind and the id of what it is about (`new_return:17`, `new_flag:4`,
`push_failed:9`, `record_quarantined:3`) — and the outbox holds each key once per transport (a unique constraint), so deriving again
after a restart, or from a second daemon at the same moment, inserts nothing new. Only events from the moment a
scope was first switched on count (its watermark): switching notifications on does not mail out the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, and_, cast, exists, func, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from retsync.config import NotifySettings
from retsync.kit.model import DecisionState, ReturnStatus
from retsync.kit.settings import ChannelSettings
from retsync.logs import scrub
from retsync.outbox.decisions import PUSHED_ORIGINS
from retsync.store.models import (
    Channel,
    Decision,
    Notification,
    NotificationWatermark,
    QuarantinedRecord,
    Return,
    ReturnEvent,
    ReturnFlag,
    ReturnLine,
)
from retsync.store.quarantine import personal_values

notifications_t = Notification.__table__
watermarks_t = NotificationWatermark.__table__

TEAM_SCOPE = "team"
CLOCK_SLACK = timedelta(minutes=2)
PENDING = "pending"
SENDING = "sending"
DROPPED = "dropped"
"""A notification no longer worth sending: its record was read normally before it went out."""
QUARANTINED = "record_quarantined"
NOT_SHIPPED = "not_shipped_by_customer"
PUSH_FAILED_FLAG = "decision_push_failed"
"""Told as its own event (push_failed, once per failed act), so not again as a new flag."""


def customer_scope(channel: str) -> str:
    return f"customers:{channel}"


def _insert_ignoring_duplicates(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert what is not there yet (by the table's unique keys); returns how many rows were new."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    added = 0
    for start in range(0, len(rows), 500):  # well under SQLite's limit of bound parameters per statement
        # RETURNING, not rowcount: psycopg reports -1 for a multi-row INSERT … ON CONFLICT DO NOTHING
        key = next(iter(table.primary_key.columns))
        added += len(conn.execute(dialect.insert(table).values(rows[start:start + 500])
                                  .on_conflict_do_nothing().returning(key)).all())
    return added


def watermark(conn: Connection, scope: str, now: datetime) -> datetime:
    """The moment `scope` was first switched on, recorded now if it never was."""
    _insert_ignoring_duplicates(conn, watermarks_t, [{"scope": scope, "started_at": now}])
    return conn.execute(select(NotificationWatermark.started_at).where(NotificationWatermark.scope == scope)).scalar_one()


@dataclass(frozen=True)
class Audience:
    """Who gets an event kind and through which transports."""

    name: str
    transports: tuple[str, ...]
    language: str


def _after(channel_time: Any, seen: Any, since: datetime) -> Any:
    """A time the channel reported is after the watermark: retsync saw the change after it (`seen`, its own clock),
    and the channel's time is not older — give or take CLOCK_SLACK for a channel clock that is behind or that
    reports whole seconds or days."""
    return and_(seen >= since, channel_time >= since - CLOCK_SLACK)


def _reached(status: str, channel_time: Any, seen: Any, since: datetime) -> Any:
    """The return got to `status` after the watermark. Where the channel says when (`channel_time`), by that;
    where it does not (Allegro reports a delivered parcel without a time), by retsync having seen the status
    change after the watermark — a change, not a return first seen in that status, which may be history."""
    watched = exists().where(ReturnEvent.return_id == Return.id, ReturnEvent.return_line_id.is_(None),
                             ReturnEvent.kind == "status", ReturnEvent.new_value == status,
                             ReturnEvent.old_value.is_not(None), ReturnEvent.at >= since)
    return or_(_after(channel_time, seen, since), and_(channel_time.is_(None), watched))


def _key(kind: str, column: Any) -> Any:
    return literal(f"{kind}:") + cast(column, String)


def _not_yet(kind: str, column: Any) -> Any:
    return ~exists().where(Notification.event_key == _key(kind, column))


def _lines(conn: Connection, return_ids: Iterable[int]) -> dict[int, str]:
    text: dict[int, list[str]] = {}
    ids = sorted(set(return_ids))
    for start in range(0, len(ids), 500):
        for row in conn.execute(
            select(ReturnLine.return_id, ReturnLine.quantity, ReturnLine.title, ReturnLine.sku)
            .where(ReturnLine.return_id.in_(ids[start:start + 500])).order_by(ReturnLine.return_id, ReturnLine.id)
        ):
            label = row.title or row.sku or "item"
            sku = f" ({row.sku})" if row.sku and row.title else ""
            text.setdefault(row.return_id, []).append(f"  {row.quantity} × {label}{sku}")
    return {key: "\n".join(value) for key, value in text.items()}


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return ""
    return f"{amount / 100:.2f} {currency or ''}".strip()


_RETURN_COLUMNS = (Return.id.label("return_id"), Channel.id.label("channel_id"), Channel.name.label("channel"),
                   Return.external_id, Return.order_external_id, Return.status, Return.reason,
                   Return.channel_reason, Return.created_at, Return.refund_amount, Return.currency,
                   Return.customer_name, Return.customer_email, Return.customer_phone)

TEAM_FREE_TEXT = ("flag_detail", "error")
"""Team payload texts retsync did not write itself (a channel's error body, a rule's detail quoting channel data):
secrets, e-mail addresses and the return's own customer values are redacted in them."""


def _facts(row: Any, lines: Mapping[int, str], *, customer: bool) -> dict[str, Any]:
    """What a message may say about a return. Personal data only goes into the customer's own e-mail, never to the
    team or the webhook: that includes the reason the customer typed (it may name them, their address, their
    illness), so the team reads the reason as retsync sorted it (`defective`, `wrong_size`, ...)."""
    facts = {
        "return_id": row.return_id, "channel": row.channel, "external_id": row.external_id,
        "order": row.order_external_id or "-", "status": row.status,
        "reason": (row.channel_reason if customer else None) or row.reason or "-",
        "lines": lines.get(row.return_id, "  -"),
        "registered_on": row.created_at.date().isoformat(), "amount": _money(row.refund_amount, row.currency),
    }
    if customer:
        facts["customer_name"] = row.customer_name
    return facts


def _team_payload(row: Any, facts: dict[str, Any]) -> dict[str, Any]:
    known = (row.customer_name, row.customer_email, row.customer_phone)
    return {key: scrub(value, known) if key in TEAM_FREE_TEXT and isinstance(value, str) else value
            for key, value in facts.items()}


class Deriver:
    """Turns database state into outbox rows for the configured channels."""

    def __init__(self, db: Engine, notify: NotifySettings, channels: Mapping[str, ChannelSettings]) -> None:
        self.db = db
        self.notify = notify
        self.channels = {name: settings for name, settings in channels.items() if settings.enabled}

    def team(self) -> Audience | None:
        transports = tuple(name for name, on in (("email", bool(self.notify.smtp_host and self.notify.team_emails)),
                                                  ("webhook", bool(self.notify.webhook_url))) if on)
        return Audience("team", transports, self.notify.team_language) if transports else None

    def derive(self, now: datetime) -> int:
        """Insert every new event into the outbox; returns how many notifications were added."""
        added = 0
        with self.db.begin() as conn:
            ids = dict(conn.execute(select(Channel.name, Channel.id).where(Channel.name.in_(list(self.channels)))).all())
            if not ids:
                return 0
            team = self.team()
            if team is not None:
                since = watermark(conn, TEAM_SCOPE, now)
                rows = self._team_events(conn, list(ids.values()), since)
                if QUARANTINED in self.notify.team_events:
                    rows += self._quarantine_events(conn, list(ids.values()), since)
                added += self._write(conn, team, rows, now)
                self._drop_resolved(conn, now)
            if self.notify.smtp_host:
                for name, settings in self.channels.items():
                    if settings.notify_customers and name in ids:
                        since = watermark(conn, customer_scope(name), now)
                        audience = Audience("customer", ("email",), self.notify.language_of(name))
                        added += self._write(conn, audience, self._customer_events(conn, ids[name], since), now)
        return added

    def _write(self, conn: Connection, audience: Audience, events: list[tuple[str, str, Any, dict[str, Any]]],
               now: datetime) -> int:
        rows = []
        for kind, key, source, payload in events:
            for transport in audience.transports:
                rows.append({
                    "event_key": key, "transport": transport, "audience": audience.name, "kind": kind,
                    "channel_id": source.channel_id, "return_id": source.return_id,
                    "recipient": source.customer_email if audience.name == "customer" else None,
                    "language": audience.language, "payload": payload, "state": PENDING, "attempts": 0,
                    "next_attempt_at": None, "last_error": None, "created_at": now, "updated_at": now,
                    "sent_at": None,
                })
        return _insert_ignoring_duplicates(conn, notifications_t, rows)

    def _team_events(self, conn: Connection, channel_ids: list[int], since: datetime) -> list[tuple[str, str, Any, dict[str, Any]]]:
        wanted = set(self.notify.team_events)
        base = select(*_RETURN_COLUMNS).join(Channel, Channel.id == Return.channel_id).where(
            Return.channel_id.in_(channel_ids))
        found: list[tuple[str, str, Any, dict[str, Any]]] = []
        if "new_return" in wanted:
            for row in conn.execute(base.where(_after(Return.created_at, Return.first_seen_at, since), _not_yet("new_return", Return.id))
                                    .order_by(Return.id)):
                found.append(("new_return", f"new_return:{row.return_id}", row, {}))
        if "received" in wanted:
            undecided = ~exists().where(Decision.return_id == Return.id)
            for row in conn.execute(base.where(
                    Return.status == ReturnStatus.RECEIVED.value,
                    _reached(ReturnStatus.RECEIVED.value, Return.received_at, Return.updated_at, since),
                    Return.handled_by_channel.is_(False), undecided, _not_yet("received", Return.id))
                    .order_by(Return.id)):
                found.append(("received", f"received:{row.return_id}", row, {}))
        if "new_flag" in wanted:
            for row in conn.execute(
                    base.add_columns(ReturnFlag.id.label("flag_id"), ReturnFlag.code, ReturnFlag.detail)
                    .join(ReturnFlag, ReturnFlag.return_id == Return.id)
                    .where(ReturnFlag.flagged_at >= since, ReturnFlag.resolved_at.is_(None),
                           ReturnFlag.code != PUSH_FAILED_FLAG, _not_yet("new_flag", ReturnFlag.id))
                    .order_by(ReturnFlag.id)):
                found.append(("new_flag", f"new_flag:{row.flag_id}", row,
                              {"flag_code": row.code, "flag_detail": row.detail or ""}))
        if "push_failed" in wanted:
            same_act = aliased(Decision)
            first_of_act = select(func.min(same_act.id)).where(same_act.act_key == Decision.act_key).scalar_subquery()
            for row in conn.execute(  # one message per failed act (a whole return), named by its first decision
                    base.add_columns(Decision.id.label("decision_id"), Decision.kind, Decision.attempts,
                                     Decision.last_error)
                    .join(Decision, Decision.return_id == Return.id)
                    .where(Decision.state == DecisionState.FAILED.value, Decision.origin.in_(PUSHED_ORIGINS),
                           Decision.updated_at >= since, Decision.id == first_of_act,
                           _not_yet("push_failed", Decision.id))
                    .order_by(Decision.id)):
                found.append(("push_failed", f"push_failed:{row.decision_id}", row,
                              {"decision": row.kind, "attempts": row.attempts, "error": row.last_error or ""}))
        lines = _lines(conn, [row.return_id for _, _, row, _ in found])
        return [(kind, key, row, _team_payload(row, {**_facts(row, lines, customer=False), **extra}))
                for kind, key, row, extra in found]

    def _quarantine_events(self, conn: Connection, channel_ids: list[int], since: datetime
                           ) -> list[tuple[str, str, Any, dict[str, Any]]]:
        """One event per quarantine row set aside after the watermark and still open: the team should look at a
        record retsync could not read or store, or ask the channel to fix it. Never the payload: the facts are
        retsync's own, and the reason has the record's name, e-mail, phone and address values redacted, in case
        an error quoted what it could not read."""
        found: list[tuple[str, str, Any, dict[str, Any]]] = []
        for row in conn.execute(
                select(QuarantinedRecord.id.label("quarantine_id"), Channel.id.label("channel_id"),
                       null().label("return_id"), Channel.name.label("channel"), QuarantinedRecord.stream,
                       QuarantinedRecord.kind, QuarantinedRecord.external_id, QuarantinedRecord.reason,
                       QuarantinedRecord.payload, QuarantinedRecord.times_seen, QuarantinedRecord.first_seen_at)
                .join(Channel, Channel.id == QuarantinedRecord.channel_id)
                .where(QuarantinedRecord.channel_id.in_(channel_ids), QuarantinedRecord.first_seen_at >= since,
                       QuarantinedRecord.resolved_at.is_(None), _not_yet(QUARANTINED, QuarantinedRecord.id))
                .order_by(QuarantinedRecord.id)):
            found.append((QUARANTINED, f"{QUARANTINED}:{row.quarantine_id}", row, {
                "quarantine_id": row.quarantine_id, "channel": row.channel, "stream": row.stream,
                "record_kind": row.kind, "external_id": row.external_id or "-",
                "reason": scrub(row.reason, personal_values(row.payload)), "times_seen": row.times_seen,
                "first_seen_at": row.first_seen_at.isoformat()}))
        return found

    @staticmethod
    def _drop_resolved(conn: Connection, now: datetime) -> None:
        """A quarantine notification still waiting (to be sent, or for its retry) whose record has since been read
        normally is dropped: the team would be sent to look at a problem that is gone. One being sent right now
        (its lease running) is left to finish."""
        resolved = exists().where(Notification.event_key == _key(QUARANTINED, QuarantinedRecord.id),
                                  QuarantinedRecord.resolved_at.is_not(None))
        conn.execute(update(notifications_t).where(
            notifications_t.c.kind == QUARANTINED,
            or_(notifications_t.c.state == PENDING,
                and_(notifications_t.c.state == SENDING, notifications_t.c.next_attempt_at <= now)),
            resolved).values(state=DROPPED, next_attempt_at=None, last_error=None, updated_at=now))

    def _customer_events(self, conn: Connection, channel_id: int, since: datetime) -> list[tuple[str, str, Any, dict[str, Any]]]:
        base = select(*_RETURN_COLUMNS).join(Channel, Channel.id == Return.channel_id).where(
            Return.channel_id == channel_id, Return.customer_email.is_not(None), Return.customer_email != "",
            Return.handled_by_channel.is_(False))
        found: list[tuple[str, str, Any, dict[str, Any]]] = []
        for kind, reached in (
                ("customer_registered", _after(Return.created_at, Return.first_seen_at, since)),
                ("customer_received", _reached(ReturnStatus.RECEIVED.value, Return.received_at, Return.updated_at,
                                               since)),
                ("customer_refunded", _reached(ReturnStatus.REFUNDED.value, Return.refunded_at, Return.updated_at,
                                               since))):
            for row in conn.execute(base.where(reached, _not_yet(kind, Return.id)).order_by(Return.id)):
                found.append((kind, f"{kind}:{row.return_id}", row, {}))
        pushed_since = exists().where(Decision.return_id == Return.id, Decision.pushed_at >= since,
                                      Decision.state == DecisionState.PUSHED.value)
        decided = list(conn.execute(base.where(or_(_after(Return.decided_at, Return.updated_at, since), pushed_since),
                                               _not_yet("customer_decided", Return.id)).order_by(Return.id)))
        kinds: dict[int, list[str]] = {}
        if decided:
            for row in conn.execute(
                    select(Decision.return_id, Decision.kind).where(
                        Decision.return_id.in_([row.return_id for row in decided]),
                        Decision.state.in_((DecisionState.PUSHED.value, DecisionState.SYNCED.value)))
                    .order_by(Decision.id)):
                if row.kind not in kinds.setdefault(row.return_id, []):
                    kinds[row.return_id].append(row.kind)
        for row in decided:
            if kinds.get(row.return_id):  # without a known decision there is nothing to tell yet
                found.append(("customer_decided", f"customer_decided:{row.return_id}", row,
                              {"decisions": kinds[row.return_id]}))
        for row in conn.execute(
                base.add_columns(ReturnFlag.id.label("flag_id"))
                .join(ReturnFlag, and_(ReturnFlag.return_id == Return.id,
                                       ReturnFlag.code == NOT_SHIPPED))
                .where(ReturnFlag.flagged_at >= since, ReturnFlag.resolved_at.is_(None),
                       _not_yet("customer_reminder", ReturnFlag.id))
                .order_by(ReturnFlag.id)):
            found.append(("customer_reminder", f"customer_reminder:{row.flag_id}", row, {}))
        lines = _lines(conn, [row.return_id for _, _, row, _ in found])
        return [(kind, key, row, {**_facts(row, lines, customer=True), **extra}) for kind, key, row, extra in found]
