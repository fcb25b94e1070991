"""HttpRequest: call an API; any HTTP answer is a result the flow can branch on."""

from __future__ import annotations

from typing import Any

from relayflow.channels.base import ChannelError, is_transient_status
from relayflow.engine.decisions import Complete, Decision, Fault, Retry
from relayflow.engine.steps.base import StepContext, StepError, StepType, text_input
from relayflow.model.steps import MAX_HTTP_TIMEOUT_SECONDS

DEFAULT_TIMEOUT_SECONDS = 5
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _string_map(ctx: StepContext, name: str) -> dict[str, str]:
    value = ctx.inputs.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StepError(f"Input '{name}' must be an object.")
    return {str(key): "" if item is None else _text(item) for key, item in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timeout(ctx: StepContext) -> float:
    value = ctx.inputs.get("timeoutSeconds")
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise StepError("Input 'timeoutSeconds' must be a number.") from None
    if not 0 < seconds <= MAX_HTTP_TIMEOUT_SECONDS:
        raise StepError(f"Input 'timeoutSeconds' must be between 1 and {MAX_HTTP_TIMEOUT_SECONDS}.")
    return seconds


class HttpRequest(StepType):
    name = "HttpRequest"
    side_effect = True
    checkpoint_before_run = True  # nothing else remembers an HTTP call was under way

    async def run(self, ctx: StepContext) -> Decision:
        url = text_input(ctx, "url")
        method = (text_input(ctx, "method") or "GET").upper()
        assert url is not None
        try:
            result = await ctx.channels.http.request(
                method,
                url,
                headers=_string_map(ctx, "headers"),
                params=_string_map(ctx, "parameters"),
                json_body=ctx.inputs.get("body"),
                timeout_s=_timeout(ctx),
            )
        except ChannelError as error:
            # Only a request that cannot have had an effect twice is repeated: an idempotent
            # one, or one that never left (no connection, circuit open) (DESIGN.md §5).
            if error.transient and (method in IDEMPOTENT_METHODS or not error.sent):
                return Retry(
                    error.message,
                    error.retry_after_s,
                    deferred=error.deferred,
                    resume_before_s=error.resume_before_s,
                )
            return Fault(error.message)
        answered = {
            "responseCode": result.status,
            "reasonPhrase": result.reason,
            "responseBody": result.body,
        }
        if method in IDEMPOTENT_METHODS and is_transient_status(result.status):
            # Retried like a dropped connection; once the window is spent the last answer is
            # the step's result, so the flow can still branch on `responseCode`.
            message = f"Call failed. {method} {url} answered {result.status} {result.reason}"
            return Retry(
                message.rstrip(),
                result.retry_after_s,
                resume_before_s=result.resume_before_s,
                final=answered,
            )
        return Complete(answered)
