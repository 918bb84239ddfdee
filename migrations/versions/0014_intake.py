"""intake: webhook deliveries and parcels followed at their carrier

Returns without a channel API arrive through the returns webhook, whose deliveries are kept by the id the sender
gave them (a replay changes nothing), and their parcels, like those of any return with an InPost tracking
number, are followed at the carrier: `parcels` keeps what was last seen of each and when to look again.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("channel_id", _ID, sa.ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("return_external_id", sa.String(200), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel_id", "delivery_id"),
    )
    op.create_table(
        "parcels",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("return_id", _ID, sa.ForeignKey("returns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("carrier", sa.String(50), nullable=False),
        sa.Column("tracking_number", sa.String(200), nullable=False),
        sa.Column("status", sa.String(100), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("milestone", sa.String(30), nullable=True),
        sa.Column("problem", sa.String(100), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("return_id", "tracking_number"),
    )
    op.create_index("ix_parcels_due", "parcels", ["done", "next_check_at"])


def downgrade() -> None:
    op.drop_index("ix_parcels_due", "parcels")
    op.drop_table("parcels")
    op.drop_table("webhook_deliveries")
