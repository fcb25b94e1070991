"""`FlowEnvironment`: one flow, the real engine, a private SQLite database, a virtual clock.

    async with FlowEnvironment(definition, mocks={"http": [...]}) as env:
        await env.inbound_sms("+6591234567", "hi")
        await env.advance("1.00:00:00")
        env.outbox, env.instances, env.http_calls

Everything production runs is used as is: the services, the router (replies first, then
triggers), the worker and runner, the steps, the expression jail, the sandbox provider's
outbox. What differs is injected: the clock is a `ManualClock`, ids come from a seeded
generator (`relayflow.ids.seeded_ids`), the provider's answers and HTTP calls are scripted
(`testing/mocks.py`), and the database is a temporary file deleted on exit. After every action
the engine runs until nothing is runnable at the current virtual time; `advance` moves the clock
from one due time to the next, so timers fire in order and nothing waits for real.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from relayflow.channels.base import ChannelSet
from relayflow.channels.sandbox import SandboxProvider
from relayflow.clock import ManualClock, iso_from_ms, ms_from_iso
from relayflow.config import Settings
from relayflow.errors import ApiError
from relayflow.ids import ids_from
from relayflow.model.timespan import parse_timespan
from relayflow.runtime import Runtime
from relayflow.services.accounts import AccountError
from relayflow.services.sandbox import is_capture_call, sent_text
from relayflow.store.database import Database
from relayflow.store.messages import MessageRow
from relayflow.testing.mocks import (
    HttpMock,
    MockHttp,
    ScriptedProvider,
    ScriptedProviders,
)

DEFAULT_START = "2026-01-05T09:00:00Z"  # a Monday, 09:00 UTC
DEFAULT_ACCOUNT = "acme"
MAX_FIRINGS = 100_000  # timers fired by one `advance`: a runaway flow fails instead of hanging


class FlowTestError(Exception):
    """The flow or an action cannot run as written (an invalid definition, a refused event)."""


def parse_instant(value: str | int | None) -> int:
    """Epoch ms of an ISO-8601 instant (no offset = UTC) or of epoch ms given as a number."""
    if value is None:
        value = DEFAULT_START
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise FlowTestError("start must be an ISO-8601 date and time, e.g. 2026-03-02T09:00:00Z")
    try:
        return ms_from_iso(value)
    except ValueError:
        raise FlowTestError(f"start: '{value[:40]}' is not an ISO-8601 date and time") from None


def parse_span(value: str | int | float) -> int:
    """A `[d.]hh:mm:ss` timespan, or a number of whole days, in ms (never negative)."""
    if isinstance(value, bool):
        raise FlowTestError("advance 'by' must be a timespan like 1.00:00:00 or a number of days")
    if isinstance(value, int | float):
        if value < 0 or value != int(value):
            raise FlowTestError("advance 'by' in days must be a whole number >= 0")
        return int(value) * 86_400_000
    try:
        span = parse_timespan(str(value))
    except ValueError as error:
        raise FlowTestError(f"advance 'by': {error}") from None
    ms = int(span.total_seconds() * 1000)
    if ms < 0:
        raise FlowTestError("advance 'by' must not be negative")
    return ms


@dataclass
class Mocks:
    """`mocks` of a flow test: HTTP mocks and the provider's answers per channel."""

    http: list[HttpMock] = field(default_factory=list)
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Mocks:
        """The file format's `mocks` object (checked by the test-file validator first)."""
        raw = raw or {}
        http = [
            HttpMock(
                respond=list(entry["respond"]),
                method=entry.get("method"),
                url=entry.get("url"),
                url_prefix=entry.get("urlPrefix"),
            )
            for entry in raw.get("http") or []
        ]
        answers = {
            channel: list(raw.get(channel) or []) for channel in ("sms", "chatapps", "voice")
        }
        return cls(http, answers)


