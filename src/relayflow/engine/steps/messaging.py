"""Steps that send messages through the account's provider: SMS, ChatAppsMessage, VoiceMessage.

Each builds exactly the body the 8x8 API receives from its inputs (unknown inputs pass through,
so newer 8x8 fields work), and maps the provider's answer to the documented `step.*` outputs.
Without a `clientMessageId` / `clientRequestId` the pointer id is used: deterministic, so a
duplicate after a crash is identifiable.
"""

from __future__ import annotations

import uuid
from typing import Any

from relayflow.channels.base import ChannelError, SendContext
from relayflow.clock import iso_from_ms, ms_from_iso
from relayflow.engine.decisions import Complete, Decision, Fault, Retry
from relayflow.engine.steps.base import StepContext, StepError, StepType, text_input


def _failed(what: str, error: ChannelError, expiry_ms: int | None = None) -> Fault | Retry:
    """8x8's wording for faults; transient failures are retried (DESIGN.md §5 "Retries")."""
    message = f"Failed to send {what} because {error.message}"
    if error.transient:
        return Retry(
            message,
            error.retry_after_s,
            deferred=error.deferred,
            resume_before_s=error.resume_before_s,
            not_after_ms=expiry_ms,
            expired=(
                f"Failed to send {what} because it expires at {iso_from_ms(expiry_ms)}, "
                "before its next attempt"
                if expiry_ms is not None
                else None
            ),
        )
    return Fault(message)


def expiry_ms(value: Any) -> int | None:
    """The SMS `expiry` input as epoch ms (a time without an offset is UTC); None when absent
    or not a date-time (8x8 then validates it and answers with its own message)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ms_from_iso(value)
    except ValueError:
        return None


def _send_context(ctx: StepContext) -> SendContext:
    return SendContext(ctx.account_id, ctx.instance_id, ctx.pointer_id, ctx.attempt, ctx.now_ms)


def _request_id(ctx: StepContext) -> str:
    return str(uuid.uuid5(uuid.UUID(ctx.pointer_id), f"attempt-{ctx.attempt}"))


def _body(ctx: StepContext, *, id_field: str) -> dict[str, Any]:
    body = {key: value for key, value in ctx.inputs.items() if key != "subAccountId"}
    if not body.get(id_field):
        body[id_field] = ctx.pointer_id
    return body


class Sms(StepType):
    name = "SMS"
    side_effect = True

    async def run(self, ctx: StepContext) -> Decision:
        sub_account = text_input(ctx, "subAccountId")
        assert sub_account is not None
        body = _body(ctx, id_field="clientMessageId")
        body["destination"] = text_input(ctx, "destination")
        body["text"] = text_input(ctx, "text")
        if isinstance(body.get("encoding"), str):
            body["encoding"] = body["encoding"].upper()
        expires = expiry_ms(body.get("expiry"))
        if expires is not None and ctx.now_ms >= expires:
            why = (
                f"Failed to send SMS because it expired at {iso_from_ms(expires)}, "
                "before it could be sent"
            )
            return Fault(f"{why}; last error: {ctx.last_error}" if ctx.last_error else why)
        try:
            provider = await ctx.channels.providers.for_account(ctx.account_id)
            response = await provider.send_sms(_send_context(ctx), sub_account, body)
        except ChannelError as error:
            return _failed("SMS", error, expires)
        status = response.get("status") or {}
        return Complete(
            {
                "requestId": _request_id(ctx),
                "umid": response.get("umid"),
                "status": status.get("code"),
                "description": status.get("description"),
                "destination": response.get("destination"),
                "encoding": response.get("encoding"),
                "clientMessageId": response.get("clientMessageId", body["clientMessageId"]),
            }
        )


class ChatAppsMessage(StepType):
    name = "ChatAppsMessage"
    side_effect = True

    async def run(self, ctx: StepContext) -> Decision:
        sub_account = text_input(ctx, "subAccountId")
        assert sub_account is not None
        body = _body(ctx, id_field="clientMessageId")
        for field in ("user", "content"):
            if not isinstance(body.get(field), dict):
                raise StepError(f"Input '{field}' must be an object.")
        try:
            provider = await ctx.channels.providers.for_account(ctx.account_id)
            response = await provider.send_chat(_send_context(ctx), sub_account, body)
        except ChannelError as error:
            return _failed("chat apps message", error)
        status = response.get("status") or {}
        return Complete(
            {
                "requestId": _request_id(ctx),
                "umid": response.get("umid"),
                "status": status.get("state"),
                "description": status.get("detail") or status.get("errorMessage"),
            }
        )


class VoiceMessage(StepType):
    name = "VoiceMessage"
    side_effect = True

    async def run(self, ctx: StepContext) -> Decision:
        sub_account = text_input(ctx, "subAccountId")
        assert sub_account is not None
        action = text_input(ctx, "action", required=False) or "say"
        params = ctx.inputs.get("params")
        if not isinstance(params, dict):
            raise StepError("Input 'params' must be an object.")
        client_request_id = text_input(ctx, "clientRequestId", required=False) or ctx.pointer_id
        body = {
            "clientRequestId": client_request_id,
            "callflow": [{"action": action, "params": params}],
        }
        try:
            provider = await ctx.channels.providers.for_account(ctx.account_id)
            response = await provider.send_voice(_send_context(ctx), sub_account, body)
        except ChannelError as error:
            return _failed("voice message", error)
        return Complete({"response": response})
