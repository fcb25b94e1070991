"""SQLAlchemy Core tables. Instants are UTC epoch milliseconds (`*_ms`, BigInteger): SQLite
drops time-zone offsets, and integers keep the due-time indexes portable (DESIGN.md §6).

Changing a table means a new Alembic revision in `store/migrations/versions/`; a test checks
that the migrations and these tables agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(100), primary_key=True),
    # sha256 of the webhook token: 8x8 (or the sandbox) authenticates its webhooks with it.
    Column("webhook_token_hash", String(64), nullable=False),
    Column("provider", String(16), nullable=False, server_default="sandbox"),
    Column("created_at_ms", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # public key id, used to revoke
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    # sha256 of the whole key: keys are 256-bit random, so a fast hash is enough and allows lookup.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger, nullable=True),
    Index("ix_api_keys_account_id", "account_id"),
)

definitions = Table(
    "definitions",
    metadata,
    Column("id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("sub_account_id", String(200), nullable=True),
    Column("trigger", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("steps_json", Text, nullable=False),  # immutable: a version never changes
    Column("created_at_ms", BigInteger, nullable=False),
    Column("deleted_at_ms", BigInteger, nullable=True),
    # Exactly one non-deleted version per definition carries is_latest: lists and trigger
    # routing read it instead of computing max(version) per definition.
    Column("is_latest", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("id", "version"),
    Index("ix_definitions_account_latest", "account_id", "is_latest", "created_at_ms"),
    Index("ix_definitions_routing", "account_id", "trigger", "status", "is_latest"),
)
