"""returns.marketplace: the marketplace behind a return that reaches retsync through a feed platform

Channable passes on returns from Amazon, bol, Fruugo, Zalando and others; a merchant must see "Amazon via
Channable" apart from the channel itself. The column is shown last in v_returns and v_return_lines (both views
are recreated with it, their other columns unchanged and in the same order, so saved reports keep working).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
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
    r.marketplace AS marketplace
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
    r.marketplace AS marketplace
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


OLD_V_RETURN_LINES = f"""
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
    COALESCE(rl.currency, ol.currency, r.currency) AS currency
FROM return_lines rl
JOIN returns r ON r.id = rl.return_id
JOIN channels c ON c.id = r.channel_id
LEFT JOIN order_lines ol ON ol.id = rl.order_line_id
LEFT JOIN decisions d ON {LATEST_DECISION}
"""

OLD_V_RETURNS = f"""
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
    r.updated_at AS updated_at
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



def upgrade() -> None:
    op.execute("DROP VIEW v_returns")
    op.execute("DROP VIEW v_return_lines")
    op.add_column("returns", sa.Column("marketplace", sa.String(100), nullable=True))
    op.execute(V_RETURN_LINES)
    op.execute(V_RETURNS)


def downgrade() -> None:
    op.execute("DROP VIEW v_returns")
    op.execute("DROP VIEW v_return_lines")
    op.drop_column("returns", "marketplace")
    op.execute(OLD_V_RETURN_LINES)
    op.execute(OLD_V_RETURNS)
