"""Room on each page for HOT updates (PostgreSQL): `instances` and `pointers` keep 30 % of
every page free, so an update that changes no indexed column (a claim sets only the lease
columns; a pointer changes status, times, state) can put the new row version on the same page
without a new entry in every index (a heap-only tuple). With full pages every claim wrote a
new entry into each of the instance's indexes, and left a dead one for vacuum. SQLite has no
such setting. Only pages written from now on keep the room.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FILLFACTOR = 70  # per cent of a page filled by inserts; the rest is left for updates
TABLES = ("instances", "pointers")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
