"""Every series relayflow exposes on /metrics, with its kind and labels: one list that both the
metrics tests and the deployment's dashboard and alert checks hold relayflow to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Series:
    name: str
    kind: Literal["counter", "gauge", "histogram"]
    labels: tuple[str, ...] = ()

    @property
    def exposed(self) -> tuple[str, ...]:
        """The names on /metrics: a histogram's _bucket, _sum and _count."""
        if self.kind == "histogram":
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


# Every series relayflow exposes on /metrics, as the dashboard charts them: counters by their
# exposed `_total` name, histograms by their base name.
SERIES: tuple[Series, ...] = (
    Series("relayflow_instances_started_total", "counter", ("trigger",)),
    Series("relayflow_instances_ended_total", "counter", ("status", "failed")),
    Series("relayflow_instance_duration_seconds", "histogram"),
    Series("relayflow_instances", "gauge", ("status",)),
    Series("relayflow_step_executions_total", "counter", ("step_type", "status")),
    Series("relayflow_step_duration_seconds", "histogram", ("step_type",)),
    Series("relayflow_timer_lateness_seconds", "histogram"),
    Series("relayflow_work_due", "gauge"),
    Series("relayflow_messages_sent_total", "counter", ("channel", "provider", "outcome")),
    Series("relayflow_provider_request_duration_seconds", "histogram", ("channel", "provider")),
    Series("relayflow_send_retries_total", "counter", ("channel",)),
    Series("relayflow_webhooks_received_total", "counter", ("kind", "outcome")),
    Series("relayflow_http_requests_total", "counter", ("route", "method", "status")),
    Series("relayflow_http_request_duration_seconds", "histogram", ("route", "method")),
    Series("relayflow_expression_evaluations_total", "counter", ("outcome",)),
)
