"""The console's pages: definitions, versions, instances. Every handler reads and writes through
`services/` (the same ones as the REST API) with the account of the signed-in session, so a
console URL of another account finds nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from relayflow.console.graph import layout, render_svg
from relayflow.console.jsonlines import line_of, path_lines
from relayflow.console.render import context_of, form_of, json_of, render, session_of
from relayflow.console.views import (
    FAILURE_EVENTS,
    INSTANCE_STATUSES,
    FilterError,
    contact_needle,
    definition_body,
    diff_versions,
    parse_cursor,
    parse_int,
    parse_time,
    pretty,
)
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.instances import check_workflow_id
from relayflow.services.operations import APPLIES_TO, InstanceFilter
from relayflow.store.definitions import DefinitionRow

LIST_LIMIT = 500
INSTANCE_PAGE = 100
LOG_PAGE = 100
EVENT_PAGE = 200
LIVE_POLL_S = 1.0
LIVE_MAX_S = 25.0


async def home(request: Request) -> Response:
    return RedirectResponse("/console/definitions", status_code=303)


async def definitions(request: Request) -> Response:
    session = await session_of(request)
    context = context_of(request)
    rows = await context.definitions.list_latest(session.account_id, LIST_LIMIT, 0)
    counts = await context.instances.counts(session.account_id, [row.id for row in rows])
    return render(
        request,
        "definitions.html",
        session,
        definitions=rows,
        counts=counts,
        statuses=INSTANCE_STATUSES,
    )


async def new_definition(request: Request) -> Response:
    session = await session_of(request)
    if request.method == "POST":
        form = await form_of(request, session)
        text = str(form.get("body", ""))
        try:
            raw = _parse_body(text)
            row = await context_of(request).definitions.create(session.account_id, raw)
        except ApiError as error:
            return render(
                request,
                "editor.html",
                session,
                status_code=error.http_status,
                title="New definition",
                text=text,
                error=error,
                action="/console/definitions/new",
            )
        return RedirectResponse(f"/console/definitions/{row.id}", status_code=303)
    return render(
        request,
        "editor.html",
        session,
        title="New definition",
        text="",
        error=None,
        action="/console/definitions/new",
        gallery=True,
    )


def _parse_body(text: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ApiError(
            ErrorCode.INVALID_BODY, f"The definition is not valid JSON: {error}."
        ) from None
    if not isinstance(raw, dict):
        raise ApiError(ErrorCode.INVALID_BODY, "The definition must be a JSON object.")
    return raw


async def _version(
    request: Request, account_id: str, definition_id: str, version: int | None
) -> tuple[DefinitionRow, list[DefinitionRow]]:
    """The version asked for (the latest by default) and the whole history, newest first."""
    rows = await context_of(request).definitions.history(account_id, definition_id, LIST_LIMIT, 0)
    if not rows:
        raise ApiError(ErrorCode.DEFINITION_NOT_FOUND, f"Definition {definition_id} not found.")
    if version is None:
        return rows[0], rows
    for row in rows:
        if row.version == version:
            return row, rows
    raise ApiError(
        ErrorCode.DEFINITION_NOT_FOUND, f"Definition {definition_id} has no version {version}."
    )


async def definition(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    version = parse_int("version", request.query_params.get("version"), low=1)
    row, rows = await _version(request, session.account_id, definition_id, version)
    graph = layout(row.steps)
    return render(
        request,
        "definition.html",
        session,
        row=row,
        latest=rows[0],
        versions=rows,
        svg=render_svg(graph),
        text=pretty(definition_body(row)),
    )


async def save_definition(request: Request) -> Response:
    """Save the editor's text as a new version (8x8's PUT)."""
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    form = await form_of(request, session)
    text = str(form.get("body", ""))
    context = context_of(request)
    try:
        raw = _parse_body(text)
        await context.definitions.update(session.account_id, definition_id, raw)
    except ApiError as error:
        if error.code == ErrorCode.DEFINITION_NOT_FOUND:
            raise
        row, rows = await _version(request, session.account_id, definition_id, None)
        return render(
            request,
            "definition.html",
            session,
            status_code=error.http_status,
            row=row,
            latest=rows[0],
            versions=rows,
            svg=render_svg(layout(row.steps)),
            text=text,
            error=error,
        )
    return RedirectResponse(f"/console/definitions/{definition_id}", status_code=303)


async def set_status(request: Request) -> Response:
    """Enable or disable: a new version with the other status, as 8x8's API does it."""
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    form = await form_of(request, session)
    status = str(form.get("status", ""))
    if status not in ("enabled", "disabled"):
        raise ApiError(ErrorCode.INVALID_PARAMETER, "status must be enabled or disabled.")
    row, _ = await _version(request, session.account_id, definition_id, None)
    body = {**definition_body(row), "status": status}
    await context_of(request).definitions.update(session.account_id, definition_id, body)
    return RedirectResponse(f"/console/definitions/{definition_id}", status_code=303)


