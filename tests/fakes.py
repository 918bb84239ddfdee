"""A scripted connector for testing the spine without any real channel.

Its "channel" is a list of returns held in memory; pages are slices of it and
the cursor is the offset. Tests can make it fail at a chosen page, and script
what each push answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import ClassVar

from retsync.kit.contract import Capabilities, Connector, DecisionAct, Page, PullContext, PushResult, PushStatus, Stream
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
    pushes: ClassVar[list[DecisionAct]] = []
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

    def act(self, act: DecisionAct) -> PushResult:
        type(self).pushes.append(act)
        if self.push_script:
            return self.push_script.pop(0)
        return PushResult(PushStatus.PUSHED, "ok")
