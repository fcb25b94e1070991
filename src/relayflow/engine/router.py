"""The router: every inbound event goes through here, in one transaction with its inbox row.

Order (DESIGN.md §5): an inbound message is first offered to the waits subscribed to its
sender; then every matching enabled definition starts an instance, except the definitions
whose instances just consumed it. DTMF callbacks resume their WaitForDTMF, or are parked
for ten minutes when they arrive before the wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.clock import Clock, iso_from_ms
from relayflow.engine.contacts import contacts_of
from relayflow.engine.keys import dtmf_keys_for_callback, reply_keys_for_event
from relayflow.engine.wakeup import notify_work
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_uuid, new_workflow_id
from relayflow.store import definitions as definition_store
from relayflow.store import instances as instance_store
from relayflow.store import usage as usage_store
from relayflow.store.database import Database
from relayflow.store.definitions import DefinitionRow, TriggerMatch
from relayflow.store.inbox import record_event
from relayflow.store.instances import NewInstance
from relayflow.telemetry import metrics, tracing

PARKED_DTMF_MS = 10 * 60 * 1000


@dataclass
class RouteResult:
    started: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"started": self.started, "resumed": self.resumed, "duplicate": self.duplicate}


def _sub_account_of(event: dict[str, Any]) -> str | None:
    """The subaccount an inbound webhook object names (`payload.subAccountId`), if any."""
    payload = event.get("payload")
    sub_account = payload.get("subAccountId") if isinstance(payload, dict) else None
    return sub_account if isinstance(sub_account, str) and sub_account else None


class StartRateLimiter:
    """Per-account token bucket on instance starts (process-local)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, account_id: str, count: int) -> float:
        """Take `count` tokens; 0 when allowed, else the seconds to wait before retrying."""
        if count <= 0:
            return 0.0
        now = time.monotonic()
        tokens, last = self._buckets.get(account_id, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) * self._rate)
        if tokens >= count:
            self._buckets[account_id] = (tokens - count, now)
            return 0.0
        self._buckets[account_id] = (tokens, now)
        return (count - tokens) / self._rate


class Router:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        limiter: StartRateLimiter,
        on_work: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._on_work = on_work
        self._entry_steps: definition_store.EntrySteps = {}

    def notify_work(self) -> None:
        self._on_work()

    async def inbound_message(
        self, account_id: str, event: dict[str, Any], *, trigger: str, dedupe_key: str | None
    ) -> RouteResult:
        """An inbound SMS (`inbound_sms`) or chat-apps message (`inbound_chat_apps`)."""
        sub_account = _sub_account_of(event)
        now = self._clock.now_ms()
        result = RouteResult()
        async with self._db.transaction() as conn:
            if not await record_event(
                conn, new_uuid(), account_id, trigger, dedupe_key, event, now
            ):
                return RouteResult(duplicate=True)
            deliveries = await instance_store.deliver_event(
                conn, account_id, reply_keys_for_event(event), event, "reply_received", now
            )
            result.resumed = [d.instance_id for d in deliveries]
            consumed = {d.definition_id for d in deliveries}
            matching = await definition_store.enabled_for_trigger(
                conn, account_id, trigger, sub_account, self._entry_steps
            )
            starts = [row for row in matching if row.id not in consumed]
            result.started = await self._start(conn, account_id, starts, event, sub_account, now)
            if deliveries and not result.started:
                await notify_work(conn)
        metrics.instances_started.labels(trigger).inc(len(result.started))
        if result.started or result.resumed:
            self._on_work()
        return result

    async def http_trigger(
        self, account_id: str, body: dict[str, Any], sub_account_id: str | None
    ) -> RouteResult:
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            await record_event(conn, new_uuid(), account_id, "http_request", None, body, now)
            matching = await definition_store.enabled_for_trigger(
                conn, account_id, "http_request", sub_account_id, self._entry_steps
            )
            started = await self._start(conn, account_id, matching, body, sub_account_id, now)
        if started:
            metrics.instances_started.labels("http_request").inc(len(started))
            self._on_work()
        return RouteResult(started=started)

    async def start_test(
        self, account_id: str, definition: DefinitionRow, body: dict[str, Any]
    ) -> str:
        """The "test workflow definition" endpoint: any status, any version."""
        now = self._clock.now_ms()
        sub_account = _sub_account_of(body)
        async with self._db.transaction() as conn:
            await record_event(conn, new_uuid(), account_id, "test", None, body, now)
            started = await self._start(
                conn, account_id, [TriggerMatch.of(definition)], body, sub_account, now
            )
        metrics.instances_started.labels("test").inc()
        self._on_work()
        return started[0]

    async def dtmf(
        self, account_id: str, callback: dict[str, Any], *, dedupe_key: str | None
    ) -> RouteResult:
        now = self._clock.now_ms()
        keys = dtmf_keys_for_callback(callback)
        result = RouteResult()
        async with self._db.transaction() as conn:
            if not await record_event(
                conn, new_uuid(), account_id, "dtmf", dedupe_key, callback, now
            ):
                return RouteResult(duplicate=True)
            for key in keys:  # clientRequestId first, then uid
                deliveries = await instance_store.deliver_event(
                    conn, account_id, [key], callback, "dtmf_received", now
                )
                if deliveries:
                    result.resumed = [d.instance_id for d in deliveries]
                    await notify_work(conn)
                    break
            else:
                await instance_store.purge_expired_parked(conn, now)
                for key in keys:
                    await instance_store.park_event(
                        conn, new_uuid(), account_id, key, callback, now + PARKED_DTMF_MS
                    )
        if result.resumed:
            self._on_work()
        return result

    async def _start(
        self,
        conn: AsyncConnection,
        account_id: str,
        definitions: list[TriggerMatch],
        body: dict[str, Any],
        sub_account_id: str | None,
        now: int,
    ) -> list[str]:
        if not definitions:
            return []
        wait = self._limiter.take(account_id, len(definitions))
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"Too many workflow starts for account '{account_id}'; retry in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
        data = dict(body)
        data["accountId"] = account_id
        # `data.subAccountId` names the trigger's subaccount; a body cannot claim another one.
        data.pop("subAccountId", None)
        if sub_account_id is not None:
            data["subAccountId"] = sub_account_id
        data["triggeredAt"] = iso_from_ms(now)
        contacts = contacts_of(body)
        trace_parent = tracing.current_traceparent()  # the request's span, when tracing
        new = [
            NewInstance(
                id=new_workflow_id(),
                account_id=account_id,
                definition_id=row.id,
                version=row.version,
                sub_account_id=sub_account_id,
                data=data,
                entry_step=row.entry_step,
                first_pointer_id=new_uuid(),
                now_ms=now,
                contacts=contacts,
                trace_parent=trace_parent,
            )
            for row in definitions
        ]
        await instance_store.insert_instances(conn, new)
        await usage_store.count_started(conn, account_id, len(new), now)
        await notify_work(conn)
        return [item.id for item in new]
