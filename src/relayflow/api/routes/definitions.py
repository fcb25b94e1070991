"""`/api/v1/accounts/{accountId}/definitions`: 8x8's definition management, plus `validate`.

Bodies are read raw and validated by `model.validation` (not by FastAPI), because 8x8 clients
send case-insensitive keys and need 8x8 error codes with every problem listed, not a 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.params import (
    check_definition_id,
    json_body,
    limit_param,
    offset_param,
    version_param,
)
from relayflow.api.paths import definition_id_path
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import (
    ERROR_RESPONSES,
    DefinitionOut,
    ErrorOut,
    ValidationReportOut,
    definition_json,
    definition_location,
)

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/definitions", tags=["Workflow Definition Management"]
)

DEFINITION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DefinitionInput"}}
        },
    }
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Definition not found (code 1300)."}
}


@router.get(
    "",
    operation_id="get-all-definitions",
    summary="Retrieve a list of active workflow definitions.",
    description="The latest version of every definition of the account (enabled and disabled), "
    "newest definition first.",
    response_model=list[DefinitionOut],
    responses=ERROR_RESPONSES,
)
async def list_definitions(
    request: Request,
    account_id: str = Depends(authorized_account),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Response:
    rows = await context_of(request).definitions.list_latest(account_id, limit, offset)
    return FastJSONResponse([definition_json(row) for row in rows])


@router.post(
    "",
    operation_id="create-definition",
    summary="Create a new workflow definition",
    status_code=201,
    response_model=DefinitionOut,
    responses={**ERROR_RESPONSES, 201: {"headers": {"Location": {"schema": {"type": "string"}}}}},
    openapi_extra=DEFINITION_BODY,
)
async def create_definition(
    request: Request, account_id: str = Depends(authorized_account)
) -> Response:
    body = await json_body(request)
    row = await context_of(request).definitions.create(account_id, body)
    return FastJSONResponse(
        definition_json(row),
        status_code=201,
        headers={"Location": definition_location(account_id, row.id)},
    )


@router.post(
    "/validate",
    operation_id="validate-definition",
    summary="Validate a definition without saving it (relayflow extension)",
    description="Dry run of create/update: every problem with its code, message and JSON path.",
    response_model=ValidationReportOut,
    responses=ERROR_RESPONSES,
    openapi_extra=DEFINITION_BODY,
)
async def validate_definition(
    request: Request, account_id: str = Depends(authorized_account)
) -> Response:
    body = await json_body(request)
    result = context_of(request).definitions.validate(body)
    return FastJSONResponse(
        {"valid": result.valid, "errors": [problem.as_json() for problem in result.problems]}
    )


@router.get(
    "/{definitionId}",
    operation_id="get-specific-definition",
    summary="Retrieve the version history of a definition",
    description="All live versions, newest first; `[]` for an unknown id.",
    response_model=list[DefinitionOut],
    responses=ERROR_RESPONSES,
)
async def definition_history(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Response:
    definition_id = check_definition_id(definitionId)
    rows = await context_of(request).definitions.history(account_id, definition_id, limit, offset)
    return FastJSONResponse([definition_json(row) for row in rows])


@router.put(
    "/{definitionId}",
    operation_id="update-existing-definition",
    summary="Update a definition (creates version N+1)",
    response_model=DefinitionOut,
    responses={**ERROR_RESPONSES, **NOT_FOUND},
    openapi_extra=DEFINITION_BODY,
)
async def update_definition(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    definition_id = check_definition_id(definitionId)
    body = await json_body(request)
    row = await context_of(request).definitions.update(account_id, definition_id, body)
    return FastJSONResponse(definition_json(row))


@router.delete(
    "/{definitionId}",
    operation_id="delete-definitions",
    summary="Delete a definition (all versions, or one with `version`)",
    status_code=202,
    responses={**ERROR_RESPONSES, **NOT_FOUND, 202: {"description": "Deleted."}},
)
async def delete_definition(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
    version: int | None = version_param("Delete only this version."),
) -> Response:
    definition_id = check_definition_id(definitionId)
    await context_of(request).definitions.delete(account_id, definition_id, version)
    return Response(status_code=202)
