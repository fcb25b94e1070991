"""8x8's own OpenAPI file, and checks of our responses against its component schemas: one
copy, loaded once, for every suite that compares relayflow with 8x8's description.

Only the nulls 8x8's descriptions document (`DOCUMENTED_NULLS`) are widened; each is checked
against its description."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OAS_FILE = Path(__file__).parents[1] / "data" / "8x8_automation_api.json"
OAS: dict[str, Any] = json.loads(OAS_FILE.read_text(encoding="utf-8"))
OAS_URI = "urn:8x8:automation_api.json"

# (component schema, property) -> words of its description that say null is allowed.
DOCUMENTED_NULLS: dict[tuple[str, str], str] = {
    ("definitionInput", "subAccountId"): "If the subaccount id is null",
}


def with_documented_nulls(document: dict[str, Any]) -> dict[str, Any]:
    widened = copy.deepcopy(document)
    for (schema_name, prop), wording in DOCUMENTED_NULLS.items():
        node = widened["components"]["schemas"][schema_name]["properties"][prop]
        assert wording in node["description"], f"{schema_name}.{prop}: null is not documented"
        assert isinstance(node["type"], str), f"{schema_name}.{prop}: unexpected type"
        node["type"] = [node["type"], "null"]
    return widened


OAS_FOR_RESPONSES = with_documented_nulls(OAS)
REGISTRY: Registry[Any] = Registry().with_resource(
    OAS_URI, Resource.from_contents(OAS_FOR_RESPONSES, default_specification=DRAFT4)
)


def eight_by_eight_validator(component: str) -> Draft4Validator:
    schema = OAS_FOR_RESPONSES["components"]["schemas"][component]
    Draft4Validator.check_schema(schema)
    return Draft4Validator(
        {"$ref": f"{OAS_URI}#/components/schemas/{component}"}, registry=REGISTRY
    )


def explain(errors: list[ValidationError]) -> str:
    lines = []
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "<root>"
        lines.append(f"{where}: {error.message}")
        # anyOf/allOf failures: show why each alternative failed (the useful part).
        lines.extend(
            f"    {'/'.join(str(p) for p in sub.absolute_path)}: {sub.message}"
            for sub in error.context or []
        )
    return "\n".join(lines)


def assert_conforms(instance: Any, component: str) -> None:
    """`instance` is valid under 8x8's `component` schema; otherwise list every violation."""
    errors = sorted(
        eight_by_eight_validator(component).iter_errors(instance), key=lambda e: e.json_path
    )
    assert not errors, f"response does not conform to 8x8's '{component}':\n" + explain(errors)
