"""What the CLI reads: the reporting views and a return's full story.

The CLI reads through `v_returns`/`v_return_lines`, the same views a
merchant's reporting tool uses, so what `retsync returns list` prints and
what Metabase shows can never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text

from retsync.outbox.decisions import find_return
from retsync.reconcile.flags import open_flags
from retsync.store.models import Channel, Decision, Return, ReturnEvent, SyncCursor, UTCDateTime

V_RETURNS_COLUMNS = (
    "return_id", "channel", "connector", "external_id", "order_external_id", "customer_email", "status",
    "channel_status", "decision", "decision_state", "reason", "created_at", "received_at", "decided_at",
    "refunded_at", "refund_amount", "currency", "line_count", "quantity",
)


# Views are read with plain SQL; their time columns get the store's type so SQLite text comes back as aware UTC.
_VIEW_TIMES = {name: UTCDateTime() for name in ("created_at", "received_at", "decided_at", "refunded_at",
                                                "updated_at", "placed_at")}


def view_query(sql: str) -> Any:
    return text(sql).columns(**_VIEW_TIMES)


def _return_filters(channel: str | None, status: str | None, since: datetime | None,
                    flag: str | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause over v_returns that `returns list` filters by, and its parameters."""
    clauses, params = [], {}
    if flag:
        clauses.append("return_id IN (SELECT return_id FROM return_flags WHERE code = :flag AND resolved_at IS NULL)")
        params["flag"] = flag
    if channel:
        clauses.append("channel = :channel")
        params["channel"] = channel
    if status:
        clauses.append("status = :status")
        params["status"] = status
    if since:
        clauses.append("created_at >= :since")
        params["since"] = since
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _typed(sql: str, since: datetime | None, rows: bool = True) -> Any:
    query = view_query(sql) if rows else text(sql)
    if since is not None:  # typed, so SQLite compares naive-UTC text and PostgreSQL timestamptz alike
        query = query.bindparams(bindparam("since", type_=UTCDateTime()))
    return query


def count_returns(db: Engine, *, channel: str | None = None, status: str | None = None,
                  since: datetime | None = None, flag: str | None = None) -> int:
    """How many returns `list_returns` would give without its limit ("8 of 93")."""
    where, params = _return_filters(channel, status, since, flag)
    with db.connect() as conn:
        return int(conn.execute(_typed(f"SELECT COUNT(*) FROM v_returns {where}", since, rows=False), params).scalar_one())


def list_returns(
    db: Engine,
    *,
    channel: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    flag: str | None = None,
) -> list[dict[str, Any]]:
    where, params = _return_filters(channel, status, since, flag)
    sql = f"SELECT * FROM v_returns {where} ORDER BY created_at DESC, return_id DESC"
    if limit:  # beyond a 64-bit LIMIT both databases refuse; no table is that long
        sql += f" LIMIT {min(int(limit), 2**63 - 1)}"
    query = _typed(sql, since)
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query, params)]


def return_story(db: Engine, ref: str) -> dict[str, Any]:
    """Everything `retsync returns show` prints: the return, its lines, order, decisions and history."""
    with db.connect() as conn:
        target = find_return(conn, ref)
        summary = dict(conn.execute(view_query("SELECT * FROM v_returns WHERE return_id = :id"),
                                    {"id": target.id}).one()._mapping)
        details = conn.execute(
            select(Return.tracking_number, Return.carrier, Return.handled_by_channel, Return.customer_name,
                   Return.extra, Return.customer_group_id, Return.customer_match).where(Return.id == target.id)
        ).one()
        lines = [dict(r._mapping) for r in conn.execute(
            text("SELECT * FROM v_return_lines WHERE return_id = :id ORDER BY line_id"), {"id": target.id})]
        decisions = [dict(r._mapping) for r in conn.execute(
            select(Decision.id, Decision.return_line_id, Decision.kind, Decision.quantity, Decision.origin,
                   Decision.state, Decision.attempts, Decision.last_error, Decision.note, Decision.created_at,
                   Decision.pushed_at).where(Decision.return_id == target.id).order_by(Decision.id))]
        events = [dict(r._mapping) for r in conn.execute(
            select(ReturnEvent.at, ReturnEvent.kind, ReturnEvent.return_line_id, ReturnEvent.old_value,
                   ReturnEvent.new_value, ReturnEvent.source, ReturnEvent.detail)
            .where(ReturnEvent.return_id == target.id).order_by(ReturnEvent.id))]
        order = _order_of(conn, summary)
        held = conn.execute(text(
            "SELECT c.name AS shop, h.state, h.reference, h.decided_kind, h.last_error FROM held_returns h "
            "JOIN channels c ON c.id = h.shop_channel_id WHERE h.return_id = :id"), {"id": target.id}).first()
        flags = open_flags(conn, target.id)
        customer = None
        if details.customer_group_id is not None:
            customer = dict(conn.execute(text(
                "SELECT channels, orders, returns FROM v_customers WHERE customer_group_id = :id"),
                {"id": details.customer_group_id}).one()._mapping)
    return {"return": summary, "details": dict(details._mapping), "lines": lines, "order": order,
            "decisions": decisions, "events": events, "held": dict(held._mapping) if held else None,
            "flags": flags, "customer": customer}


def _order_of(conn: Connection, summary: dict[str, Any]) -> dict[str, Any] | None:
    row = conn.execute(view_query("""
        SELECT o.id, o.external_id, o.placed_at, o.currency, o.total_amount
        FROM returns r JOIN orders o ON o.id = r.order_id WHERE r.id = :id"""), {"id": summary["return_id"]}).first()
    if row is None:
        return None
    order = dict(row._mapping)
    order["lines"] = [dict(r._mapping) for r in conn.execute(text(
        "SELECT external_id, sku, ean, title, quantity, unit_price, currency FROM order_lines "
        "WHERE order_id = :id ORDER BY id"), {"id": order.pop("id")})]
    return order


def channel_health(db: Engine) -> list[dict[str, Any]]:
    """Per channel: last sync, cursors, last error, and how many decisions wait or failed."""
    with db.connect() as conn:
        channels = [dict(r._mapping) for r in conn.execute(select(
            Channel.id, Channel.name, Channel.connector, Channel.last_pull_started_at, Channel.last_success_at,
            Channel.last_error, Channel.last_error_at, Channel.consecutive_failures, Channel.rate_limit_waits,
            Channel.rate_limit_wait_seconds, Channel.last_rate_limited_at).order_by(Channel.name))]
        for channel in channels:
            channel["cursors"] = {
                r.stream: r.cursor for r in conn.execute(
                    select(SyncCursor.stream, SyncCursor.cursor).where(SyncCursor.channel_id == channel["id"]))
            }
            counts = dict(conn.execute(text("""
                SELECT d.state, COUNT(*) FROM decisions d JOIN returns r ON r.id = d.return_id
                WHERE r.channel_id = :id AND d.origin IN ('merchant', 'shop') GROUP BY d.state"""), {"id": channel["id"]}).all())
            channel["decisions"] = counts
            channel["returns"] = conn.execute(
                text("SELECT COUNT(*) FROM returns WHERE channel_id = :id"), {"id": channel["id"]}).scalar_one()
    return channels
