"""The keys every channel table has, which a connector's own settings model extends.

A connector subclasses `ChannelSettings` with its own keys (their `description`s are what `retsync connectors`
and the README show the merchant) and declares it as `Connector.settings_model`; the config validates each
`[channels.<name>]` table with it at start-up, so a typo is reported before the first pull.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ByteSize, ConfigDict, Field, PlainSerializer

CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A channel's name becomes a file name (`tokens/<name>.json`) and a log field: nothing that can climb out."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> object:
    """Seconds as a number, or a string like "90s", "5m", "1h", "2d"."""
    if isinstance(value, timedelta) or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration; write seconds (90) or "90s", "5m", "1h", "2d"')
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


def format_duration(value: timedelta) -> str:
    """The way a config file writes it ("5m", "90s", "250ms"), so `retsync config check` shows what was set
    rather than ISO 8601's PT5M; `parse_duration` reads it back to the same value."""
    seconds = value.total_seconds()
    milliseconds = round(seconds * 1000)
    if milliseconds == 0 or abs(milliseconds / 1000 - seconds) > 1e-9:
        return f"{seconds:g}s"  # zero, or finer than a millisecond
    for unit in ("d", "h", "m", "s"):
        size = round(_UNIT_SECONDS[unit] * 1000)
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, when_used="json")]


FRESH_POLL_INTERVAL = timedelta(seconds=45)
"""The poll interval of a connector whose API's limits allow a poll a minute: a new return is in `v_returns`
within 60 s (p95), the daemon's jitter of up to 10 s per run included (python -m bench.freshness)."""


def fresh_poll_interval() -> Any:
    """`poll_interval: Duration = fresh_poll_interval()` in a connector's settings whose API allows a poll a
    minute; the kit's own default (5 minutes) stays for the others, and for connectors that do not say."""
    return Field(default=FRESH_POLL_INTERVAL, description="time between pulls (45s: a new return is visible "
                 "within a minute; the API's limits allow it)")


class ChannelSettings(BaseModel):
    """Keys every channel has; a connector subclasses this with its own keys.

    Unknown keys are refused: a misspelt `poll_intervall` must not silently
    fall back to a default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    connector: str = Field(description="registered connector name (see `retsync connectors`)")
    enabled: bool = True
    poll_interval: Duration = Field(default=timedelta(minutes=5), description="time between pulls")
    backfill_days: int = Field(default=90, ge=0, description="history pulled on the first run")
    overlap: Duration = Field(
        default=timedelta(hours=1), description="re-read window so late updates at the cursor edge are caught"
    )
    recheck_recent_days: int = Field(
        default=30, ge=0, description="open returns registered this recently are read again on every pull (where "
        "the channel has no \"changed since\" filter, as Allegro)")
    recheck_older_per_pass: int = Field(
        default=500, ge=1, description="older open returns read again per pull, in turn, so a long-open backlog "
        "costs a poll the same however long the history")
    prefetch_pages: int = Field(
        default=1, ge=0, le=4, description="pages fetched ahead while the current one is stored, so the store's "
        "work hides behind the channel's answer time; the store still takes them in order, one page and its cursor "
        "per transaction (0: one after the other)")
    max_concurrency: int = Field(
        default=1, ge=1, le=16, description="reads of this channel in flight at once where they do not depend on "
        "each other (the orders or details a page names); a 429 halves it until the channel recovers. A connector "
        "whose API allows more sets its own default from the API's documented limits")
    base_url: str | None = Field(default=None, description="API host; point it at a sandbox to test")
    token_url: str | None = Field(default=None, description="OAuth token endpoint, for OAuth connectors")
    timeout: Duration = Field(default=timedelta(seconds=30), description="per HTTP request")
    max_retries: int = Field(default=5, ge=0, description="retries of one request on 429/5xx/network errors")
    max_backoff: Duration = Field(default=timedelta(minutes=2), description="longest wait between retries")
    requests_per_second: float | None = Field(default=None, gt=0, description="client-side pacing")
    max_response_size: ByteSize = Field(
        default=ByteSize(16 * 1024 * 1024), gt=0, description="largest answer read, counted decompressed "
        "(bytes, or \"16MiB\"); a larger one fails the page like an unreadable answer")
    request_deadline: Duration = Field(
        default=timedelta(minutes=2), gt=timedelta(0), description="longest one request may take, answer "
        "included, however slowly the server keeps sending")
    max_retry_after: Duration = Field(
        default=timedelta(minutes=5), ge=timedelta(0), description="longest pause a channel's Retry-After "
        "(on 429 or 5xx) may impose before the request is tried again")
    allow_insecure: bool = Field(
        default=False, description="accept plain http:// in this table's URLs for a host other than this "
        "machine (credentials and customer data then cross the network unencrypted)")
    return_window_days: int = Field(
        default=30, ge=0, description="days a customer has to return, counted from delivery where known, "
        "else from the order (flag past_return_window)")
    refund_due_days: int = Field(
        default=14, ge=0, description="days from receiving a returned parcel to the refund: the EU consumer-law "
        "deadline (flag refund_overdue)")
    ship_reminder_days: int = Field(
        default=7, ge=0, description="days after a return is registered without parcel movement before it is "
        "flagged not_shipped_by_customer (and the customer reminded, where customer e-mails are on)")
    return_shipping_deduction: Decimal = Field(
        default=Decimal("0"), ge=0, description="amount the channel keeps from a refund for return shipping, in "
        "the order's currency (refund_amount_mismatch allows for it)")
    return_cost: Decimal = Field(
        default=Decimal("0"), ge=0, description="what one return costs you on this channel (shipping + handling), "
        "in its currency, for `retsync report`")
    notify_customers: bool = Field(
        default=False, description="send the customer e-mails (registered, received, decided, refunded, "
        "reminder) for this channel's returns; meant for own shops, where no marketplace tells the buyer")
    decisions_from: str | None = Field(
        default=None,
        description="a shop channel (one whose connector holds returns: see `retsync connectors`) whose back "
        "office holds this channel's open returns: each is created there once, you decide in the shop's panel, "
        "and retsync mirrors that decision back to this channel",
    )
