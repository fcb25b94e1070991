"""Request parameters shared by the routers: paging, ids, raw JSON bodies."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.requests import Request

from relayflow.api.context import context_of
from relayflow.clock import ms_from_iso
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import is_uuid, normalise_uuid
from relayflow.jsonbody import JsonBodyError, parse_json_object
from relayflow.services.inputs import parse_input

MAX_INT32 = 2**31 - 1  # larger numbers overflow PostgreSQL integer parameters


def _page_size(
    request: Request, limit: int | None = Query(None, ge=1, description="Page size.")
) -> int:
    """The page size within this process's configured limits.

    Checked per request, not in the `Query`: routes are declared at import time, before the
    settings exist. An oversized page is refused with the body FastAPI's own `le` gave.
    """
    limits = context_of(request).settings.limits
    if limit is None:
        return limits.default_page_size
    if limit > limits.max_page_size:
        bound = limits.max_page_size
        message = f"Input should be less than or equal to {bound}"
        problem = {"type": "less_than_equal", "loc": ("query", "limit"), "msg": message}
        raise RequestValidationError([{**problem, "input": limit, "ctx": {"le": bound}}])
    return limit


def limit_param() -> Any:
    return Depends(_page_size)


def document_page_size(document: dict[str, Any], page_size: int, max_page_size: int) -> None:
    """Show the configured page sizes in `/openapi.json` (`_page_size` cannot declare them),
    with `limit` first among the query parameters, where the routes declare it."""
    description = f"Page size, 1..{max_page_size}."
    schema = {
        "default": page_size,
        "description": description,
        "maximum": max_page_size,
        "minimum": 1,
        "title": "Limit",
        "type": "integer",
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            parameters: list[dict[str, Any]] = operation.get("parameters", [])
            for parameter in parameters:
                if parameter["name"] == "limit" and parameter["in"] == "query":
                    parameter.update(description=description, schema=schema)
                    parameters.remove(parameter)
                    first_query = next(
                        (i for i, other in enumerate(parameters) if other["in"] == "query"),
                        len(parameters),
                    )
                    parameters.insert(first_query, parameter)
                    break


def offset_param() -> Any:
    return Query(0, ge=0, le=MAX_INT32, description="Number of items to skip.")


def version_param(description: str) -> Any:
    return Query(None, ge=1, le=MAX_INT32, description=description)


async def json_body(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if empty_ok and not raw.strip():
        return {}
    try:
        return parse_json_object(raw)
    except JsonBodyError as error:
        raise ApiError(ErrorCode.INVALID_BODY, str(error)) from None


M = TypeVar("M", bound=BaseModel)


async def model_body(request: Request, model: type[M]) -> M:
    """A JSON body validated by `model`, whatever the Content-Type (8x8 clients vary)."""
    return parse_input(model, await json_body(request))


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body that `model_body` reads."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}},
        }
    }


def check_definition_id(raw: str) -> str:
    if not is_uuid(raw):
        raise ApiError(ErrorCode.INVALID_ID, "Invalid definition id.")
    return normalise_uuid(raw)


def iso_to_ms(raw: str | None, name: str) -> int | None:
    """ISO-8601 query value → epoch ms (no offset means UTC)."""
    if raw is None or raw == "":
        return None
    try:
        return ms_from_iso(raw)
    except ValueError:
        raise ApiError(
            ErrorCode.INVALID_PARAMETER,
            f"'{name}' must be an ISO-8601 time, e.g. 2021-06-24T09:33:06.60Z.",
        ) from None
