"""The notification pass: derive new events, then send what is due, each notification once.

Like decisions (retsync/outbox/decisions.py), a notification is claimed — state `sending`, attempt counted, a lease set —
and the claim is committed before the e-mail or webhook goes out; the outcome is committed right after. A sent
notification is never picked up again, whatever restarts. Should the daemon die between the server's "accepted"
and that commit, the lease runs out and it is sent once more, with the same Message-ID / X-Retsync-Delivery so
the receiver can tell. Failures retry with jittered exponential backoff and end as `failed`, shown by
`retsync channels` and logged. A quarantine notification whose record was read normally before it went out ends
as `dropped` (events.Deriver._drop_resolved), unsent. On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, func, or_, select, update

from retsync.config import Config
from retsync.kit.model import utcnow
from retsync.logs import remember_customers, scrub
from retsync.notify import send
from retsync.notify.events import Deriver
from retsync.notify.templates import Message, TemplateError, Templates
from retsync.outbox.push import retry_delay
from retsync.safe_text import for_chat
from retsync.store.models import Channel, Notification

log = structlog.get_logger(__name__)

notifications_t = Notification.__table__

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MAX_DELAY = timedelta(hours=6)


@dataclass
class NotifySummary:
    derived: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0
    """Not tried in this pass because their transport's server could not be used; attempts not counted."""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    event_key: str
    transport: str
    audience: str
    recipient: str | None
    language: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    channel: str | None


