"""Validate a definition and report *every* problem with a code, a message and a JSON path.

Two passes over the canonical form (`model.tolerant`): pydantic checks structure and types of
every step (its custom error types carry our codes), then a walk over the step graph checks what
a schema cannot: unique ids, existing successors, `{{ }}` syntax and expression length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from relayflow.config import Limits
from relayflow.errors import ErrorCode, Problem
from relayflow.expressions.template import Expression, TemplateSyntaxError, parse_template
from relayflow.expressions.whitelist import SYNTAX_ERROR_PREFIX, forbidden_construct
from relayflow.model.definition import DefinitionInput
from relayflow.model.steps import STEP_MODELS, DefinitionStatus, Trigger
from relayflow.model.tolerant import canonical_definition_input

NAME_REQUIRED_MESSAGE = "Workflow name is required."
_CONSTANT_CONDITIONS = ("true", "false")


@dataclass
class ValidationResult:
    """`canonical` is the body to store; use it only when `problems` is empty."""

    canonical: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    model: DefinitionInput | None = None

    @property
    def valid(self) -> bool:
        return not self.problems


def validate_definition_input(raw: dict[str, Any], limits: Limits) -> ValidationResult:
    """Validate a create/update body (already parsed from JSON into a dict)."""
    canonical = canonical_definition_input(raw)
    result = ValidationResult(canonical=canonical)
    try:
        result.model = DefinitionInput.model_validate(canonical)
    except ValidationError as error:
        result.problems.extend(
            _problem_from_pydantic(canonical, detail) for detail in error.errors()
        )
    result.problems.extend(_graph_problems(canonical, limits))
    result.problems.sort(key=_document_order)
    if result.problems:
        result.model = None
    return result


_TOP_LEVEL_ORDER = {"subAccountId": 0, "trigger": 1, "status": 2, "definition": 3}
_INDEX = re.compile(r"\[(\d+)\]")


def _document_order(problem: Problem) -> tuple[bool, int, tuple[int, ...]]:
    """The documented 5001 first, then top-level fields, then steps in document order."""
    top = problem.path.split(".", 1)[0].split("[", 1)[0]
    indices = tuple(int(index) for index in _INDEX.findall(problem.path))
    return problem.code != ErrorCode.NAME_REQUIRED, _TOP_LEVEL_ORDER.get(top, 4), indices


# --- pass 1: pydantic errors -> problems -----------------------------------------------------


def _json_path(loc: tuple[int | str, ...]) -> tuple[str, list[int | str]]:
    """Render a pydantic location as `definition.steps[0].inputs.text`, dropping union tags."""
    parts: list[int | str] = []
    for index, item in enumerate(loc):
        if (
            isinstance(item, str)
            and item in STEP_MODELS
            and index
            and isinstance(loc[index - 1], int)
        ):
            continue  # the discriminator tag pydantic inserts after a list index
        parts.append(item)
    text = ""
    for item in parts:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else item)
    return text, parts


def _step_context(canonical: dict[str, Any], parts: list[int | str]) -> str:
    """`Step 'x': ` for a location inside a step, so messages say which step is wrong."""
    node: Any = canonical
    step_id: Any = None
    for index, item in enumerate(parts):
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(item, int) and isinstance(node, dict) and parts[index - 1] != "do":
            step_id = node.get("id")
    return f"Step '{step_id}': " if isinstance(step_id, str) else ""


def _problem_from_pydantic(canonical: dict[str, Any], detail: ErrorDetails) -> Problem:
    path, parts = _json_path(detail["loc"])
    kind = detail["type"]
    last = parts[-1] if parts else ""
    context = _step_context(canonical, parts)
    ctx = detail.get("ctx") or {}
    if kind == "missing":
        return _missing(path, parts, context)
    if path == "trigger":
        allowed = ", ".join(t.value for t in Trigger)
        return Problem(ErrorCode.INVALID_TRIGGER, f"Trigger must be one of: {allowed}.", path)
    if path == "status":
        allowed = ", ".join(s.value for s in DefinitionStatus)
        return Problem(ErrorCode.INVALID_STATUS, f"Status must be one of: {allowed}.", path)
    if kind == "union_tag_invalid":
        known = ", ".join(STEP_MODELS)
        return Problem(
            ErrorCode.UNKNOWN_STEP_TYPE,
            f"{context}unknown stepType '{ctx.get('tag')}'; known step types: {known}.",
            f"{path}.stepType",
        )
    if kind == "union_tag_not_found":
        return Problem(
            ErrorCode.UNKNOWN_STEP_TYPE, f"{context}stepType is required.", f"{path}.stepType"
        )
    if kind == "too_short" and (last in ("steps", "do") or (len(parts) > 1 and parts[-2] == "do")):
        return Problem(
            ErrorCode.STEPS_REQUIRED, f"{context}'{path}' must contain at least one step.", path
        )
    codes = {
        "invalid_enum": ErrorCode.INVALID_ENUM_VALUE,
        "invalid_timespan": ErrorCode.INVALID_TIMESPAN,
        "invalid_value": ErrorCode.INVALID_VALUE,
    }
    code = codes.get(kind, ErrorCode.INVALID_TYPE)
    if kind in codes or kind == "invalid_type":
        message = detail["msg"].rstrip(".")
    else:
        message = _type_message(kind, detail)
    return Problem(code, f"{context}{_label(parts)}: {message}.", path)


def _label(parts: list[int | str]) -> str:
    names = [str(item) for item in parts if isinstance(item, str)]
    return f"'{names[-1]}'" if names else "value"


def _type_message(kind: str, detail: ErrorDetails) -> str:
    expected = {
        "string_type": "must be a string",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
        "list_type": "must be an array",
        "bool_type": "must be a boolean",
        "int_type": "must be an integer",
    }
    return expected.get(kind, detail["msg"].rstrip("."))


def _missing(path: str, parts: list[int | str], context: str) -> Problem:
    name = str(parts[-1]) if parts else path
    if path == "definition.name":
        return Problem(ErrorCode.NAME_REQUIRED, NAME_REQUIRED_MESSAGE, path)
    if path == "definition":
        return Problem(ErrorCode.NAME_REQUIRED, NAME_REQUIRED_MESSAGE, "definition.name")
    if path == "trigger":
        allowed = ", ".join(t.value for t in Trigger)
        return Problem(ErrorCode.INVALID_TRIGGER, f"Trigger is required; one of: {allowed}.", path)
    if path == "definition.steps":
        return Problem(ErrorCode.STEPS_REQUIRED, "Definition must contain at least one step.", path)
    if name == "id" and len(parts) >= 2 and isinstance(parts[-2], int):
        return Problem(ErrorCode.STEP_ID_REQUIRED, "Every step needs an 'id'.", path)
    if len(parts) >= 2 and parts[-2] == "inputs":
        return Problem(
            ErrorCode.REQUIRED_PROPERTY_MISSING,
            f"{context}required input '{name}' is missing.",
            path,
        )
    return Problem(
        ErrorCode.REQUIRED_PROPERTY_MISSING,
        f"{context}required property '{name}' is missing.",
        path,
    )


# --- pass 2: the step graph ------------------------------------------------------------------


def _graph_problems(canonical: dict[str, Any], limits: Limits) -> Iterator[Problem]:
    definition = canonical.get("definition")
    if not isinstance(definition, dict):
        return
    name = definition.get("name")
    if isinstance(name, str) and not name.strip():
        yield Problem(ErrorCode.NAME_REQUIRED, NAME_REQUIRED_MESSAGE, "definition.name")
    steps = definition.get("steps")
    if not isinstance(steps, list):
        return
    seen: dict[str, str] = {}
    yield from _check_step_list(steps, "definition.steps", seen, limits)
    if len(seen) > limits.max_steps_per_definition:
        yield Problem(
            ErrorCode.TOO_MANY_STEPS,
            f"Definition has {len(seen)} steps; the limit is {limits.max_steps_per_definition}.",
            "definition.steps",
        )


def _check_step_list(
    steps: list[Any], path: str, seen: dict[str, str], limits: Limits
) -> Iterator[Problem]:
    # Successors must be in the same list: a path inside an If branch ends in that branch.
    local_ids = {
        step["id"] for step in steps if isinstance(step, dict) and isinstance(step.get("id"), str)
    }
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        step_path = f"{path}[{index}]"
        step_id = step.get("id")
        context = f"Step '{step_id}': " if isinstance(step_id, str) else ""
        if isinstance(step_id, str):
            if step_id in seen:
                yield Problem(
                    ErrorCode.DUPLICATE_STEP_ID,
                    f"Duplicate step id '{step_id}' (also at {seen[step_id]}).",
                    f"{step_path}.id",
                )
            else:
                seen[step_id] = step_path
            if not step_id.strip():
                yield Problem(
                    ErrorCode.STEP_ID_REQUIRED, "Step id must not be empty.", f"{step_path}.id"
                )
        yield from _check_successors(step, step_path, context, local_ids)
        yield from _check_expressions(step, step_path, context, limits)
        branches = step.get("do")
        if isinstance(branches, list):
            for branch_index, branch in enumerate(branches):
                if isinstance(branch, list):
                    yield from _check_step_list(
                        branch, f"{step_path}.do[{branch_index}]", seen, limits
                    )


def _check_successors(
    step: dict[str, Any], path: str, context: str, local_ids: set[str]
) -> Iterator[Problem]:
    next_step = step.get("nextStepId")
    select = step.get("selectNextStep")
    if next_step is not None and select is not None:
        yield Problem(
            ErrorCode.BOTH_NEXT_STEP_AND_SELECT,
            f"{context}set either 'nextStepId' or 'selectNextStep', not both.",
            path,
        )
    if isinstance(next_step, str) and next_step not in local_ids:
        yield Problem(
            ErrorCode.UNKNOWN_NEXT_STEP,
            f"{context}nextStepId '{next_step}' does not name a step in the same list.",
            f"{path}.nextStepId",
        )
    if isinstance(select, dict):
        for target in select:
            if target not in local_ids:
                yield Problem(
                    ErrorCode.UNKNOWN_NEXT_STEP,
                    f"{context}selectNextStep target '{target}' does not name a step "
                    "in the same list.",
                    f"{path}.selectNextStep.{target}",
                )


def _check_expressions(
    step: dict[str, Any], path: str, context: str, limits: Limits
) -> Iterator[Problem]:
    for value_path, value in _strings(step.get("inputs"), f"{path}.inputs"):
        yield from _check_template(value, value_path, context, limits)
    outputs = step.get("outputs")
    if isinstance(outputs, dict):  # evaluated recursively too, so checked everywhere inside
        for value_path, value in _strings(outputs, f"{path}.outputs"):
            yield from _check_template(value, value_path, context, limits)
    conditions: list[tuple[str, Any]] = []
    if isinstance(step.get("selectNextStep"), dict):
        conditions += [(f"{path}.selectNextStep.{k}", v) for k, v in step["selectNextStep"].items()]
    if step.get("stepType") == "If" and isinstance(step.get("inputs"), dict):
        conditions.append((f"{path}.inputs.condition", step["inputs"].get("condition")))
    for condition_path, condition in conditions:
        if isinstance(condition, str) and "{{" not in condition:
            if condition.strip().lower() not in _CONSTANT_CONDITIONS:
                yield Problem(
                    ErrorCode.INVALID_EXPRESSION,
                    f"{context}condition '{condition[:80]}' must be a {{{{ expression }}}}, "
                    "true, false or null.",
                    condition_path,
                )
        elif isinstance(condition, str) and not condition_path.endswith("inputs.condition"):
            yield from _check_template(condition, condition_path, context, limits)


def _check_template(text: str, path: str, context: str, limits: Limits) -> Iterator[Problem]:
    try:
        parts = parse_template(text)
    except TemplateSyntaxError as error:
        yield Problem(ErrorCode.INVALID_EXPRESSION, f"{context}{error}", path)
        return
    for part in parts:
        if not isinstance(part, Expression):
            continue
        if len(part.source) > limits.max_expression_length:
            yield Problem(
                ErrorCode.EXPRESSION_TOO_LONG,
                f"{context}expression of {len(part.source)} characters is longer than "
                f"{limits.max_expression_length}.",
                path,
            )
            continue
        construct = forbidden_construct(part.source)
        if construct is not None:
            code = (
                ErrorCode.INVALID_EXPRESSION
                if construct.startswith(SYNTAX_ERROR_PREFIX)
                else ErrorCode.FORBIDDEN_EXPRESSION
            )
            yield Problem(code, f"{context}'{{{{{part.source[:80]}}}}}': {construct}.", path)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string nested in `value` with its JSON path: inputs and outputs are evaluated
    recursively."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