class FlowEnvironment:
    def __init__(
        self,
        definition: dict[str, Any],
        *,
        mocks: Mocks | dict[str, Any] | None = None,
        account: str = DEFAULT_ACCOUNT,
        start: str | int | None = None,
        seed: int = 0,
    ) -> None:
        self._definition = definition
        self._mocks = mocks if isinstance(mocks, Mocks) else Mocks.from_json(mocks)
        self.account_id = account
        self.clock = ManualClock(parse_instant(start))
        self._workdir: Path | None = None
        self._runtime: Runtime | None = None
        self._ids = random.Random(seed)  # noqa: S311 - reproducible ids, not secrets
        self.http = MockHttp(self._mocks.http)
        self.definition_id = ""
        self._started: list[str] = []
        self.outbox: list[dict[str, Any]] = []
        self.instances: list[dict[str, Any]] = []
        self._messages: list[MessageRow] = []

    @property
    def http_calls(self) -> list[dict[str, Any]]:
        return list(self.http.calls)

    @property
    def unmatched_http_calls(self) -> list[str]:
        return list(self.http.unmatched)

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("use FlowEnvironment with `async with`")
        return self._runtime

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FlowEnvironment:
        with ids_from(self._ids):
            return await self._open()

    async def _open(self) -> FlowEnvironment:
        self._workdir = Path(tempfile.mkdtemp(prefix="relayflow-flowtest-"))
        url = f"sqlite:///{self._workdir / 'flow.db'}"
        db = Database(url)
        try:
            await db.migrate()
            provider = ScriptedProvider(SandboxProvider(db), self._mocks.answers)
            channels = ChannelSet(providers=ScriptedProviders(provider), http=self.http)
            self._runtime = Runtime(Settings(database_url=url), db, self.clock, channels=channels)
            await self._runtime.accounts.create(self.account_id)
            row = await self._runtime.definitions.create(self.account_id, self._definition)
        except ApiError as error:
            await self.__aexit__(None, None, None)
            raise FlowTestError(_api_message(error)) from None
        except AccountError as error:  # an account id the API would refuse
            await self.__aexit__(None, None, None)
            raise FlowTestError(f"account: {error}") from None
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.definition_id = row.id
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._runtime is not None:
                await self._runtime.close()
                self._runtime = None
        finally:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    # -- actions -------------------------------------------------------------------------------

    async def inbound_sms(
        self,
        sender: str,
        text: str,
        *,
        to: str = "+6580000000",
        sub_account_id: str | None = None,
    ) -> list[str]:
        """A customer's SMS, routed as 8x8's inbound webhook would be; the started instances."""
        async with self._action():
            _, result = await self.runtime.sandbox.inbound_sms(
                self.account_id, sender, to, text, sub_account_id
            )
        return await self._after(result.started)

    async def inbound_chat(
        self,
        channel: str,
        sender: str,
        *,
        text: str | None = None,
        payload: str | None = None,
        sub_account_id: str | None = None,
    ) -> list[str]:
        if text is None and payload is None:
            raise FlowTestError("inbound_chat needs 'text' and/or 'payload'")
        async with self._action():
            _, result = await self.runtime.sandbox.inbound_chat(
                self.account_id, channel, sender, text, payload, sub_account_id
            )
        return await self._after(result.started)

    async def http_trigger(
        self, body: dict[str, Any] | None = None, *, sub_account_id: str | None = None
    ) -> list[str]:
        async with self._action():
            started = await self.runtime.instances.trigger_http(
                self.account_id, body or {}, sub_account_id
            )
        return await self._after(started)

    async def dtmf(self, digits: str, *, to: str | None = None) -> list[str]:
        """Keys pressed on the latest say&capture call (to `to`, when given)."""
        call = self._latest_capture(to)
        if call is None:
            where = f" to {to}" if to else ""
            raise FlowTestError(f"dtmf: no say&capture call{where} has been made")
        async with self._action():
            _, result = await self.runtime.sandbox.dtmf(
                self.account_id, call.client_message_id, None, digits
            )
        return await self._after(result.started)

    async def advance(self, by: str | int | float) -> None:
        """Move virtual time forward, firing every timer due in the span, in order."""
        with ids_from(self._ids):
            await self._advance(parse_span(by))

    async def _advance(self, span_ms: int) -> None:
        target = self.clock.now_ms() + span_ms
        worker = self.runtime.worker
        for _ in range(MAX_FIRINGS):
            due = await worker.next_due_ms()
            if due is None or due > target:
                break
            if due > self.clock.now_ms():
                self.clock.advance(due - self.clock.now_ms())
            await worker.run_until_idle()
        else:
            raise FlowTestError(f"more than {MAX_FIRINGS} timers fired in one advance (a loop?)")
        if target > self.clock.now_ms():
            self.clock.advance(target - self.clock.now_ms())
        await worker.run_until_idle()
        await self._snapshot()

    # -- what happened -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _action(self) -> Any:
        """Runs an action with this environment's ids, its API errors as `FlowTestError`."""
        try:
            with ids_from(self._ids):
                yield
        except ApiError as error:
            raise FlowTestError(_api_message(error)) from None

    async def _after(self, started: list[str]) -> list[str]:
        self._started += [w for w in started if w not in self._started]
        with ids_from(self._ids):
            await self.runtime.worker.run_until_idle()
            await self._snapshot()
        return started

    def _latest_capture(self, to: str | None) -> MessageRow | None:
        for message in reversed(self._messages):
            if message.channel != "voice" or (to and message.recipient != to):
                continue
            if is_capture_call(message.request or {}):
                return message
        return None

    async def _snapshot(self) -> None:
        runtime = self.runtime
        rows = await runtime.sandbox.outbox(
            self.account_id, limit=100_000, offset=0, channel=None, workflow_id=None
        )
        self._messages = list(reversed(rows))
        self.outbox = [outbox_entry(row) for row in self._messages]
        instances = []
        for workflow_id in self._started:
            view = await runtime.instances.get(
                self.account_id, self.definition_id, workflow_id, include_logs=False
            )
            errors = await runtime.instances.errors(
                self.account_id, self.definition_id, workflow_id
            )
            row = view.instance
            instances.append(
                {
                    "workflowId": row.id,
                    "status": row.status,
                    "data": row.data,
                    "version": row.version,
                    "startedAt": iso_from_ms(row.started_at_ms),
                    "errors": [{"step": e.step_id, "message": e.message} for e in errors],
                }
            )
        self.instances = instances


def outbox_entry(row: MessageRow) -> dict[str, Any]:
    """A sent message as flow tests see it: channel, to, text, subAccountId, request."""
    request = row.request or {}
    return {
        "channel": row.channel,
        "to": row.recipient,
        "text": sent_text(row.channel, request),
        "subAccountId": row.sub_account_id,
        "request": request,
    }


def _api_message(error: ApiError) -> str:
    lines = [f"{error.message} (code {int(error.code)})"]
    lines += [f"  {problem.path}: {problem.message}" for problem in error.problems]
    return "\n".join(lines)
