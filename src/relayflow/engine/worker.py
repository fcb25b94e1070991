"""Workers claim instances with due work under a lease, run a sprint, and write it back.

Several worker processes may share one PostgreSQL database: the claim uses
`FOR UPDATE SKIP LOCKED`, so an instance is run by one worker at a time, and an expired lease
(a dead worker) is simply claimed again. On SQLite the claim is one `BEGIN IMMEDIATE`
transaction. Wake-ups come from the router (in-process), PostgreSQL `NOTIFY`, or polling.

Stopping (SIGTERM, `run_forever`'s `stop`): nothing more is claimed, sprints under way may
finish within the grace period and are then cancelled, and the worker releases every lease it
still holds in one statement, so that another worker takes its instances over at once instead
of after the lease timeout. Why a cancelled sprint is safe to run again is in `_shut_down`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from relayflow.audit import AuditEvent
from relayflow.clock import Clock
from relayflow.engine.plan import Plan, PlanCache, compile_plan
from relayflow.engine.runner import Runner
from relayflow.instance_state import InstanceState, InstanceStatus
from relayflow.store import definitions as definition_store
from relayflow.store import leases as lease_store
from relayflow.store.database import Database
from relayflow.store.hotpath import HotPath, hot_path_for
from relayflow.store.sprints import LeaseLost
from relayflow.telemetry import metrics, tracing

log = structlog.get_logger("relayflow.engine")


MIN_SAFE_LEASE_MS = 35_000
MIN_IDLE_S = 0.002  # another process may claim what looked due: never spin


@dataclass(frozen=True)
class WorkerSettings:
    lease_ms: int = 60_000
    # No more than run at once: a claimed instance's lease ages while it waits its turn.
    batch_size: int = 32
    concurrency: int = 32
    poll_interval_s: float = 0.25
    # How long a stop lets sprints under way finish before cancelling them
    # (RELAYFLOW_SHUTDOWN_GRACE_SECONDS).
    shutdown_grace_s: float = 20.0


_ENDED = {
    AuditEvent.INSTANCE_COMPLETED: (InstanceStatus.COMPLETE, False),
    AuditEvent.INSTANCE_TERMINATED: (InstanceStatus.TERMINATED, True),
}


def count_ended(state: InstanceState) -> None:
    """`relayflow_instances_ended_total` for an instance this sprint ended (a fault is the only
    way a sprint terminates one; a user's terminate is counted by the service)."""
    for kind, _step, at_ms, _detail in state.events:
        ended = _ENDED.get(kind)
        if ended is not None:
            metrics.ended(ended[0], ended[1], (at_ms - state.started_at_ms) / 1000)


class PlanLoader:
    """Compiled plans by (definition id, version), loaded from the store once."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache = PlanCache()

    async def get(self, account_id: str, definition_id: str, version: int) -> Plan:
        plan = self._cache.get(definition_id, version)
        if plan is None:
            async with self._db.read() as conn:
                row = await definition_store.get_any_version(
                    conn, account_id, definition_id, version
                )
            if row is None:
                raise LookupError(f"definition {definition_id} v{version} is gone")
            plan = compile_plan(definition_id, version, row.steps)
            self._cache.put(plan)
        return plan


def new_owner_id() -> str:
    return f"{_host_tag()}-{os.getpid()}-{secrets.token_hex(3)}"


def _host_tag() -> str:
    return socket.gethostname()[:30]


def _dead_local_owner(owner: str) -> bool:
    """True for an owner id of this host whose process no longer exists (killed, crashed)."""
    # owner = "<host>-<pid>-<random>"; the host part may itself contain dashes.
    host, _, pid_text = owner.rpartition("-")[0].rpartition("-")
    if host != _host_tag() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


class Worker:
    def __init__(
        self,
        db: Database,
        runner: Runner,
        clock: Clock,
        settings: WorkerSettings | None = None,
        owner: str | None = None,
        hot_path: HotPath | None = None,
    ) -> None:
        self._db = db
        # Claims, loads and saves: the database's own implementation (store/hotpath.py).
        self.hot_path = hot_path or hot_path_for(db)
        self._runner = runner
        self._clock = clock
        self._settings = settings or WorkerSettings()
        self.owner = owner or new_owner_id()
        self._plans = PlanLoader(db)
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self._settings.concurrency)
        self._stop: asyncio.Event | None = None  # run_forever's: set once the worker stops
        self._running: set[str] = set()  # instances whose sprint has started and not ended
        self._heartbeat = time.monotonic()
        # Routes held inbound messages whose window is over (the router's `release_held`; set
        # by the runtime): every round, before claiming, so the instances it starts run in it.
        self.release_held: Callable[[], Awaitable[int]] | None = None

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for: no sprint starts any more."""
        return self._stop is not None and self._stop.is_set()

    def wake(self) -> None:
        """Work was added (by this process's router): look now instead of at the next poll."""
        self._wake.set()

    def seconds_since_heartbeat(self) -> float:
        """Since the loop last came round or a sprint last ended (readiness: a stuck loop)."""
        return time.monotonic() - self._heartbeat

    async def run_once(self) -> int:
        """Claim one batch and run it; the number of instances processed."""
        self._heartbeat = time.monotonic()
        released = await self._release_held()
        now = self._clock.now_ms()
        claimed = await self.hot_path.claim(
            self.owner, now, self._settings.lease_ms, self._settings.batch_size
        )
        if claimed:
            await asyncio.gather(*(self._guarded(state) for state in claimed))
        return len(claimed) + released

    async def _release_held(self) -> int:
        """Instances started from held messages; a failure is logged and retried later, never
        a reason to stop claiming."""
        if self.release_held is None:
            return 0
        try:
            return await self.release_held()
        except Exception:
            log.exception("held_release_failed", owner=self.owner)
            return 0

    async def run_until_idle(self, max_rounds: int = 1000) -> None:
        """Process until nothing is due at the clock's current time (tests, `relayflow` tools)."""
        for _ in range(max_rounds):
            if await self.run_once() == 0:
                return
        raise RuntimeError("work is still due after max_rounds; a runaway flow?")

    async def release_dead_local_leases(self) -> int:
        """A restarted process need not wait out the leases of the one it replaces: leases held
        by processes of this host that no longer exist are released at once."""
        async with self._db.transaction() as conn:
            owners = await lease_store.lease_owners(conn, self._clock.now_ms())
            dead = [owner for owner in owners if _dead_local_owner(owner)]
            released = await lease_store.release_leases_of(conn, dead) if dead else 0
        if released:
            log.info("dead_leases_released", owners=dead, instances=released)
        return released

    async def run_forever(self, stop: asyncio.Event, *, grace_s: float | None = None) -> None:
        """Claim and run due instances until `stop` is set, then stop gracefully (see
        `_shut_down`); `grace_s` overrides `WorkerSettings.shutdown_grace_s`."""
        log.info("worker_started", owner=self.owner)
        if self._settings.lease_ms < MIN_SAFE_LEASE_MS:
            log.warning(
                "short_lease",
                lease_ms=self._settings.lease_ms,
                detail="shorter than the slowest side effect (30 s HTTP timeout): another worker "
                "may repeat a call still in progress",
            )
        self._stop = stop
        try:
            await self.release_dead_local_leases()
        except Exception:  # an optimisation: never a reason not to start
            log.exception("lease_recovery_failed")
        stopped = asyncio.ensure_future(stop.wait())
        in_flight: asyncio.Future[int] | None = None
        try:
            while not stop.is_set():
                in_flight = asyncio.ensure_future(self.run_once())
                # A stop must not wait for the round: its sprints get the grace period only.
                await asyncio.wait({in_flight, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not in_flight.done():
                    break
                round_, in_flight = in_flight, None
                try:
                    processed = round_.result()
                except Exception:  # the database may be restarting: keep the worker alive
                    log.exception("claim_failed", owner=self.owner)
                    await asyncio.wait({stopped}, timeout=1)
                    continue
                if processed:
                    continue
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {waiter, stopped},
                    timeout=await self._idle_timeout(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
        finally:
            stopped.cancel()
        grace = self._settings.shutdown_grace_s if grace_s is None else grace_s
        await self._shut_down(in_flight, grace)

    async def _shut_down(self, in_flight: asyncio.Future[int] | None, grace_s: float) -> None:
        """Let the round under way finish within `grace_s`, cancel what still runs, then
        release every lease this worker holds.

        Instances claimed but not started yet are not started (`_guarded` checks `stopping`),
        and a sprint under way ends after its current step (`Runner.advance`'s `pause`): the
        step's call is answered and recorded, what is left stays due and is saved with the
        lease released, for another worker to carry on at once. So the grace only has to cover
        one step's call (at most an HttpRequest's timeout, 30 s).

        A sprint still running when the grace is over is cancelled, as a crash of that sprint
        would: nothing after its last committed write is kept and whoever takes the instance
        over re-runs from there. Pure steps are simply run again; a send whose answer was
        recorded is not made again (the provider records it keyed by the step execution); an
        HttpRequest was checkpointed before its call and re-runs with the same inputs. Only a
        call cut off between its request and its answer may be repeated, as after a timeout
        (8x8 with the same `clientMessageId`): one that was still hanging when the grace ended.
        """
        stopping_at = time.monotonic()
        if in_flight is not None:
            running = len(self._running)
            log.info("worker_stopping", owner=self.owner, sprints=running, grace_s=grace_s)
            _, late = await asyncio.wait({in_flight}, timeout=grace_s)
            if late:
                log.warning(
                    "sprints_cancelled",
                    owner=self.owner,
                    instances=sorted(self._running),
                    detail="still running when the shutdown grace period ended",
                )
                in_flight.cancel()
                await asyncio.wait({in_flight})  # cancelled sprints end before leases go
            if not in_flight.cancelled() and in_flight.exception() is not None:
                log.error("claim_failed", owner=self.owner, error=repr(in_flight.exception()))
        released = await self.release_own_leases()
        log.info(
            "worker_stopped",
            owner=self.owner,
            leases_released=released,
            stop_s=round(time.monotonic() - stopping_at, 3),
        )

    async def release_own_leases(self) -> int | None:
        """Release every lease this worker holds (one statement): its instances are free for
        another worker at once. None when the database could not be reached (the leases then
        expire as after a crash)."""
        try:
            async with self._db.transaction() as conn:
                return await lease_store.release_leases_of(conn, [self.owner])
        except Exception:
            log.exception("lease_release_failed", owner=self.owner)
            return None

    async def next_due_ms(self) -> int | None:
        """When the next unleased runnable instance is due (a virtual clock steps to it)."""
        async with self._db.read() as conn:
            return await lease_store.earliest_due(conn)

    async def _idle_timeout(self) -> float:
        """Sleep until the earliest timer is due (a timer fires on time, not at the next poll),
        but never longer than the poll interval: other processes add work too."""
        try:
            due = await self.next_due_ms()
        except Exception:  # the database may be restarting; poll as usual
            return self._settings.poll_interval_s
        if due is None:
            return self._settings.poll_interval_s
        wait_s = (due - self._clock.now_ms()) / 1000
        return min(max(wait_s, MIN_IDLE_S), self._settings.poll_interval_s)

    async def _guarded(self, state: InstanceState) -> None:
        instance_id = state.id
        async with self._limit:
            if self.stopping:
                return  # claimed but not started: `_shut_down` releases its lease
            self._running.add(instance_id)
            try:
                await self.process(state)
            except LeaseLost:
                log.info("lease_lost", instance=instance_id, owner=self.owner)
            except Exception:
                # The lease expires and another attempt follows; never lose the worker.
                log.exception("sprint_failed", instance=instance_id, owner=self.owner)
            finally:
                self._running.discard(instance_id)
                self._heartbeat = time.monotonic()

    async def process(self, state: InstanceState) -> None:
        """Run one sprint of a claimed and loaded instance, saving at its checkpoints."""
        state.worker = self.owner
        plan = await self._plans.get(state.account_id, state.definition_id, state.version)
        # The sprint continues the trace of the request that started the instance.
        with tracing.span("sprint", {"relayflow.instance_id": state.id}, parent=state.trace_parent):
            while True:
                # Stopping: the sprint ends after the step under way, with its call answered and
                # recorded, rather than being cut off in the middle of a send.
                await self._runner.advance(state, plan, self._checkpoint, lambda: self.stopping)
                # A parked event handed over keeps the lease to run on; a stopping worker leaves
                # it to the next one (`_shut_down` releases the lease).
                if not await self._save(state, release=True) or self.stopping:
                    return

    async def _checkpoint(self, state: InstanceState) -> None:
        await self._save(state, release=False)

    async def _save(self, state: InstanceState, *, release: bool) -> bool:
        now = self._clock.now_ms()
        delivered = await self.hot_path.save(
            state, self.owner, now, lease_until_ms=now + self._settings.lease_ms, release=release
        )
        count_ended(state)  # counted once committed: a save that fails is run again
        state.clear_changes()
        return delivered
