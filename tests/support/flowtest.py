"""Builders for flow-test documents (`*.flowtest.json`) and ways to run them in tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from relayflow.cli import app
from relayflow.testing.runner import FlowTestResult, run_flow_test
from relayflow.testing.testfile import load_test_file

PHONE = "+6591234567"


def definition(
    steps: list[dict[str, Any]], trigger: str = "http_request", **top: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trigger": trigger,
        "status": "enabled",
        "definition": {"name": "flow under test", "steps": steps},
    }
    body.update(top)
    return body


def sms(step_id: str, text: str, next_step: str | None = None, **inputs: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {
            "subAccountId": "acme_sms",
            "destination": "{{data.phone}}",
            "text": text,
            **inputs,
        },
    }
    if next_step:
        step["nextStepId"] = next_step
    return step


def wait(step_id: str, duration: str, next_step: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id, "stepType": "Wait", "inputs": {"duration": duration}}
    if next_step:
        step["nextStepId"] = next_step
    return step


def http(
    step_id: str, url: str, method: str = "GET", next_step: str | None = None, **inputs: Any
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": step_id,
        "stepType": "HttpRequest",
        "inputs": {"url": url, "method": method, **inputs},
        "outputs": {
            f"{step_id}_code": "{{step.responseCode}}",
            f"{step_id}_body": "{{step.responseBody}}",
        },
    }
    if next_step:
        step["nextStepId"] = next_step
    return step


def write_test(directory: Path, document: dict[str, Any], name: str = "t.flowtest.json") -> Path:
    file = directory / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return file


def run_document(
    directory: Path, document: dict[str, Any], *, check_final: bool = True
) -> FlowTestResult:
    """Write `document` as a test file and run it as `relayflow test` would."""
    test = load_test_file(write_test(directory, document))
    return asyncio.run(run_flow_test(test, check_final=check_final))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["test", *args])
