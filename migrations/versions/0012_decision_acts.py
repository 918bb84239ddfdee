"""decision acts: decisions recorded together are carried out at the channel as one act

A whole-return accept used to reach the channel one line at a time: two refunds (two e-mails to the buyer) for a
two-line return. Each decision now names its act (`act_key`, also the idempotency key the channel sees); the
outbox claims, sends and settles an act's decisions together. Every decision recorded before this migration
becomes an act of its own, keyed by its own idempotency key, so its state, attempts and reference carry on
exactly as they were, and a decision already sent is never sent again under a new key.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a default: SQLite would otherwise rebuild the table, which the views over it forbid
    op.add_column("decisions", sa.Column("act_key", sa.String(64), nullable=False, server_default=""))
    op.execute("UPDATE decisions SET act_key = idempotency_key")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("decisions", "act_key", server_default=None)
    op.create_index("ix_decisions_act", "decisions", ["act_key"])


def downgrade() -> None:
    op.drop_index("ix_decisions_act", "decisions")
    op.drop_column("decisions", "act_key")
