"""Instance contacts: the phone numbers and chat users an instance is about, by account.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_contacts",
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("contact", sa.String(length=100), nullable=False),
        sa.Column("instance_id", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_instance_contacts_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "contact", "instance_id", name=op.f("pk_instance_contacts")
        ),
    )
    with op.batch_alter_table("instance_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instance_contacts_instance"), ["instance_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("instance_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_contacts_instance"))
    op.drop_table("instance_contacts")
