"""`.../definitions/{definitionId}/workflows`: 8x8's workflow-instance management."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.params import (
    body_schema,
    check_definition_id,
    iso_to_ms,
    json_body,
    limit_param,
    model_body,
    offset_param,
    version_param,
)
from relayflow.api.paths import definition_id_path, workflow_id_path
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import (
    ERROR_RESPONSES,
    BulkResultOut,
    ErrorOut,
    WorkflowErrorOut,
    WorkflowEventOut,
    WorkflowInstanceOut,
    error_json,
    event_json,
    instance_json,
    instance_location,
)
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.instances import check_workflow_id
from relayflow.services.operations import BulkActionInput

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/definitions/{definitionId}/workflows",
    tags=["Workflow Instance Management"],
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorOut, "description": "Definition (1300) or workflow (1301) not found."},
}
InstanceStatus = Literal["Runnable", "Suspended", "Complete", "Terminated"]


@router.get(
    "",
    operation_id="get-workflow-instances",
    summary="List workflow instances of a definition, newest first",
    description="Without `version`, the instances of the latest version.",
    response_model=list[WorkflowInstanceOut],
    responses=NOT_FOUND,
)
async def list_instances(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
    limit: int = limit_param(),
    offset: int = offset_param(),
    version: int | None = version_param("Definition version (default: latest)."),
    status: InstanceStatus | None = Query(
        None, description="Runnable, Suspended, Complete, Terminated."
    ),
    startTimeFrom: str | None = Query(
        None, description="ISO-8601 minimum start time.", json_schema_extra={"format": "date-time"}
    ),
    startTimeTo: str | None = Query(
        None, description="ISO-8601 maximum start time.", json_schema_extra={"format": "date-time"}
    ),
) -> Response:
    rows = await context_of(request).instances.list_instances(
        account_id,
        check_definition_id(definitionId),
        version=version,
        status=status,
        started_from_ms=iso_to_ms(startTimeFrom, "startTimeFrom"),
        started_to_ms=iso_to_ms(startTimeTo, "startTimeTo"),
        limit=limit,
        offset=offset,
    )
    return FastJSONResponse([instance_json(row) for row in rows])


@router.post(
    "",
    operation_id="start-workflow-instance",
    summary="Test a workflow definition: start an instance with this body as trigger payload",
    status_code=201,
    response_model=WorkflowInstanceOut,
    responses={**NOT_FOUND, 201: {"headers": {"Location": {"schema": {"type": "string"}}}}},
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
async def start_instance(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
    version: int | None = version_param("Version to run (default: latest)."),
) -> Response:
    definition_id = check_definition_id(definitionId)
    body = await json_body(request, empty_ok=True)
    context = context_of(request)
    workflow_id = await context.instances.start_test(account_id, definition_id, version, body)
    view = await context.instances.get(account_id, definition_id, workflow_id, include_logs=False)
    return FastJSONResponse(
        instance_json(view.instance),
        status_code=201,
        headers={"Location": instance_location(account_id, definition_id, workflow_id)},
    )


@router.post(
    "/bulk",
    operation_id="bulk-workflow-instances",
    summary="Suspend, resume or terminate every instance matching the filters "
    "(relayflow extension)",
    description="The body holds `action` and the instance list's filters (`status`, `version` "
    '(a number, `"all"`, or omitted for the latest), `startTimeFrom`, `startTimeTo`, '
    "`contact`); unknown keys are refused. Instances are read in batches of 100 and each is "
    "changed in its own transaction (a failure midway leaves the earlier ones changed); "
    "`skipped` counts matching instances whose status the action does "
    "not fit.",
    response_model=BulkResultOut,
    responses=NOT_FOUND,
    openapi_extra=body_schema(BulkActionInput),
)
async def bulk_action(
    request: Request,
    definitionId: str = definition_id_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    definition_id = check_definition_id(definitionId)
    body = await model_body(request, BulkActionInput)
    context = context_of(request)
    result = await context.operations.bulk(account_id, definition_id, body.action, body.filters())
    return FastJSONResponse(
        {
            "action": body.action,
            "matched": result.matched,
            "changed": result.changed,
            "skipped": result.skipped,
        }
    )


@router.get(
    "/{workflowId}",
    operation_id="get-instance-status",
    summary="Get a workflow instance (with its step logs when includeLogs=true)",
    response_model=WorkflowInstanceOut,
    responses=NOT_FOUND,
)
async def get_instance(
    request: Request,
    definitionId: str = definition_id_path(),
    workflowId: str = workflow_id_path(),
    account_id: str = Depends(authorized_account),
    includeLogs: bool = Query(False, description="Include the step logs."),
) -> Response:
    view = await context_of(request).instances.get(
        account_id,
        check_definition_id(definitionId),
        check_workflow_id(workflowId),
        include_logs=includeLogs,
    )
    return FastJSONResponse(instance_json(view.instance, view.logs))


@router.patch(
    "/{workflowId}",
    operation_id="patch-workflow-instance",
    summary="Suspend, resume or terminate a workflow instance",
    responses={**NOT_FOUND, 200: {"description": "Status updated."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {
                            "status": {"type": "string", "enum": ["suspend", "resume", "terminate"]}
                        },
                    }
                }
            },
        }
    },
)
async def control_instance(
    request: Request,
    definitionId: str = definition_id_path(),
    workflowId: str = workflow_id_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    definition_id, workflow_id = check_definition_id(definitionId), check_workflow_id(workflowId)
    body = await json_body(request)
    command = body.get("status")
    if not isinstance(command, str) or command.lower() not in ("suspend", "resume", "terminate"):
        raise ApiError(
            ErrorCode.INVALID_PARAMETER, "'status' must be one of: suspend, resume, terminate."
        )
    await context_of(request).instances.control(
        account_id, definition_id, workflow_id, command.lower()
    )
    return Response(status_code=200)


@router.post(
    "/{workflowId}/retry",
    operation_id="retry-workflow-instance",
    summary="Re-run a failed workflow instance from its failed step (relayflow extension)",
    description="For an instance that a failed step terminated: a fresh execution of that "
    "step, keeping the instance's data (the failed execution stays in the log). "
    "`version=latest` moves the instance to the newest version, if the step is there in the "
    "same place. Other instances: 400 (1310).",
    response_model=WorkflowInstanceOut,
    responses=NOT_FOUND,
)
async def retry_instance(
    request: Request,
    definitionId: str = definition_id_path(),
    workflowId: str = workflow_id_path(),
    account_id: str = Depends(authorized_account),
    version: Literal["same", "latest"] = Query(
        "same", description="`same` (default): the instance's version; `latest`: the newest."
    ),
) -> Response:
    context = context_of(request)
    instance = await context.operations.retry(
        account_id,
        check_definition_id(definitionId),
        check_workflow_id(workflowId),
        to_latest=version == "latest",
        by="api",
    )
    return FastJSONResponse(instance_json(instance))


@router.get(
    "/{workflowId}/errors",
    operation_id="get-instance-errors",
    summary="Errors that faulted a workflow instance",
    response_model=list[WorkflowErrorOut],
    responses=NOT_FOUND,
)
async def instance_errors(
    request: Request,
    definitionId: str = definition_id_path(),
    workflowId: str = workflow_id_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    rows = await context_of(request).instances.errors(
        account_id, check_definition_id(definitionId), check_workflow_id(workflowId)
    )
    return FastJSONResponse([error_json(row) for row in rows])


@router.get(
    "/{workflowId}/events",
    operation_id="get-instance-events",
    summary="The instance's audit log of past-tense events (relayflow extension)",
    response_model=list[WorkflowEventOut],
    responses=NOT_FOUND,
)
async def instance_events(
    request: Request,
    definitionId: str = definition_id_path(),
    workflowId: str = workflow_id_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    rows = await context_of(request).instances.events(
        account_id, check_definition_id(definitionId), check_workflow_id(workflowId)
    )
    return FastJSONResponse([event_json(row) for row in rows])
