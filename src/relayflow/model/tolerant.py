"""Turn what 8x8 clients send into the canonical definition form.

8x8's backend (.NET / Newtonsoft) matches property names case-insensitively, its examples spell
`subaccountId` and `"stepType": "branch"`, its UI exports give every step `"do": []`,
`"nextStepId": null`, `"inputs": {}`, `"outputs": {}`, `"selectNextStep": {}`, and one document
calls the DTMF correlation input `correlationId`. Accepting all of that here keeps the models
and the engine strict and simple. Values of the wrong JSON type are passed through untouched so
that validation reports them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from relayflow.model.steps import STEP_MODELS, DefinitionStatus, Trigger

TOP_LEVEL_KEYS = ("subAccountId", "trigger", "status", "definition", "accountId", "id", "version")
DEFINITION_KEYS = ("id", "name", "version", "steps")
STEP_KEYS = ("id", "stepType", "inputs", "outputs", "nextStepId", "selectNextStep", "do")
INPUT_ALIASES: dict[str, dict[str, str]] = {"WaitForDTMF": {"correlationid": "dtmfRequestId"}}
# Keys whose empty value means "not set" in UI exports.
EMPTY_MEANS_ABSENT = ("outputs", "nextStepId", "selectNextStep", "do")

_STEP_TYPES = {name.lower(): name for name in STEP_MODELS}


def _input_names(model: type[BaseModel]) -> dict[str, str]:
    inputs_model = model.model_fields["inputs"].annotation
    names: dict[str, str] = {}
    if isinstance(inputs_model, type) and issubclass(inputs_model, BaseModel):
        for name, info in inputs_model.model_fields.items():
            canonical = info.alias or name
            names[canonical.lower()] = canonical
    return names


_INPUT_NAMES = {step_type: _input_names(model) for step_type, model in STEP_MODELS.items()}


def _pick(source: dict[str, Any], canonical_keys: tuple[str, ...]) -> dict[str, Any]:
    """Keep the known keys, matched in any letter case; the first non-null spelling wins."""
    lookup = {key.lower(): key for key in canonical_keys}
    picked: dict[str, Any] = {}
    for key, value in source.items():
        canonical = lookup.get(key.lower()) if isinstance(key, str) else None
        if canonical is not None and (canonical not in picked or picked[canonical] is None):
            picked[canonical] = value
    return picked


def _canonical_enum(value: Any, allowed: list[str]) -> Any:
    if isinstance(value, str):
        for option in allowed:
            if value.strip().lower() == option.lower():
                return option
    return value


def canonical_definition_input(raw: dict[str, Any]) -> dict[str, Any]:
    """The canonical form of a create/update body (a new dict; `raw` is not modified)."""
    body = _pick(raw, TOP_LEVEL_KEYS)
    if "trigger" in body:
        body["trigger"] = _canonical_enum(body["trigger"], [t.value for t in Trigger])
    if "status" in body:
        if body["status"] is None:
            del body["status"]
        else:
            body["status"] = _canonical_enum(body["status"], [s.value for s in DefinitionStatus])
    definition = body.get("definition")
    if isinstance(definition, dict):
        definition = _pick(definition, DEFINITION_KEYS)
        if "name" in definition and definition["name"] is None:
            del definition["name"]  # 8x8 answers 5001 for a null name, as for a missing one
        if isinstance(definition.get("steps"), list):
            definition["steps"] = canonical_steps(definition["steps"])
        body["definition"] = definition
    return body


def canonical_steps(steps: list[Any]) -> list[Any]:
    return [canonical_step(step) if isinstance(step, dict) else step for step in steps]


def canonical_step(raw: dict[str, Any]) -> dict[str, Any]:
    step = _pick(raw, STEP_KEYS)
    step_type = step.get("stepType")
    if isinstance(step_type, str):
        step_type = _STEP_TYPES.get(step_type.strip().lower(), step_type)
        step["stepType"] = step_type
    for key in EMPTY_MEANS_ABSENT:
        if key in step and step[key] in (None, "", [], {}):
            del step[key]
    inputs = step.get("inputs")
    if inputs is None:
        step["inputs"] = {}
    elif isinstance(inputs, dict) and isinstance(step_type, str) and step_type in _INPUT_NAMES:
        step["inputs"] = _canonical_inputs(step_type, inputs)
    if isinstance(step.get("do"), list):
        step["do"] = [
            canonical_steps(branch) if isinstance(branch, list) else branch for branch in step["do"]
        ]
    return step


def _canonical_inputs(step_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    names = _INPUT_NAMES[step_type]
    aliases = INPUT_ALIASES.get(step_type, {})
    result: dict[str, Any] = {}
    for key, value in inputs.items():
        lowered = key.lower()
        canonical = names.get(lowered) or aliases.get(lowered) or key
        if canonical not in result or result[canonical] is None:
            result[canonical] = value
    # Optional inputs sent as null (UI exports) mean "use the default".
    return {key: value for key, value in result.items() if value is not None}
