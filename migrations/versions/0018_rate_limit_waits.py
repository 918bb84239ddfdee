"""channels: the rate-limit waits of each channel, kept where every process can read them

The daemon counts the requests a channel held back (a 429, a quota, a Retry-After) and the seconds they waited;
`/metrics` has them for the running process only. Stored on the channel row after each pull, they reach
`retsync channels` and the web console's Channels page, which run as processes of their own.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # in place, not a table rebuild: views read `channels`
    op.add_column("channels", sa.Column("rate_limit_waits", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("channels", sa.Column("rate_limit_wait_seconds", sa.Float(), nullable=False, server_default="0"))
    op.add_column("channels", sa.Column("last_rate_limited_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("channels", "last_rate_limited_at")
    op.drop_column("channels", "rate_limit_wait_seconds")
    op.drop_column("channels", "rate_limit_waits")
