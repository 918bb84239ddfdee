"""The Returns page's query: filters, sorting and paging over the returns table itself.

It reads `returns` (not the `v_returns` view, which aggregates every return's lines before a page can be cut) and
fetches decisions and flags only for the page's rows, so a page costs the same on 100,000 returns as on 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select, union

from retsync.store.models import Channel, Decision, Order, Return, ReturnFlag, ReturnLine

PAGE_SIZE = 50
SORTS = {
    "created": Return.created_at,
    "channel": Return.channel_id,  # channels in the order they were first synced: no join to sort by
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
    found: list[int] | None = None
    """The search's ids, once looked up (at most SEARCH_IDS)."""

    def clauses(self) -> list[Any]:
        where: list[Any] = []
        if self.channel:
            where.append(Return.channel_id == select(Channel.id).where(Channel.name == self.channel).scalar_subquery())
        if self.marketplace:
            where.append(Return.marketplace == self.marketplace)
        if self.status:
            where.append(Return.status == self.status)
        if self.decision_state == "none":
            where.append(~exists().where(Decision.return_id == Return.id))  # per row, by the return_id index
        elif self.decision_state:
            where.append(Return.id.in_(select(Decision.return_id).where(Decision.state == self.decision_state)))
        if self.flag:
            where.append(Return.id.in_(select(ReturnFlag.return_id).where(ReturnFlag.code == self.flag,
                                                                          ReturnFlag.resolved_at.is_(None))))
        if self.since:
            where.append(Return.created_at >= self.since)
        if self.until:
            where.append(Return.created_at < self.until)
        if self.customer_group is not None:
            where.append(Return.customer_group_id == self.customer_group)
        if self.q:
            where.append(Return.id.in_(self.found or []))
        return where


SEARCH_IDS = 1_000
"""A search shows at most this many returns (the newest of a name's matches): enough for a person to read,
and the ids go to the page's two queries as they are."""


def _exact_matches(text: str) -> Any:
    """The returns the search box names exactly: return or order id, the customer's e-mail (as stored or in lower
    case, also the order's), a line's SKU or EAN; each an indexed look-up."""
    emails = {text, text.lower()}
    return union(
        select(Return.id).where(or_(Return.external_id == text, Return.order_external_id == text,
                                    Return.customer_email.in_(emails))),
        select(ReturnLine.return_id).where(ReturnLine.sku == text),
        select(ReturnLine.return_id).where(ReturnLine.ean == text),
        select(Return.id).join(Order, Order.id == Return.order_id).where(Order.customer_email.in_(emails)),
    )


def _name_matches(text: str) -> Any:
    """Returns whose customer's name holds the text, newest first: a pass over the returns (a surname can be
    anywhere in the field), so only for text that names nothing exactly."""
    like = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return (select(Return.id).where(func.lower(Return.customer_name).like(like, escape="\\"))
            .order_by(Return.created_at.desc()).limit(SEARCH_IDS))


def search(db: Engine, text: str) -> list[int]:
    with db.connect() as conn:
        ids = list(conn.execute(select(_exact_matches(text).subquery().c[0]).limit(SEARCH_IDS)).scalars())
        if not ids and len(text) >= 2 and any(ch.isalpha() for ch in text):
            ids = list(conn.execute(_name_matches(text)).scalars())
    return ids


@dataclass
class Listing:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filters: Filters
    capped: bool = False


def list_page(db: Engine, filters: Filters, page_size: int = PAGE_SIZE) -> Listing:
    if filters.q and filters.found is None:
        filters.found = search(db, filters.q.strip())
    where = filters.clauses()
    column = SORTS.get(filters.sort, Return.created_at)
    order = [column.desc() if filters.descending else column.asc(),
             Return.id.desc() if filters.descending else Return.id.asc()]
    with db.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(Return).where(and_(True, *where))).scalar_one())
        pages = max(1, -(-total // page_size))
        page = min(max(1, filters.page), pages)
        # the page's ids first (an index walk, nothing computed for the rows skipped), then their details
        page_ids = list(conn.execute(select(Return.id).where(and_(True, *where)).order_by(*order)
                                     .limit(page_size).offset((page - 1) * page_size)).scalars())
        found = {r.id: dict(r._mapping) for r in conn.execute(
            select(Return.id, Channel.name.label("channel"), Return.external_id, Return.order_external_id,
                   Return.status, Return.channel_status, Return.reason, Return.created_at, Return.refunded_at,
                   Return.refund_amount, Return.currency, Return.marketplace, Return.customer_name,
                   func.coalesce(Return.customer_email, Order.customer_email).label("customer_email"))
            .join(Channel, Channel.id == Return.channel_id).outerjoin(Order, Order.id == Return.order_id)
            .where(Return.id.in_(page_ids)))} if page_ids else {}
        rows = [found[i] for i in page_ids]
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
    return Listing(rows, total, page, pages, filters,
                   capped=filters.found is not None and len(filters.found) >= SEARCH_IDS)


def filter_choices(db: Engine) -> dict[str, list[str]]:
    """The channels and marketplaces there are, for the filter menus."""
    with db.connect() as conn:
        channels = list(conn.execute(select(Channel.name).order_by(Channel.name)).scalars())
        marketplaces = [m for m in conn.execute(select(Return.marketplace).where(Return.marketplace.is_not(None))
                                                .distinct().order_by(Return.marketplace)).scalars()]
    return {"channels": channels, "marketplaces": marketplaces}
