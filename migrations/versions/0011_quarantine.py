"""quarantine: records a channel sent that could not be read or stored, and the v_quarantine view

A record that cannot be stored (an overlong field, a quantity of 1e30, a missing key) used to fail its whole
page on every poll, and with it every later return of the channel. It is kept here instead, with why, and the
page goes on.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

V_QUARANTINE = """
CREATE VIEW v_quarantine AS
SELECT
    q.id AS quarantine_id,
    c.name AS channel,
    q.stream AS stream,
    q.kind AS kind,
    q.external_id AS external_id,
    q.reason AS reason,
    q.payload AS payload,
    q.payload_size AS payload_size,
    q.times_seen AS times_seen,
    q.first_seen_at AS first_seen_at,
    q.last_seen_at AS last_seen_at,
    q.resolved_at AS resolved_at,
    (q.resolved_at IS NULL) AS is_open
FROM quarantine q
JOIN channels c ON c.id = q.channel_id
"""


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", Id, primary_key=True),
        sa.Column("channel_id", Id, sa.ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stream", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("record_key", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("channel_id", "kind", "record_key", name="uq_quarantine_channel_id"),
    )
    op.create_index("ix_quarantine_open", "quarantine", ["channel_id", "resolved_at"])
    op.execute(V_QUARANTINE)


def downgrade() -> None:
    op.execute("DROP VIEW v_quarantine")
    op.drop_index("ix_quarantine_open", "quarantine")
    op.drop_table("quarantine")
