"""ops: which returns and orders had their customer's personal data erased (retention, or a person's request)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "personal_data_erasures",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("record_kind", sa.String(10), nullable=False),
        sa.Column("record_id", _ID, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("record_kind", "record_id", name="uq_personal_data_erasures_record_kind"),
    )


def downgrade() -> None:
    op.drop_table("personal_data_erasures")
