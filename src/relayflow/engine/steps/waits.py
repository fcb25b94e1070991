"""Steps that pause a path: Wait (timer), WaitForReply and WaitForDTMF (event or timeout)."""

from __future__ import annotations

from datetime import timedelta

from relayflow.engine.decisions import Complete, Decision, Sleep, WaitForEvent
from relayflow.engine.keys import dtmf_key, reply_key
from relayflow.engine.steps.base import Resume, StepContext, StepError, StepType, text_input
from relayflow.instance_state import PointerStatus
from relayflow.model.timespan import TimespanError, parse_positive_timespan

DEFAULT_WAIT_TIMEOUT = "1.00:00:00"


def _timespan_ms(ctx: StepContext, name: str, default: str | None = None) -> int:
    text = text_input(ctx, name, required=default is None) or default
    assert text is not None
    try:
        span: timedelta = parse_positive_timespan(text)
    except TimespanError as error:
        raise StepError(f"Input '{name}': {error}") from None
    return int(span.total_seconds() * 1000)


class Wait(StepType):
    name = "Wait"

    async def run(self, ctx: StepContext) -> Decision:
        if ctx.resume is Resume.TIMER:
            return Complete()
        return Sleep(ctx.now_ms + _timespan_ms(ctx, "duration"))


class WaitForReply(StepType):
    """`step.reply` is the whole inbound webhook object, or null after the timeout."""

    name = "WaitForReply"

    async def run(self, ctx: StepContext) -> Decision:
        if ctx.resume is Resume.EVENT:
            return Complete({"reply": ctx.event})
        if ctx.resume is Resume.TIMEOUT:
            return Complete({"reply": None}, log_status=PointerStatus.CANCELLED)
        sender = text_input(ctx, "from")
        channel = text_input(ctx, "channel")
        assert sender is not None
        assert channel is not None
        timeout = _timespan_ms(ctx, "timeout", DEFAULT_WAIT_TIMEOUT)
        return WaitForEvent(reply_key(channel, sender), ctx.now_ms + timeout)


class WaitForDtmf(StepType):
    """`step.dtmfData` is the DTMF callback object, or null after the timeout."""

    name = "WaitForDTMF"

    async def run(self, ctx: StepContext) -> Decision:
        if ctx.resume is Resume.EVENT:
            return Complete({"dtmfData": ctx.event})
        if ctx.resume is Resume.TIMEOUT:
            return Complete({"dtmfData": None}, log_status=PointerStatus.CANCELLED)
        correlation = text_input(ctx, "dtmfRequestId")
        assert correlation is not None
        timeout = _timespan_ms(ctx, "timeout", DEFAULT_WAIT_TIMEOUT)
        return WaitForEvent(dtmf_key(correlation), ctx.now_ms + timeout)
