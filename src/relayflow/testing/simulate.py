"""`relayflow simulate FLOW.json`: play the customer against one flow in the terminal.

The flow runs on a `RecordedSession` (the real engine, a private database, virtual time, mocks),
so what the terminal shows is what production would do, and `/save FILE` writes the conversation
as a `*.flowtest.json` that `relayflow test` replays to the same result.

A plain line is an SMS from the current sender; commands start with `/` (see `HELP`). After each
action the new messages, steps, data, errors, instance statuses and HTTP calls are printed, in
plain text (no colours), so a transcript is the same on every run.

Exit codes: 0 done; 1 an action of a `--script` failed (the script stops there); 2 an unreadable
or invalid flow, mocks or script file, or an invalid `--start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayflow.clock import iso_from_ms
from relayflow.services.sandbox import is_capture_call
from relayflow.store.instance_reads import LogRow
from relayflow.testing.checks import Checker
from relayflow.testing.environment import FlowTestError, parse_instant, parse_span
from relayflow.testing.mockspec import check_mocks
from relayflow.testing.session import RecordedSession
from relayflow.testing.testfile import FlowTestFileError, read_json_object
from relayflow.testing.update import dump

OK, FAILED, INVALID = 0, 1, 2
DEFAULT_SENDER = "+6591234567"
DEFAULT_TO = "+6580000000"
MAX_ADVANCE_DAYS = 3650
MAX_VALUE_SHOWN = 80  # characters of a data value in a change line

Echo = Callable[[str], None]
ReadLine = Callable[[str], str]

HELP = """\
Type a message to send it as an SMS from the current sender, or a command:
  /from NUMBER           send as NUMBER from now on (SMS and chat)
  /sms TEXT              an SMS (for a text that starts with /)
  /chat CHANNEL TEXT     a chat-apps message, e.g. /chat whatsapp Yes
  /button CHANNEL PAYLOAD [TITLE]
                         a quick-reply button press, e.g. /button whatsapp yes Yes
  /dtmf DIGITS           keys pressed on the latest say&capture call, e.g. /dtmf 2
  /advance SPAN          move virtual time forward: 1d, 2h, 30m, 45s, 1d2h, 1.00:00:00 or
                         a number of whole days; every timer due on the way fires
  /http JSON             start http_request flows with this body, e.g. /http {"phone": "+65..."}
  /data                  every instance's data
  /save FILE             write the conversation as a flow test (overwrites FILE)
  /help                  this list
  /quit                  leave (Ctrl-D too)"""

_DIGITS = re.compile(r"^[0-9*#]+$")
_SHORTHAND = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$", re.IGNORECASE
)
_STARTS = {  # the trigger an event of each command starts
    "sms": "inbound_sms",
    "chat": "inbound_chat_apps",
    "button": "inbound_chat_apps",
    "http": "http_request",
}
_TRIGGER_HINTS = {
    "inbound_sms": "type a message",
    "inbound_chat_apps": "use /chat CHANNEL TEXT",
    "http_request": "use /http JSON",
}


class CommandError(ValueError):
    """A line that is not a valid command (its message says how to write it)."""


@dataclass(frozen=True)
class Command:
    """One parsed input line."""

    kind: str  # sms, from, chat, button, dtmf, advance, http, data, save, help, quit
    text: str | None = None
    channel: str | None = None
    payload: str | None = None
    value: str | None = None  # /from's number, /dtmf's digits, /advance's span, /save's file
    body: dict[str, Any] | None = None


def parse_command(line: str) -> Command:
    """A line as typed: plain text is an SMS; `/name args` a command. Raises `CommandError`."""
    text = line.strip()
    if not text.startswith("/"):
        return Command("sms", text=text)
    head, _, rest = text.partition(" ")
    name, rest = head[1:].lower(), rest.strip()
    if name == "sms":
        return Command("sms", text=_required(rest, "/sms TEXT"))
    if name == "from":
        if len(rest.split()) > 1:
            raise CommandError("usage: /from NUMBER (one number, e.g. /from +6591234567)")
        return Command("from", value=rest or None)
    if name == "chat":
        channel, _, message = rest.partition(" ")
        if not channel or not message.strip():
            raise CommandError("usage: /chat CHANNEL TEXT, e.g. /chat whatsapp Yes")
        return Command("chat", channel=channel, text=message.strip())
    if name == "button":
        parts = rest.split(None, 2)
        if len(parts) < 2:
            raise CommandError("usage: /button CHANNEL PAYLOAD [TITLE], e.g. /button whatsapp yes")
        title = parts[2] if len(parts) > 2 else None
        return Command("button", channel=parts[0], payload=parts[1], text=title)
    if name == "dtmf":
        if not _DIGITS.match(rest):
            raise CommandError("usage: /dtmf DIGITS (0-9, * and #), e.g. /dtmf 2")
        return Command("dtmf", value=rest)
    if name == "advance":
        return Command(
            "advance", value=timespan(_required(rest, "/advance SPAN, e.g. /advance 1d"))
        )
    if name == "http":
        return Command("http", body=_json_object(rest))
    if name == "save":
        return Command("save", value=_required(rest, "/save FILE"))
    if name in ("data", "help", "quit", "exit"):
        if rest:
            raise CommandError(f"/{name} takes no arguments")
        return Command("quit" if name == "exit" else name)
    raise CommandError(f"unknown command /{name}; type /help for the list")


def _required(rest: str, usage: str) -> str:
    if not rest:
        raise CommandError(f"usage: {usage}")
    return rest


def _json_object(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        raise CommandError(f"/http takes a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise CommandError('/http takes a JSON object, e.g. /http {"phone": "+6591234567"}')
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def timespan(text: str) -> str:
    """A span as typed (`1d`, `2h`, `30m`, `45s`, combined like `1d2h`, `[d.]hh:mm:ss` or whole
    days) as the flow-test format's `[d.]hh:mm:ss`. Raises `CommandError`."""
    match = _SHORTHAND.match(text)
    if match is not None and any(match.group(unit) for unit in "dhms"):
        days, hours, minutes, seconds = (int(match.group(unit) or 0) for unit in "dhms")
        ms = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    else:
        try:
            ms = parse_span(text)
        except FlowTestError:
            raise CommandError(
                f"'{text}' is not a span; use 1d, 2h, 30m, 45s, 1d2h, [d.]hh:mm:ss or whole days"
            ) from None
    if ms > MAX_ADVANCE_DAYS * 86_400_000:
        raise CommandError(f"advance at most {MAX_ADVANCE_DAYS} days at a time")
    whole, fraction = divmod(ms, 1000)
    days, rest = divmod(whole, 86_400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if fraction:
        clock += f".{fraction:03d}"
    return f"{days}.{clock}" if days else clock


@dataclass
class _Seen:
    """What was last shown of one instance."""

    status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    errors: int = 0
    steps: dict[str, str] = field(default_factory=dict)  # pointer id -> its line


class Simulator:
    """Runs commands on a session and describes what each one changed."""

    def __init__(self, session: RecordedSession) -> None:
        self.session = session
        self.sender = DEFAULT_SENDER
        self.trigger = ""
        self.status = ""
        self.flow_name = ""
        self.sub_account_id: str | None = None
        self._outbox = 0
        self._http = 0
        self._unmatched = 0
        self._instances: dict[str, _Seen] = {}
        self._pending: list[str] = []  # changes made by an action that then failed
        self._outputs: set[str] = set()  # data keys the steps write (the rest is the trigger's)

    async def prepare(self) -> None:
        """Read the flow as the engine stored it: its name, trigger, status and subaccount."""
        env = self.session.env
        [row] = await env.runtime.definitions.list_latest(env.account_id, 1, 0)
        self.trigger, self.status, self.flow_name = row.trigger, row.status, row.name
        # A flow with a subAccountId only hears events of that subaccount: send as it.
        self.sub_account_id = row.sub_account_id
        self.session.name = f"{row.name}: simulated conversation"
        self._outputs = {str(key) for step in row.steps for key in (step.get("outputs") or {})}

    def banner(self) -> list[str]:
        start = iso_from_ms(self.session.env.clock.now_ms())
        lines = [
            f'Simulating "{self.flow_name}" ({self.trigger} trigger) from {start}, virtual time.',
            f"You are {self.sender}; your SMS go to {DEFAULT_TO}.",
        ]
        if self.sub_account_id:
            lines.append(f"Events carry subAccountId {self.sub_account_id}, as the flow's.")
        if self.status != "enabled":
            lines.append(
                f'note: the flow is {self.status}, so no event starts it; set "status": '
                '"enabled" in the file to try it'
            )
        return lines

    async def execute(self, command: Command) -> list[str]:
        """Run one command; the lines that describe it. Raises `FlowTestError` or `OSError`."""
        session, sub = self.session, self.sub_account_id
        if command.kind == "help":
            return HELP.splitlines()
        if command.kind == "from":
            if command.value:
                self.sender = command.value
            return [f"you are {self.sender}"]
        if command.kind == "data":
            return self.data_lines()
        if command.kind == "save":
            return self.save(Path(command.value or ""))
        try:
            if command.kind == "sms":
                await session.inbound_sms(self.sender, command.text or "", sub_account_id=sub)
            elif command.kind in ("chat", "button"):
                await session.inbound_chat(
                    command.channel or "",
                    self.sender,
                    text=command.text,
                    payload=command.payload,
                    sub_account_id=sub,
                )
            elif command.kind == "dtmf":
                await session.dtmf(command.value or "")
            elif command.kind == "http":
                await session.http_trigger(command.body or {}, sub_account_id=sub)
            elif command.kind == "advance":
                await session.advance(command.value or "00:00:00")
            else:  # pragma: no cover - parse_command makes no other kind
                raise FlowTestError(f"cannot run /{command.kind}")
        except FlowTestError:
            self._pending = await self.changes()
            raise
        lines = await self.changes()
        if command.kind == "advance":
            now = iso_from_ms(session.env.clock.now_ms())
            return [f"time is now {now} (+{command.value})", *lines]
        return lines or [self._nothing(command.kind)]

    def take_pending(self) -> list[str]:
        lines, self._pending = self._pending, []
        return lines

    def _nothing(self, kind: str) -> str:
        wanted = _STARTS.get(kind)
        if wanted is None:
            return "(nothing happened)"
        if self.trigger != wanted:
            hint = _TRIGGER_HINTS.get(self.trigger, "")
            return (
                f"(nothing happened: no instance waits for this, and the flow starts on "
                f"{self.trigger}{': ' + hint if hint else ''})"
            )
        if self.status != "enabled":
            return f"(nothing happened: the flow is {self.status})"
        return "(nothing happened)"

    async def changes(self) -> list[str]:
        """What is new since the last call: messages, instances, then HTTP calls."""
        env = self.session.env
        lines = [message_line(message) for message in env.outbox[self._outbox :]]
        self._outbox = len(env.outbox)
        for instance in env.instances:
            lines += await self._instance_changes(instance)
        unmatched = env.unmatched_http_calls[self._unmatched :]
        self._unmatched += len(unmatched)
        for call in env.http_calls[self._http :]:
            line = f"→ {call['method']} {call['url']}"
            if f"{call['method']} {call['url']}" in unmatched:
                unmatched.remove(f"{call['method']} {call['url']}")
                line += " (no mock matches it, so the call fails; answer it with --mocks FILE)"
            lines.append(line)
        self._http = len(env.http_calls)
        return lines

    async def _instance_changes(self, instance: dict[str, Any]) -> list[str]:
        env = self.session.env
        workflow_id: str = instance["workflowId"]
        name = f"instance {workflow_id[:8]}…"
        lines: list[str] = []
        seen = self._instances.get(workflow_id)
        if seen is None:
            seen = self._instances[workflow_id] = _Seen()
            lines.append(f"{name} started")
        view = await env.runtime.instances.get(
            env.account_id, env.definition_id, workflow_id, include_logs=True
        )
        for log in view.logs or []:
            shown = f"{name}: step {log.step_id}: {log.status}{_retry_note(log)}"
            if seen.steps.get(log.id) != shown:
                seen.steps[log.id] = shown
                lines.append(shown)
        data: dict[str, Any] = instance["data"]
        for key, value in data.items():  # what steps wrote; /data shows the trigger's data too
            if key in self._outputs and (key not in seen.data or seen.data[key] != value):
                lines.append(f"{name}: data.{key} = {_short(value)}")
        seen.data = dict(data)
        errors: list[dict[str, Any]] = instance["errors"]
        for error in errors[seen.errors :]:
            lines.append(f"{name}: error in step {error['step']}: {error['message']}")
        seen.errors = len(errors)
        if instance["status"] != seen.status:
            seen.status = instance["status"]
            lines.append(f"{name}: {instance['status']}")
        return lines

    def data_lines(self) -> list[str]:
        instances = self.session.env.instances
        if not instances:
            return ["no instances yet"]
        lines: list[str] = []
        for instance in instances:
            lines.append(f"instance {instance['workflowId']} ({instance['status']}):")
            lines += json.dumps(instance["data"], indent=2, ensure_ascii=False).splitlines()
        return lines

    def save(self, file: Path) -> list[str]:
        existed = file.exists()
        file.write_text(dump(self.session.flowtest()), encoding="utf-8")
        actions = len(self.session.script)
        plural = "" if actions == 1 else "s"
        lines = [
            f"saved {actions} action{plural} to {file}"
            + (" (overwrote the file that was there)" if existed else "")
            + f"; replay it with: relayflow test {file}"
        ]
        unmatched = len(self.session.env.unmatched_http_calls)
        if unmatched:
            lines.append(
                f"note: {unmatched} HTTP call(s) matched no mock, so the test fails until its "
                '"mocks" answer them'
            )
        return lines


def _retry_note(log: LogRow) -> str:
    """A step that met transient failures: why, and when it tries again (virtual time)."""
    retry = log.retry or {}
    if log.status == "Complete" or not retry.get("lastError"):
        return f" (attempt {log.attempts})" if log.attempts > 1 else ""
    at = retry.get("nextAttemptAt")
    when = f"; retry at {iso_from_ms(at)}" if isinstance(at, int) else ""
    return f" (attempt {log.attempts} failed: {retry['lastError']}{when})"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_SHOWN else text[: MAX_VALUE_SHOWN - 1] + "…"


def message_line(message: dict[str, Any]) -> str:
    """One sent message as the customer receives it."""
    channel, to, text = message["channel"], message["to"], message["text"]
    if channel == "voice":
        captures = is_capture_call(message.get("request") or {})
        spoken = json.dumps(text, ensure_ascii=False) if text is not None else "(no prompt)"
        return f"← call to {to}: {spoken}" + (" (press keys with /dtmf)" if captures else "")
    if text is None:
        kind = (message.get("request") or {}).get("type")
        text = f"({kind or 'no text'} message)"
    label = "chat" if channel == "chatapps" else channel
    return f"← {label} to {to}: {text}"


# -- the command ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    definition: dict[str, Any]
    mocks: dict[str, Any] | None
    script: list[tuple[int, str, Command]] | None  # (line number, line, command)


def _load(
    flow: Path, script: Path | None, mocks: Path | None, start: str | None
) -> tuple[_Inputs | None, list[str]]:
    """Read and check every input file; (inputs, []) or (None, every problem found)."""
    problems: list[str] = []
    definition: dict[str, Any] = {}
    try:
        definition = read_json_object(flow, str(flow))
    except FlowTestFileError as error:
        problems.append(str(error))
    mock_object: dict[str, Any] | None = None
    if mocks is not None:
        try:
            mock_object = read_json_object(mocks, str(mocks))
            checker = Checker()
            check_mocks(mock_object, "", checker)
            if checker.problems:
                problems.append(str(FlowTestFileError(str(mocks), checker.problems)))
        except FlowTestFileError as error:
            problems.append(str(error))
    commands: list[tuple[int, str, Command]] | None = None
    if script is not None:
        commands, script_problems = _read_script(script)
        problems += script_problems
    if start is not None:
        try:
            parse_instant(start)
        except FlowTestError:
            problems.append(
                f"--start: '{start}' is not an ISO-8601 date and time, e.g. 2026-03-02T09:00:00Z"
            )
    if problems:
        return None, problems
    return _Inputs(definition, mock_object, commands), []


def _read_script(file: Path) -> tuple[list[tuple[int, str, Command]], list[str]]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        return [], [f"{file}: cannot read: {error.strerror or error}"]
    except UnicodeDecodeError as error:
        return [], [f"{file}: not UTF-8 text: {error}"]
    commands: list[tuple[int, str, Command]] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            commands.append((number, line, parse_command(line)))
        except CommandError as error:
            problems.append(f"{file}:{number}: {error}")
    return commands, problems


def run_simulation(
    flow: Path,
    *,
    script: Path | None,
    start: str | None,
    mocks: Path | None,
    out: Echo,
    err: Echo,
    read_line: ReadLine = input,
) -> int:
    """Everything `relayflow simulate` does; returns the exit code."""
    inputs, problems = _load(flow, script, mocks, start)
    if inputs is None:
        for problem in problems:
            err(problem)
        return INVALID
    with asyncio.Runner() as runner:
        session = RecordedSession(inputs.definition, mocks=inputs.mocks, start=start)
        try:
            runner.run(session.__aenter__())
        except FlowTestError as error:
            err(f"{flow}: invalid flow: {error}")
            return INVALID
        try:
            simulator = Simulator(session)
            runner.run(simulator.prepare())
            for line in simulator.banner():
                out(line)
            if inputs.script is not None:
                return _run_script(runner, simulator, inputs.script, out)
            out("Type a message as the customer, /help for commands, /quit to leave.")
            return _interactive(runner, simulator, out, read_line)
        finally:
            runner.run(session.__aexit__(None, None, None))


def _run_script(
    runner: asyncio.Runner,
    simulator: Simulator,
    commands: Iterable[tuple[int, str, Command]],
    out: Echo,
) -> int:
    for number, line, command in commands:
        out(f"> {line}")
        if command.kind == "quit":
            return OK
        if not _execute(runner, simulator, command, out):
            out(f"script stopped at line {number}")
            return FAILED
    return OK


def _interactive(
    runner: asyncio.Runner, simulator: Simulator, out: Echo, read_line: ReadLine
) -> int:
    terminal = sys.stdin.isatty()
    if terminal:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
    while True:
        try:
            line = read_line("> " if terminal else "")
        except (EOFError, KeyboardInterrupt):
            if terminal:
                out("")  # the shell's prompt on a line of its own
            return OK
        if not line.strip():
            continue
        if not terminal:  # piped input: a transcript like --script's
            out(f"> {line.strip()}")
        try:
            command = parse_command(line)
        except CommandError as error:
            out(f"error: {error}")
            continue
        if command.kind == "quit":
            return OK
        _execute(runner, simulator, command, out)


def _execute(runner: asyncio.Runner, simulator: Simulator, command: Command, out: Echo) -> bool:
    """Run one command and print what it did; False when it failed (after saying why)."""
    try:
        lines = runner.run(simulator.execute(command))
    except FlowTestError as error:
        _error(str(error), out)
        lines = simulator.take_pending()
        for line in lines:
            out(line)
        return False
    except OSError as error:
        _error(f"cannot write {command.value}: {error.strerror or error}", out)
        return False
    for line in lines:
        out(line)
    return True


def _error(message: str, out: Echo) -> None:
    first, *rest = message.splitlines() or [""]
    out(f"error: {first}")
    for line in rest:
        out(f"  {line.strip()}")
