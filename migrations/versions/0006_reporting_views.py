"""reporting views: v_return_flags, v_handling_times, v_returns_daily, v_return_reasons, v_sku_returns, v_customers

Like 0002's views these are the stable interface for reporting tools: columns only ever grow. They read the
tables, not `v_returns`, so a later migration can rebuild `v_returns` (PostgreSQL refuses to drop a view
other views depend on) without touching these.

The SQL is the same on SQLite and PostgreSQL except for two expressions that have no common spelling: the
hours between two times and the UTC calendar day of a time. Both live in one function each below.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VIEWS = ("v_return_flags", "v_handling_times", "v_returns_daily", "v_return_reasons", "v_sku_returns", "v_customers")


def _hours(dialect: str, start: str, end: str) -> str:
    """Hours from `start` to `end` as a float rounded to 4 places (0.36 s), NULL when either is NULL.

    SQLite stores times as naive-UTC text, which julianday() reads; PostgreSQL subtracts timestamptz values.
    Rounding hides the last bits of julianday's floating point, so both databases show the same number.
    """
    if dialect == "sqlite":
        return f"ROUND((julianday({end}) - julianday({start})) * 24, 4)"
    return f"CAST(ROUND(CAST(EXTRACT(EPOCH FROM ({end} - {start})) / 3600 AS NUMERIC), 4) AS DOUBLE PRECISION)"


def _utc_day(dialect: str, column: str) -> str:
    """The UTC calendar day of a time: never the database session's time zone, so a return at 23:30 UTC
    lands on the same day in every reporting tool."""
    if dialect == "sqlite":
        return f"date({column})"
    return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)"


V_RETURN_FLAGS = """
CREATE VIEW v_return_flags AS
SELECT
    f.id AS flag_id,
    f.return_id AS return_id,
    c.name AS channel,
    r.external_id AS external_id,
    r.status AS status,
    f.return_line_id AS line_id,
    rl.external_id AS external_line_id,
    f.code AS code,
    f.detail AS detail,
    f.flagged_at AS flagged_at,
    f.resolved_at AS resolved_at,
    (f.resolved_at IS NULL) AS is_open
FROM return_flags f
JOIN returns r ON r.id = f.return_id
JOIN channels c ON c.id = r.channel_id
LEFT JOIN return_lines rl ON rl.id = f.return_line_id
"""


def v_handling_times(dialect: str) -> str:
    return f"""
CREATE VIEW v_handling_times AS
SELECT
    r.id AS return_id,
    c.name AS channel,
    r.external_id AS external_id,
    r.status AS status,
    r.handled_by_channel AS handled_by_channel,
    r.created_at AS created_at,
    r.received_at AS received_at,
    r.decided_at AS decided_at,
    r.refunded_at AS refunded_at,
    {_hours(dialect, "r.created_at", "r.received_at")} AS created_to_received_hours,
    {_hours(dialect, "r.received_at", "r.decided_at")} AS received_to_decided_hours,
    {_hours(dialect, "r.decided_at", "r.refunded_at")} AS decided_to_refunded_hours,
    {_hours(dialect, "r.created_at", "r.refunded_at")} AS created_to_refunded_hours
FROM returns r
JOIN channels c ON c.id = r.channel_id
"""


def v_returns_daily(dialect: str) -> str:
    return f"""
CREATE VIEW v_returns_daily AS
SELECT
    x.day AS day,
    x.channel AS channel,
    x.currency AS currency,
    COUNT(*) AS returns,
    SUM(x.units) AS units,
    SUM(x.refunded) AS refunded_returns,
    CAST(SUM(x.refund_amount) AS BIGINT) AS refunded_amount
FROM (
    SELECT
        {_utc_day(dialect, "r.created_at")} AS day,
        c.name AS channel,
        r.currency AS currency,
        COALESCE(q.units, 0) AS units,
        CASE WHEN r.refunded_at IS NOT NULL OR r.refund_amount IS NOT NULL THEN 1 ELSE 0 END AS refunded,
        COALESCE(r.refund_amount, 0) AS refund_amount
    FROM returns r
    JOIN channels c ON c.id = r.channel_id
    LEFT JOIN (SELECT return_id, SUM(quantity) AS units FROM return_lines GROUP BY return_id) q ON q.return_id = r.id
) x
GROUP BY x.day, x.channel, x.currency
"""


V_RETURN_REASONS = """
CREATE VIEW v_return_reasons AS
SELECT
    x.channel AS channel,
    x.reason AS reason,
    x.channel_reason AS channel_reason,
    COUNT(DISTINCT x.return_id) AS returns,
    SUM(x.units) AS units
