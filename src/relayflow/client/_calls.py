"""One `Call` per API operation: paths, query names and response models in one place."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from relayflow.api.shapes import (
    BulkResultOut,
    DefinitionOut,
    MessageOut,
    MessageWithReceiptsOut,
    RouteResultOut,
    TriggerResultOut,
    UsageMonthOut,
    UsageOut,
    ValidationReportOut,
    WorkflowErrorOut,
    WorkflowEventOut,
    WorkflowInstanceOut,
)
from relayflow.client._core import Call, body_json, model, models, nothing, query, segment
from relayflow.model.definition import DefinitionInput
from relayflow.services.inputs import Dtmf, InboundChat, InboundSms
from relayflow.services.operations import BulkActionInput

DefinitionBody = DefinitionInput | Mapping[str, Any]
InstanceStatus = Literal["Runnable", "Suspended", "Complete", "Terminated"]
Command = Literal["suspend", "resume", "terminate"]
Channel = Literal["sms", "chatapps", "voice"]
Instant = datetime | str


def iso(value: Instant | None) -> str | None:
    """An ISO-8601 query value; a naive datetime is taken as UTC (as the API does)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _definitions(definition_id: str | None = None) -> str:
    return "/definitions" if definition_id is None else f"/definitions/{segment(definition_id)}"


def _workflows(definition_id: str, workflow_id: str | None = None) -> str:
    base = f"{_definitions(definition_id)}/workflows"
    return base if workflow_id is None else f"{base}/{segment(workflow_id)}"


# --- definitions ------------------------------------------------------------------------------


def create_definition(body: DefinitionBody) -> Call[DefinitionOut]:
    return Call("POST", _definitions(), model(DefinitionOut), body=body_json(body))


def list_definitions(limit: int, offset: int) -> Call[list[DefinitionOut]]:
    return Call("GET", _definitions(), models(DefinitionOut), query(limit=limit, offset=offset))


def definition_versions(definition_id: str, limit: int, offset: int) -> Call[list[DefinitionOut]]:
    return Call(
        "GET", _definitions(definition_id), models(DefinitionOut), query(limit=limit, offset=offset)
    )


def update_definition(definition_id: str, body: DefinitionBody) -> Call[DefinitionOut]:
    return Call("PUT", _definitions(definition_id), model(DefinitionOut), body=body_json(body))


def delete_definition(definition_id: str, version: int | None) -> Call[None]:
    return Call("DELETE", _definitions(definition_id), nothing, query(version=version))


def validate_definition(body: DefinitionBody) -> Call[ValidationReportOut]:
    return Call(
        "POST", f"{_definitions()}/validate", model(ValidationReportOut), body=body_json(body)
    )


# --- instances --------------------------------------------------------------------------------


def list_instances(
    definition_id: str,
    *,
    version: int | None,
    status: InstanceStatus | None,
    start_time_from: Instant | None,
    start_time_to: Instant | None,
    limit: int,
    offset: int,
) -> Call[list[WorkflowInstanceOut]]:
    return Call(
        "GET",
        _workflows(definition_id),
        models(WorkflowInstanceOut),
        query(
            limit=limit,
            offset=offset,
            version=version,
            status=status,
            startTimeFrom=iso(start_time_from),
            startTimeTo=iso(start_time_to),
        ),
    )


def get_instance(
    definition_id: str, workflow_id: str, include_logs: bool
) -> Call[WorkflowInstanceOut]:
    return Call(
        "GET",
        _workflows(definition_id, workflow_id),
        model(WorkflowInstanceOut),
        query(includeLogs=include_logs),
    )


def instance_errors(definition_id: str, workflow_id: str) -> Call[list[WorkflowErrorOut]]:
    return Call("GET", f"{_workflows(definition_id, workflow_id)}/errors", models(WorkflowErrorOut))


def instance_events(definition_id: str, workflow_id: str) -> Call[list[WorkflowEventOut]]:
    return Call("GET", f"{_workflows(definition_id, workflow_id)}/events", models(WorkflowEventOut))


