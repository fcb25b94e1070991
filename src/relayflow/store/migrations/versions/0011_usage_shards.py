"""Usage counters in shards: a month's started count is spread over a few rows (summed when
read), so concurrent starts of one account no longer queue for one row's lock on PostgreSQL
(store/usage.py). Existing rows become shard 0.

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
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shard", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint("pk_usage", type_="primary")
        batch_op.create_primary_key("pk_usage", ["account_id", "year", "month", "shard"])


def downgrade() -> None:
    # Fold every month's shards into shard 0, then drop the column.
    op.execute(
        "INSERT INTO usage (account_id, year, month, shard, started) "
        "SELECT DISTINCT u.account_id, u.year, u.month, 0, 0 FROM usage u WHERE NOT EXISTS ("
        "SELECT 1 FROM usage z WHERE z.account_id = u.account_id AND z.year = u.year "
        "AND z.month = u.month AND z.shard = 0)"
    )
    op.execute(
        "UPDATE usage SET started = (SELECT sum(u.started) FROM usage u "
        "WHERE u.account_id = usage.account_id AND u.year = usage.year "
        "AND u.month = usage.month) WHERE shard = 0"
    )
    op.execute("DELETE FROM usage WHERE shard <> 0")
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_constraint("pk_usage", type_="primary")
        batch_op.create_primary_key("pk_usage", ["account_id", "year", "month"])
        batch_op.drop_column("shard")
