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
    text,
    true,
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
    # Admin keys may also change the account's provider settings.
    Column("is_admin", Boolean, nullable=False, server_default=true()),
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

# --- execution (engine) ----------------------------------------------------------------------

instances = Table(
    "instances",
    metadata,
    Column("id", String(24), primary_key=True),  # 24-hex, 8x8's workflowId shape
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("definition_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sub_account_id", String(200), nullable=True),
    Column("status", String(16), nullable=False),  # Runnable | Suspended | Complete | Terminated
    Column("data_json", Text, nullable=False),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("completed_at_ms", BigInteger, nullable=True),
    # When the instance next has work: min over its pointers (derived, rewritten in every
    # transaction that changes pointers). NULL = nothing due (waiting for events or done).
    Column("next_run_at_ms", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("executions", Integer, nullable=False, server_default="0"),
    # The W3C traceparent of the request that started it: its sprints continue that trace.
    Column("trace_parent", String(55), nullable=True),
    Index("ix_instances_due", "status", "next_run_at_ms"),
    Index("ix_instances_listing", "account_id", "definition_id", "version", "started_at_ms"),
    # Instances per definition and status (the console's definitions list) from the index
    # alone, without reading 100,000 rows.
    Index("ix_instances_status_counts", "account_id", "definition_id", "status"),
    # Retention (store/retention.py) finds ended instances by age through these partial
    # indexes: written only when an instance ends, never on the hot path's status changes.
    # Terminated instances keep completed_at_ms NULL (8x8's completedAt), so their age is
    # bounded by started_at_ms and checked on their last event.
    Index(
        "ix_instances_complete_age",
        "completed_at_ms",
        sqlite_where=text("status = 'Complete'"),
        postgresql_where=text("status = 'Complete'"),
    ),
    Index(
        "ix_instances_terminated_age",
        "started_at_ms",
        sqlite_where=text("status = 'Terminated'"),
        postgresql_where=text("status = 'Terminated'"),
    ),
)

# One row per step activation (Workflow Core's execution pointer); also 8x8's step log entry.
pointers = Table(
    "pointers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "instance_id", String(24), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
    ),
    Column("seq", Integer, nullable=False),  # creation order within the instance
    Column("step_id", String(200), nullable=False),
    Column("parent_id", String(36), nullable=True),  # the If whose branch this runs in
    Column("status", String(16), nullable=False),
    Column("started_at_ms", BigInteger, nullable=True),
    Column("completed_at_ms", BigInteger, nullable=True),
    Column("wake_at_ms", BigInteger, nullable=True),  # Wait end, or wait-for-event timeout
    Column("event_key", String(400), nullable=True),
    Column("event_json", Text, nullable=True),  # the reply / DTMF delivered to a wait
    Column("state_json", Text, nullable=True),  # the step's own checkpoint (inputs, results)
    Column("attempt", Integer, nullable=False, server_default="0"),
    Index("ix_pointers_instance", "instance_id", "seq"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column(
        "pointer_id", String(36), ForeignKey("pointers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("account_id", String(100), nullable=False),
    Column("event_key", String(400), nullable=False),
    Column(
        "instance_id", String(24), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
    ),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_subscriptions_key", "account_id", "event_key"),
    Index("ix_subscriptions_instance", "instance_id"),  # an instance's delete cascades here
)

# Events that arrived before their wait subscribed (a DTMF callback racing its WaitForDTMF).
parked_events = Table(
    "parked_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(100), nullable=False),
    Column("event_key", String(400), nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Index("ix_parked_events_key", "account_id", "event_key"),
)

workflow_errors = Table(
    "workflow_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "instance_id", String(24), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
    ),
    Column("step_id", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("error_time_ms", BigInteger, nullable=False),
    Index("ix_workflow_errors_instance", "instance_id"),
)

# Past-tense facts per instance: the audit log, and the oracle of the flow tests.
instance_events = Table(
    "instance_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "instance_id", String(24), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
    ),
    Column("type", String(40), nullable=False),
    Column("step_id", String(200), nullable=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("detail_json", Text, nullable=True),
    Index("ix_instance_events_instance", "instance_id", "id"),
)

# Messages sent by steps (sandbox outbox now; real 8x8 sends later), one per pointer.
messages = Table(
    "messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # send order
    Column("id", String(36), nullable=False, unique=True),  # umid
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("instance_id", String(24), nullable=True),
    Column("pointer_id", String(36), nullable=True, unique=True),
    Column("channel", String(16), nullable=False),  # sms | chatapps | voice
    Column("provider", String(16), nullable=False),  # sandbox | 8x8
    Column("sub_account_id", String(200), nullable=True),
    Column("recipient", String(200), nullable=True),
    Column("client_message_id", String(400), nullable=True),
    Column("request_json", Text, nullable=False),  # exactly what the 8x8 API receives
    Column("response_json", Text, nullable=True),
    Column("status", String(32), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Index("ix_messages_account", "account_id", "created_at_ms"),
)

# Every inbound event (sandbox, HTTP trigger, test start; webhooks later), deduplicated.
inbox = Table(
    "inbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(200), nullable=True),
    Column("payload_json", Text, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("processed_at_ms", BigInteger, nullable=True),
    Index("uq_inbox_dedupe", "account_id", "dedupe_key", unique=True),
)

usage = Table(
    "usage",
    metadata,
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("started", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("account_id", "year", "month"),
)

# Started workflows per account and month, spread over a few rows (`shard`) that are summed
# when read, with `usage` (written by releases before 0011; read until a release folds it in):
# every start updates one row, and on PostgreSQL one row per account made concurrent starts
# queue for its lock until each commit.
usage_shards = Table(
    "usage_shards",
    metadata,
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("shard", Integer, nullable=False),
    Column("started", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("account_id", "year", "month", "shard"),
)

# --- providers and delivery receipts -----------------------------------------------------------

# How an account reaches 8x8 (absent row = the sandbox). The API key is encrypted at rest with
# RELAYFLOW_SECRET_KEY and never leaves the process except towards 8x8.
provider_settings = Table(
    "provider_settings",
    metadata,
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("provider", String(16), nullable=False),
    Column("api_key_encrypted", Text, nullable=True),
    Column("region", String(16), nullable=True),
    Column("sms_url", String(500), nullable=True),
    Column("chatapps_url", String(500), nullable=True),
    Column("voice_url", String(500), nullable=True),
    Column("updated_at_ms", BigInteger, nullable=False),
)

message_receipts = Table(
    "message_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("umid", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("detail", String(64), nullable=True),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("status_at", String(40), nullable=True),  # 8x8's status.timestamp, as sent
    Column("payload_json", Text, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Index("ix_message_receipts_umid", "account_id", "umid", "id"),
)

# Web-console sign-ins (issue 10). The cookie carries a random token; only its SHA-256 is
# stored. A session belongs to the API key it was opened with and dies with it (revocation),
# at sign-out, or at `expires_at_ms`.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("key_id", String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Index("ix_console_sessions_expires_at_ms", "expires_at_ms"),
)

# The customers an instance is about (phone digits, chat user ids from its start data): the
# console's `contact` filter looks them up instead of searching every instance's data.
instance_contacts = Table(
    "instance_contacts",
    metadata,
    Column("account_id", String(100), nullable=False),
    Column("contact", String(100), nullable=False),
    Column(
        "instance_id", String(24), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
    ),
    PrimaryKeyConstraint("account_id", "contact", "instance_id"),
    Index("ix_instance_contacts_instance", "instance_id"),
)

# Inbound messages held for a customer's instance that is still running the steps before its
# WaitForReply (engine/router.py, RELAYFLOW_REPLY_HOLD_SECONDS): one row per definition held
# for and reply key. Its wait takes it (`event_key`), or it is released and routed as usual at
# `release_at_ms`.
held_messages = Table(
    "held_messages",
    metadata,
    Column("message_id", String(36), nullable=False),  # the inbox row's id
    Column("definition_id", String(36), nullable=False),
    Column("event_key", String(400), nullable=False),
    Column(
        "account_id", String(100), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("trigger", String(32), nullable=False),
    Column("sub_account_id", String(200), nullable=True),
    Column("payload_json", Text, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("release_at_ms", BigInteger, nullable=False),
    Column("trace_parent", String(55), nullable=True),
    PrimaryKeyConstraint("message_id", "definition_id", "event_key"),
    Index("ix_held_messages_key", "account_id", "event_key", "definition_id"),
    Index("ix_held_messages_release", "release_at_ms"),
)
