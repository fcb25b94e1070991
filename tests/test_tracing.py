"""OpenTelemetry traces (issue 12), recorded with the SDK's in-memory exporter: a request's
`traceparent` continues into the instance's sprints and steps, sends and HttpRequest calls are
client spans, and the HttpRequest passes the trace on to the endpoint it calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.config import Settings
from relayflow.telemetry import tracing
from tests.support.flows import Flow
from tests.support.tenants import Tenant

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, http_allowlist="127.0.0.0/8")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


@pytest.fixture
async def crm() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP endpoint that records the headers it receives."""
    received: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(dict(request.headers))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", received
    await runner.cleanup()


@pytest.fixture
async def traced(
    spans: InMemorySpanExporter, context: AppContext, tenant: Tenant
) -> AsyncIterator[Flow]:
    """A client of an app created while tracing is on (the server spans' middleware)."""
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http:
        yield Flow(http, tenant, context)


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


async def test_a_callers_trace_continues_through_the_instance(
    traced: Flow, spans: InMemorySpanExporter, crm: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = crm
    await traced.define(
        [
            {
                "id": "notify",
                "stepType": "SMS",
                "inputs": {"subAccountId": "acme_sms", "destination": "+6591234567", "text": "x"},
                "nextStepId": "crm",
            },
            {"id": "crm", "stepType": "HttpRequest", "inputs": {"url": url, "method": "POST"}},
        ],
        trigger="http_request",
    )
    response = await traced.client.post(
        f"{traced.tenant.base}/triggers/http_request",
        headers={**traced.tenant.headers, "traceparent": CALLER},
        json={},
    )
    assert response.status_code == 200
    await traced.run()

    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    server = next(s for s in finished if s.kind is SpanKind.SERVER and "triggers" in s.name)
    sprint, sms, http = by_name["sprint"], by_name["send sms"], by_name["HTTP POST"]
    step = by_name["step HttpRequest"]
    for span in (server, sprint, step, sms, http, by_name["step SMS"]):
        assert trace_of(span) == TRACE_ID, span.name
    assert sms.kind is SpanKind.CLIENT
    assert http.kind is SpanKind.CLIENT
    assert step.parent is not None
    assert sprint.context is not None
    assert step.parent.span_id == sprint.context.span_id
    assert http.parent is not None
    assert step.context is not None
    assert http.parent.span_id == step.context.span_id
    assert http.attributes is not None
    assert http.attributes["server.address"] == url
    # The endpoint is called within the same trace, as a child of the client span.
    [headers] = received
    assert http.context is not None
    assert headers["traceparent"] == f"00-{TRACE_ID}-{http.context.span_id:016x}-01"


async def test_an_instance_without_a_caller_trace_starts_its_own(
    traced: Flow, spans: InMemorySpanExporter
) -> None:
    await traced.define(
        [{"id": "pause", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}],
        trigger="http_request",
    )
    await traced.http_trigger({})
    await traced.advance(2000)
    sprints = [s for s in spans.get_finished_spans() if s.name == "sprint"]
    assert len(sprints) == 2  # start, then the timer: both in the request's trace
    assert len({trace_of(s) for s in sprints}) == 1
    assert trace_of(sprints[0]) != TRACE_ID


async def test_tracing_off_records_nothing_and_sends_no_header(
    client: httpx.AsyncClient,
    tenant: Tenant,
    context: AppContext,
    crm: tuple[str, list[dict[str, str]]],
) -> None:
    url, received = crm
    flow = Flow(client, tenant, context)
    await flow.define(
        [{"id": "crm", "stepType": "HttpRequest", "inputs": {"url": url, "method": "GET"}}],
        trigger="http_request",
    )
    assert not tracing.enabled()
    await flow.http_trigger({})
    [headers] = received
    assert "traceparent" not in {key.lower() for key in headers}