FROM (
    SELECT
        c.name AS channel,
        r.id AS return_id,
        COALESCE(rl.reason, r.reason, 'unknown') AS reason,
        COALESCE(rl.channel_reason, r.channel_reason) AS channel_reason,
        COALESCE(rl.quantity, 0) AS units
    FROM returns r
    JOIN channels c ON c.id = r.channel_id
    LEFT JOIN return_lines rl ON rl.return_id = r.id
) x
GROUP BY x.channel, x.reason, x.channel_reason
"""

# Sold and returned units side by side, one row per line. A product is its SKU; lines without one are keyed
# by EAN (`ean_key`), lines with neither cannot be attributed and are left out.
_SKU_ITEMS = """
SELECT * FROM (
    SELECT
        c.name AS channel,
        ol.sku AS sku,
        CASE WHEN ol.sku IS NULL THEN ol.ean END AS ean_key,
        ol.ean AS ean,
        ol.title AS title,
        ol.quantity AS sold,
        0 AS returned
    FROM order_lines ol
    JOIN orders o ON o.id = ol.order_id
    JOIN channels c ON c.id = o.channel_id
    UNION ALL
    SELECT
        c.name AS channel,
        COALESCE(rl.sku, ol.sku) AS sku,
        CASE WHEN COALESCE(rl.sku, ol.sku) IS NULL THEN COALESCE(rl.ean, ol.ean) END AS ean_key,
        COALESCE(rl.ean, ol.ean) AS ean,
        COALESCE(rl.title, ol.title) AS title,
        0 AS sold,
        rl.quantity AS returned
    FROM return_lines rl
    JOIN returns r ON r.id = rl.return_id
    JOIN channels c ON c.id = r.channel_id
    LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
) u
WHERE u.sku IS NOT NULL OR u.ean IS NOT NULL
"""

_SKU_MEASURES = """
    i.sku AS sku,
    COALESCE(i.ean_key, MAX(i.ean)) AS ean,
    MAX(i.title) AS title,
    SUM(i.sold) AS units_sold,
    SUM(i.returned) AS units_returned,
    CAST(SUM(i.returned) AS DOUBLE PRECISION) / NULLIF(SUM(i.sold), 0) AS return_rate
"""

V_SKU_RETURNS = f"""
CREATE VIEW v_sku_returns AS
SELECT i.channel AS channel, {_SKU_MEASURES}
FROM ({_SKU_ITEMS}) i
GROUP BY i.channel, i.sku, i.ean_key
UNION ALL
SELECT CAST(NULL AS VARCHAR(100)) AS channel, {_SKU_MEASURES}
FROM ({_SKU_ITEMS}) i
GROUP BY i.sku, i.ean_key
"""

V_CUSTOMERS = """
CREATE VIEW v_customers AS
SELECT
    g.id AS customer_group_id,
    COALESCE(ch.channels, 0) AS channels,
    COALESCE(o.orders, 0) AS orders,
    COALESCE(rt.returns, 0) AS returns,
    o.first_order_at AS first_order_at,
    o.last_order_at AS last_order_at,
    rt.first_return_at AS first_return_at,
    COALESCE(ar.orders_after, 0) AS orders_after_first_return,
    (COALESCE(ar.orders_after, 0) > 0) AS repurchased_after_return
FROM customer_groups g
LEFT JOIN (
    SELECT customer_group_id, COUNT(*) AS orders,
           MIN(COALESCE(placed_at, first_seen_at)) AS first_order_at,
           MAX(COALESCE(placed_at, first_seen_at)) AS last_order_at
    FROM orders WHERE customer_group_id IS NOT NULL GROUP BY customer_group_id
) o ON o.customer_group_id = g.id
LEFT JOIN (
    SELECT customer_group_id, COUNT(*) AS returns, MIN(created_at) AS first_return_at
    FROM returns WHERE customer_group_id IS NOT NULL GROUP BY customer_group_id
) rt ON rt.customer_group_id = g.id
LEFT JOIN (
    SELECT od.customer_group_id AS customer_group_id, COUNT(*) AS orders_after
    FROM orders od
    JOIN (
        SELECT customer_group_id, MIN(created_at) AS first_return_at
        FROM returns WHERE customer_group_id IS NOT NULL GROUP BY customer_group_id
    ) fr ON fr.customer_group_id = od.customer_group_id
    WHERE COALESCE(od.placed_at, od.first_seen_at) > fr.first_return_at
    GROUP BY od.customer_group_id
) ar ON ar.customer_group_id = g.id
LEFT JOIN (
    SELECT u.customer_group_id AS customer_group_id, COUNT(DISTINCT u.channel_id) AS channels
    FROM (
        SELECT customer_group_id, channel_id FROM orders WHERE customer_group_id IS NOT NULL
        UNION
        SELECT customer_group_id, channel_id FROM returns WHERE customer_group_id IS NOT NULL
    ) u
    GROUP BY u.customer_group_id
) ch ON ch.customer_group_id = g.id
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(V_RETURN_FLAGS)
    op.execute(v_handling_times(dialect))
    op.execute(v_returns_daily(dialect))
    op.execute(V_RETURN_REASONS)
    op.execute(V_SKU_RETURNS)
    op.execute(V_CUSTOMERS)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
