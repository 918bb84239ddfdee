"""return_flags and customer_groups: anomaly flags and one customer across channels

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_groups",
        sa.Column("id", Id, primary_key=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
    )
    # No foreign key on the group columns: SQLite cannot add a named one without copying `returns`, which
    # would break the views that read it; reconcile rebuilds the groups and owns their consistency.
    for table in ("returns", "orders"):
        op.add_column(table, sa.Column("customer_group_id", Id, nullable=True))
        op.add_column(table, sa.Column("customer_match", sa.String(20), nullable=True))
        op.create_index(f"ix_{table}_customer_group_id", table, ["customer_group_id"])
    op.create_table(
        "return_flags",
        sa.Column("id", Id, primary_key=True),
        sa.Column("return_id", Id, sa.ForeignKey("returns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("return_line_id", Id, sa.ForeignKey("return_lines.id", ondelete="CASCADE"), nullable=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("flagged_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("resolved_at", _time(), nullable=True),
    )
    op.create_index("ix_return_flags_return_id", "return_flags", ["return_id"])
    op.create_index("ix_return_flags_code", "return_flags", ["code", "resolved_at"])


def downgrade() -> None:
    op.drop_table("return_flags")
    for table in ("returns", "orders"):
        op.drop_index(f"ix_{table}_customer_group_id", table)
        op.drop_column(table, "customer_match")  # SQLite 3.35+ drops columns in place
        op.drop_column(table, "customer_group_id")
    op.drop_table("customer_groups")
