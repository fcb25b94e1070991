"""One-off queries against the benchmark's PostgreSQL server, from the bench's own process."""

from __future__ import annotations

import asyncio
from typing import Any


async def _fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    import asyncpg  # relayflow's own driver

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def pg_fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    """The rows of `query`, on a connection of its own (opened and closed here)."""
    return asyncio.run(_fetch(dsn, query, *args))
