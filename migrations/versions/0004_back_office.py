"""held_returns: marketplace returns put into a shop's back office (`decisions_from`)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def UTCDateTime() -> sa.DateTime:  # noqa: N802 - reads like the model's column type
    return sa.DateTime(timezone=True)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_returns",
        sa.Column("id", Id, primary_key=True),
        sa.Column("return_id", Id, sa.ForeignKey("returns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("shop_channel_id", Id, sa.ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("decided_kind", sa.String(20), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("return_id", name="uq_held_returns_return_id"),
        sa.UniqueConstraint("key", name="uq_held_returns_key"),
    )
    op.create_index("ix_held_returns_due", "held_returns", ["state", "next_attempt_at"])
    op.create_index("ix_held_returns_shop", "held_returns", ["shop_channel_id", "state"])


def downgrade() -> None:
    op.drop_table("held_returns")