def control_instance(definition_id: str, workflow_id: str, command: Command) -> Call[None]:
    return Call("PATCH", _workflows(definition_id, workflow_id), nothing, body={"status": command})


def start_instance(
    definition_id: str, data: Mapping[str, Any] | None, version: int | None
) -> Call[WorkflowInstanceOut]:
    return Call(
        "POST",
        _workflows(definition_id),
        model(WorkflowInstanceOut),
        query(version=version),
        body=dict(data or {}),
    )


def retry_instance(definition_id: str, workflow_id: str, latest: bool) -> Call[WorkflowInstanceOut]:
    return Call(
        "POST",
        f"{_workflows(definition_id, workflow_id)}/retry",
        model(WorkflowInstanceOut),
        query(version="latest" if latest else "same"),
    )


def bulk_action(definition_id: str, body: BulkActionInput) -> Call[BulkResultOut]:
    return Call(
        "POST", f"{_workflows(definition_id)}/bulk", model(BulkResultOut), body=body_json(body)
    )


def bulk_body(
    action: Command,
    status: InstanceStatus | None,
    version: int | Literal["all"] | None,
    start_time_from: Instant | None,
    start_time_to: Instant | None,
    contact: str | None,
) -> BulkActionInput:
    """The server's own model, so bad filters fail here (pydantic's ValueError) unsent."""
    return BulkActionInput.model_validate(
        {
            "action": action,
            "status": status,
            "version": version,
            "startTimeFrom": iso(start_time_from),
            "startTimeTo": iso(start_time_to),
            "contact": contact,
        }
    )


# --- triggers, sandbox, usage, messages -----------------------------------------------------


def http_request_trigger(
    data: Mapping[str, Any], sub_account_id: str | None
) -> Call[TriggerResultOut]:
    return Call(
        "POST",
        "/triggers/http_request",
        model(TriggerResultOut),
        query(subAccountId=sub_account_id),
        body=dict(data),
    )


def inbound_sms(
    sender: str, to: str, text: str, sub_account_id: str | None
) -> Call[RouteResultOut]:
    body = InboundSms.model_validate(
        {"from": sender, "to": to, "text": text, "subAccountId": sub_account_id}
    )
    return Call("POST", "/sandbox/inbound/sms", model(RouteResultOut), body=body_json(body))


def inbound_chat(
    channel: str,
    sender: str,
    text: str | None,
    payload: str | None,
    sub_account_id: str | None,
) -> Call[RouteResultOut]:
    body = InboundChat.model_validate(
        {
            "channel": channel,
            "from": sender,
            "text": text,
            "payload": payload,
            "subAccountId": sub_account_id,
        }
    )
    return Call("POST", "/sandbox/inbound/chatapps", model(RouteResultOut), body=body_json(body))


def dtmf(digits: str, client_request_id: str | None, uid: str | None) -> Call[RouteResultOut]:
    body = Dtmf.model_validate({"digits": digits, "clientRequestId": client_request_id, "uid": uid})
    return Call("POST", "/sandbox/dtmf", model(RouteResultOut), body=body_json(body))


def outbox(
    limit: int, offset: int, channel: Channel | None, workflow_id: str | None
) -> Call[list[MessageOut]]:
    return Call(
        "GET",
        "/sandbox/outbox",
        models(MessageOut),
        query(limit=limit, offset=offset, channel=channel, workflowId=workflow_id),
    )


def current_usage() -> Call[UsageOut]:
    return Call("GET", "/usage", model(UsageOut))


def usage_history() -> Call[list[UsageMonthOut]]:
    return Call("GET", "/usage/history", models(UsageMonthOut))


def list_messages(limit: int, offset: int, workflow_id: str | None) -> Call[list[MessageOut]]:
    return Call(
        "GET",
        "/messages",
        models(MessageOut),
        query(limit=limit, offset=offset, workflowId=workflow_id),
    )


def get_message(umid: str) -> Call[MessageWithReceiptsOut]:
    return Call("GET", f"/messages/{segment(umid)}", model(MessageWithReceiptsOut))
