"""An ASGI app served by uvicorn on a loopback port inside the test's event loop, for clients
that must talk real HTTP to the app under test (the Python client, the OpenAPI checks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tests.support.processes import free_port


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """uvicorn serving `app` on loopback in this event loop; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn stopped before it started"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
