"""customer_keys and orders.delivered_at: incremental customer grouping, return window from delivery

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_keys",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("group_id", Id, sa.ForeignKey("customer_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purchase", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_customer_keys_group_id", "customer_keys", ["group_id"])
    op.add_column("orders", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "delivered_at")
    op.drop_table("customer_keys")
