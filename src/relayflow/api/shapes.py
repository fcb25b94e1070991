"""Response bodies in 8x8's exact shapes, plus pydantic models that document them in OpenAPI.

Handlers build plain dicts (fast, orjson) with the functions here; the models exist so that
`/openapi.json` describes the same shapes, and a test checks both against 8x8's schemas.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from relayflow.audit import AuditEvent
from relayflow.clock import iso_from_ms
from relayflow.store.definitions import DefinitionRow
from relayflow.store.instance_reads import ErrorRow, EventRow, InstanceRow, LogRow
from relayflow.store.messages import MessageRow
from relayflow.store.receipts import Receipt


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


def instance_json(instance: InstanceRow, logs: list[LogRow] | None = None) -> dict[str, Any]:
    """8x8's `workflowInstance` (with `logs` when asked: `workflowInstanceWithLogs`)."""
    body: dict[str, Any] = {
        "workflowId": instance.id,
        "data": instance.data,
        "definitionId": instance.definition_id,
        "version": instance.version,
        "status": instance.status,
        "startedAt": iso_from_ms(instance.started_at_ms),
        "completedAt": iso_from_ms(instance.completed_at_ms) if instance.completed_at_ms else None,
    }
    if logs is not None:
        body["logs"] = [log_json(log) for log in logs]
    return body


def log_json(log: LogRow) -> dict[str, Any]:
    """8x8's `workflowLog`, plus `retry` (an extension) for a step that met transient
    failures: how many attempts, the last error, and while it retries, the next attempt."""
    body: dict[str, Any] = {
        "id": log.id,
        "stepName": log.step_id,
        "startedAt": iso_from_ms(log.started_at_ms) if log.started_at_ms else None,
        "completedAt": iso_from_ms(log.completed_at_ms) if log.completed_at_ms else None,
        "status": log.status,
    }
    if log.retry is not None:
        next_at = log.retry.get("nextAttemptAt")
        body["retry"] = {
            "attempts": log.attempts,
            "lastError": log.retry.get("lastError"),
            "nextAttemptAt": (
                iso_from_ms(next_at)
                if isinstance(next_at, int) and log.status == "Running"
                else None
            ),
        }
    return body


def instance_location(account_id: str, definition_id: str, workflow_id: str) -> str:
    return f"/api/v1/accounts/{account_id}/definitions/{definition_id}/workflows/{workflow_id}"


def error_json(error: ErrorRow) -> dict[str, Any]:
    return {
        "workflowId": error.instance_id,
        "step": error.step_id,
        "message": error.message,
        "errorTime": iso_from_ms(error.error_time_ms),
    }


def event_json(event: EventRow) -> dict[str, Any]:
    return {
        "type": event.type,
        "step": event.step_id,
        "at": iso_from_ms(event.at_ms),
        "detail": event.detail,
    }


def message_json(message: MessageRow) -> dict[str, Any]:
    return {
        "umid": message.id,
        "channel": message.channel,
        "provider": message.provider,
        "subAccountId": message.sub_account_id,
        "recipient": message.recipient,
        "clientMessageId": message.client_message_id,
        "request": message.request,
        "response": message.response,
        "status": message.status,
        "workflowId": message.instance_id,
        "stepLogId": message.pointer_id,
        "createdAt": iso_from_ms(message.created_at_ms),
    }


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "state": receipt.state,
        "detail": receipt.detail,
        "errorCode": receipt.error_code,
        "errorMessage": receipt.error_message,
        "timestamp": receipt.status_at,
        "receivedAt": iso_from_ms(receipt.received_at_ms),
    }


class StepRetryOut(BaseModel):
    attempts: int = Field(description="Attempts made so far (deferred sends not counted).")
    lastError: str | None = Field(description="The last transient failure.")
    nextAttemptAt: str | None = Field(description="While the step retries: its next attempt.")


class WorkflowLogOut(BaseModel):
    id: str = Field(description="Step execution id.")
    stepName: str = Field(description="The step's id in the definition.")
    startedAt: str | None
    completedAt: str | None
    status: str = Field(
        description="Pending, Running, Complete, Sleeping, WaitingForEvent, Failed, Cancelled."
    )
    retry: StepRetryOut | None = Field(
        default=None,
        description="Extension: present once the step met a transient failure (issue 9).",
    )


class WorkflowInstanceOut(BaseModel):
    workflowId: str
    data: dict[str, Any]
    definitionId: str
    version: int
    status: str = Field(description="Runnable, Suspended, Complete or Terminated.")
    startedAt: str
    completedAt: str | None
    logs: list[WorkflowLogOut] | None = Field(default=None, description="With `includeLogs=true`.")


class WorkflowErrorOut(BaseModel):
    workflowId: str
    step: str
    message: str
    errorTime: str


class BulkResultOut(BaseModel):
    action: str = Field(description="suspend, resume or terminate.")
    matched: int = Field(description="Instances matching the filters.")
    changed: int = Field(description="Instances the action changed.")
    skipped: int = Field(description="Matching instances in a status the action does not fit.")


class WorkflowEventOut(BaseModel):
    type: str = Field(
        description="What happened, in the past tense: " + ", ".join(AuditEvent) + "."
    )
    step: str | None = Field(description="The step's id, for step events.")
    at: str = Field(description="When (ISO-8601 UTC).")
    detail: dict[str, Any] | None


class MessageOut(BaseModel):
    umid: str = Field(description="Message id (8x8's `umid`, or the sandbox's).")
    channel: str = Field(description="sms, chatapps or voice.")
    provider: str = Field(description="sandbox or 8x8.")
    subAccountId: str | None
    recipient: str | None
    clientMessageId: str | None
    request: dict[str, Any] = Field(description="The body sent to the provider.")
    response: dict[str, Any] | None = Field(description="The provider's answer.")
    status: str
    workflowId: str | None
    stepLogId: str | None = Field(description="The step execution that sent it.")
    createdAt: str


class ReceiptOut(BaseModel):
    state: str = Field(description="8x8's delivery state, e.g. delivered, undelivered.")
    detail: str | None
    errorCode: int | None
    errorMessage: str | None
    timestamp: str | None = Field(description="When 8x8 says the state was reached.")
    receivedAt: str = Field(description="When relayflow received the receipt.")


class MessageWithReceiptsOut(MessageOut):
    receipts: list[ReceiptOut] = Field(description="Delivery receipts, oldest first.")


class UsageOut(BaseModel):
    accountId: str
    allowedWorkflowCount: int | None = Field(description="The monthly quota; null: none.")
    allowedOverage: bool
    overagePrice: float
    executedWorkflowCount: int = Field(description="Workflows started this month.")
    countStartedMonth: int
    countStartedYear: int


class UsageMonthOut(BaseModel):
    id: str
    accountId: str
    executedWorkflowCount: int
    month: int
    year: int


class TriggerResultOut(BaseModel):
    workflowIds: list[str] = Field(description="The instances started (extension).")


class RouteResultOut(BaseModel):
    """What an inbound sandbox event did: the 8x8-shaped event routed, and its effect."""

    event: dict[str, Any] = Field(description="The event as 8x8 would have posted it.")
    started: list[str] = Field(description="Workflow ids started by the event.")
    resumed: list[str] = Field(description="Workflow ids whose wait the event ended.")
    duplicate: bool = Field(description="The event id was seen before: nothing happened.")
