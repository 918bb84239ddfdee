"""The tables. The schema is created and changed only by the Alembic migrations in `migrations/`.

Natural keys `(channel, external id)` are unique, so a re-pull updates and
never duplicates. Money is integer minor units beside an ISO currency; every
time is UTC and comes back timezone-aware on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python; `timestamptz` on PostgreSQL, naive-UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the store; every time must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
Amount = BigInteger


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), int: Integer()}


class Channel(Base):
    """A configured channel, with what `retsync channels` shows about its health."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    connector: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    last_pull_started_at: Mapped[datetime | None]
    last_pull_finished_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    rate_limit_waits: Mapped[int] = mapped_column(default=0, server_default="0")
    """Requests the channel held back (429, quota, Retry-After) since the channel was added; with their seconds."""
    rate_limit_wait_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    last_rate_limited_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]


class SyncCursor(Base):
    """Where a stream resumes; saved only in the transaction that stored the page before it."""

    __tablename__ = "sync_cursors"

    channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(50), primary_key=True)
    cursor: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    placed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    channel_status: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str | None] = mapped_column(String(3))
    total_amount: Mapped[int | None] = mapped_column(Amount)
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(300))
    customer_phone: Mapped[str | None] = mapped_column(String(50))
    customer_postcode: Mapped[str | None] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    customer_group_id: Mapped[int | None] = mapped_column(Id, index=True)  # customer_groups.id, kept by reconcile
    customer_match: Mapped[str | None] = mapped_column(String(20))


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(200), index=True)
    ean: Mapped[str | None] = mapped_column(String(50), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int]
    unit_price: Mapped[int | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))


class Return(Base):
    __tablename__ = "returns"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index("ix_returns_channel_status", "channel_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    order_external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    order_id: Mapped[int | None] = mapped_column(Id, ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(30))
    channel_status: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(50))
    channel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    refund_amount: Mapped[int | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(300))
    customer_phone: Mapped[str | None] = mapped_column(String(50))
    customer_postcode: Mapped[str | None] = mapped_column(String(20))
    handled_by_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    tracking_number: Mapped[str | None] = mapped_column(String(200))
    carrier: Mapped[str | None] = mapped_column(String(200))
    marketplace: Mapped[str | None] = mapped_column(String(100))
    is_test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    extra: Mapped[dict[str, Any]]
    revision: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    customer_group_id: Mapped[int | None] = mapped_column(Id, index=True)  # customer_groups.id, kept by reconcile
    customer_match: Mapped[str | None] = mapped_column(String(20))
    """Which rule put this return in its customer group: email, phone or name_postcode."""


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (UniqueConstraint("return_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    order_external_id: Mapped[str | None] = mapped_column(String(200))
    order_line_external_id: Mapped[str | None] = mapped_column(String(200))
    order_line_id: Mapped[int | None] = mapped_column(Id, ForeignKey("order_lines.id", ondelete="SET NULL"), index=True)
    link_method: Mapped[str | None] = mapped_column(String(30))
    sku: Mapped[str | None] = mapped_column(String(200))
    ean: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int]
    reason: Mapped[str | None] = mapped_column(String(50))
    channel_reason: Mapped[str | None] = mapped_column(Text)
    customer_comment: Mapped[str | None] = mapped_column(Text)
    channel_status: Mapped[str | None] = mapped_column(String(200))
    unit_price: Mapped[int | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))


