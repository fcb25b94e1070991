"""Send recording, the one way every messaging provider records what it sends.

Why one wrapper: the crash guarantee (a send whose answer was recorded is never made again;
only a crash during the call repeats it, under the same row) hangs on how a send is recorded, so
the sandbox and the 8x8 provider record through the same code and the same `store/messages`
functions, keyed by the step execution. A provider that calls out records the attempt before
the call and the answer after it (`attempt`, `answer`); one that answers in-process records
both in one transaction (`answered`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relayflow.channels.base import SendContext
from relayflow.ids import new_uuid
from relayflow.store import messages as message_store
from relayflow.store.database import Database
from relayflow.store.hotpath import hot_path_for
from relayflow.store.messages import Attempt, MessageRow


@dataclass(frozen=True)
class OutboundSend:
    """What a provider is about to send, as the `messages` row describes it."""

    channel: str  # sms | chatapps | voice
    sub_account_id: str
    recipient: Any  # stored as text; None when the body names none
    body: dict[str, Any]  # exactly what the 8x8 API receives


class RecordedSends:
    """Records one provider's sends in `messages`, keyed by the step execution."""

    def __init__(self, db: Database, provider: str) -> None:
        self._store = hot_path_for(db)  # the database's own implementation (store/hotpath.py)
        self._provider = provider

    async def attempt(self, ctx: SendContext, send: OutboundSend) -> Attempt:
        """Record the send as `sending` before it is made; `answer` is set when it was made."""
        return await self._store.record_attempt(
            self._row(ctx, send, new_uuid(), None, message_store.SENDING)
        )

    async def answer(
        self, attempt: Attempt, umid: str | None, answer: dict[str, Any], status: str
    ) -> None:
        """Record the provider's answer to an attempt (its umid becomes the row's id)."""
        await self._store.record_answer(attempt.row_id, umid, answer, status)

    async def answered(
        self, ctx: SendContext, send: OutboundSend, answer: dict[str, Any], status: str
    ) -> dict[str, Any]:
        """Record a send with its answer in one transaction; a re-run gets the first answer."""
        row_id = answer.get("umid") or new_uuid()
        return await self._store.record_answered_send(self._row(ctx, send, row_id, answer, status))

    def _row(
        self,
        ctx: SendContext,
        send: OutboundSend,
        row_id: str,
        response: dict[str, Any] | None,
        status: str,
    ) -> MessageRow:
        body = send.body
        return MessageRow(
            id=row_id,
            account_id=ctx.account_id,
            instance_id=ctx.instance_id,
            pointer_id=ctx.pointer_id,
            channel=send.channel,
            provider=self._provider,
            sub_account_id=send.sub_account_id,
            recipient=str(send.recipient) if send.recipient is not None else None,
            # The same on every attempt: 8x8 and the receiver can tell a repeated call.
            client_message_id=body.get("clientMessageId") or body.get("clientRequestId"),
            request=body,
            response=response,
            status=status,
            created_at_ms=ctx.now_ms,
        )
