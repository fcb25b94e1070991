"""8x8's webhooks (spec §11): classify, validate, deduplicate, store and route.

Each accepted event is written to the inbox in the same transaction that routes it, and that
transaction commits before the 200, so an event 8x8 saw accepted is never lost; 8x8 retries
(on timeouts and errors) are recognised by their `umid` / `uid` / `eventId` and answered 200
without a second effect. Events relayflow does not act on (session summaries, unknown types)
are stored and acknowledged, so 8x8 does not retry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayflow.clock import Clock, iso_from_ms
from relayflow.engine.router import Router
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_uuid
from relayflow.services.admission import admitted
from relayflow.store.database import Database
from relayflow.store.inbox import InboundEvent, record_event
from relayflow.store.receipts import Receipt, record_receipt

INBOUND = "inbound_message_received"
STATUS_CHANGED = "outbound_message_status_changed"
RECEIPT_TYPES = (STATUS_CHANGED, "external_app_message")


@dataclass
class WebhookResult:
    kind: str
    duplicate: bool = False
    started: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "duplicate": self.duplicate,
            "started": self.started,
            "resumed": self.resumed,
        }


def _invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_BODY, message)


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise _invalid("'payload' must be an object.")
    return payload


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"'payload.{name}' is required.")
    return value


class WebhookService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self._db = db
        self._clock = clock
        self._router = router

    async def sms(self, account_id: str, event: dict[str, Any]) -> WebhookResult:
        return await self._messaging(account_id, event, trigger="inbound_sms", prefix="sms")

    async def chatapps(self, account_id: str, event: dict[str, Any]) -> WebhookResult:
        return await self._messaging(account_id, event, trigger="inbound_chat_apps", prefix="chat")

    async def _messaging(
        self, account_id: str, event: dict[str, Any], *, trigger: str, prefix: str
    ) -> WebhookResult:
        kind = event.get("eventType")
        if kind == INBOUND:
            payload = _payload(event)
            umid = _text(payload, "umid")
            if trigger == "inbound_sms":
                _text(payload, "source")
            routed = await admitted(
                self._router.inbound_message(
                    account_id, event, trigger=trigger, dedupe_key=f"{prefix}:{umid}"
                )
            )
            return WebhookResult(
                f"{prefix}_inbound", routed.duplicate, routed.started, routed.resumed
            )
        if kind in RECEIPT_TYPES:
            return await self._receipt(account_id, event, prefix)
        return await self._store_only(account_id, event, f"{prefix}_other", None)

    async def _receipt(self, account_id: str, event: dict[str, Any], prefix: str) -> WebhookResult:
        payload = _payload(event)
        umid = _text(payload, "umid")
        status = payload.get("status")
        if not isinstance(status, dict) or not isinstance(status.get("state"), str):
            raise _invalid("'payload.status.state' is required.")
        error_code = status.get("errorCode")
        receipt = Receipt(
            umid=umid,
            state=status["state"],
            detail=status.get("detail") if isinstance(status.get("detail"), str) else None,
            error_code=error_code
            if isinstance(error_code, int) and not isinstance(error_code, bool)
            else None,
            error_message=status.get("errorMessage")
            if isinstance(status.get("errorMessage"), str)
            else None,
            status_at=status.get("timestamp") if isinstance(status.get("timestamp"), str) else None,
            payload=event,
            received_at_ms=self._clock.now_ms(),
        )
        key = f"{prefix}-receipt:{umid}:{receipt.state}:{receipt.detail}:{receipt.status_at}"
        async with self._db.transaction() as conn:
            kind, received = f"{prefix}_receipt", receipt.received_at_ms
            inbound = InboundEvent(new_uuid(), account_id, kind, key[:200], event, received)
            if not await record_event(conn, inbound):
                return WebhookResult(f"{prefix}_receipt", duplicate=True)
            await record_receipt(conn, account_id, receipt)
        return WebhookResult(f"{prefix}_receipt")

    async def voice(self, account_id: str, event: dict[str, Any]) -> WebhookResult:
        """The legacy DTMF callback, or the voice call-action webhook (DTMF in eventData)."""
        status = event.get("status")
        if isinstance(status, dict) and status.get("code") == "DTMF":
            details = event.get("actionDetails")
            if not isinstance(details, dict) or not isinstance(details.get("dtmf"), str):
                raise _invalid("'actionDetails.dtmf' is required in a DTMF callback.")
            if not any(
                isinstance(event.get(k), str) and event[k] for k in ("uid", "clientRequestId")
            ):
                raise _invalid("A DTMF callback needs 'uid' or 'clientRequestId'.")
            dedupe = (
                f"dtmf:{event.get('uid') or event.get('clientRequestId')}:{status.get('timestamp')}"
            )
            routed = await self._router.dtmf(account_id, event, dedupe_key=dedupe[:200])
            return WebhookResult("dtmf", routed.duplicate, [], routed.resumed)
        if event.get("eventType") == "CALL_ACTION":
            payload = _payload(event)
            event_id = _text(payload, "eventId")
            digits = (
                (payload.get("eventData") or {}).get("dtmf")
                if isinstance(payload.get("eventData"), dict)
                else None
            )
            if not isinstance(digits, str) or not digits:
                return await self._store_only(
                    account_id, event, "voice_call_action", f"vca:{event_id}"
                )
            callback = self._callback_from_call_action(payload, digits)
            routed = await self._router.dtmf(
                account_id, callback, dedupe_key=f"vca:{event_id}"[:200]
            )
            return WebhookResult("dtmf", routed.duplicate, [], routed.resumed)
        summary = event.get("payload")
        summary_key = None
        if isinstance(summary, dict) and isinstance(summary.get("sessionId"), str):
            summary_key = f"voice:{event.get('eventType')}:{summary['sessionId']}"
        return await self._store_only(account_id, event, "voice_other", summary_key)

    def _callback_from_call_action(self, payload: dict[str, Any], digits: str) -> dict[str, Any]:
        """The legacy callback shape WaitForDTMF outputs read (`step.dtmfData.actionDetails.dtmf`),
        keyed by the call's `sessionId` (the `uid` relayflow saw when it placed the call)."""
        callback: dict[str, Any] = {
            "uid": payload.get("sessionId"),
            "status": {
                "code": "DTMF",
                "timestamp": payload.get("timestamp") or iso_from_ms(self._clock.now_ms()),
            },
            "destination": payload.get("destination"),
            "actionDetails": {"dtmf": digits},
            "callAction": payload,
        }
        if isinstance(payload.get("clientActionId"), str):
            callback["clientRequestId"] = payload["clientActionId"]
        return callback

    async def _store_only(
        self, account_id: str, event: dict[str, Any], kind: str, dedupe_key: str | None
    ) -> WebhookResult:
        async with self._db.transaction() as conn:
            stored = await record_event(
                conn,
                InboundEvent(
                    new_uuid(),
                    account_id,
                    kind,
                    dedupe_key[:200] if dedupe_key else None,
                    event,
                    self._clock.now_ms(),
                ),
            )
        return WebhookResult(kind, duplicate=not stored)
