"""notifications outbox and the watermarks that keep history from being mailed out

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", Id, primary_key=True),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("channel_id", Id, sa.ForeignKey("channels.id", ondelete="CASCADE"), nullable=True),
        sa.Column("return_id", Id, sa.ForeignKey("returns.id", ondelete="CASCADE"), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_key", "transport", name="uq_notifications_event_key"),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_channel", "notifications", ["channel_id", "state"])
    op.create_table(
        "notification_watermarks",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_watermarks")
    op.drop_index("ix_notifications_channel", "notifications")
    op.drop_index("ix_notifications_due", "notifications")
    op.drop_table("notifications")
