"""Prometheus series: one definition per series, recorded where the event happens.

The series live in prometheus-client's default registry (one per process, as every exporter
expects). Label values are bounded by construction: step types, statuses, channels and route
templates come from fixed vocabularies, never from instance ids, numbers or user strings
(`bounded` clamps anything that is not in the vocabulary it was given).

Recording is a counter increment or a histogram observation, about a microsecond each; an
auto-reply records a dozen of them (bench/RESULTS.md, "Metrics overhead").
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# A `_created` gauge per counter and histogram child doubles the series for no operational use.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds to days: an instance may wait for a reply or sleep for weeks.
LONG_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

OTHER = "other"

instances_started = Counter(
    "relayflow_instances_started", "Instances started, by trigger.", ["trigger"]
)
instances_ended = Counter(
    "relayflow_instances_ended",
    "Instances that ended: Complete or Terminated, and whether a step failed.",
    ["status", "failed"],
)
instance_duration = Histogram(
    "relayflow_instance_duration_seconds",
    "Start to end of instances that ended.",
    buckets=LONG_BUCKETS,
)
instances = Gauge(
    "relayflow_instances",
    "Instances in the database by status (Runnable and Suspended read at most every 10 s, "
    "Complete and Terminated every 5 minutes).",
    ["status"],
)
step_executions = Counter(
    "relayflow_step_executions",
    "Step executions by step type and what the step decided.",
    ["step_type", "status"],
)
step_duration = Histogram(
    "relayflow_step_duration_seconds",
    "Time a step took to decide (a send or an HTTP call included).",
    ["step_type"],
    buckets=CALL_BUCKETS,
)
timer_lateness = Histogram(
    "relayflow_timer_lateness_seconds",
    "From when a timer (Wait, a wait's timeout, a retry's backoff) was due to when it fired.",
    buckets=LATENESS_BUCKETS,
)
work_due = Gauge(
    "relayflow_work_due", "Instances with work due now that no worker has claimed yet."
)
messages_sent = Counter(
    "relayflow_messages_sent",
    "Sends through a messaging provider, by outcome: accepted, rejected (a permanent error), "
    "failed (transient: retried) or deferred (a circuit breaker held it back).",
    ["channel", "provider", "outcome"],
)
provider_request_duration = Histogram(
    "relayflow_provider_request_duration_seconds",
    "Time of a send through a messaging provider.",
    ["channel", "provider"],
    buckets=CALL_BUCKETS,
)
send_retries = Counter(
    "relayflow_send_retries",
    "Transient failures of a send or HttpRequest step that were scheduled for another attempt.",
    ["channel"],
)
webhooks_received = Counter(
    "relayflow_webhooks_received",
    "Webhooks 8x8 posted, by kind and outcome: accepted, duplicate, unauthorized, invalid.",
    ["kind", "outcome"],
)
http_requests = Counter(
    "relayflow_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "relayflow_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the response body).",
    ["route", "method"],
    buckets=CALL_BUCKETS,
)
expression_evaluations = Counter(
    "relayflow_expression_evaluations",
    "Expressions evaluated for step inputs, outputs and conditions, by outcome: ok, warning "
    "(evaluated with a warning in the step log), error (the step failed).",
    ["outcome"],
)

# Step type -> the channel label of its sends and retries.
STEP_CHANNELS = {
    "SMS": "sms",
    "ChatAppsMessage": "chatapps",
    "VoiceMessage": "voice",
    "WaitForDTMF": "voice",
    "HttpRequest": "http",
}
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def bounded(value: str, vocabulary: Iterable[str]) -> str:
    """`value` when it belongs to the vocabulary, else "other": a label never grows unbounded."""
    return value if value in vocabulary else OTHER


def ended(status: str, failed: bool, duration_s: float) -> None:
    """An instance reached Complete or Terminated."""
    instances_ended.labels(status, "true" if failed else "false").inc()
    instance_duration.observe(max(duration_s, 0.0))


def exposition() -> tuple[bytes, str]:
    """The text format of every series of the process, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
