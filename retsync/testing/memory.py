"""Offline helpers for a connector's own unit tests: a store without a database, and the acts the outbox hands over.

`InMemoryStore` pages a connector through its sandbox the way the engine does (a page's records and its cursor
together), so a test can stop after any page as if the daemon died there. `act_for` builds the `DecisionAct`
the outbox would hand over for a stored return, and `carry_out(connector, act)` runs it the way the outbox does
(a failure becomes the outcome the outbox's table gives it), so a test asserts what the merchant would see;
`carry_out_hold(shop, request)` does the same for holding a marketplace return in a shop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from retsync.kit.contract import ActLine, Connector, DecisionAct, Page, PullContext, Stream
from retsync.kit.model import DecisionKind, Order, Return, ReturnStatus
from retsync.outbox.outcomes import carry_out, carry_out_hold

__all__ = ["SAME_AS_CHANNEL", "InMemoryStore", "act_for", "carry_out", "carry_out_hold"]


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


_decision_ids = itertools.count(1)


def act_for(record: Return, kind: DecisionKind, *, lines: Sequence[int] | None = None,
            quantities: Sequence[int] | None = None, note: str | None = "decided in a test", attempt: int = 1,
            key: str | None = None, reference: str | None = None) -> DecisionAct:
    """The act the outbox would hand over for `record`: every line in full (a whole-return decision), or the
    lines at the indexes `lines`, each with the units in `quantities` (default: all of it). A fresh key unless
    given; give the same key and `attempt=2` to play a retry after a lost answer."""
    chosen = list(range(len(record.lines))) if lines is None else list(lines)
    units = list(quantities) if quantities is not None else [record.lines[i].quantity for i in chosen]
    return DecisionAct(
        key=key or f"act-{next(_decision_ids)}", kind=kind, note=note, return_external_id=record.external_id,
        order_external_id=record.order_external_id, attempt=attempt, reference=reference,
        lines=tuple(ActLine(
            decision_id=next(_decision_ids), line_external_id=record.lines[i].external_id, quantity=quantity,
            order_external_id=record.lines[i].order_external_id or record.order_external_id,
            order_line_external_id=record.lines[i].order_line_external_id,
        ) for i, quantity in zip(chosen, units, strict=True)),
    )