class Decision(Base):
    """One decision on one return line, and its outbox state.

    Decisions recorded together share `act_key`: the outbox carries them out as one act at the channel (one
    refund for all the lines), under that key on every attempt, so a channel that dedupes on it can never
    apply it twice; their states move together. `idempotency_key` is the line's own, unique.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_due", "state", "next_attempt_at"),
        Index("ix_decisions_line", "return_line_id", "id"),
        Index("ix_decisions_act", "act_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    return_line_id: Mapped[int] = mapped_column(Id, ForeignKey("return_lines.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    act_key: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    pushed_at: Mapped[datetime | None]


class ReturnEvent(Base):
    """Append-only history: every status change and decision step, with where it came from."""

    __tablename__ = "return_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    return_line_id: Mapped[int | None] = mapped_column(Id, ForeignKey("return_lines.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class HeldReturn(Base):
    """A marketplace return put into a shop's back office (`decisions_from`), and the decision read back.

    One row per return (unique), so the shop is asked to create it once; `key` goes with it to the shop so a
    retry after a lost answer finds what the first attempt created.
    """

    __tablename__ = "held_returns"
    __table_args__ = (
        Index("ix_held_returns_due", "state", "next_attempt_at"),
        Index("ix_held_returns_shop", "shop_channel_id", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"), unique=True)
    shop_channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    decided_kind: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomerGroup(Base):
    """One customer across channels: the returns and orders that share an e-mail, phone, or name + postcode."""

    __tablename__ = "customer_groups"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomerKey(Base):
    """A normalised contact key (`email:…`, `phone:…`, `name_postcode:…`) and the customer group it belongs to.

    Kept so that a new order or return finds its group by an indexed look-up of its own keys.
    """

    __tablename__ = "customer_keys"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    group_id: Mapped[int] = mapped_column(Id, ForeignKey("customer_groups.id", ondelete="CASCADE"), index=True)
    purchase: Mapped[str] = mapped_column(String(40))
    """The order (`o:<id>`) or lone return (`r:<id>`) that brought the key: sharing it with that same purchase
    is no match."""
    created_at: Mapped[datetime]


class ReturnFlag(Base):
    """Something wrong with a return (or one of its lines) that a person should look at.

    Recomputed after every pull: a flag that no longer holds gets `resolved_at`, one that holds again is
    reopened, so the table is both the current list and its history.
    """

    __tablename__ = "return_flags"
    __table_args__ = (Index("ix_return_flags_code", "code", "resolved_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    return_line_id: Mapped[int | None] = mapped_column(Id, ForeignKey("return_lines.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class Notification(Base):
    """One message to send (an e-mail or a webhook call), written once per event and transport.

    `(event_key, transport)` is unique, so deriving the same event again inserts nothing, and a notification that
    was sent is never sent again, whatever restarts in between. The payload holds the facts of the event as they
    were when it was derived; it never holds a secret.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_key", "transport"),
        Index("ix_notifications_due", "state", "next_attempt_at"),
        Index("ix_notifications_channel", "channel_id", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200))
    transport: Mapped[str] = mapped_column(String(20))
    audience: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    channel_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    return_id: Mapped[int | None] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"))
    recipient: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class NotificationWatermark(Base):
    """When notifications of one scope (`team`, `customers:<channel>`) were first switched on.

    Only events from then on are sent, so switching notifications on does not mail out the whole history.
    """

    __tablename__ = "notification_watermarks"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]


class QuarantinedRecord(Base):
    """A record of a channel that could not be read or stored, kept aside so its page (and channel) goes on.

    One row per channel, kind and record (`record_key`: the external id, or a digest of the payload when even
    that is unreadable). Seen again unreadable, the row is updated; stored normally later, it gets
    `resolved_at`. `payload` is the channel's record as JSON text, size-capped, secret-looking keys dropped.
    """

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("channel_id", "kind", "record_key"),
        Index("ix_quarantine_open", "channel_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    record_key: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    payload_size: Mapped[int]
    times_seen: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """A delivery accepted by the returns webhook (`POST /hooks/<channel>`), by the id its sender gave it.

    Unique per channel, so a sender retrying a delivery whose answer it lost (or a replayed request) changes
    nothing the second time; the row is written in the transaction that stores the return.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("channel_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Id, ForeignKey("channels.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(200))
    return_external_id: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]


class Parcel(Base):
    """A return's parcel followed at its carrier (InPost ShipX tracking), and what was last seen of it.

    One row per return and tracking number. `status` is the carrier's own word, `milestone` what retsync made
    of it (in_transit, received, or a problem: canceled, missing, returned_to_sender, raised as the flag
    parcel_problem); `next_check_at` paces the tracking job, and a parcel that arrived or failed is `done`.
    """

    __tablename__ = "parcels"
    __table_args__ = (
        UniqueConstraint("return_id", "tracking_number"),
        Index("ix_parcels_due", "done", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    return_id: Mapped[int] = mapped_column(Id, ForeignKey("returns.id", ondelete="CASCADE"))
    carrier: Mapped[str] = mapped_column(String(50))
    tracking_number: Mapped[str] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(100))
    status_at: Mapped[datetime | None]
    milestone: Mapped[str | None] = mapped_column(String(30))
    problem: Mapped[str | None] = mapped_column(String(100))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    checks: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
