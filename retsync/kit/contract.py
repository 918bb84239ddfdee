"""The contract between the core and a channel.

A connector pulls pages of unified records from a cursor and carries out
decision acts. It owns the meaning of its cursor (a date, a page number, a
phase of a multi-list walk); the engine owns *when* a cursor is saved: only
in the same transaction as the page it follows. So a connector can never make
the daemon skip data, however it pages. Likewise a connector says how to carry
out one act; the outbox owns when, how often, and what a failure means.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import httpx

from retsync.kit.model import DecisionKind, Order, Return
from retsync.kit.records import Quarantined
from retsync.kit.settings import ChannelSettings

if TYPE_CHECKING:
    from retsync.kit.emulator import Emulator


class Stream(StrEnum):
    RETURNS = "returns"
    ORDERS = "orders"


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do, shown by `retsync connectors` and enforced by the outbox.

    `decisions` says how each supported decision is mirrored (in the channel's
    words); `unsupported` says why the others cannot be, so a merchant is
    told instead of a decision being dropped.
    """

    streams: tuple[Stream, ...]
    decisions: Mapping[DecisionKind, str]
    unsupported: Mapping[DecisionKind, str] = field(default_factory=dict)
    fetches_orders: bool = False
    holds_returns: str | None = None
    """How a shop channel holds another channel's return for the back-office flow (`decisions_from`), in the
    shop's words; None when it cannot."""
    entered_by_people: bool = False
    """The channel's returns come from people and files, not from its API: retsync's `returns add/edit`, `import
    returns` and the returns webhook write into a channel of this connector (and into no other)."""

    def supports(self, kind: DecisionKind) -> bool:
        return kind in self.decisions

    def why_unsupported(self, kind: DecisionKind) -> str:
        return self.unsupported.get(kind, f"this channel has no way to take a `{kind}` decision")


@dataclass
class Page:
    """One unit of work the engine stores atomically, together with `cursor`.

    `cursor` is the state to resume from once this page is stored; None keeps
    the stored cursor as it is. `quarantined` are the page's records that could
    not be mapped: they are kept aside in the same transaction, so the cursor
    moves past them only once they are on record (and retried, see README
    "Quarantined records").
    """

    returns: Sequence[Return] = ()
    orders: Sequence[Order] = ()
    cursor: Mapping[str, Any] | None = None
    quarantined: Sequence[Quarantined] = ()


