"""`/api/v1/accounts/{accountId}/definitions`: 8x8's definition management, plus `validate`.

Bodies are read raw and validated by `model.validation` (not by FastAPI), because 8x8 clients
send case-insensitive keys and need 8x8 error codes with every problem listed, not a 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import (
    ERROR_RESPONSES,
    DefinitionOut,
    ErrorOut,
    ValidationReportOut,
    definition_json,
    definition_location,
)
from relayflow.config import Limits
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import is_uuid, normalise_uuid
from relayflow.jsonbody import JsonBodyError, parse_json_object

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/definitions", tags=["Workflow Definition Management"]
)

_LIMITS = Limits()
MAX_INT32 = 2**31 - 1  # larger numbers overflow PostgreSQL integer parameters
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


def _limit() -> Any:
    return Query(
        _LIMITS.default_page_size, ge=1, le=_LIMITS.max_page_size, description="Page size, 1..500."
    )


def _offset() -> Any:
    return Query(0, ge=0, le=MAX_INT32, description="Number of items to skip.")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        return parse_json_object(await request.body())
    except JsonBodyError as error:
        raise ApiError(ErrorCode.INVALID_BODY, str(error)) from None


def _definition_id(raw: str) -> str:
    if not is_uuid(raw):
        raise ApiError(ErrorCode.INVALID_ID, "Invalid definition id.")
    return normalise_uuid(raw)


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
    limit: int = _limit(),
    offset: int = _offset(),
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
    body = await _json_body(request)
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
    body = await _json_body(request)
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
    definitionId: str,
    account_id: str = Depends(authorized_account),
    limit: int = _limit(),
    offset: int = _offset(),
) -> Response:
    definition_id = _definition_id(definitionId)
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
    definitionId: str,
    account_id: str = Depends(authorized_account),
) -> Response:
    definition_id = _definition_id(definitionId)
    body = await _json_body(request)
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
    definitionId: str,
    account_id: str = Depends(authorized_account),
    version: int | None = Query(None, ge=1, le=MAX_INT32, description="Delete only this version."),
) -> Response:
    definition_id = _definition_id(definitionId)
    await context_of(request).definitions.delete(account_id, definition_id, version)
    return Response(status_code=202)
