"""Retention: partial indexes that find ended instances by age without scanning live ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instances_complete_age",
            ["completed_at_ms"],
            unique=False,
            sqlite_where=sa.text("status = 'Complete'"),
            postgresql_where=sa.text("status = 'Complete'"),
        )
        batch_op.create_index(
            "ix_instances_terminated_age",
            ["started_at_ms"],
            unique=False,
            sqlite_where=sa.text("status = 'Terminated'"),
            postgresql_where=sa.text("status = 'Terminated'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_terminated_age")
        batch_op.drop_index("ix_instances_complete_age")