class PullContext:
    """What the engine tells a connector about the stored state while it pages."""

    def __init__(
        self,
        *,
        channel: str,
        stream: Stream,
        cursor: Mapping[str, Any] | None,
        now: datetime,
        backfill_since: datetime,
        overlap: timedelta,
        stored_revisions: Callable[[Collection[str]], Mapping[str, str | None]],
        stored_orders: Callable[[Collection[str]], Collection[str]],
        open_returns: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self.channel = channel
        self.stream = stream
        self.cursor = dict(cursor) if cursor else None
        self.now = now
        self.backfill_since = backfill_since
        self.overlap = overlap
        self._stored_revisions = stored_revisions
        self._stored_orders = stored_orders
        self._open_returns = open_returns

    @property
    def first_run(self) -> bool:
        return self.cursor is None

    def stored_revisions(self, external_ids: Collection[str]) -> Mapping[str, str | None]:
        """The stored revision of each of these returns that is stored; ask once per page, not per return."""
        return self._stored_revisions(external_ids) if external_ids else {}

    def stored_orders(self, external_ids: Collection[str]) -> Collection[str]:
        """Which of these orders are stored, so a connector need not fetch them again."""
        return self._stored_orders(external_ids) if external_ids else ()

    def is_stored_unchanged(self, external_id: str, revision: str) -> bool:
        """True when this return is stored at this revision: lets newest-first listings stop early."""
        return self.stored_revisions([external_id]).get(external_id) == revision

    def has_order(self, external_id: str) -> bool:
        return external_id in self.stored_orders([external_id])

    def open_returns(self) -> Iterable[str]:
        """External ids of this channel's stored returns that are not final yet (requested, in transit,
        received): what a connector re-reads when its channel has no "changed since" filter."""
        return self._open_returns()


@dataclass(frozen=True)
class ActLine:
    """One return line of a decision act, and how much of it is decided."""

    decision_id: int
    line_external_id: str
    quantity: int
    order_external_id: str | None
    """The order this line came from (the line's own where the channel names one per line, else the return's)."""
    order_line_external_id: str | None


@dataclass(frozen=True)
class DecisionAct:
    """Decisions the merchant recorded together (one `retsync decide`, or one decision read back from a shop),
    handed to a connector as one request: it becomes ONE act at the channel (one refund with all its lines,
    one credit slip, one state change), so the buyer sees one refund and one e-mail, not one per line.

    `key` is fixed when the act is recorded and the same on every attempt: send it where the channel dedupes
    (Allegro's commandId), or store it with what you create and look for it first on `attempt > 1` (a lost
    answer), so a retry never does the act twice. `reference` is what an earlier attempt's result left behind
    (a refund id, a process id to poll).
    """

    key: str
    kind: DecisionKind
    note: str | None
    return_external_id: str
    order_external_id: str | None
    lines: tuple[ActLine, ...]
    attempt: int
    reference: str | None = None

    @property
    def decision_ids(self) -> tuple[int, ...]:
        return tuple(line.decision_id for line in self.lines)

    @property
    def quantity(self) -> int:
        """Units decided across all lines."""
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class HoldRequest:
    """A marketplace return to be put into a shop's back office, so the merchant decides on it there.

    `key` is the same on every attempt and unique per return (`<channel>/<return external id>`); a shop
    connector stores it with what it creates, and on `attempt > 1` (or with a `reference` from an earlier
    attempt) looks for it before creating anything, so the same return is never created twice in the shop.
    """

    hold_id: int
    key: str
    source_channel: str
    source_title: str
    ret: Return
    attempt: int
    requested_at: datetime
    reference: str | None = None


@dataclass(frozen=True)
class HeldDecision:
    """The merchant's decision on a held return, as read back from the shop.

    `lines` maps the held return's line external ids to the quantity decided; None means every line, in full.
    """

    reference: str
    kind: DecisionKind
    note: str | None = None
    decided_at: datetime | None = None
    lines: Mapping[str, int] | None = None
    shop_status: str | None = None


class PushStatus(StrEnum):
    PUSHED = "pushed"
    """The channel confirmed the act (or had it already: see `AlreadyDone`)."""
    PENDING = "pending"
    """The channel accepted it for processing; check again later with `reference`."""
    RETRY = "retry"
    """A transient failure; the outbox retries with backoff."""
    FAILED = "failed"
    """The channel refused it; retrying will not help."""
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    detail: str | None = None
    reference: str | None = None
    result: Mapping[str, Any] | None = None
    """What the channel answered that the merchant may need later (refund id, amount, status); stored as JSON."""


class AlreadyDone(Exception):
    """Raise from `act` when the channel shows the act was carried out before (by an earlier attempt whose answer
    was lost, or by someone in the channel's own panel): the outbox records it as pushed, with this message."""

    def __init__(self, message: str, *, reference: str | None = None,
                 result: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reference = reference
        self.result = result


@dataclass(frozen=True)
class Outcome:
    """What a failure raised by `act` (or `hold_return`) means: its status, and the merchant-facing detail as a
    template over `{title}` (the connector's), `{what}` ("the accept decision", "the request to hold the
    return") and `{error}` (the exception's text)."""

    status: PushStatus
    detail: str = "{error}"


@dataclass
class Runtime:
    """What the daemon lends a connector: a stop signal, a place for state, and (in tests) a transport."""

    state_dir: Path
    stop: threading.Event = field(default_factory=threading.Event)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] | None = None


SettingsT = TypeVar("SettingsT", bound=ChannelSettings)


class Connector(ABC, Generic[SettingsT]):
    """Subclass per channel as `Connector[YourSettings]`; register the class under `retsync.connectors`."""

    name: ClassVar[str]
    title: ClassVar[str]
    settings_model: ClassVar[type[ChannelSettings]] = ChannelSettings
    capabilities: ClassVar[Capabilities]
    outcomes: ClassVar[Mapping[type[BaseException], Outcome]] = {}
    """Entries that replace the outbox's table from failure to outcome for this channel only (the table and
    its defaults: README "What a failed push means"); an exception matches its nearest class here first."""

    def __init__(self, channel: str, settings: SettingsT, runtime: Runtime) -> None:
        if not isinstance(settings, self.settings_model):
            raise TypeError(f"the {self.name} connector needs {self.settings_model.__name__}, "
                            f"got {type(settings).__name__}")
        self.channel = channel
        self.settings: SettingsT = settings
        self.runtime = runtime

    @abstractmethod
    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        """Yield pages from `context.cursor` on; each is stored before the next is asked for."""

    @classmethod
    def decision_problem(cls, kind: DecisionKind, note: str | None) -> str | None:
        """Why this channel would refuse the decision as given (say, a rejection without a note), before it is recorded."""
        return None

    def act(self, act: DecisionAct) -> PushResult:
        """Carry out one decision act of a kind `capabilities.decisions` names (the outbox never hands another).

        Return PUSHED (with what the channel answered in `result`), PENDING with a `reference` to poll, or
        raise: `ApiError` (refused: failed), `TransientError`/`BadPayload` (retried), `AuthError` (retried
        until the credentials are fixed), `AlreadyDone` (pushed). The outbox's table turns the exception into
        the decision's state; no try/except is needed here except to recover (say, to look up a refund that a
        422 says exists).
        """
        raise NotImplementedError(f"the {self.name} connector declares decisions it does not carry out")

    def hold_return(self, request: HoldRequest) -> PushResult:
        """Create `request.ret` in this shop's back office once (PUSHED with `reference` = the shop's id for it).

        Only for connectors whose capabilities say `holds_returns`; the back-office job retries RETRY results
        with backoff and shows FAILED ones to the merchant.
        """
        return PushResult(PushStatus.UNSUPPORTED, f"the {self.name} connector cannot hold other channels' returns")

    def held_decisions(self, references: Sequence[str]) -> Mapping[str, HeldDecision]:
        """The decisions the merchant took in the shop on these held returns; undecided ones are left out.

        Called after each pull of this shop channel with the references `hold_return` gave. Reading the same
        decision again is harmless: the core records each held return's decision once.
        """
        return {}

    def authorize(self, say: Callable[[str], None]) -> None:
        """`retsync auth CONNECTOR CHANNEL`: an interactive sign-in (e.g. an OAuth device flow) whose result
        the connector stores itself. Channels with static credentials need none."""
        raise NotImplementedError(f"the {self.name} connector needs no sign-in: its credentials are in the config")

    def fetch_order(self, external_id: str) -> Order | None:
        """Fetch one order by id, for linking a return whose order was not pulled."""
        return None

    def close(self) -> None:
        """Release connections."""

    # --- sandbox -----------------------------------------------------------------------------

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> Emulator | None:
        """A seeded emulator of this channel's API holding about `returns` returns (its default when None),
        for `retsync demo`, tests and benchmarks."""
        return None

    @classmethod
    def sandbox_channel(cls, base_url: str) -> dict[str, Any]:
        """The `[channels.<name>]` table that points a channel at a running sandbox."""
        return {"connector": cls.name, "base_url": base_url}
