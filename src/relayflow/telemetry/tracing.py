"""OpenTelemetry traces: optional (`relayflow[otel]`), on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Spans: one per API request (server), per sprint and per step execution (internal), per send
and per HttpRequest call (client). A W3C `traceparent` on the request that starts an instance is
stored with the instance (`instances.trace_parent`), so its sprints, which may run later and in
another process, continue that trace; HttpRequest steps send the current span on.

When tracing is off every helper here is a no-op costing one attribute check, so the hot path
does not pay for a feature it does not use. The exporter is configured from the standard
`OTEL_*` variables by the SDK itself (endpoint, headers, service name).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from relayflow import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from starlette.applications import Starlette

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_OFF: nullcontext[None] = nullcontext()


class _State:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_state = _State()


class TracingUnavailable(RuntimeError):
    """The endpoint is set but the `otel` extra is not installed."""


def wanted() -> bool:
    """Whether the environment asks for traces."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def configure_from_environment(service: str) -> bool:
    """Export spans over OTLP/HTTP when the environment asks for it; True when on."""
    if _state.tracer is not None or not wanted():
        return _state.tracer is not None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'relayflow[otel]'"
        ) from error
    resource = Resource.create({"service.name": service, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    enable(provider)
    return True


def enable(provider: TracerProvider) -> None:
    """Trace into `provider` (tests pass one with an in-memory exporter)."""
    _state.provider = provider
    _state.tracer = provider.get_tracer("relayflow", __version__)


def disable() -> None:
    """Stop tracing and flush what was recorded."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state.tracer is not None


def provider() -> TracerProvider | None:
    return _state.provider


def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, parent: str | None = None
) -> Any:
    """An internal span (a sprint, a step); `parent` is a stored `traceparent` to continue."""
    tracer = _state.tracer
    if tracer is None:
        return _OFF
    return _span(tracer, name, attributes, parent, client=False)


def client_span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A span for a call out of the process (a send, an HttpRequest)."""
    tracer = _state.tracer
    if tracer is None:
        return _OFF
    return _span(tracer, name, attributes, None, client=True)


@contextmanager
def _span(
    tracer: Tracer,
    name: str,
    attributes: Mapping[str, Any] | None,
    parent: str | None,
    *,
    client: bool,
) -> Iterator[None]:
    from opentelemetry.trace import SpanKind

    context = _extract(parent) if parent else None
    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes):
        yield


def _extract(traceparent: str) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent`, to be stored with a new instance."""
    if _state.tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def inject(headers: dict[str, str]) -> None:
    """Add the current span's `traceparent` to an outgoing request's headers."""
    if _state.tracer is None:
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)


def add_server_spans(app: Starlette) -> None:
    """A server span per request (the caller's `traceparent` continued), when tracing is on:
    OpenTelemetry's own ASGI middleware, outermost."""
    if _state.provider is None:
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(
        OpenTelemetryMiddleware,
        tracer_provider=_state.provider,
        exclude_spans=["receive", "send"],
    )
