"""A scripted connector for testing the spine without any real channel.

Its "channel" is a list of returns held in memory; pages are slices of it and
the cursor is the offset. Tests can make it fail at a chosen page, and script
what each push answers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from retsync.kit.contract import (
    Capabilities,
    Connector,
    DecisionRequest,
    Page,
    PullContext,
    PushResult,
    PushStatus,
    Stream,
)
from retsync.kit.model import Customer, DecisionKind, Order, OrderLine, Return, ReturnLine, ReturnReason, ReturnStatus

BASE = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def make_order(n: int, lines: int = 2) -> Order:
    return Order(
        external_id=f"O{n}", placed_at=BASE - timedelta(days=3, minutes=n), currency="EUR", total_amount=1999 * lines,
        customer=Customer(email=f"buyer{n}@example.com", name=f"Buyer {n}", postcode="1011AB"),
        lines=tuple(OrderLine(external_id=f"O{n}-L{i}", ean=f"87000000{n:04d}{i}", sku=f"SKU-{n}-{i}",
                              title=f"Product {n}/{i}", quantity=2, unit_price=1999, currency="EUR")
                    for i in range(lines)),
    )


def make_return(n: int, status: ReturnStatus = ReturnStatus.REQUESTED, lines: int = 2,
                link_by: str = "key") -> Return:
    return Return(
        external_id=f"R{n}", order_external_id=f"O{n}", status=status, channel_status=f"raw-{status.value}",
        reason=ReturnReason.WRONG_SIZE, channel_reason="Too small", created_at=BASE + timedelta(minutes=n),
        currency="EUR", customer=Customer(email=f"buyer{n}@example.com"),
        lines=tuple(ReturnLine(external_id=f"R{n}-L{i}", order_external_id=f"O{n}",
                               order_line_external_id=f"O{n}-L{i}" if link_by == "key" else None,
                               ean=f"87000000{n:04d}{i}" if link_by in ("key", "ean") else None,
                               sku=f"SKU-{n}-{i}" if link_by == "sku" else None,
                               quantity=1, reason=ReturnReason.WRONG_SIZE, channel_reason="Too small")
                    for i in range(lines)),
        revision=f"{n}:{status.value}",
    )


class Boom(Exception):
    """The scripted channel breaking mid-pull."""


class ScriptedConnector(Connector):
    name: ClassVar[str] = "scripted"
    title: ClassVar[str] = "Scripted test channel"
    capabilities: ClassVar[Capabilities] = Capabilities(
        streams=(Stream.RETURNS,),
        decisions={DecisionKind.ACCEPT: "scripted accept", DecisionKind.REJECT: "scripted reject"},
        unsupported={DecisionKind.CANCEL: "the scripted channel cannot cancel"},
        fetches_orders=True,
    )

    # the channel's state, shared by instances of one test (reset by `reset`)
    returns: ClassVar[list[Return]] = []
    orders: ClassVar[dict[str, Order]] = {}
    page_size: ClassVar[int] = 10
    fail_at_page: ClassVar[int | None] = None
    push_script: ClassVar[list[PushResult]] = []
    pushes: ClassVar[list[DecisionRequest]] = []
    pages_served: ClassVar[int] = 0

    @classmethod
    def reset(cls, n_returns: int = 0) -> None:
        cls.returns = [make_return(i) for i in range(n_returns)]
        cls.orders = {f"O{i}": make_order(i) for i in range(n_returns)}
        cls.page_size, cls.fail_at_page, cls.pages_served = 10, None, 0
        cls.push_script, cls.pushes = [], []

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        offset = int((context.cursor or {}).get("offset", 0))
        while offset < len(self.returns):
            if self.fail_at_page is not None and type(self).pages_served >= self.fail_at_page:
                raise Boom(f"channel broke before page at offset {offset}")
            chunk = self.returns[offset: offset + self.page_size]
            offset += len(chunk)
            type(self).pages_served += 1
            orders = [self.orders[r.order_external_id] for r in chunk
                      if r.order_external_id in self.orders and not context.has_order(r.order_external_id)]
            yield Page(returns=chunk, orders=orders, cursor={"offset": offset})

    def push(self, request: DecisionRequest) -> PushResult:
        type(self).pushes.append(request)
        if self.push_script:
            return self.push_script.pop(0)
        return PushResult(PushStatus.PUSHED, "ok")


class _SameAsChannel:
    """A stored revision equal to whatever revision the channel reports: "this return is stored, unchanged"."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


SAME_AS_CHANNEL = _SameAsChannel()
OPEN = (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED)


@dataclass
class InMemoryStore:
    """Stores pages the way the engine does (a page's records and its cursor together), without a database.

    Connector tests page through a sandbox with it; `written` holds the return ids the latest run stored.
    """

    channel: str = "test"
    returns: dict[str, Return] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    written: list[str] = field(default_factory=list)
    pages: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def context(self, *, backfill_since: datetime | None = None,
                pretend_stored: Callable[[str], bool] | None = None) -> PullContext:
        """`pretend_stored` names returns to treat as stored at the channel's current revision."""
        now = self.now

        def revisions(ids: Collection[str]) -> dict[str, Any]:
            found: dict[str, Any] = {i: self.returns[i].revision for i in ids if i in self.returns}
            if pretend_stored is not None:
                found.update({i: SAME_AS_CHANNEL for i in ids if pretend_stored(i)})
            return found

        return PullContext(
            channel=self.channel, stream=Stream.RETURNS, cursor=self.cursor, now=now,
            backfill_since=backfill_since or now - timedelta(days=365), overlap=timedelta(hours=1),
            stored_revisions=revisions,
            stored_orders=lambda ids: {i for i in ids if i in self.orders},
            open_returns=lambda: [key for key, r in self.returns.items() if r.status in OPEN],
        )

    def store(self, page: Page) -> None:
        for record in page.returns:
            self.returns[record.external_id] = record
            self.written.append(record.external_id)
        for order in page.orders:
            self.orders[order.external_id] = order
        if page.cursor is not None:
            self.cursor = dict(page.cursor)
        self.pages += 1

    def run(self, connector: Connector, *, max_pages: int | None = None, **context: Any) -> list[str]:
        """One pass (or its first `max_pages` pages, as if the daemon died after storing them); the ids written."""
        self.written = []
        pages: Iterator[Page] = connector.pull(Stream.RETURNS, self.context(**context))
        for count, page in enumerate(pages, start=1):
            self.store(page)
            if max_pages is not None and count >= max_pages:
                break
        return list(self.written)

    def ids(self) -> dict[str, set[str]]:
        """What is stored, in the shape of the sandboxes' `truth()`."""
        return {"returns": set(self.returns), "orders": set(self.orders),
                "rmas": {line.external_id for r in self.returns.values() for line in r.lines}}


_decision_ids = iter(range(1, 1_000_000))


def decision_for(record: Return, kind: DecisionKind, *, line: int = 0, quantity: int | None = None,
                 note: str | None = "decided in a test", attempt: int = 1, key: str | None = None,
                 key_format: str = "key-{n}") -> DecisionRequest:
    """The request the outbox would hand over for one line of a stored return (a fresh key unless given)."""
    target = record.lines[line]
    return DecisionRequest(
        decision_id=next(_decision_ids), idempotency_key=key or key_format.format(n=next(_decision_ids)),
        kind=kind, quantity=target.quantity if quantity is None else quantity, note=note,
        return_external_id=record.external_id, line_external_id=target.external_id,
        order_external_id=record.order_external_id, order_line_external_id=target.order_line_external_id,
        attempt=attempt,
    )
