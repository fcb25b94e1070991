"""Usage counters in shards: `usage_shards` spreads a month's started count over a few rows
(summed when read), so concurrent starts of one account no longer queue for one row's lock on
PostgreSQL (store/usage.py). Added beside `usage`, not in its place: processes of the previous
release keep writing `usage` during a rolling upgrade, and reads add both tables up.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_shards",
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("started", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_shards_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "year", "month", "shard", name=op.f("pk_usage_shards")
        ),
    )


def downgrade() -> None:
    # The counts go back into `usage`, which the previous release reads.
    op.execute(
        "INSERT INTO usage (account_id, year, month, started) "
        "SELECT s.account_id, s.year, s.month, 0 FROM usage_shards s "
        "WHERE NOT EXISTS (SELECT 1 FROM usage u WHERE u.account_id = s.account_id "
        "AND u.year = s.year AND u.month = s.month) "
        "GROUP BY s.account_id, s.year, s.month"
    )
    op.execute(
        "UPDATE usage SET started = started + coalesce((SELECT sum(s.started) "
        "FROM usage_shards s WHERE s.account_id = usage.account_id AND s.year = usage.year "
        "AND s.month = usage.month), 0)"
    )
    op.drop_table("usage_shards")
