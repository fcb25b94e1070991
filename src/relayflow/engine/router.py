"""The router: every inbound event goes through here, atomically with its inbox row: in one
transaction, or on PostgreSQL's one-statement route (`_route_in_one_statement`).

Order (DESIGN.md §5): an inbound message is first offered to the waits subscribed to its
sender; then every matching enabled definition starts an instance, except the definitions
whose instances just consumed it. DTMF callbacks resume their WaitForDTMF, or are parked
for ten minutes when they arrive before the wait.

Reply hold (issue 14, `RELAYFLOW_REPLY_HOLD_SECONDS`): a customer's second message often
arrives while the instance started by the first is still running the steps before its
WaitForReply. A message that no wait consumed is then *held* instead of starting another
instance of a definition D when D has a WaitForReply step and the sender (`instance_contacts`)
has a Runnable instance of D started less than the window ago that waits for no event yet
(one already waiting, for another channel say, was not waiting for this message). If an
instance of D subscribes to the message's reply key while it is held, it gets the message as
its reply (`reply_received`); otherwise, once the window is over, a worker releases it and
starts D's latest enabled version with it, as if it had arrived then, but with
`data.triggeredAt` = when it did arrive (no second hold). Definitions it does not hold for
start at once, as before. The message was recorded in the inbox (and deduplicated) when it
arrived; held messages live in the database (store/held.py) and survive a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.clock import Clock, iso_from_ms
from relayflow.engine.contacts import contacts_of
from relayflow.engine.errors import StartsRateLimited
from relayflow.engine.keys import dtmf_keys_for_callback, reply_keys_for_event, sender_contacts
from relayflow.engine.wakeup import notify_work
from relayflow.ids import new_uuid, new_workflow_id
from relayflow.instance_state import NewInstance
from relayflow.store import definitions as definition_store
from relayflow.store import held as held_store
from relayflow.store import lifecycle as lifecycle_store
from relayflow.store import subscriptions as subscription_store
from relayflow.store.database import Database
from relayflow.store.definitions import DefinitionRow, TriggerMatch
from relayflow.store.inbox import InboundEvent, record_event
from relayflow.store.postgres_starts import LOOKUP_KEYS, PostgresStarts, postgres_starts_for
from relayflow.telemetry import metrics, tracing

PARKED_DTMF_MS = 10 * 60 * 1000
# How often a worker looks for held messages it was not told about (held by another process,
# or before a restart); messages held by this process are looked at when their window ends.
HELD_RECHECK_MS = 1000
RELEASE_BATCH = 32
# How long a route (account, trigger, subaccount) whose definitions may hold a message skips
# the one-statement route's lookup and goes straight to the transaction (engine/router.py).
MAY_HOLD_REMEMBERED_MS = 5000
_REMEMBERED_DEFINITIONS = 4096


@dataclass
class RouteResult:
    started: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    duplicate: bool = False
    # Definitions the message is held for (reply hold); not in the API answer, whose shape
    # 8x8 clients know.
    held: list[str] = field(default_factory=list)

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

    def give_back(self, account_id: str, count: int) -> None:
        """Return tokens taken for starts that did not happen (a duplicate event)."""
        tokens, last = self._buckets.get(account_id, (float(self._burst), time.monotonic()))
        self._buckets[account_id] = (min(float(self._burst), tokens + count), last)


class Router:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        limiter: StartRateLimiter,
        on_work: Callable[[], None] = lambda: None,
        *,
        reply_hold_ms: int = 0,
    ) -> None:
        self._db = db
        self._starts = postgres_starts_for(db)  # None on SQLite
        self._clock = clock
        self._limiter = limiter
        self._on_work = on_work
        self._entry_steps: definition_store.EntrySteps = {}
        self._reply_hold_ms = reply_hold_ms  # 0: no hold
        # Whether a definition version has a WaitForReply step (versions are immutable).
        self._waits_for_reply: dict[tuple[str, int], bool] = {}
        # Routes whose events go to the transaction (reply hold), and until when (ms); see
        # `_route_in_one_statement`.
        self._may_hold_until: dict[tuple[str, str, str | None], int] = {}
        # When `release_held` next looks at the database; 0: at once (held before a restart).
        self._next_release_check_ms = 0

    def notify_work(self) -> None:
        self._on_work()

    async def inbound_message(
        self, account_id: str, event: dict[str, Any], *, trigger: str, dedupe_key: str | None
    ) -> RouteResult:
        """An inbound SMS (`inbound_sms`) or chat-apps message (`inbound_chat_apps`)."""
        sub_account = _sub_account_of(event)
        now = self._clock.now_ms()
        message_id = new_uuid()
        keys = reply_keys_for_event(event)
        inbound = InboundEvent(message_id, account_id, trigger, dedupe_key, event, now)
        if self._starts is not None:
            routed = await self._route_in_one_statement(self._starts, inbound, sub_account, keys)
            if routed is not None:
                return routed
        result = RouteResult()
        async with self._db.transaction() as conn:
            if not await record_event(conn, inbound):
                return RouteResult(duplicate=True)
            deliveries = await subscription_store.deliver_event(
                conn, account_id, keys, event, AuditEvent.REPLY_RECEIVED, now
            )
            result.resumed = [d.instance_id for d in deliveries]
            consumed = {d.definition_id for d in deliveries}
            matching = await definition_store.enabled_for_trigger(
                conn, account_id, trigger, sub_account, self._entry_steps
            )
            starts = [row for row in matching if row.id not in consumed]
            self._admit(account_id, len(starts))  # held starts count: they may start later
            result.held = await self._hold(
                conn, message_id, account_id, trigger, sub_account, event, keys, starts, now
            )
            if result.held:
                starts = [row for row in starts if row.id not in result.held]
            result.started = await self._start(
                conn, account_id, starts, event, sub_account, now, admitted=True
            )
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
        inbound = InboundEvent(new_uuid(), account_id, "http_request", None, body, now)
        if self._starts is not None:
            routed = await self._route_in_one_statement(self._starts, inbound, sub_account_id, [])
            if routed is not None:
                return routed
        async with self._db.transaction() as conn:
            await record_event(conn, inbound)
            matching = await definition_store.enabled_for_trigger(
                conn, account_id, "http_request", sub_account_id, self._entry_steps
            )
            started = await self._start(conn, account_id, matching, body, sub_account_id, now)
        if started:
            metrics.instances_started.labels("http_request").inc(len(started))
            self._on_work()
        return RouteResult(started=started)

    async def _route_in_one_statement(
        self,
        store: PostgresStarts,
        inbound: InboundEvent,
        sub_account_id: str | None,
        keys: list[str],
    ) -> RouteResult | None:
        """PostgreSQL's common case: no wait is subscribed to the event's reply keys and no
        definition it starts could hold it (reply hold), so routing it is starting instances:
        one read, then one statement that records the event and starts them only if it is
        new. None when the case is not that one (or a definition version is not known here
        yet, or the start rate limit refuses: a repeated event must still be a duplicate):
        the caller then routes it in one transaction, as on SQLite."""
        account_id = inbound.account_id
        route = (account_id, inbound.kind, sub_account_id)
        now = inbound.received_at_ms
        if len(keys) > LOOKUP_KEYS or self._may_hold_until.get(route, 0) > now:
            return None
        lookup = await store.lookup(account_id, inbound.kind, sub_account_id, keys)
        starts: list[TriggerMatch] = []
        for definition_id, version in lookup.versions:
            entry = self._entry_steps.get((definition_id, version))
            if entry is None:
                return None
            if (
                self._reply_hold_ms > 0
                and keys
                and self._waits_for_reply.get((definition_id, version), True)
            ):
                # It may be held, and so may the route's next events: they skip the lookup.
                if len(self._may_hold_until) >= _REMEMBERED_DEFINITIONS:
                    self._may_hold_until.clear()
                self._may_hold_until[route] = now + MAY_HOLD_REMEMBERED_MS
                return None
            starts.append(TriggerMatch(definition_id, version, entry))
        if lookup.waited_for:
            return None  # a wait may take it
        try:
            self._admit(account_id, len(starts))
        except StartsRateLimited:
            return None
        new = self._new_instances(account_id, starts, inbound.payload, sub_account_id, now)
        try:
            fresh = await store.record_and_start(inbound, new)
        except BaseException:
            self._limiter.give_back(account_id, len(starts))  # nothing was written
            raise
        if not fresh:
            self._limiter.give_back(account_id, len(starts))
            return RouteResult(duplicate=True)
        started = [item.id for item in new]
        metrics.instances_started.labels(inbound.kind).inc(len(started))
        if started:
            self._on_work()
        return RouteResult(started=started)

    async def start_test(
        self, account_id: str, definition: DefinitionRow, body: dict[str, Any]
    ) -> str:
        """The "test workflow definition" endpoint: any status, any version."""
        now = self._clock.now_ms()
        sub_account = _sub_account_of(body)
        async with self._db.transaction() as conn:
            await record_event(conn, InboundEvent(new_uuid(), account_id, "test", None, body, now))
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
            inbound = InboundEvent(new_uuid(), account_id, "dtmf", dedupe_key, callback, now)
            if not await record_event(conn, inbound):
                return RouteResult(duplicate=True)
            for key in keys:  # clientRequestId first, then uid
                deliveries = await subscription_store.deliver_event(
                    conn, account_id, [key], callback, AuditEvent.DTMF_RECEIVED, now
                )
                if deliveries:
                    result.resumed = [d.instance_id for d in deliveries]
                    await notify_work(conn)
                    break
            else:
                await subscription_store.purge_expired_parked(conn, now)
                for key in keys:
                    await subscription_store.park_event(
                        conn, new_uuid(), account_id, key, callback, now + PARKED_DTMF_MS
                    )
        if result.resumed:
            self._on_work()
        return result

    async def _hold(
        self,
        conn: AsyncConnection,
        message_id: str,
        account_id: str,
        trigger: str,
        sub_account_id: str | None,
        event: dict[str, Any],
        keys: list[str],
        starts: list[TriggerMatch],
        now: int,
    ) -> list[str]:
        """Hold the message for the definitions among `starts` that have a WaitForReply and a
        Runnable instance about its sender started within the window (module docstring); the
        ids of those definitions. Flows without a WaitForReply cost nothing here, the others
        one indexed lookup (`instance_contacts` by contact)."""
        if self._reply_hold_ms <= 0 or not starts or not keys:
            return []
        candidates = [row for row in starts if await self._has_reply_wait(conn, account_id, row)]
        contacts = sender_contacts(event) if candidates else []
        if not contacts:
            return []
        since = now - self._reply_hold_ms
        running = await held_store.definitions_running_for(conn, account_id, contacts, since)
        held = [row.id for row in candidates if row.id in running]
        if held:
            release_at = now + self._reply_hold_ms
            await held_store.hold_message(
                conn,
                message_id=message_id,
                account_id=account_id,
                definition_ids=held,
                keys=keys,
                trigger=trigger,
                sub_account_id=sub_account_id,
                payload=event,
                received_at_ms=now,
                release_at_ms=release_at,
                trace_parent=tracing.current_traceparent(),
            )
            self._next_release_check_ms = min(self._next_release_check_ms, release_at)
        return held

    async def _has_reply_wait(
        self, conn: AsyncConnection, account_id: str, match: TriggerMatch
    ) -> bool:
        """Whether the version has a WaitForReply step: read once per version and remembered."""
        key = (match.id, match.version)
        known = self._waits_for_reply.get(key)
        if known is None:
            row = await definition_store.get_any_version(conn, account_id, match.id, match.version)
            known = row is not None and _has_step(row.steps, "waitforreply")
            if len(self._waits_for_reply) >= _REMEMBERED_DEFINITIONS:
                self._waits_for_reply.clear()
            self._waits_for_reply[key] = known
        return known

    async def release_held(self) -> int:
        """Route the held messages whose window is over (the worker calls this every round):
        one transaction per message, which deletes it and starts its definitions' instances.
        Looks at the database only when a message of this process is due, or every
        `HELD_RECHECK_MS` for the others. The number of instances started."""
        now = self._clock.now_ms()
        if now < self._next_release_check_ms:
            return 0
        # Set before looking, so that a message this process holds meanwhile lowers it.
        self._next_release_check_ms = now + HELD_RECHECK_MS
        started = 0
        while True:
            async with self._db.read() as conn:
                earliest = await held_store.earliest_release(conn)
                due = (
                    []
                    if earliest is None or earliest > now
                    else (await held_store.due_messages(conn, now, RELEASE_BATCH))
                )
            if not due:
                break
            for message_id in due:
                started += await self._release(message_id, now)
        if earliest is not None:
            self._next_release_check_ms = min(self._next_release_check_ms, earliest)
        if started:
            self._on_work()
        return started

    async def _release(self, message_id: str, now: int) -> int:
        """Start the definitions a message was held for, unless a wait or another worker took
        it first (whoever deletes its rows owns it)."""
        async with self._db.transaction() as conn:
            message = await held_store.release_message(conn, message_id)
            if message is None:
                return 0
            matching = await definition_store.enabled_for_trigger(
                conn,
                message.account_id,
                message.trigger,
                message.sub_account_id,
                self._entry_steps,
            )
            starts = [row for row in matching if row.id in message.definition_ids]
            started = await self._start(
                conn,
                message.account_id,
                starts,
                message.payload,
                message.sub_account_id,
                now,
                admitted=True,  # counted when the message arrived
                triggered_at_ms=message.received_at_ms,
                trace_parent=message.trace_parent,
            )
        metrics.instances_started.labels(message.trigger).inc(len(started))
        return len(started)

    def _admit(self, account_id: str, count: int) -> None:
        """The per-account start rate limit (the services answer it as 429 + Retry-After)."""
        wait = self._limiter.take(account_id, count)
        if wait > 0:
            raise StartsRateLimited(account_id, max(1, int(wait + 0.999)))

    async def _start(
        self,
        conn: AsyncConnection,
        account_id: str,
        definitions: list[TriggerMatch],
        body: dict[str, Any],
        sub_account_id: str | None,
        now: int,
        *,
        admitted: bool = False,
        triggered_at_ms: int | None = None,
        trace_parent: str | None = None,
    ) -> list[str]:
        if not definitions:
            return []
        if not admitted:
            self._admit(account_id, len(definitions))
        new = self._new_instances(
            account_id,
            definitions,
            body,
            sub_account_id,
            now,
            triggered_at_ms=triggered_at_ms,
            trace_parent=trace_parent,
        )
        await lifecycle_store.start_instances(conn, account_id, new, now)
        return [item.id for item in new]

    def _new_instances(
        self,
        account_id: str,
        definitions: list[TriggerMatch],
        body: dict[str, Any],
        sub_account_id: str | None,
        now: int,
        *,
        triggered_at_ms: int | None = None,
        trace_parent: str | None = None,
    ) -> list[NewInstance]:
        """One new instance per definition version, all with the same `data` (DESIGN.md §5)."""
        if not definitions:
            return []
        data = dict(body)
        data["accountId"] = account_id
        # `data.subAccountId` names the trigger's subaccount; a body cannot claim another one.
        data.pop("subAccountId", None)
        if sub_account_id is not None:
            data["subAccountId"] = sub_account_id
        data["triggeredAt"] = iso_from_ms(now if triggered_at_ms is None else triggered_at_ms)
        contacts = contacts_of(body)
        if trace_parent is None:
            trace_parent = tracing.current_traceparent()  # the request's span, when tracing
        return [
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


def _has_step(steps: list[Any], step_type: str) -> bool:
    """Whether any step, in any `If` branch, is of `step_type` (lower case)."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        if str(step.get("stepType", "")).lower() == step_type:
            return True
        if any(_has_step(branch, step_type) for branch in step.get("do") or [] if branch):
            return True
    return False
