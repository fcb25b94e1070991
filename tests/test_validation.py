"""Definition validation, driven by `data/validation_cases.json`.

Each case pins the exact list of (code, JSON path) problems, in order, so a change in what the
validator reports shows up as a reviewable diff of that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relayflow.config import Limits
from relayflow.errors import ErrorCode
from relayflow.model.validation import validate_definition_input

CASES = json.loads((Path(__file__).parent / "data" / "validation_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["description"] for case in CASES])
def test_validation_case(case: dict[str, Any]) -> None:
    result = validate_definition_input(case["body"], Limits())
    reported = [{"code": int(p.code), "path": p.path} for p in result.problems]
    assert reported == case["errors"]
    assert result.valid is (not case["errors"])
    if "canonical" in case:
        assert result.canonical == case["canonical"]


def test_every_validation_code_has_a_case() -> None:
    covered = {error["code"] for case in CASES for error in case["errors"]}
    validation_codes = {int(code) for code in ErrorCode if 5000 <= code < 6000}
    # TOO_MANY_STEPS has its own test below (it needs a small limit).
    assert validation_codes - covered == {ErrorCode.TOO_MANY_STEPS}


def test_messages_name_the_step_and_the_problem() -> None:
    body = {
        "trigger": "inbound_sms",
        "definition": {
            "name": "n",
            "steps": [{"id": "greet", "stepType": "SMS", "inputs": {"text": "hi"}}],
        },
    }
    messages = [p.message for p in validate_definition_input(body, Limits()).problems]
    assert messages == [
        "Step 'greet': required input 'subAccountId' is missing.",
        "Step 'greet': required input 'destination' is missing.",
    ]


def test_name_required_message_is_8x8s() -> None:
    body = {"trigger": "inbound_sms", "definition": {"steps": []}}
    first = validate_definition_input(body, Limits()).problems[0]
    assert (first.code, first.message) == (ErrorCode.NAME_REQUIRED, "Workflow name is required.")


def test_step_count_limit() -> None:
    steps = [{"id": f"w{i}", "stepType": "Wait", "inputs": {"duration": "1"}} for i in range(6)]
    body = {"trigger": "http_request", "definition": {"name": "n", "steps": steps}}
    problems = validate_definition_input(body, Limits(max_steps_per_definition=5)).problems
    assert [(p.code, p.path) for p in problems] == [(ErrorCode.TOO_MANY_STEPS, "definition.steps")]
    assert validate_definition_input(body, Limits(max_steps_per_definition=6)).valid


def test_input_is_not_modified() -> None:
    body = {
        "TRIGGER": "inbound_sms",
        "definition": {
            "name": "n",
            "steps": [{"id": "a", "stepType": "wait", "inputs": {"duration": "1"}, "do": []}],
        },
    }
    snapshot = json.dumps(body, sort_keys=True)
    validate_definition_input(body, Limits())
    assert json.dumps(body, sort_keys=True) == snapshot
