"""`/steps/timezones` and `/steps/functions`: what expressions can use."""

from __future__ import annotations

import json
from typing import Any, cast

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES
from relayflow.expressions import helpers, timezones

router = APIRouter(prefix="/api/v1/accounts/{accountId}/steps", tags=["Steps"])


@router.get(
    "/timezones",
    operation_id="get-timezones",
    summary="Windows time-zone ids usable in isTimeOfDayBetween",
    responses=ERROR_RESPONSES,
)
async def list_timezones(
    _account: str = Depends(authorized_account),
    contains: str | None = Query(None, max_length=100, description="Case-insensitive filter."),
) -> Response:
    return FastJSONResponse(timezones.search(contains))


@router.get(
    "/functions",
    operation_id="get-functions",
    summary="Helper functions available in expressions",
    responses=ERROR_RESPONSES,
)
async def list_functions(_account: str = Depends(authorized_account)) -> Response:
    # 8x8's schema types a parameter's `default` as an object (its example gives null): a
    # scalar default such as `false` is told in the description and `default` is null.
    functions = []
    for function in helpers.FUNCTIONS:
        parameters = []
        for parameter in cast(list[dict[str, Any]], function["parameters"]):
            default = parameter["default"]
            if default is not None and not isinstance(default, dict):
                described = f"{parameter['description']} Default: {json.dumps(default)}."
                parameter = {**parameter, "default": None, "description": described}
            parameters.append(parameter)
        functions.append({**function, "parameters": parameters})
    return FastJSONResponse(functions)
