"""Held messages: inbound messages kept back for a customer's instance still running the steps
before its WaitForReply (RELAYFLOW_REPLY_HOLD_SECONDS; engine/router.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_messages",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("definition_id", sa.String(length=36), nullable=False),
        sa.Column("event_key", sa.String(length=400), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("sub_account_id", sa.String(length=200), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("release_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("trace_parent", sa.String(length=55), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_held_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "message_id", "definition_id", "event_key", name=op.f("pk_held_messages")
        ),
    )
    with op.batch_alter_table("held_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_held_messages_key", ["account_id", "event_key", "definition_id"], unique=False
        )
        batch_op.create_index("ix_held_messages_release", ["release_at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_held_messages_release")
        batch_op.drop_index("ix_held_messages_key")
    op.drop_table("held_messages")
