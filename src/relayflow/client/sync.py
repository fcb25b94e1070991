"""`RelayflowClient`: the blocking client (the async twin is in `aio.py`; both send the
`Call`s of `_calls.py` and read answers with `_core.py`, so they only differ in waiting)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator, Mapping
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


class RelayflowClient:
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = Endpoint(base_url, api_key, account_id)
        self.retry = RetryPolicy(max_retries, max_retry_delay)
        self._http = httpx.Client(
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

    def send(self, call: Call[T]) -> T:
        """Send one call, retrying 429/503; its parsed answer or a typed error."""
        attempt = 0
        while True:
            request = self.endpoint.request(self._http, call)
            try:
                response = self._http.send(request)
            except httpx.TimeoutException as error:
                raise RequestTimeoutError(f"{call.method} {request.url}: {error!r}") from error
            except httpx.TransportError as error:
                raise TransportError(f"{call.method} {request.url}: {error!r}") from error
            delay = self.retry.delay(response, attempt)
            if delay is None:
                return outcome(call, response)
            response.close()
            time.sleep(delay)
            attempt += 1

    def pages(self, page: Callable[[int, int], Call[list[T]]], page_size: int) -> Iterator[T]:
        """Every item of a limit/offset list, fetching `page_size` at a time."""
        offset: int | None = 0
        while offset is not None:
            items = self.send(page(page_size, offset))
            yield from items
            offset = next_offset(len(items), page_size, offset)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RelayflowClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Definitions:
    """Workflow definitions: `create`, `list`/`iterate`, `get` (versions), `update`, ..."""

    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def create(self, body: DefinitionBody) -> DefinitionOut:
        return self._client.send(calls.create_definition(body))

    def list(
        self, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[DefinitionOut]:
        """The latest version of each definition, newest definition first."""
        return self._client.send(calls.list_definitions(limit, offset))

    def iterate(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[DefinitionOut]:
        return self._client.pages(calls.list_definitions, page_size)

    def get(
        self, definition_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[DefinitionOut]:
        """Every live version, newest first; `[]` for an unknown id (as 8x8 answers)."""
        return self._client.send(calls.definition_versions(definition_id, limit, offset))

    def update(self, definition_id: str, body: DefinitionBody) -> DefinitionOut:
        """Creates version N+1."""
        return self._client.send(calls.update_definition(definition_id, body))

    def delete(self, definition_id: str, *, version: int | None = None) -> None:
        """Every version, or only `version`."""
        self._client.send(calls.delete_definition(definition_id, version))

    def validate(self, body: DefinitionBody) -> ValidationReportOut:
        """A dry run of create: every problem with its JSON path."""
        return self._client.send(calls.validate_definition(body))


class Instances:
    """Workflow instances of a definition, and the operator actions on them."""

    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def list(
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
        return self._client.send(
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
    ) -> Iterator[WorkflowInstanceOut]:
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

    def get(
        self, definition_id: str, workflow_id: str, *, include_logs: bool = False
    ) -> WorkflowInstanceOut:
        return self._client.send(calls.get_instance(definition_id, workflow_id, include_logs))

    def errors(self, definition_id: str, workflow_id: str) -> builtins.list[WorkflowErrorOut]:
        return self._client.send(calls.instance_errors(definition_id, workflow_id))

    def events(self, definition_id: str, workflow_id: str) -> builtins.list[WorkflowEventOut]:
        return self._client.send(calls.instance_events(definition_id, workflow_id))

    def suspend(self, definition_id: str, workflow_id: str) -> None:
        self._client.send(calls.control_instance(definition_id, workflow_id, "suspend"))

    def resume(self, definition_id: str, workflow_id: str) -> None:
        self._client.send(calls.control_instance(definition_id, workflow_id, "resume"))

    def terminate(self, definition_id: str, workflow_id: str) -> None:
        self._client.send(calls.control_instance(definition_id, workflow_id, "terminate"))

    def start(
        self,
        definition_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
    ) -> WorkflowInstanceOut:
        """A test start: `data` is the trigger payload (works on disabled definitions)."""
        return self._client.send(calls.start_instance(definition_id, data, version))

    def retry(
        self, definition_id: str, workflow_id: str, *, latest: bool = False
    ) -> WorkflowInstanceOut:
        """Re-run a failed instance from its failed step (`latest`: on the newest version)."""
        return self._client.send(calls.retry_instance(definition_id, workflow_id, latest))

    def bulk(
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
        return self._client.send(calls.bulk_action(definition_id, body))


class Triggers:
    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def http_request(
        self, data: Mapping[str, Any], *, sub_account_id: str | None = None
    ) -> TriggerResultOut:
        """Start every enabled `http_request` definition with `data`."""
        return self._client.send(calls.http_request_trigger(data, sub_account_id))


class Sandbox:
    """Play the customer against the sandbox provider, and read what workflows sent."""

    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def inbound_sms(
        self, sender: str, to: str, text: str, *, sub_account_id: str | None = None
    ) -> RouteResultOut:
        """`sender` texts `to` (your number); invalid arguments: ValueError, unsent."""
        return self._client.send(calls.inbound_sms(sender, to, text, sub_account_id))

    def inbound_chat(
        self,
        channel: str,
        sender: str,
        *,
        text: str | None = None,
        payload: str | None = None,
        sub_account_id: str | None = None,
    ) -> RouteResultOut:
        """A chat-apps message (`text`) or button press (`payload`)."""
        return self._client.send(calls.inbound_chat(channel, sender, text, payload, sub_account_id))

    def dtmf(
        self, digits: str, *, client_request_id: str | None = None, uid: str | None = None
    ) -> RouteResultOut:
        """Keys pressed during the say&capture call named by `client_request_id` or `uid`."""
        return self._client.send(calls.dtmf(digits, client_request_id, uid))

    def outbox(
        self,
        *,
        channel: Channel | None = None,
        workflow_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> builtins.list[MessageOut]:
        return self._client.send(calls.outbox(limit, offset, channel, workflow_id))

    def iterate_outbox(
        self,
        *,
        channel: Channel | None = None,
        workflow_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[MessageOut]:
        return self._client.pages(
            lambda limit, offset: calls.outbox(limit, offset, channel, workflow_id), page_size
        )


class Usage:
    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def current(self) -> UsageOut:
        """This month's started workflows."""
        return self._client.send(calls.current_usage())

    def history(self) -> builtins.list[UsageMonthOut]:
        return self._client.send(calls.usage_history())


class Messages:
    """What workflows sent, with 8x8's delivery receipts."""

    def __init__(self, client: RelayflowClient) -> None:
        self._client = client

    def list(
        self, *, workflow_id: str | None = None, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> builtins.list[MessageOut]:
        return self._client.send(calls.list_messages(limit, offset, workflow_id))

    def iterate(
        self, *, workflow_id: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[MessageOut]:
        return self._client.pages(
            lambda limit, offset: calls.list_messages(limit, offset, workflow_id), page_size
        )

    def get(self, umid: str) -> MessageWithReceiptsOut:
        return self._client.send(calls.get_message(umid))
