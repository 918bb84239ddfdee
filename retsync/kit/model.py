"""The unified model every channel is translated into.

Connectors speak their API; the store, reconciliation and reports speak only
this. The channel's own status and reason strings always travel beside the
unified values, so nothing a marketplace said is lost in translation and an
unknown enum value is kept verbatim instead of crashing a sync.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ReturnStatus(StrEnum):
    """Where a return is in its life, in the same words for every channel."""

    REQUESTED = "requested"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    DECIDED = "decided"
    REFUNDED = "refunded"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class DecisionKind(StrEnum):
    """What the merchant decided about a returned line."""

    ACCEPT = "accept"
    REJECT = "reject"
    REPAIR = "repair"
    EXCHANGE = "exchange"
    KEEP = "keep"
    CANCEL = "cancel"


class DecisionState(StrEnum):
    """The outbox state of a decision.

    `synced` is for decisions the channel itself reports (a marketplace
    warehouse handled the return): they are history, never pushed.
    """

    PENDING = "pending"
    SENDING = "sending"
    PUSHED = "pushed"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    SYNCED = "synced"


class ReturnReason(StrEnum):
    """A coarse reason, so reports can compare channels; the channel's words are kept too."""

    WRONG_SIZE = "wrong_size"
    NOT_AS_EXPECTED = "not_as_expected"
    DEFECTIVE = "defective"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    ORDERED_BY_MISTAKE = "ordered_by_mistake"
    BETTER_PRICE = "better_price"
    DELIVERY_PROBLEM = "delivery_problem"
    NO_LONGER_NEEDED = "no_longer_needed"
    OTHER = "other"
    UNKNOWN = "unknown"


def utc(value: datetime) -> datetime:
    """Normalise to aware UTC; a naive value from a channel is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    """Now, aware and in UTC: the one clock the daemon, the store and the outbox stamp records with."""
    return datetime.now(timezone.utc)


UTCDateTime = Annotated[datetime, AfterValidator(utc)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Record):
    external_id: str
    sku: str | None = None
    ean: str | None = None
    title: str | None = None
    quantity: int = Field(ge=0)
    unit_price: int | None = Field(default=None, description="minor units")
    currency: str | None = None


class Customer(_Record):
    """Who bought or returned; used for grouping a customer across channels, logged only redacted."""

    email: str | None = None
    name: str | None = None
    phone: str | None = None
    postcode: str | None = None


class Order(_Record):
    external_id: str
    placed_at: UTCDateTime | None = None
    delivered_at: UTCDateTime | None = Field(
        default=None, description="when the buyer received the parcel, where the channel says: the return window "
        "counts from here, else from `placed_at`")
    channel_status: str | None = None
    currency: str | None = None
    total_amount: int | None = None
    customer: Customer = Customer()
    lines: tuple[OrderLine, ...] = ()


class ReturnLine(_Record):
    external_id: str
    order_external_id: str | None = None
    order_line_external_id: str | None = None
    sku: str | None = None
    ean: str | None = None
    title: str | None = None
    quantity: int = Field(ge=0)
    reason: ReturnReason = ReturnReason.UNKNOWN
    channel_reason: str | None = None
    customer_comment: str | None = None
    channel_status: str | None = None
    unit_price: int | None = None
    currency: str | None = None
    channel_decision: DecisionKind | None = Field(
        default=None,
        description="a decision the channel reports as already taken (e.g. by a marketplace warehouse)",
    )
    channel_decision_quantity: int | None = None


class Return(_Record):
    external_id: str
    order_external_id: str | None = None
    status: ReturnStatus
    channel_status: str | None = None
    reason: ReturnReason = ReturnReason.UNKNOWN
    channel_reason: str | None = None
    created_at: UTCDateTime
    received_at: UTCDateTime | None = None
    decided_at: UTCDateTime | None = None
    refunded_at: UTCDateTime | None = None
    refund_amount: int | None = None
    currency: str | None = None
    customer: Customer = Customer()
    handled_by_channel: bool = Field(
        default=False,
        description="the channel handles this return itself (FBB, One Fulfillment): stored, never pushed",
    )
    tracking_number: str | None = None
    carrier: str | None = None
    marketplace: str | None = Field(
        default=None,
        description="the marketplace behind a return that reaches retsync through a feed platform (`amazon` for "
        "a return Channable passes on), so reports tell Amazon via Channable from the channel itself; None where "
        "the channel is the marketplace",
    )
    is_test: bool = Field(
        default=False,
        description="a test or demo return the channel marks as one (Channable's `is_test_return`): stored and "
        "shown, never counted in the report or the figure views",
    )
    lines: tuple[ReturnLine, ...] = ()
    revision: str | None = Field(
        default=None,
        description="changes whenever the channel's record changes (an updatedAt, a hash of the list entry); "
        "lets the engine tell an unchanged re-read from an update",
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="channel-specific facts worth keeping")