class Notifier:
    def __init__(self, db: Engine, config: Config, *, clock: Callable[[], datetime] = utcnow,
                 lease: timedelta = timedelta(minutes=5), webhook_transport: httpx.BaseTransport | None = None) -> None:
        self.db = db
        self.config = config
        self.settings = config.settings.notify
        self.clock = clock
        self.lease = lease
        self.webhook_transport = webhook_transport
        self.templates = Templates(self.settings.templates_dir)

    def run(self) -> NotifySummary:
        """One pass: new events into the outbox, then every due notification sent once."""
        summary = NotifySummary()
        if not self.settings.enabled:
            return summary
        summary.derived = Deriver(self.db, self.settings, self.config.channels).derive(self.clock())
        transports = [name for name, on in (("email", bool(self.settings.smtp_host)),
                                            ("webhook", bool(self.settings.webhook_url))) if on]
        down: dict[str, datetime] = {}  # transport whose server could not be used -> when to try it again
        while True:
            usable = [name for name in transports if name not in down]
            claimed = self._claim(usable, 100) if usable else []
            for item in claimed:
                if item.transport in down:
                    self._release(item, down[item.transport], summary)
                    continue
                # a server's answer, a crash's traceback may quote the recipient or the customer's name back
                remember_customers((item.recipient, item.payload.get("customer_name")))
                failure = self._send(item)
                retry_at = self._record(item, failure, summary)
                if failure is not None and failure.unreachable:
                    down[item.transport] = retry_at or self.clock() + self.settings.retry_base
            if len(claimed) < 100:
                remember_customers(())
                if down:
                    log.warning("notifications_deferred", transports=sorted(down), count=summary.deferred)
                return summary

    def _release(self, item: Claimed, retry_at: datetime, summary: NotifySummary) -> None:
        """Hand a claim back untried, due when the failing server is tried again."""
        summary.deferred += 1
        with self.db.begin() as conn:
            conn.execute(update(notifications_t).where(notifications_t.c.id == item.id).values(
                state=PENDING, attempts=item.attempts - 1, next_attempt_at=retry_at, updated_at=self.clock()))

    def _claim(self, transports: list[str], limit: int) -> list[Claimed]:
        now = self.clock()
        with self.db.begin() as conn:
            rows = conn.execute(
                select(Notification.id, Notification.kind, Notification.event_key, Notification.transport,
                       Notification.audience, Notification.recipient, Notification.language, Notification.payload,
                       Notification.attempts, Notification.created_at, Channel.name.label("channel"))
                .outerjoin(Channel, Channel.id == Notification.channel_id)
                .where(Notification.state.in_((PENDING, SENDING)), Notification.transport.in_(transports),
                       or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now))
                .order_by(Notification.id).limit(limit)
                .with_for_update(skip_locked=True, of=notifications_t)
            ).all()
            for row in rows:
                conn.execute(update(notifications_t).where(notifications_t.c.id == row.id).values(
                    state=SENDING, attempts=row.attempts + 1, next_attempt_at=now + self.lease, updated_at=now))
        return [Claimed(row.id, row.kind, row.event_key, row.transport, row.audience, row.recipient, row.language,
                        dict(row.payload), row.attempts + 1, row.created_at, row.channel) for row in rows]

    def _values(self, item: Claimed) -> dict[str, Any]:
        """The placeholders of the message; for a webhook with the chat markup in them escaped, since a chat tool
        renders the text (the template's own markup, written by the merchant, stays)."""
        values = dict(item.payload)
        values["shop"] = self.settings.sender_name or item.channel or ""
        words = self.templates.words(item.language)
        if item.audience == "customer":
            values["customer_name"] = values.get("customer_name") or words.get("customer_name", "")
        if "record_kind" in values:  # a quarantined record: "return" / "order" in the team's language
            values["record"] = words.get(f"record_{values['record_kind']}", values["record_kind"])
        decisions = values.pop("decisions", None)
        if decisions:
            values["decision"] = "; ".join(words.get(kind, kind) for kind in decisions)
        if item.transport == "webhook":
            values = {key: for_chat(value) if isinstance(value, str) else value for key, value in values.items()}
        return values

    def _send(self, item: Claimed) -> send.SendFailed | None:
        try:
            message: Message = self.templates.render(item.language, item.kind, self._values(item))
            if item.transport == "webhook":
                body = send.webhook_body(item.id, item.kind, item.event_key, item.created_at, message, item.payload)
                send.post_webhook(self.settings, body, item.kind, item.id, self.webhook_transport)
            else:
                if item.audience == "customer":
                    to = [send.one_address(item.recipient, "the customer's")]
                else:
                    to = [send.one_address(address, "the team_emails") for address in self.settings.team_emails]
                if not to:
                    return send.SendFailed("no recipient: set [notify] team_emails", permanent=True)
                send.send_email(self.settings, send.build_email(self.settings, to, message, item.id, self.clock()))
        except send.SendFailed as exc:
            return exc
        except TemplateError as exc:
            return send.SendFailed(str(exc))  # retried: fixing the template file lets it go out
        except Exception as exc:  # a bug must not lose the notification: it is retried and visible
            log.exception("notification_crashed", notification_id=item.id)
            return send.SendFailed(f"{type(exc).__name__}: {exc}")
        return None

    def _record(self, item: Claimed, failure: send.SendFailed | None, summary: NotifySummary) -> datetime | None:
        """Store the outcome; returns when it will be retried, if it will."""
        now = self.clock()
        values: dict[str, Any] = {"updated_at": now}
        error = scrub(str(failure)) if failure is not None else None
        where = {"notification_id": item.id, "kind": item.kind, "transport": item.transport,
                 "channel": item.channel, "attempt": item.attempts}
        if item.audience == "customer":
            where["customer_email"] = item.recipient  # redacted by the log pipeline
        if failure is None:
            values.update(state=SENT, sent_at=now, next_attempt_at=None, last_error=None)
            summary.sent += 1
            log.info("notification_sent", **where)
        elif failure.permanent or item.attempts >= self.settings.max_attempts:
            if not failure.permanent:
                error = f"gave up after {item.attempts} attempts: {error}"
            values.update(state=FAILED, next_attempt_at=None, last_error=error)
            summary.failed += 1
            summary.errors.append(f"{item.channel or '-'}: notification {item.id} ({item.kind}): {error}")
            log.error("notification_failed", error=error, **where)
        else:
            delay = retry_delay(self.settings.retry_base, item.attempts, MAX_DELAY)
            retry_at = now + delay
            values.update(state=PENDING, next_attempt_at=retry_at, last_error=error)
            summary.retrying += 1
            log.warning("notification_retry", error=error, retry_in_s=round(delay.total_seconds()), **where)
        with self.db.begin() as conn:
            conn.execute(update(notifications_t).where(notifications_t.c.id == item.id).values(**values))
        return values.get("next_attempt_at")


@dataclass(frozen=True)
class ChannelNotifications:
    failed: int
    retrying: int
    last_error: str | None


def notification_problems(db: Engine) -> Mapping[str, ChannelNotifications]:
    """Per channel name: notifications that failed for good or are waiting to retry, and the newest error."""
    found: dict[str, ChannelNotifications] = {}
    with db.connect() as conn:
        rows = conn.execute(
            select(Channel.name, Notification.state, func.count(), func.max(Notification.updated_at))
            .join(Channel, Channel.id == Notification.channel_id)
            .where(or_(Notification.state == FAILED, Notification.last_error.is_not(None)),
                   Notification.state != SENT)
            .group_by(Channel.name, Notification.state)
        ).all()
        for name in {row[0] for row in rows}:
            failed = sum(row[2] for row in rows if row[0] == name and row[1] == FAILED)
            retrying = sum(row[2] for row in rows if row[0] == name and row[1] != FAILED)
            last = conn.execute(
                select(Notification.last_error).join(Channel, Channel.id == Notification.channel_id)
                .where(Channel.name == name, Notification.state != SENT, Notification.last_error.is_not(None))
                .order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(1)).scalar()
            found[name] = ChannelNotifications(failed, retrying, last)
    return found
