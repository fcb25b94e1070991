"""Every example definition of the spec, through the pure validator and through the API.

Each file in `tests/data/spec_examples/` is one example:
`{"description", "source", "body", "expect": {"valid": true} | {"valid": false, "codes": [...]}}`.
Lone step examples (spec §5.3) are wrapped into a minimal definition, with stub `Wait` steps so
that their `nextStepId` / `selectNextStep` references resolve. Examples that spec §14 calls
broken keep their defects and expect the exact error codes (relayflow.errors.ErrorCode); the
first code is the one the API reports at top level, the list is compared as a multiset.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from relayflow.config import Limits
from relayflow.errors import ErrorCode
from relayflow.model.steps import STEP_MODELS
from relayflow.model.validation import validate_definition_input
from tests.support.tenants import Tenant

DATA = Path(__file__).parent / "data"
EXAMPLES_DIR = DATA / "spec_examples"
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.json"))
OAS_SOURCE_PREFIX = "8x8-openapi/automation_api.json#"
OAS: dict[str, Any] = json.loads((DATA / "8x8_automation_api.json").read_text(encoding="utf-8"))

# The examples the spec contains; more files may be added, none of these may go missing.
REQUIRED_EXAMPLES = {
    "oas_definition_input",
    "oas_definition",
    "seed_schema_placeholders",
    "seed_send_automatic_reply",
    "step_sms",
    "step_chatapps_message",
    "step_chatapps_message_template",
    "step_http_request",
    "step_branch",
    "step_if",
    "step_wait_0_00_01_00",
    "step_wait_00_02_00",
    "step_wait_1",
    "step_wait_for_reply",
    "step_voice_message",
    "step_wait_for_dtmf",
    "step_wait_for_dtmf_correlation_id",
}


@dataclass(frozen=True)
class SpecExample:
    name: str
    description: str
    source: str
    body: dict[str, Any]
    valid: bool
    codes: tuple[int, ...]


def load_example(path: Path) -> SpecExample:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"description", "source", "body", "expect"}, path.name
    for key in ("description", "source"):
        assert isinstance(data[key], str), path.name
        assert data[key].strip(), path.name
    assert isinstance(data["body"], dict), path.name
    expect = data["expect"]
    if expect == {"valid": True}:
        return SpecExample(path.stem, data["description"], data["source"], data["body"], True, ())
    assert set(expect) == {"valid", "codes"}, path.name
    assert expect["valid"] is False, path.name
    codes = expect["codes"]
    assert codes, path.name
    assert all(code in set(ErrorCode) for code in codes), path.name
    return SpecExample(
        path.stem, data["description"], data["source"], data["body"], False, tuple(codes)
    )


EXAMPLES = [pytest.param(path, id=path.stem) for path in EXAMPLE_FILES]


def _steps(steps: list[Any]) -> list[dict[str, Any]]:
    """Every step, including those nested in `If.do` branches."""
    found = []
    for step in steps:
        found.append(step)
        for branch in step.get("do") or []:
            found.extend(_steps(branch))
    return found


def _resolve(pointer: str) -> Any:
    node: Any = OAS
    for part in pointer.lstrip("/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# --- the data files themselves ---------------------------------------------------------------


def test_every_spec_example_has_a_file() -> None:
    names = {path.stem for path in EXAMPLE_FILES}
    assert names >= REQUIRED_EXAMPLES, REQUIRED_EXAMPLES - names


def test_valid_examples_cover_every_step_type() -> None:
    covered = set()
    for path in EXAMPLE_FILES:
        example = load_example(path)
        if example.valid:
            covered |= {step["stepType"] for step in _steps(example.body["definition"]["steps"])}
    assert covered >= set(STEP_MODELS), set(STEP_MODELS) - covered


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, id=path.stem)
        for path in EXAMPLE_FILES
        if load_example(path).source.startswith(OAS_SOURCE_PREFIX)
    ],
)
def test_oas_examples_are_copied_verbatim(path: Path) -> None:
    """The body is 8x8's example exactly, or contains the cited step exactly (plus stubs)."""
    example = load_example(path)
    cited = _resolve(example.source.removeprefix(OAS_SOURCE_PREFIX))
    assert cited == example.body or cited in example.body["definition"]["steps"]


# --- the examples, validated -----------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES)
def test_pure_validator(path: Path) -> None:
    example = load_example(path)
    body = copy.deepcopy(example.body)
    result = validate_definition_input(body, Limits())
    assert body == example.body, "the validator must not modify its input"
    problems = [f"{int(p.code)} {p.path}: {p.message}" for p in result.problems]
    if example.valid:
        assert result.valid, "\n".join(problems)
        assert result.model is not None
        return
    assert not result.valid
    assert result.model is None
    codes = [int(problem.code) for problem in result.problems]
    assert codes[0] == example.codes[0], "\n".join(problems)
    assert Counter(codes) == Counter(example.codes), "\n".join(problems)


@pytest.mark.parametrize("path", EXAMPLES)
async def test_api(client: httpx.AsyncClient, tenant: Tenant, path: Path) -> None:
    example = load_example(path)
    expected = validate_definition_input(copy.deepcopy(example.body), Limits())

    response = await client.post(
        f"{tenant.base}/definitions", json=example.body, headers=tenant.headers
    )
    if example.valid:
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["Location"] == f"{tenant.base}/definitions/{created['id']}"
        assert created["definition"]["name"] == example.body["definition"]["name"]
        assert [s["id"] for s in created["definition"]["steps"]] == [
            s["id"] for s in example.body["definition"]["steps"]
        ]
        history = await client.get(
            f"{tenant.base}/definitions/{created['id']}", headers=tenant.headers
        )
        assert history.status_code == 200, history.text
        assert history.json() == [created]
    else:
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["code"] == example.codes[0], error
        assert Counter(item["code"] for item in error["errors"]) == Counter(example.codes), error
        # The API reports exactly what the pure validator finds (codes, paths, messages).
        assert error["errors"] == [problem.as_json() for problem in expected.problems]
        assert error["message"].startswith(error["errors"][0]["message"])
        listed = await client.get(f"{tenant.base}/definitions", headers=tenant.headers)
        assert listed.json() == [], "a rejected definition must not be stored"

    dry_run = await client.post(
        f"{tenant.base}/definitions/validate", json=example.body, headers=tenant.headers
    )
    assert dry_run.status_code == 200, dry_run.text
    report = dry_run.json()
    assert report["valid"] is example.valid
    assert Counter(item["code"] for item in report["errors"]) == Counter(example.codes)
