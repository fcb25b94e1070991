"""relayflow.client against the real app on SQLite and PostgreSQL.

Each API test runs twice per database: the async client through httpx's ASGITransport, and the
blocking client over real HTTP to uvicorn serving the same app in this test's event loop (its
calls run in a thread, so the loop stays free to answer). Retries and timeouts are tested
against a real aiohttp server on loopback that answers what the test needs.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.api.shapes import DefinitionOut, UsageOut, WorkflowInstanceOut
from relayflow.client import (
    AsyncRelayflowClient,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    RelayflowClient,
    RelayflowError,
    RequestTimeoutError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
)
from relayflow.client._core import RetryPolicy
from relayflow.config import Settings
from relayflow.model.definition import DefinitionInput
from relayflow.store.database import Database
from tests.support.definitions import sms_definition
from tests.support.processes import free_port
from tests.support.served import served
from tests.support.tenants import Tenant, make_tenant

CUSTOMER = "+6591234567"
MISSING_DEFINITION = "00000000-0000-4000-8000-000000000000"
MISSING_WORKFLOW = "0123456789abcdef01234567"


async def _settled(value: Any) -> Any:
    """An awaited result, with async iterators drained into a list (`async for`)."""
    if inspect.isawaitable(value):
        return await value
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    return value


def _drained(value: Any) -> Any:
    return list(value) if isinstance(value, Iterator) else value


class Facade:
    """Both clients behind one awaitable face: `await api.instances.get(...)`; `iterate`
    answers a list. The blocking client's calls (and its generators) run in a thread."""

    def __init__(self, target: Any, threaded: bool) -> None:
        self._target = target
        self._threaded = threaded

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return Facade(value, self._threaded)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._threaded:
                return await asyncio.to_thread(lambda: _drained(value(*args, **kwargs)))
            return await _settled(value(*args, **kwargs))

        return call


@asynccontextmanager
async def facade(kind: str, app: Any, tenant: Tenant, **options: Any) -> AsyncIterator[Any]:
    if kind == "async":
        transport = httpx.ASGITransport(app=app)
        async with AsyncRelayflowClient(
            "http://relayflow.test",
            tenant.api_key,
            tenant.account_id,
            transport=transport,
            **options,
        ) as client:
            yield Facade(client, threaded=False)
    else:
        async with served(app) as url:
            with RelayflowClient(url, tenant.api_key, tenant.account_id, **options) as client:
                yield Facade(client, threaded=True)


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def api(kind: str, context: AppContext, tenant: Tenant) -> AsyncIterator[Any]:
    async with facade(kind, create_app(context), tenant) as client:
        yield client


