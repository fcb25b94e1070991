"""Instances per definition and status from an index (the console's definitions list).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instances_status_counts"),
            ["account_id", "definition_id", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_status_counts"))
