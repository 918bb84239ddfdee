"""reporting views: v_return_flags, v_handling_times, v_returns_daily, v_return_reasons, v_sku_returns, v_customers

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
