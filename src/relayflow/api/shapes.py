"""Response bodies in 8x8's exact shapes, plus pydantic models that document them in OpenAPI.

Handlers build plain dicts (fast, orjson) with the functions here; the models exist so that
`/openapi.json` describes the same shapes, and a test checks both against 8x8's schemas.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from relayflow.clock import iso_from_ms
from relayflow.store.definitions import DefinitionRow


def definition_json(row: DefinitionRow) -> dict[str, Any]:
    """8x8's `definition`: top-level `id`/`version` (schema) *and* nested ones (examples, UI)."""
    return {
        "accountId": row.account_id,
        "id": row.id,
        "version": row.version,
        "subAccountId": row.sub_account_id,
        "trigger": row.trigger,
        "status": row.status,
        "createdAt": iso_from_ms(row.created_at_ms),
        "definition": {
            "id": row.id,
            "name": row.name,
            "version": row.version,
            "steps": row.steps,
        },
    }


def definition_location(account_id: str, definition_id: str) -> str:
    return f"/api/v1/accounts/{account_id}/definitions/{definition_id}"


class ErrorOut(BaseModel):
    code: int = Field(description="Error code (see the README's table).")
    message: str
    errorId: str = Field(description="Unique id of this error, also in the server log.")
    timestamp: str = Field(description="ISO-8601 UTC time of the error.")
    errors: list[ProblemOut] | None = Field(
        default=None, description="Extension: every validation problem, for 5xxx codes."
    )


class ProblemOut(BaseModel):
    code: int
    message: str
    path: str = Field(
        description="JSON path of the offending value, e.g. `definition.steps[0].id`."
    )


class DefinitionBodyOut(BaseModel):
    id: str
    name: str
    version: int
    steps: list[dict[str, Any]]


class DefinitionOut(BaseModel):
    accountId: str
    id: str = Field(description="Definition id (UUID).")
    version: int = Field(ge=1)
    subAccountId: str | None
    trigger: str
    status: str
    createdAt: str = Field(description="When this version was created (ISO-8601 UTC).")
    definition: DefinitionBodyOut


class ValidationReportOut(BaseModel):
    valid: bool
    errors: list[ProblemOut]


ErrorOut.model_rebuild()

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid request (see `code`)."},
    401: {"model": ErrorOut, "description": "Missing or invalid API key (code 1200)."},
    403: {"model": ErrorOut, "description": "API key of another account (code 1201)."},
    413: {"model": ErrorOut, "description": "Request body too large (code 1400)."},
}
