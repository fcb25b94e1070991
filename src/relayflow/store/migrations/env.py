"""Alembic environment: always called with a live connection (see `migrations.__init__`)."""

from __future__ import annotations

from alembic import context

from relayflow.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "relayflow migrations run through `relayflow db upgrade`, not the alembic CLI."
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
