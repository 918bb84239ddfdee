"""returns.is_test, and the marketplace in every per-channel view

A feed platform passes on test and demo returns (Channable's `is_test_return` / `is_demo_return`). They are stored
and shown (`is_test`, last in v_returns and v_return_lines) but are not returns of the business: the figure views
(v_handling_times, v_returns_daily, v_return_reasons, v_sku_returns) leave them out, as `retsync report` does. The views that count
or list per channel gain `marketplace` as their last column, and the two that group by channel group by it too, so
"Amazon via Channable" has rows of its own; for every other channel it is NULL and their rows are unchanged.

Views are dropped and created again with their other columns unchanged and in the same order, so saved reports
keep working. Downgrade recreates them from the frozen SQL of 0006 and 0013.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The newest decision of each line is the one in force.
LATEST_DECISION = "d.id = (SELECT MAX(d2.id) FROM decisions d2 WHERE d2.return_line_id = rl.id)"

V_RETURN_LINES = f"""
CREATE VIEW v_return_lines AS
SELECT
    rl.return_id AS return_id,
    rl.id AS line_id,
    c.name AS channel,
    rl.external_id AS external_line_id,
    rl.sku AS sku,
    rl.ean AS ean,
    COALESCE(rl.title, ol.title) AS title,
    rl.quantity AS quantity,
    COALESCE(rl.order_external_id, r.order_external_id) AS order_external_id,
    COALESCE(rl.order_line_external_id, ol.external_id) AS order_line_external_id,
    rl.link_method AS link_method,
    rl.reason AS reason,
    rl.channel_reason AS channel_reason,
    rl.channel_status AS channel_status,
    d.kind AS decision,
    d.quantity AS decision_quantity,
    d.state AS decision_state,
    COALESCE(rl.unit_price, ol.unit_price) AS unit_price,
    COALESCE(rl.currency, ol.currency, r.currency) AS currency,
    r.marketplace AS marketplace,
    r.is_test AS is_test
FROM return_lines rl
JOIN returns r ON r.id = rl.return_id
JOIN channels c ON c.id = r.channel_id
LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
LEFT JOIN decisions d ON {LATEST_DECISION}
"""

V_RETURNS = f"""
CREATE VIEW v_returns AS
SELECT
    r.id AS return_id,
    c.name AS channel,
    c.connector AS connector,
    r.external_id AS external_id,
    r.order_external_id AS order_external_id,
    COALESCE(r.customer_email, o.customer_email) AS customer_email,
    r.status AS status,
    r.channel_status AS channel_status,
    agg.decision AS decision,
    agg.decision_state AS decision_state,
    r.reason AS reason,
    r.channel_reason AS channel_reason,
    r.created_at AS created_at,
    r.received_at AS received_at,
    r.decided_at AS decided_at,
    r.refunded_at AS refunded_at,
    r.refund_amount AS refund_amount,
    r.currency AS currency,
    COALESCE(agg.line_count, 0) AS line_count,
    COALESCE(agg.quantity, 0) AS quantity,
    r.handled_by_channel AS handled_by_channel,
    r.tracking_number AS tracking_number,
    r.carrier AS carrier,
    r.updated_at AS updated_at,
    r.marketplace AS marketplace,
    r.is_test AS is_test
FROM returns r
JOIN channels c ON c.id = r.channel_id
LEFT JOIN orders o ON o.id = r.order_id
LEFT JOIN (
    SELECT
        ld.return_id AS return_id,
        COUNT(*) AS line_count,
        SUM(ld.quantity) AS quantity,
        CASE
            WHEN COUNT(ld.kind) = 0 THEN NULL
            WHEN COUNT(ld.kind) = COUNT(*) AND MIN(ld.kind) = MAX(ld.kind) THEN MIN(ld.kind)
            ELSE 'mixed'
        END AS decision,
        CASE
            WHEN COUNT(ld.state) = 0 THEN NULL
            WHEN COUNT(ld.state) = COUNT(*) AND MIN(ld.state) = MAX(ld.state) THEN MIN(ld.state)
            ELSE 'mixed'
        END AS decision_state
    FROM (
        SELECT rl.return_id AS return_id, rl.quantity AS quantity, d.kind AS kind, d.state AS state
        FROM return_lines rl
        LEFT JOIN decisions d ON {LATEST_DECISION}
    ) ld
    GROUP BY ld.return_id
) agg ON agg.return_id = r.id
"""


def _hours(dialect: str, start: str, end: str) -> str:
    """Hours from `start` to `end`, rounded to 4 places, as in 0006 (see there why)."""
    if dialect == "sqlite":
        return f"ROUND((julianday({end}) - julianday({start})) * 24, 4)"
    return f"CAST(ROUND(CAST(EXTRACT(EPOCH FROM ({end} - {start})) / 3600 AS NUMERIC), 4) AS DOUBLE PRECISION)"


def _utc_day(dialect: str, column: str) -> str:
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
    (f.resolved_at IS NULL) AS is_open,
    r.marketplace AS marketplace
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
    {_hours(dialect, "r.created_at", "r.refunded_at")} AS created_to_refunded_hours,
    r.marketplace AS marketplace
FROM returns r
JOIN channels c ON c.id = r.channel_id
WHERE NOT r.is_test
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
    CAST(SUM(x.refund_amount) AS BIGINT) AS refunded_amount,
    x.marketplace AS marketplace
FROM (
    SELECT
        {_utc_day(dialect, "r.created_at")} AS day,
        c.name AS channel,
        r.marketplace AS marketplace,
        r.currency AS currency,
        COALESCE(q.units, 0) AS units,
        CASE WHEN r.refunded_at IS NOT NULL OR r.refund_amount IS NOT NULL THEN 1 ELSE 0 END AS refunded,
        COALESCE(r.refund_amount, 0) AS refund_amount
    FROM returns r
    JOIN channels c ON c.id = r.channel_id
    LEFT JOIN (SELECT return_id, SUM(quantity) AS units FROM return_lines GROUP BY return_id) q ON q.return_id = r.id
    WHERE NOT r.is_test
) x
GROUP BY x.day, x.channel, x.marketplace, x.currency
"""


