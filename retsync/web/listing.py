"""The Returns page's query: filters, sorting and paging over the returns table itself.

It reads `returns` (not the `v_returns` view, which aggregates every return's lines before a page can be cut) and
fetches decisions and flags only for the page's rows, so a page costs the same on 100,000 returns as on 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select

from retsync.store.models import Channel, Decision, Order, Return, ReturnFlag, ReturnLine

PAGE_SIZE = 50
SORTS = {
    "created": Return.created_at,
    "channel": Channel.name,
    "status": Return.status,
    "return": Return.external_id,
    "order": Return.order_external_id,
    "refunded": Return.refunded_at,
}


@dataclass
class Filters:
    channel: str | None = None
    marketplace: str | None = None
    status: str | None = None
    decision_state: str | None = None
    flag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    sort: str = "created"
    descending: bool = True
    page: int = 1
    customer_group: int | None = None

    def clauses(self) -> list[Any]:
        where: list[Any] = []
        if self.channel:
            where.append(Channel.name == self.channel)
        if self.marketplace:
            where.append(Return.marketplace == self.marketplace)
        if self.status:
            where.append(Return.status == self.status)
        if self.decision_state == "none":
            where.append(~exists().where(Decision.return_id == Return.id))
        elif self.decision_state:
            where.append(exists().where(Decision.return_id == Return.id, Decision.state == self.decision_state))
        if self.flag:
            where.append(exists().where(ReturnFlag.return_id == Return.id, ReturnFlag.code == self.flag,
                                        ReturnFlag.resolved_at.is_(None)))
        if self.since:
            where.append(Return.created_at >= self.since)
        if self.until:
            where.append(Return.created_at < self.until)
        if self.customer_group is not None:
            where.append(Return.customer_group_id == self.customer_group)
        if self.q:
            text = self.q.strip()
            like = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(or_(
                Return.external_id == text,
                Return.order_external_id == text,
                func.lower(Return.customer_email) == text.lower(),
                func.lower(Return.customer_name).like(like, escape="\\"),
                exists().where(ReturnLine.return_id == Return.id, or_(ReturnLine.sku == text, ReturnLine.ean == text)),
                exists().where(Order.id == Return.order_id, func.lower(Order.customer_email) == text.lower()),
            ))
        return where


@dataclass
class Listing:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filters: Filters
    choices: dict[str, list[str]] = field(default_factory=dict)


def list_page(db: Engine, filters: Filters, page_size: int = PAGE_SIZE) -> Listing:
    where = filters.clauses()
    base = select(Return.id).join(Channel, Channel.id == Return.channel_id).where(and_(True, *where))
    column = SORTS.get(filters.sort, Return.created_at)
    order = [column.desc() if filters.descending else column.asc(),
             Return.id.desc() if filters.descending else Return.id.asc()]
    with db.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(base.subquery())).scalar_one())
        pages = max(1, -(-total // page_size))
        page = min(max(1, filters.page), pages)
        rows = [dict(r._mapping) for r in conn.execute(
            select(Return.id, Channel.name.label("channel"), Return.external_id, Return.order_external_id,
                   Return.status, Return.channel_status, Return.reason, Return.created_at, Return.refunded_at,
                   Return.refund_amount, Return.currency, Return.marketplace, Return.customer_name,
                   func.coalesce(Return.customer_email, select(Order.customer_email).where(Order.id == Return.order_id)
                                 .scalar_subquery()).label("customer_email"))
            .join(Channel, Channel.id == Return.channel_id).where(and_(True, *where))
            .order_by(*order).limit(page_size).offset((page - 1) * page_size))]
        ids = [row["id"] for row in rows]
        decisions: dict[int, tuple[str, str]] = {}
        flags: dict[int, list[str]] = {}
        if ids:
            for d in conn.execute(select(Decision.return_id, Decision.kind, Decision.state)
                                  .where(Decision.return_id.in_(ids)).order_by(Decision.id)):
                decisions[d.return_id] = (d.kind, d.state)  # the latest wins
            for f in conn.execute(select(ReturnFlag.return_id, ReturnFlag.code).where(
                    ReturnFlag.return_id.in_(ids), ReturnFlag.resolved_at.is_(None)).order_by(ReturnFlag.id)):
                flags.setdefault(f.return_id, []).append(f.code)
    for row in rows:
        row["decision"], row["decision_state"] = decisions.get(row["id"], (None, None))
        row["flags"] = flags.get(row["id"], [])
    return Listing(rows, total, page, pages, filters)


def filter_choices(db: Engine) -> dict[str, list[str]]:
    """The channels and marketplaces there are, for the filter menus."""
    with db.connect() as conn:
        channels = list(conn.execute(select(Channel.name).order_by(Channel.name)).scalars())
        marketplaces = [m for m in conn.execute(select(Return.marketplace).where(Return.marketplace.is_not(None))
                                                .distinct().order_by(Return.marketplace)).scalars()]
    return {"channels": channels, "marketplaces": marketplaces}
