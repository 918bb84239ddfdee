"""Orders, returns and their lines written straight into the tables, for tests of one reconcile step at a time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select, text

from retsync.store.models import Channel, Order, OrderLine, Return, ReturnLine

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def channel(db: Engine, name: str) -> int:
    with db.begin() as conn:
        return int(conn.execute(insert(Channel).values(name=name, connector="manual", created_at=NOW,
                                                       consecutive_failures=0).returning(Channel.id)).scalar_one())


def order(db: Engine, channel_id: int, external_id: str, lines: tuple[dict[str, Any], ...] = (),
          **customer: str | None) -> int:
    """An order; `customer` as email=, phone=, name=, postcode=."""
    with db.begin() as conn:
        order_id = int(conn.execute(insert(Order).values(
            channel_id=channel_id, external_id=external_id, currency="EUR", placed_at=NOW, content_hash="x",
            first_seen_at=NOW, updated_at=NOW, **{f"customer_{k}": v for k, v in customer.items()})
            .returning(Order.id)).scalar_one())
        for line in lines:
            conn.execute(insert(OrderLine).values(order_id=order_id, quantity=1, **line))
    return order_id


def return_(db: Engine, channel_id: int, external_id: str, order_external_id: str | None = None,
            order_id: int | None = None, lines: tuple[dict[str, Any], ...] = (), **customer: str | None) -> int:
    """A return (of `order_external_id`, linked to `order_id` where given); `customer` as for `order`."""
    with db.begin() as conn:
        return_id = int(conn.execute(insert(Return).values(
            channel_id=channel_id, external_id=external_id, order_external_id=order_external_id, order_id=order_id,
            status="requested", created_at=NOW, handled_by_channel=False, extra={}, content_hash="x",
            first_seen_at=NOW, updated_at=NOW, **{f"customer_{k}": v for k, v in customer.items()})
            .returning(Return.id)).scalar_one())
        for line in lines:
            conn.execute(insert(ReturnLine).values(return_id=return_id, quantity=1, **line))
    return return_id


def groups(db: Engine) -> dict[str, tuple[int | None, str | None]]:
    """`o:<external id>` / `r:<external id>` → (customer group, customer_match) of every order and return."""
    found: dict[str, tuple[int | None, str | None]] = {}
    with db.connect() as conn:
        for prefix, model in (("o", Order), ("r", Return)):
            for external_id, group, match in conn.execute(
                    select(model.external_id, model.customer_group_id, model.customer_match)):
                found[f"{prefix}:{external_id}"] = (group, match)
    return found


def partition(db: Engine) -> set[frozenset[str]]:
    """Who is grouped with whom, whatever the group ids."""
    members: dict[int, set[str]] = {}
    for record, (group, _) in groups(db).items():
        if group is not None:
            members.setdefault(group, set()).add(record)
    return {frozenset(found) for found in members.values()}


def count(db: Engine, sql: str, **params: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())
