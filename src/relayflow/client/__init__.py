"""A typed Python client of the relayflow API, blocking or asyncio.

    from relayflow.client import RelayflowClient
    with RelayflowClient("http://127.0.0.1:8080", api_key, "acme") as client:
        created = client.definitions.create(body)
        for instance in client.instances.iterate(created.id, status="Complete"):
            ...

Requests and answers are the server's own pydantic models (`relayflow.api.shapes`,
`relayflow.model`, `relayflow.services.inputs`); errors are `relayflow.client.errors`.
"""

from relayflow.client.aio import AsyncRelayflowClient
from relayflow.client.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    RelayflowError,
    RequestTimeoutError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
)
from relayflow.client.sync import RelayflowClient

__all__ = [
    "AsyncRelayflowClient",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitedError",
    "RelayflowClient",
    "RelayflowError",
    "RequestTimeoutError",
    "ServiceUnavailableError",
    "TransportError",
    "ValidationError",
]
