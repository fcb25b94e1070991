"""The audit event registry (`relayflow/audit.py`) is the one list of `instance_events` kinds:
the docs table matches it, a broad flow run writes nothing outside it, and the code writes
members, not string literals that could drift from it."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from relayflow.api.shapes import WorkflowEventOut
from relayflow.audit import MEANINGS, AuditEvent
from relayflow.config import Settings
from relayflow.store.tables import instance_events
from tests.support.flows import Flow

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "relayflow"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CUSTOMER = "+6591234567"
KINDS = {str(kind) for kind in AuditEvent}


def test_every_kind_has_a_meaning() -> None:
    assert set(MEANINGS) == set(AuditEvent)


def test_the_docs_table_lists_exactly_the_registry() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", ARCHITECTURE.read_text(), re.MULTILINE)
    documented = dict(rows)
    assert len(rows) == len(documented), "a kind is listed twice"
    assert documented == {str(kind): meaning for kind, meaning in MEANINGS.items()}


def test_the_api_description_names_every_kind() -> None:
    description = WorkflowEventOut.model_fields["type"].description or ""
    assert set(re.findall(r"[a-z]+(?:_[a-z]+)+|warning", description)) == KINDS


# Calls whose arguments are event kinds, and the keyword / dict key an insert names one with.
KIND_CALLS = {"record", "deliver_event", "set_status", "terminate"}


def _literal_kinds(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def check(node: ast.expr | None) -> None:
        if isinstance(node, ast.Constant) and node.value in KINDS:
            found.append((node.lineno, node.value))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in KIND_CALLS:
                for arg in node.args:
                    check(arg)
            for keyword in node.keywords:
                if name in KIND_CALLS or keyword.arg in {"type", "event", "kind"}:
                    check(keyword.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "type":
                    check(value)
    for node in ast.walk(tree):  # defaults of `event=` / `kind=` parameters
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
                check(default)
    return found


def test_no_literal_kind_is_written_in_src() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line, value in _literal_kinds(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == [], "use relayflow.audit.AuditEvent members"


def test_the_literal_check_finds_literals() -> None:
    tree = ast.parse(
        "state.record('step_started', 'a', 1)\n"
        "insert(t).values(type='waits_skipped')\n"
        "rows = [{'type': 'instance_started'}]\n"
        "def terminate(conn, event='instance_terminated'): ...\n"
        "state.record(AuditEvent.STEP_STARTED, 'a', 1)\n"
        "configure_logging('warning')\n"
    )
    assert [value for _, value in _literal_kinds(tree)] == [
        "step_started",
        "waits_skipped",
        "instance_started",
        "instance_terminated",
    ]


# --- a broad flow run writes only registered kinds ---------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The flaky local HTTP server below lives on loopback: allow-list it.
    return Settings(database_url=database_url, http_allowlist="127.0.0.0/8")


@pytest.fixture
async def flaky() -> AsyncIterator[str]:
    """An HTTP server that answers 503 once, then 200: a retried HttpRequest."""
    calls: list[int] = []

    async def answer(_: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            return web.json_response({"busy": True}, status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def sms(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text},
        **extra,
    }


BROAD = [
    sms("hello", "Hi", nextStepId="nap"),
    {"id": "nap", "stepType": "Wait", "inputs": {"duration": "00:00:01"}, "nextStepId": "ask"},
    {
        "id": "ask",
        "stepType": "WaitForReply",
        "inputs": {"from": CUSTOMER, "channel": "sms", "timeout": "00:05:00"},
        "outputs": {"answer": "{{step.reply.payload.body}}"},  # a warning after a timeout
        "nextStepId": "check",
    },
    {
        "id": "check",
        "stepType": "If",
        "inputs": {"condition": "{{true}}"},
        "do": [
            [
                {
                    "id": "fetch",
                    "stepType": "HttpRequest",
                    "inputs": {"url": "{{data.url}}", "method": "GET"},
                }
            ]
        ],
        "nextStepId": "route",
    },
    {
        "id": "route",
        "stepType": "Branch",
        "selectNextStep": {"bad": "{{data.fail == true}}", "bye": None},
    },
    sms("bad", "{{data.customer.name.first}}"),  # faults: data has no customer
    sms("bye", "Bye"),
]


async def test_a_broad_flow_run_writes_only_registered_kinds(flow: Flow, flaky: str) -> None:
    definition = await flow.define(BROAD, trigger="http_request")
    base = f"/definitions/{definition}/workflows"
    # One runs to its end through a reply timeout (warning), an If, an HTTP retry and a Branch.
    [done] = await flow.http_trigger({"url": flaky})
    await flow.advance(1000)
    await flow.advance(5 * 60_000)
    await flow.advance(60_000)
    # One is suspended, resumed, its timers skipped, answered, then faults and is retried.
    [failed] = await flow.http_trigger({"url": flaky, "fail": True})
    await flow.call("PATCH", f"{base}/{failed}", json={"status": "suspend"})
    await flow.call("PATCH", f"{base}/{failed}", json={"status": "resume"})
    await flow.run()
    await flow.context.instances.skip_waits(flow.tenant.account_id, definition, failed)
    await flow.run()
    await flow.sms(CUSTOMER, "fine")
    await flow.advance(60_000)
    await flow.call("POST", f"{base}/{failed}/retry")
    await flow.run()
    # One is terminated by a user.
    [stopped] = await flow.http_trigger({"url": flaky})
    await flow.call("PATCH", f"{base}/{stopped}", json={"status": "terminate"})

    assert (await flow.instance(definition, done))["status"] == "Complete"
    assert (await flow.instance(definition, failed))["status"] == "Terminated"
    async with flow.context.db.read() as conn:
        written = set((await conn.execute(select(instance_events.c.type).distinct())).scalars())
    assert written <= KINDS, written - KINDS
    # The run was broad: everything but DTMF (a voice call) was written.
    assert KINDS - written == {AuditEvent.DTMF_RECEIVED}
