"""Engine: instances, pointers (step logs), subscriptions, parked events, errors, events,
messages, inbox, usage counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 01:30:27.752962
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("event_key", sa.String(length=400), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_events")),
    )
    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.create_index("ix_parked_events_key", ["account_id", "event_key"], unique=False)

    op.create_table(
        "inbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("processed_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inbox_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("uq_inbox_dedupe", ["account_id", "dedupe_key"], unique=True)

    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("definition_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sub_account_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("completed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_run_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("executions", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_instances_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_due", ["status", "next_run_at_ms"], unique=False)
        batch_op.create_index(
            "ix_instances_listing",
            ["account_id", "definition_id", "version", "started_at_ms"],
            unique=False,
        )

    op.create_table(
        "messages",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=True),
        sa.Column("pointer_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("sub_account_id", sa.String(length=200), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=True),
        sa.Column("client_message_id", sa.String(length=400), nullable=True),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_messages")),
        sa.UniqueConstraint("id", name=op.f("uq_messages_id")),
        sa.UniqueConstraint("pointer_id", name=op.f("uq_messages_pointer_id")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_account", ["account_id", "created_at_ms"], unique=False)

    op.create_table(
        "usage",
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("started", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "year", "month", name=op.f("pk_usage")),
    )
    op.create_table(
        "instance_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("step_id", sa.String(length=200), nullable=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_instance_events_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_events")),
    )
    with op.batch_alter_table("instance_events", schema=None) as batch_op:
        batch_op.create_index("ix_instance_events_instance", ["instance_id", "id"], unique=False)

    op.create_table(
        "pointers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("completed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("wake_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("event_key", sa.String(length=400), nullable=True),
        sa.Column("event_json", sa.Text(), nullable=True),
        sa.Column("state_json", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_pointers_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pointers")),
    )
    with op.batch_alter_table("pointers", schema=None) as batch_op:
        batch_op.create_index("ix_pointers_instance", ["instance_id", "seq"], unique=False)

    op.create_table(
        "workflow_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=False),
        sa.Column("step_id", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error_time_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_workflow_errors_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_errors")),
    )
    with op.batch_alter_table("workflow_errors", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_errors_instance", ["instance_id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("pointer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("event_key", sa.String(length=400), nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_subscriptions_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pointer_id"],
            ["pointers.id"],
            name=op.f("fk_subscriptions_pointer_id_pointers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pointer_id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_key", ["account_id", "event_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_key")

    op.drop_table("subscriptions")
    with op.batch_alter_table("workflow_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_errors_instance")

    op.drop_table("workflow_errors")
    with op.batch_alter_table("pointers", schema=None) as batch_op:
        batch_op.drop_index("ix_pointers_instance")

    op.drop_table("pointers")
    with op.batch_alter_table("instance_events", schema=None) as batch_op:
        batch_op.drop_index("ix_instance_events_instance")

    op.drop_table("instance_events")
    op.drop_table("usage")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_account")

    op.drop_table("messages")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_listing")
        batch_op.drop_index("ix_instances_due")

    op.drop_table("instances")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("uq_inbox_dedupe")

    op.drop_table("inbox")
    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_events_key")

    op.drop_table("parked_events")
