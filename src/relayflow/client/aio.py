"""`AsyncRelayflowClient`: the asyncio twin of `sync.RelayflowClient`, method for method.

Keep the two in step: every method only sends a `Call` of `_calls.py` (paths, parameters,
models) and `_core.py` reads the answer, so the clients differ in `await` alone."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from relayflow.api.shapes import (
    BulkResultOut,
    DefinitionOut,
    MessageOut,
    MessageWithReceiptsOut,
    RouteResultOut,
    TriggerResultOut,
    UsageMonthOut,
    UsageOut,
    ValidationReportOut,
    WorkflowErrorOut,
    WorkflowEventOut,
    WorkflowInstanceOut,
)
from relayflow.client import _calls as calls
from relayflow.client._calls import Channel, DefinitionBody, InstanceStatus, Instant
from relayflow.client._core import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_DELAY_S,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT_S,
    Call,
    Endpoint,
    RetryPolicy,
    next_offset,
    outcome,
)
from relayflow.client.errors import RequestTimeoutError, TransportError

T = TypeVar("T")


class AsyncRelayflowClient:
    """One account of a relayflow server. Use it as a context manager (or call `close`).

    `timeout` is per request in seconds; 429 and 503 answers are retried `max_retries` times,
    waiting `Retry-After` (at most `max_retry_delay` s) or backing off; `transport` replaces
    the network (tests). Failures raise `relayflow.client.errors.RelayflowError` subclasses.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        account_id: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = Endpoint(base_url, api_key, account_id)
        self.retry = RetryPolicy(max_retries, max_retry_delay)
        self._http = httpx.AsyncClient(
            base_url=self.endpoint.base_url,
            headers=self.endpoint.headers,
            timeout=timeout,
            transport=transport,
        )
        self.definitions = Definitions(self)
        self.instances = Instances(self)
        self.triggers = Triggers(self)
        self.sandbox = Sandbox(self)
        self.usage = Usage(self)
        self.messages = Messages(self)

    async def send(self, call: Call[T]) -> T:
        """Send one call, retrying 429/503; its parsed answer or a typed error."""
        attempt = 0
        while True:
            request = self.endpoint.request(self._http, call)
            try:
                response = await self._http.send(request)
            except httpx.TimeoutException as error:
                raise RequestTimeoutError(f"{call.method} {request.url}: {error!r}") from error
            except httpx.TransportError as error:
                raise TransportError(f"{call.method} {request.url}: {error!r}") from error
            delay = self.retry.delay(response, attempt)
            if delay is None:
                return outcome(call, response)
            await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def pages(
        self, page: Callable[[int, int], Call[list[T]]], page_size: int
    ) -> AsyncIterator[T]:
        """Every item of a limit/offset list, fetching `page_size` at a time."""
        offset: int | None = 0
        while offset is not None:
            items = await self.send(page(page_size, offset))
            for item in items:
                yield item
            offset = next_offset(len(items), page_size, offset)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRelayflowClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Definitions:
    """Workflow definitions: `create`, `list`/`iterate`, `get` (versions), `update`, ..."""

    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def create(self, body: DefinitionBody) -> DefinitionOut:
        return await self._client.send(calls.create_definition(body))

    async def list(
        self, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[DefinitionOut]:
        """The latest version of each definition, newest definition first."""
        return await self._client.send(calls.list_definitions(limit, offset))

    def iterate(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[DefinitionOut]:
        return self._client.pages(calls.list_definitions, page_size)

    async def get(
        self, definition_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[DefinitionOut]:
        """Every live version, newest first; `[]` for an unknown id (as 8x8 answers)."""
        return await self._client.send(calls.definition_versions(definition_id, limit, offset))

    async def update(self, definition_id: str, body: DefinitionBody) -> DefinitionOut:
        """Creates version N+1."""
        return await self._client.send(calls.update_definition(definition_id, body))

    async def delete(self, definition_id: str, *, version: int | None = None) -> None:
        """Every version, or only `version`."""
        await self._client.send(calls.delete_definition(definition_id, version))

    async def validate(self, body: DefinitionBody) -> ValidationReportOut:
        """A dry run of create: every problem with its JSON path."""
        return await self._client.send(calls.validate_definition(body))


class Instances:
    """Workflow instances of a definition, and the operator actions on them."""

    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def list(
        self,
        definition_id: str,
        *,
        version: int | None = None,
        status: InstanceStatus | None = None,
        start_time_from: Instant | None = None,
        start_time_to: Instant | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> builtins.list[WorkflowInstanceOut]:
        """Newest first; without `version`, the latest version's instances."""
        return await self._client.send(
            calls.list_instances(
                definition_id,
                version=version,
                status=status,
                start_time_from=start_time_from,
                start_time_to=start_time_to,
                limit=limit,
                offset=offset,
            )
        )

    def iterate(
        self,
        definition_id: str,
        *,
        version: int | None = None,
        status: InstanceStatus | None = None,
        start_time_from: Instant | None = None,
        start_time_to: Instant | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[WorkflowInstanceOut]:
        """Every matching instance, page by page (offsets: instances started meanwhile shift
        the pages, so one may be seen twice)."""

        def page(limit: int, offset: int) -> Call[builtins.list[WorkflowInstanceOut]]:
            return calls.list_instances(
                definition_id,
                version=version,
                status=status,
                start_time_from=start_time_from,
                start_time_to=start_time_to,
                limit=limit,
                offset=offset,
            )

        return self._client.pages(page, page_size)

    async def get(
        self, definition_id: str, workflow_id: str, *, include_logs: bool = False
    ) -> WorkflowInstanceOut:
        return await self._client.send(calls.get_instance(definition_id, workflow_id, include_logs))

    async def errors(self, definition_id: str, workflow_id: str) -> builtins.list[WorkflowErrorOut]:
        return await self._client.send(calls.instance_errors(definition_id, workflow_id))

    async def events(self, definition_id: str, workflow_id: str) -> builtins.list[WorkflowEventOut]:
        return await self._client.send(calls.instance_events(definition_id, workflow_id))

    async def suspend(self, definition_id: str, workflow_id: str) -> None:
        await self._client.send(calls.control_instance(definition_id, workflow_id, "suspend"))

    async def resume(self, definition_id: str, workflow_id: str) -> None:
        await self._client.send(calls.control_instance(definition_id, workflow_id, "resume"))

    async def terminate(self, definition_id: str, workflow_id: str) -> None:
        await self._client.send(calls.control_instance(definition_id, workflow_id, "terminate"))

    async def start(
        self,
        definition_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
    ) -> WorkflowInstanceOut:
        """A test start: `data` is the trigger payload (works on disabled definitions)."""
        return await self._client.send(calls.start_instance(definition_id, data, version))

    async def retry(
        self, definition_id: str, workflow_id: str, *, latest: bool = False
    ) -> WorkflowInstanceOut:
        """Re-run a failed instance from its failed step (`latest`: on the newest version)."""
        return await self._client.send(calls.retry_instance(definition_id, workflow_id, latest))

    async def bulk(
        self,
        definition_id: str,
        action: Literal["suspend", "resume", "terminate"],
        *,
        status: InstanceStatus | None = None,
        version: int | Literal["all"] | None = None,
        start_time_from: Instant | None = None,
        start_time_to: Instant | None = None,
        contact: str | None = None,
    ) -> BulkResultOut:
        """`action` on every instance matching the filters (bad filters: ValueError, unsent)."""
        body = calls.bulk_body(action, status, version, start_time_from, start_time_to, contact)
        return await self._client.send(calls.bulk_action(definition_id, body))


class Triggers:
    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def http_request(
        self, data: Mapping[str, Any], *, sub_account_id: str | None = None
    ) -> TriggerResultOut:
        """Start every enabled `http_request` definition with `data`."""
        return await self._client.send(calls.http_request_trigger(data, sub_account_id))


class Sandbox:
    """Play the customer against the sandbox provider, and read what workflows sent."""

    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def inbound_sms(
        self, sender: str, to: str, text: str, *, sub_account_id: str | None = None
    ) -> RouteResultOut:
        """`sender` texts `to` (your number); invalid arguments: ValueError, unsent."""
        return await self._client.send(calls.inbound_sms(sender, to, text, sub_account_id))

    async def inbound_chat(
        self,
        channel: str,
        sender: str,
        *,
        text: str | None = None,
        payload: str | None = None,
        sub_account_id: str | None = None,
    ) -> RouteResultOut:
        """A chat-apps message (`text`) or button press (`payload`)."""
        return await self._client.send(
            calls.inbound_chat(channel, sender, text, payload, sub_account_id)
        )

    async def dtmf(
        self, digits: str, *, client_request_id: str | None = None, uid: str | None = None
    ) -> RouteResultOut:
        """Keys pressed during the say&capture call named by `client_request_id` or `uid`."""
        return await self._client.send(calls.dtmf(digits, client_request_id, uid))

    async def outbox(
        self,
        *,
        channel: Channel | None = None,
        workflow_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> builtins.list[MessageOut]:
        return await self._client.send(calls.outbox(limit, offset, channel, workflow_id))

    def iterate_outbox(
        self,
        *,
        channel: Channel | None = None,
        workflow_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[MessageOut]:
        return self._client.pages(
            lambda limit, offset: calls.outbox(limit, offset, channel, workflow_id), page_size
        )


class Usage:
    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def current(self) -> UsageOut:
        """This month's started workflows."""
        return await self._client.send(calls.current_usage())

    async def history(self) -> builtins.list[UsageMonthOut]:
        return await self._client.send(calls.usage_history())


class Messages:
    """What workflows sent, with 8x8's delivery receipts."""

    def __init__(self, client: AsyncRelayflowClient) -> None:
        self._client = client

    async def list(
        self, *, workflow_id: str | None = None, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[MessageOut]:
        return await self._client.send(calls.list_messages(limit, offset, workflow_id))

    def iterate(
        self, *, workflow_id: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[MessageOut]:
        return self._client.pages(
            lambda limit, offset: calls.list_messages(limit, offset, workflow_id), page_size
        )

    async def get(self, umid: str) -> MessageWithReceiptsOut:
        return await self._client.send(calls.get_message(umid))