async def delete_definition(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    await form_of(request, session)
    await context_of(request).definitions.delete(session.account_id, definition_id, None)
    return RedirectResponse("/console/definitions", status_code=303)


async def versions(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    _, rows = await _version(request, session.account_id, definition_id, None)
    by_version = {row.version: row for row in rows}
    a = parse_int("a", request.query_params.get("a"), low=1)
    b = parse_int("b", request.query_params.get("b"), low=1)
    if b is None:
        b = rows[0].version
    if a is None:
        a = max((v for v in by_version if v < b), default=b)
    missing = [v for v in (a, b) if v not in by_version]
    if missing:
        raise FilterError(f"Definition {definition_id} has no version {missing[0]}.")
    return render(
        request,
        "versions.html",
        session,
        latest=rows[0],
        versions=rows,
        a=a,
        b=b,
        diff=diff_versions(by_version[a], by_version[b]),
    )


async def workflows(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    query = request.query_params
    context = context_of(request)
    _, rows = await _version(request, session.account_id, definition_id, None)
    filters = _instance_filter(query)
    offset = parse_int("offset", query.get("offset"), high=10**7) or 0
    before = parse_cursor(query.get("before"))
    found = await context.instances.list_instances(
        session.account_id,
        definition_id,
        version=filters.version,
        status=filters.status,
        started_from_ms=filters.started_from_ms,
        started_to_ms=filters.started_to_ms,
        limit=INSTANCE_PAGE + 1,
        offset=offset,
        all_versions=filters.all_versions,
        contact=filters.contact,
        before=before,
    )
    shown = found[:INSTANCE_PAGE]
    return render(
        request,
        "workflows.html",
        session,
        latest=rows[0],
        versions=rows,
        instances=shown,
        more=len(found) > INSTANCE_PAGE,
        older=f"{shown[-1].started_at_ms}.{shown[-1].id}" if shown else "",
        paged=offset > 0 or before is not None,
        offset=offset,
        page=INSTANCE_PAGE,
        filters={key: query.get(key, "") for key in _FILTERS},
        statuses=INSTANCE_STATUSES,
        bulk_done=_bulk_notice(query),
    )


_FILTERS = ("status", "version", "startTimeFrom", "startTimeTo", "contact")
BULK_LABELS = {"suspend": "Suspend", "resume": "Resume", "terminate": "Terminate"}


def _instance_filter(query: Mapping[str, str]) -> InstanceFilter:
    """The instance list's query-string filters (400 page for a bad one)."""
    status = query.get("status") or None
    if status is not None and status not in INSTANCE_STATUSES:
        raise FilterError(f"status must be one of {', '.join(INSTANCE_STATUSES)}.")
    all_versions = query.get("version") == "all"
    return InstanceFilter(
        version=None if all_versions else parse_int("version", query.get("version"), low=1),
        all_versions=all_versions,
        status=status,
        started_from_ms=parse_time("startTimeFrom", query.get("startTimeFrom")),
        started_to_ms=parse_time("startTimeTo", query.get("startTimeTo")),
        contact=contact_needle(query.get("contact")),
    )


def _bulk_action(value: object) -> str:
    if value not in BULK_LABELS:
        raise FilterError(f"action must be one of {', '.join(BULK_LABELS)}.")
    return str(value)


def _bulk_notice(query: Mapping[str, str]) -> str | None:
    """The list's message after a bulk action (the redirect carries its counts)."""
    action = query.get("done")
    if action not in BULK_LABELS:
        return None
    changed = parse_int("changed", query.get("changed")) or 0
    skipped = parse_int("skipped", query.get("skipped")) or 0
    return f"{BULK_LABELS[action]}: {changed} changed, {skipped} skipped (status did not fit)."


async def bulk(request: Request) -> Response:
    """Bulk suspend / resume / terminate of every instance matching the list's filters: GET
    shows how many the action will change (the confirmation), the POSTed form applies it."""
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    context = context_of(request)
    actions = context.operations
    _, rows = await _version(request, session.account_id, definition_id, None)
    if request.method == "POST":
        form = await form_of(request, session)
        fields = {key: str(form.get(key, "")) for key in _FILTERS}
        action = _bulk_action(form.get("action"))
        result = await actions.bulk(
            session.account_id, definition_id, action, _instance_filter(fields)
        )
        done = urlencode(
            {
                **{key: value for key, value in fields.items() if value},
                "done": action,
                "changed": result.changed,
                "skipped": result.skipped,
            }
        )
        return RedirectResponse(
            f"/console/definitions/{definition_id}/workflows?{done}", status_code=303
        )
    query = request.query_params
    action = _bulk_action(query.get("action"))
    preview = await actions.preview(
        session.account_id, definition_id, action, _instance_filter(query)
    )
    filters = {key: query.get(key, "") for key in _FILTERS}
    return render(
        request,
        "workflows_bulk.html",
        session,
        latest=rows[0],
        versions=rows,
        action=action,
        label=BULK_LABELS[action],
        past={"suspend": "suspended", "resume": "resumed", "terminate": "terminated"}[action],
        applies_to=APPLIES_TO[action],
        preview=preview,
        filters=filters,
        back=urlencode({key: value for key, value in filters.items() if value}),
    )


async def workflow(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    workflow_id = check_workflow_id(request.path_params["workflow_id"])
    query = request.query_params
    context = context_of(request)
    account = session.account_id
    log_offset = parse_int("logs", query.get("logs"), high=10**7) or 0
    event_offset = parse_int("events", query.get("events"), high=10**7) or 0
    failed_only = query.get("failed") == "1"
    instance, logs, log_total = await context.instances.log_page(
        account, definition_id, workflow_id, limit=LOG_PAGE, offset=log_offset
    )
    events, event_total = await context.instances.event_page(
        account,
        definition_id,
        workflow_id,
        limit=EVENT_PAGE,
        offset=event_offset,
        kinds=FAILURE_EVENTS if failed_only else None,
    )
    errors = await context.instances.errors(account, definition_id, workflow_id)
    counts, taken = await context.instances.path(account, definition_id, workflow_id)
    row, _ = await _version(request, account, definition_id, instance.version)
    sent = await context.messages.for_steps(account, [log.id for log in logs])
    svg = render_svg(layout(row.steps), counts=counts, taken=taken)
    progress = await context.instances.progress(account, definition_id, workflow_id)
    actions = context.operations
    retryable = await actions.retryable(account, definition_id, workflow_id)
    latest = await _version(request, account, definition_id, None) if retryable else None
    return render(
        request,
        "workflow.html",
        session,
        instance=instance,
        definition=row,
        logs=logs,
        log_total=log_total,
        log_offset=log_offset,
        log_page=LOG_PAGE,
        events=events,
        event_total=event_total,
        event_offset=event_offset,
        event_page=EVENT_PAGE,
        failed_only=failed_only,
        errors=errors,
        svg=svg,
        messages=sent,
        data_text=pretty(instance.data),
        pretty=pretty,
        progress=progress_mark(progress),
        retryable=retryable,
        latest_version=latest[0].version if latest else None,
    )


async def workflow_command(request: Request) -> Response:
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    workflow_id = check_workflow_id(request.path_params["workflow_id"])
    command = request.path_params["command"]
    form = await form_of(request, session)
    instances = context_of(request).instances
    if command == "skip-waits":
        await instances.skip_waits(session.account_id, definition_id, workflow_id)
    elif command == "retry":
        version = form.get("version", "same")
        if version not in ("same", "latest"):
            raise ApiError(ErrorCode.INVALID_PARAMETER, "version must be same or latest.")
        context = context_of(request)
        await context.operations.retry(
            session.account_id,
            definition_id,
            workflow_id,
            to_latest=version == "latest",
            by="console",
        )
    elif command in ("suspend", "resume", "terminate"):
        await instances.control(session.account_id, definition_id, workflow_id, command)
    else:
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, "Unknown command.")
    return RedirectResponse(
        f"/console/definitions/{definition_id}/workflows/{workflow_id}", status_code=303
    )


async def find_workflow(request: Request) -> Response:
    """`/console/workflows/{id}`: where an outbox bubble links to, resolved to the canonical
    instance URL (the step log entry as fragment)."""
    session = await session_of(request)
    instance = await context_of(request).instances.find(
        session.account_id, request.path_params["workflow_id"]
    )
    step = request.query_params.get("step", "")
    anchor = f"#log-{step}" if step and all(c.isalnum() or c == "-" for c in step) else ""
    return RedirectResponse(
        f"/console/definitions/{instance.definition_id}/workflows/{instance.id}{anchor}",
        status_code=303,
    )


async def live(request: Request) -> Response:
    """Server-sent events: `change` whenever the instance's status or audit log grows, so the
    page refreshes its sections without reloading; `end` once the instance has ended. A stream
    lasts at most `LIVE_MAX_S` (`again`: the page reconnects with what it has seen), so open
    pages never hold a shutting-down server for long."""
    session = await session_of(request)
    definition_id = request.path_params["definition_id"]
    workflow_id = check_workflow_id(request.path_params["workflow_id"])
    instances = context_of(request).instances
    stopping = context_of(request).stopping
    current = await instances.progress(session.account_id, definition_id, workflow_id)
    seen = request.query_params.get("seen") or progress_mark(current)

    async def stream() -> AsyncIterator[bytes]:
        nonlocal seen
        yield b"retry: 2000\n\n"
        loop = asyncio.get_running_loop()
        until = loop.time() + LIVE_MAX_S
        now = current
        while True:
            if progress_mark(now) != seen:
                seen = progress_mark(now)
                yield f"event: change\ndata: {json.dumps({'status': now[0]})}\n\n".encode()
            if now[0] in ("Complete", "Terminated"):
                yield b"event: end\ndata: {}\n\n"
                return
            if loop.time() >= until:
                yield b"event: again\ndata: {}\n\n"
                return
            yield b": keep-alive\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), LIVE_POLL_S)
            if stopping.is_set():  # the server is stopping: the page reconnects later
                yield b"event: again\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            try:
                now = await instances.progress(session.account_id, definition_id, workflow_id)
            except ApiError:
                yield b"event: gone\ndata: {}\n\n"
                return

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def progress_mark(progress: tuple[str, int]) -> str:
    """What a live page has seen: the status and the number of audit events."""
    return f"{progress[0]}:{progress[1]}"


async def validate(request: Request) -> Response:
    """Live validation for the editor: the validate service's problems, each with the line
    of the user's text it points at."""
    session = await session_of(request)
    body = await json_of(request, session)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ApiError(ErrorCode.INVALID_PARAMETER, 'Send {"text": "<the definition>"}.')
    try:
        raw = json.loads(text)
    except ValueError as error:
        problem = _problem(f"Not valid JSON: {error}", getattr(error, "lineno", None))
        return _json({"valid": False, "errors": [problem]})
    if not isinstance(raw, dict):
        problem = _problem("The definition must be a JSON object.", 1)
        return _json({"valid": False, "errors": [problem]})
    result = context_of(request).definitions.validate(raw)
    lines = path_lines(text)
    problems = [
        {**problem.as_json(), "line": line_of(lines, problem.path)} for problem in result.problems
    ]
    return _json({"valid": result.valid, "errors": problems})


def _problem(message: str, line: int | None) -> dict[str, Any]:
    return {"code": int(ErrorCode.INVALID_BODY), "message": message, "path": "", "line": line}


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status_code, media_type="application/json")