V_RETURN_REASONS = """
CREATE VIEW v_return_reasons AS
SELECT
    x.channel AS channel,
    x.reason AS reason,
    x.channel_reason AS channel_reason,
    COUNT(DISTINCT x.return_id) AS returns,
    SUM(x.units) AS units,
    x.marketplace AS marketplace
FROM (
    SELECT
        c.name AS channel,
        r.marketplace AS marketplace,
        r.id AS return_id,
        COALESCE(rl.reason, r.reason, 'unknown') AS reason,
        COALESCE(rl.channel_reason, r.channel_reason) AS channel_reason,
        COALESCE(rl.quantity, 0) AS units
    FROM returns r
    JOIN channels c ON c.id = r.channel_id
    LEFT JOIN return_lines rl ON rl.return_id = r.id
    WHERE NOT r.is_test
) x
GROUP BY x.channel, x.marketplace, x.reason, x.channel_reason
"""

RECREATED = ("v_return_flags", "v_handling_times", "v_returns_daily", "v_return_reasons", "v_sku_returns")


def _sku_returns(old: str) -> str:
    """0006's v_sku_returns with test returns' lines left out of the returned units."""
    returned = "    LEFT JOIN order_lines ol ON ol.id = rl.order_line_id\n) u"
    assert old.count(returned) == 2, "0006's v_sku_returns changed shape"
    return old.replace(returned, "    LEFT JOIN order_lines ol ON ol.id = rl.order_line_id\n    WHERE NOT r.is_test\n) u")


def _frozen(name: str) -> object:
    """An earlier migration's module: its SQL is frozen (a migration is never edited once released)."""
    return importlib.import_module(f"retsync_migrations.versions.{name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    old = _frozen("0006_reporting_views")
    op.execute("DROP VIEW v_returns")
    op.execute("DROP VIEW v_return_lines")
    for view in RECREATED:
        op.execute(f"DROP VIEW {view}")
    op.add_column("returns", sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(V_RETURN_LINES)
    op.execute(V_RETURNS)
    op.execute(V_RETURN_FLAGS)
    op.execute(v_handling_times(dialect))
    op.execute(v_returns_daily(dialect))
    op.execute(V_RETURN_REASONS)
    op.execute(_sku_returns(old.V_SKU_RETURNS))  # type: ignore[attr-defined]


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    old, before = _frozen("0006_reporting_views"), _frozen("0013_marketplace")
    op.execute("DROP VIEW v_returns")
    op.execute("DROP VIEW v_return_lines")
    for view in RECREATED:
        op.execute(f"DROP VIEW {view}")
    op.drop_column("returns", "is_test")  # SQLite drops it in place: a table rebuild would break v_customers
    op.execute(before.V_RETURN_LINES)  # type: ignore[attr-defined]
    op.execute(before.V_RETURNS)  # type: ignore[attr-defined]
    op.execute(old.V_RETURN_FLAGS)  # type: ignore[attr-defined]
    op.execute(old.v_handling_times(dialect))  # type: ignore[attr-defined]
    op.execute(old.v_returns_daily(dialect))  # type: ignore[attr-defined]
    op.execute(old.V_RETURN_REASONS)  # type: ignore[attr-defined]
    op.execute(old.V_SKU_RETURNS)  # type: ignore[attr-defined]
