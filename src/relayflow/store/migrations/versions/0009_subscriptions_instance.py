"""Retention: `subscriptions.instance_id` indexed, for the cascade of an instance's delete.

Without it each purged instance made the database scan every subscription to check the
foreign key (about 6 ms per instance on SQLite with 24,000 waiting instances; bench/RESULTS.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 17:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_instance", ["instance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_instance")
