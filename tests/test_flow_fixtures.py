"""Flows as data: `tests/data/flows/<name>.json` holds a definition, a script of inbound events
and clock moves, and the expected transcript (instance status, step logs, data, outbox, audit
events, errors). Every step type has a fixture named after it (a registry test checks).

After a deliberate engine change, regenerate the expectations and review them as a diff:
    RELAYFLOW_UPDATE_FIXTURES=1 .venv/bin/pytest tests/test_flow_fixtures.py -k sqlite
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from relayflow.api.context import AppContext
from relayflow.engine.steps import STEP_TYPES
from relayflow.model.steps import STEP_MODELS
from tests.support.flows import Flow
from tests.support.tenants import Tenant

FLOWS = Path(__file__).parent / "data" / "flows"
FILES = sorted(FLOWS.glob("*.json"))
UPDATE = os.environ.get("RELAYFLOW_UPDATE_FIXTURES") == "1"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORKFLOW_ID = re.compile(r"\b[0-9a-f]{24}\b")


def _stable(value: Any) -> Any:
    """Random ids become placeholders so transcripts compare across runs."""
    if isinstance(value, str):
        return _WORKFLOW_ID.sub("<workflowId>", _UUID.sub("<uuid>", value))
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def test_every_step_type_has_a_fixture() -> None:
    assert set(STEP_TYPES) == set(STEP_MODELS)
    missing = {name for name in STEP_TYPES if not (FLOWS / f"{name}.json").exists()}
    assert not missing, f"add tests/data/flows/<type>.json for {sorted(missing)}"


async def _play(flow: Flow, fixture: dict[str, Any]) -> str:
    """Run the fixture's script; the workflow id of the first instance started."""
    started: list[str] = []
    for action in fixture["script"]:
        [(kind, argument)] = action.items()
        if kind == "http":
            started += await flow.http_trigger(argument)
        elif kind == "sms":
            started += (await flow.sms(argument["from"], argument["text"]))["started"]
        elif kind == "chat":
            started += (await flow.chat(**argument))["started"]
        elif kind == "dtmf":
            [call] = await flow.outbox("voice")
            await flow.dtmf(argument, clientRequestId=call["request"]["clientRequestId"])
        elif kind == "advance":
            await flow.advance(int(argument))
        else:
            raise AssertionError(f"unknown script action {kind!r}")
    return started[0]


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
async def test_flow_fixture(
    path: Path, client: httpx.AsyncClient, tenant: Tenant, context: AppContext
) -> None:
    fixture = json.loads(path.read_text())
    flow = Flow(client, tenant, context)
    definition = await flow.define(fixture["steps"], trigger=fixture.get("trigger", "http_request"))
    workflow = await _play(flow, fixture)
    instance = await flow.instance(definition, workflow)
    events = await flow.call("GET", f"/definitions/{definition}/workflows/{workflow}/events")
    actual = _stable(
        {
            "status": instance["status"],
            "logs": [[log["stepName"], log["status"]] for log in instance["logs"]],
            "data": {
                k: v for k, v in instance["data"].items() if k not in ("accountId", "triggeredAt")
            },
            "outbox": [
                {
                    "channel": m["channel"],
                    "subAccountId": m["subAccountId"],
                    "request": m["request"],
                }
                for m in await flow.outbox()
            ],
            "events": [[e["type"], e["step"]] for e in events],
            "errors": [[e["step"], e["message"]] for e in await flow.errors(definition, workflow)],
        }
    )
    if UPDATE:
        fixture["expect"] = actual
        path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n")
        return
    assert actual == fixture["expect"]