def sms(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    inputs = {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text}
    return {"id": step_id, "stepType": "SMS", "inputs": inputs, **extra}


def http_definition(*steps: dict[str, Any], name: str = "Orders") -> dict[str, Any]:
    return {
        "trigger": "http_request",
        "status": "enabled",
        "definition": {"name": name, "steps": list(steps)},
    }


NAP = {"id": "nap", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}
BROKEN = "{{data.customer.name.first}}"  # faults: the data has no customer


# --- definitions ---------------------------------------------------------------------------


async def test_definition_methods(api: Any, context: AppContext) -> None:
    created = await api.definitions.create(sms_definition("First"))
    context.clock.advance(1000)  # type: ignore[attr-defined]
    assert isinstance(created, DefinitionOut)
    assert (created.version, created.definition.name, created.trigger) == (
        1,
        "First",
        "inbound_sms",
    )

    typed = DefinitionInput.model_validate(sms_definition("Typed"))
    second = await api.definitions.create(typed)
    assert second.definition.name == "Typed"
    assert second.status == "enabled"

    listed = await api.definitions.list()
    assert [d.id for d in listed] == [second.id, created.id]
    assert [d.id for d in await api.definitions.list(limit=1, offset=1)] == [created.id]

    updated = await api.definitions.update(created.id, sms_definition("First v2"))
    assert (updated.id, updated.version) == (created.id, 2)
    versions = await api.definitions.get(created.id)
    assert [(v.version, v.definition.name) for v in versions] == [(2, "First v2"), (1, "First")]
    assert await api.definitions.get(MISSING_DEFINITION) == []

    report = await api.definitions.validate(sms_definition())
    assert (report.valid, report.errors) == (True, [])
    broken = sms_definition()
    broken["definition"]["steps"][0]["nextStepId"] = "nowhere"  # type: ignore[index]
    report = await api.definitions.validate(broken)
    assert report.valid is False
    assert [(p.code, p.path) for p in report.errors] == [(5008, "definition.steps[0].nextStepId")]

    await api.definitions.delete(created.id, version=1)
    assert [v.version for v in await api.definitions.get(created.id)] == [2]
    await api.definitions.delete(created.id)
    assert await api.definitions.get(created.id) == []
    with pytest.raises(NotFoundError) as missing:
        await api.definitions.delete(created.id)
    assert (missing.value.status, missing.value.code) == (404, 1300)


# --- instances -----------------------------------------------------------------------------


async def test_instance_methods(api: Any, context: AppContext) -> None:
    definition = await api.definitions.create(http_definition(sms("hello", "Hi"), name="Nap"))
    definition = await api.definitions.update(
        definition.id, http_definition(sms("hello", "Hi", nextStepId="nap"), NAP, name="Nap")
    )
    started = await api.instances.start(definition.id, {"order": 7})
    assert isinstance(started, WorkflowInstanceOut)
    assert (started.status, started.version, started.data["order"]) == ("Runnable", 2, 7)
    old = await api.instances.start(definition.id, {"order": 1}, version=1)
    assert old.version == 1
    await context.worker.run_until_idle()

    found = await api.instances.get(definition.id, started.workflowId, include_logs=True)
    assert found.logs is not None
    assert [(log.stepName, log.status) for log in found.logs] == [
        ("hello", "Complete"),
        ("nap", "Sleeping"),
    ]
    assert (await api.instances.get(definition.id, started.workflowId)).logs is None
    events = await api.instances.events(definition.id, started.workflowId)
    assert events[0].type == "instance_started"
    assert {"step_started", "step_completed"} <= {event.type for event in events}

    # Every filter of the list.
    ids = [i.workflowId for i in await api.instances.list(definition.id)]
    assert ids == [started.workflowId]
    assert [i.workflowId for i in await api.instances.list(definition.id, version=1)] == [
        old.workflowId
    ]
    assert await api.instances.list(definition.id, status="Complete") == []
    assert len(await api.instances.list(definition.id, status="Runnable")) == 1
    now = context.clock.now_ms()
    later = datetime.fromtimestamp(now / 1000, UTC) + timedelta(minutes=1)
    assert await api.instances.list(definition.id, start_time_from=later) == []
    assert len(await api.instances.list(definition.id, start_time_to=later.isoformat())) == 1

    await api.instances.suspend(definition.id, started.workflowId)
    assert (await api.instances.get(definition.id, started.workflowId)).status == "Suspended"
    await api.instances.resume(definition.id, started.workflowId)
    assert (await api.instances.get(definition.id, started.workflowId)).status == "Runnable"
    await api.instances.terminate(definition.id, started.workflowId)
    assert (await api.instances.get(definition.id, started.workflowId)).status == "Terminated"

    napping = await api.instances.start(definition.id)
    await context.worker.run_until_idle()
    result = await api.instances.bulk(definition.id, "terminate", version="all")
    assert (result.action, result.matched, result.changed, result.skipped) == ("terminate", 3, 1, 2)
    assert (await api.instances.get(definition.id, napping.workflowId)).status == "Terminated"
    with pytest.raises(ValueError, match="action"):  # the server's model, checked unsent
        await api.instances.bulk(definition.id, "pause")


async def test_errors_and_retry(api: Any, context: AppContext) -> None:
    steps = [sms("bad", BROKEN, nextStepId="done"), sms("done", "bye")]
    definition = await api.definitions.create(http_definition(*steps))
    [workflow] = (await api.triggers.http_request({"order": 7})).workflowIds
    await context.worker.run_until_idle()
    assert (await api.instances.get(definition.id, workflow)).status == "Terminated"
    [error] = await api.instances.errors(definition.id, workflow)
    assert (error.workflowId, error.step) == (workflow, "bad")

    fixed = [sms("bad", "Order {{data.order}}", nextStepId="done"), sms("done", "bye")]
    await api.definitions.update(definition.id, http_definition(*fixed))
    retried = await api.instances.retry(definition.id, workflow, latest=True)
    assert (retried.status, retried.version) == ("Runnable", 2)
    await context.worker.run_until_idle()
    assert (await api.instances.get(definition.id, workflow)).status == "Complete"
    with pytest.raises(ValidationError) as refused:  # not failed any more
        await api.instances.retry(definition.id, workflow)
    assert refused.value.code == 1310


# --- paging --------------------------------------------------------------------------------


async def test_iterate_walks_every_page(api: Any, context: AppContext) -> None:
    made = []
    for n in range(7):
        context.clock.advance(1000)  # type: ignore[attr-defined]
        made.append((await api.definitions.create(sms_definition(f"D{n}"))).id)
    assert [d.id for d in await api.definitions.iterate(page_size=3)] == made[::-1]

    definition = await api.definitions.create(http_definition(sms("hello", "Hi {{data.n}}")))
    for n in range(7):
        context.clock.advance(1000)  # type: ignore[attr-defined]  # distinct start times: a stable newest-first order
        await api.triggers.http_request({"n": n})
    walked = await api.instances.iterate(definition.id, page_size=3)
    assert [i.data["n"] for i in walked] == list(range(6, -1, -1))
    assert await api.instances.iterate(definition.id, status="Complete", page_size=3) == []

    await context.worker.run_until_idle()
    complete = await api.instances.iterate(definition.id, status="Complete", page_size=2)
    assert len(complete) == 7
    assert len(await api.messages.iterate(page_size=3)) == 7
    assert len(await api.sandbox.iterate_outbox(channel="sms", page_size=4)) == 7
    one = complete[0].workflowId
    assert [m.workflowId for m in await api.messages.iterate(workflow_id=one)] == [one]


# --- triggers, sandbox, messages, usage ----------------------------------------------------


async def test_sandbox_messages_and_usage(api: Any, context: AppContext) -> None:
    reply = await api.definitions.create(sms_definition(text="Thanks {{data.payload.text}}"))
    routed = await api.sandbox.inbound_sms(CUSTOMER, "+6580000000", "hello")
    assert len(routed.started) == 1
    assert routed.event["payload"]["body"] == "hello"
    await context.worker.run_until_idle()

    [sent] = await api.sandbox.outbox()
    assert (sent.channel, sent.workflowId) == ("sms", routed.started[0])
    assert await api.sandbox.outbox(channel="voice") == []
    [message] = await api.messages.list()
    assert message.umid == sent.umid
    assert (await api.messages.list(workflow_id=routed.started[0]))[0].umid == sent.umid
    detail = await api.messages.get(sent.umid)
    assert (detail.umid, detail.receipts) == (sent.umid, [])  # receipts: none reported yet
    with pytest.raises(NotFoundError) as missing:
        await api.messages.get("no-such-umid")
    assert (missing.value.status, missing.value.code) == (404, 1302)

    chat = await api.sandbox.inbound_chat("whatsapp", "user-1", text="hi")
    assert (chat.started, chat.duplicate) == ([], False)
    keys = await api.sandbox.dtmf("12#", uid="call-1")
    assert (keys.started, keys.resumed) == ([], [])
    with pytest.raises(ValueError, match="digits"):  # the server's model, checked unsent
        await api.sandbox.dtmf("not digits", uid="call-1")

    usage = await api.usage.current()
    assert isinstance(usage, UsageOut)
    assert usage.executedWorkflowCount == 1
    [month] = await api.usage.history()
    assert month.executedWorkflowCount == 1
    assert reply.id  # the definition that started


# --- typed errors ---------------------------------------------------------------------------


async def test_not_found_and_validation_errors(api: Any) -> None:
    with pytest.raises(NotFoundError) as missing:
        await api.instances.get(MISSING_DEFINITION, MISSING_WORKFLOW)
    assert (missing.value.status, missing.value.code) == (404, 1300)
    assert missing.value.error_id
    assert missing.value.errorId == missing.value.error_id

    body = sms_definition()
    body["definition"]["steps"][0]["stepType"] = "Teleport"  # type: ignore[index]
    del body["definition"]["name"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as invalid:
        await api.definitions.create(body)
    error = invalid.value
    assert isinstance(error, RelayflowError)
    assert error.status == 400
    assert {p.code for p in error.errors} == {5001, 5007}
    assert error.code in {5001, 5007}
    assert {p.path for p in error.errors} >= {"definition.name"}

    with pytest.raises(ValidationError) as bad_id:
        await api.instances.list("not-a-uuid")
    assert (bad_id.value.code, bad_id.value.errors) == (1000, [])


async def test_authentication_errors(kind: str, context: AppContext, tenant: Tenant) -> None:
    app = create_app(context)
    wrong_key = Tenant(tenant.account_id, "rf_wrong", tenant.webhook_token)
    async with facade(kind, app, wrong_key) as api:
        with pytest.raises(AuthenticationError) as unknown:
            await api.usage.current()
    assert (unknown.value.status, unknown.value.code) == (401, 1200)

    other = await make_tenant(context, "globex")
    foreign = Tenant(other.account_id, tenant.api_key, tenant.webhook_token)
    async with facade(kind, app, foreign) as api:
        with pytest.raises(AuthenticationError) as forbidden:
            await api.definitions.list()
    assert (forbidden.value.status, forbidden.value.code) == (403, 1201)


async def test_rate_limited_start(kind: str, db: Database, database_url: str) -> None:
    settings = Settings(database_url=database_url, start_rate_per_second=0.001, start_burst=1)
    context = AppContext(settings=settings, db=db)
    try:
        tenant = await make_tenant(context, "acme")
        async with facade(kind, create_app(context), tenant, max_retries=0) as api:
            definition = await api.definitions.create(http_definition(sms("hello", "Hi")))
            await api.instances.start(definition.id)
            with pytest.raises(RateLimitedError) as limited:
                await api.instances.start(definition.id)
    finally:
        context.evaluator.close()
        await context.http.close()
    assert (limited.value.status, limited.value.code) == (429, 1429)
    assert limited.value.retry_after is not None
    assert limited.value.retry_after >= 1


# --- retries and timeouts against a real loopback server -----------------------------------

USAGE = {
    "accountId": "acme",
    "allowedWorkflowCount": None,
    "allowedOverage": True,
    "overagePrice": 0,
    "executedWorkflowCount": 3,
    "countStartedMonth": 6,
    "countStartedYear": 2026,
}


def error_body(code: int) -> dict[str, Any]:
    return {"code": code, "message": "busy", "errorId": "e1", "timestamp": "2026-06-01T00:00:00Z"}


@asynccontextmanager
async def loopback(handler: Callable[[web.Request], Any]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def remote(kind: str, url: str, **options: Any) -> AsyncIterator[Any]:
    if kind == "async":
        async with AsyncRelayflowClient(url, "rf_key", "acme", **options) as client:
            yield Facade(client, threaded=False)
    else:
        with RelayflowClient(url, "rf_key", "acme", **options) as client:
            yield Facade(client, threaded=True)


def answers(*statuses: tuple[int, dict[str, str]]) -> tuple[list[str], Any]:
    """A handler answering `statuses` (status, headers) in turn, then 200 with USAGE."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path} {request.headers.get('Authorization')}")
        if len(seen) <= len(statuses):
            status, headers = statuses[len(seen) - 1]
            return web.json_response(error_body(2001), status=status, headers=headers)
        return web.json_response(USAGE)

    return seen, handler


@pytest.fixture(params=["async", "sync"])
def any_kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def test_503_and_429_are_retried_then_answered(any_kind: str) -> None:
    seen, handler = answers((503, {"Retry-After": "0"}), (429, {"Retry-After": "0"}))
    async with loopback(handler) as url, remote(any_kind, url) as api:
        usage = await api.usage.current()
    assert usage.executedWorkflowCount == 3
    assert seen == ["GET /api/v1/accounts/acme/usage Bearer rf_key"] * 3


async def test_retries_are_bounded(any_kind: str) -> None:
    # No Retry-After: backoff, capped by max_retry_delay; a huge Retry-After is capped too.
    failures = [(503, {}), (503, {"Retry-After": "3600"}), (503, {}), (503, {})]
    seen, handler = answers(*failures)
    options = {"max_retries": 2, "max_retry_delay": 0.01}
    async with loopback(handler) as url, remote(any_kind, url, **options) as api:
        with pytest.raises(ServiceUnavailableError) as gave_up:
            await api.usage.current()
    assert len(seen) == 3  # the first attempt and two retries
    assert (gave_up.value.status, gave_up.value.code, gave_up.value.error_id) == (503, 2001, "e1")


async def test_other_errors_are_not_retried(any_kind: str) -> None:
    seen, handler = answers((500, {}))
    async with loopback(handler) as url, remote(any_kind, url) as api:
        with pytest.raises(RelayflowError) as failed:
            await api.usage.current()
    assert (len(seen), failed.value.status, type(failed.value)) == (1, 500, RelayflowError)


async def test_timeout(any_kind: str) -> None:
    release = asyncio.Event()

    async def never(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(USAGE)

    async with loopback(never) as url:
        async with remote(any_kind, url, timeout=0.2) as api:
            with pytest.raises(RequestTimeoutError):
                await api.usage.current()
        release.set()


async def test_connection_refused(any_kind: str) -> None:
    async with remote(any_kind, f"http://127.0.0.1:{free_port()}") as api:
        with pytest.raises(TransportError) as refused:
            await api.usage.current()
    assert (refused.value.status, refused.value.code) == (0, 0)


def test_retry_after_dates_and_caps() -> None:
    policy = RetryPolicy(max_retries=3, max_delay=5.0)
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")

    def delay(status: int, attempt: int = 0, **headers: str) -> float | None:
        return policy.delay(httpx.Response(status, headers=headers), attempt)

    assert delay(503, **{"Retry-After": "2"}) == 2.0
    assert delay(429, **{"Retry-After": later}) == 5.0  # an HTTP date, capped
    assert delay(429, **{"Retry-After": "soon"}) == 0.5  # garbled: backoff
    assert [delay(503, attempt) for attempt in range(4)] == [0.5, 1.0, 2.0, None]
    assert delay(500) is None
    assert delay(404) is None
