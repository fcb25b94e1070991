"""`relayflow instances`: list, show (and follow), suspend, resume, terminate, retry and
bulk-act on the instances of a running relayflow."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import typer

from relayflow.api.shapes import WorkflowEventOut, WorkflowInstanceOut
from relayflow.cli.apps import instances_app
from relayflow.cli.common import fail
from relayflow.cli.remote import (
    JsonOption,
    KeyOption,
    ProfileOption,
    RemoteAccountOption,
    ServerOption,
    connected,
    emit,
    table,
)
from relayflow.client import RelayflowClient

DefinitionArgument = Annotated[str, typer.Argument(metavar="DEF_ID", help="Definition id.")]
WorkflowArgument = Annotated[str, typer.Argument(metavar="WF_ID", help="Workflow (instance) id.")]
Status = Literal["Runnable", "Suspended", "Complete", "Terminated"]
ENDED = ("Complete", "Terminated")
FOLLOW_POLL_S = 1.0


@instances_app.command("list")
def instances_list(
    definition_id: DefinitionArgument,
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Of this version [the latest].")
    ] = None,
    started_from: Annotated[
        str | None, typer.Option("--from", help="Started at or after (ISO-8601).")
    ] = None,
    started_to: Annotated[
        str | None, typer.Option("--to", help="Started at or before (ISO-8601).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many [every one].")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """A definition's instances, newest first, every page of them (or --limit)."""
    with connected(server, key, account, profile) as client:
        found: list[WorkflowInstanceOut] = []
        for instance in client.instances.iterate(
            definition_id,
            version=version,
            status=status,
            start_time_from=started_from,
            start_time_to=started_to,
        ):
            if limit is not None and len(found) >= limit:
                break
            found.append(instance)
    rows = [[i.workflowId, i.version, i.status, i.startedAt, i.completedAt] for i in found]
    columns = ["workflow", "version", "status", "started", "completed"]
    emit(found, lambda: table(f"instances of {definition_id}", columns, rows), json_output)


def event_line(event: WorkflowEventOut) -> str:
    step = f" {event.step}" if event.step else ""
    detail = ""
    if event.detail:
        shown = {k: v for k, v in event.detail.items() if k != "worker"}
        detail = "  " + ", ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""
    return f"{event.at}  {event.type}{step}{detail}"


def show_instance(instance: WorkflowInstanceOut) -> None:
    typer.echo(
        f"{instance.workflowId}  {instance.status}  version {instance.version}  "
        f"started {instance.startedAt}"
        + (f"  ended {instance.completedAt}" if instance.completedAt else "")
    )


@instances_app.command("show")
def instances_show(
    definition_id: DefinitionArgument,
    workflow_id: WorkflowArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print the timeline as it runs, until it ends.")
    ] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """An instance, its step log and its timeline (the audit events)."""
    with connected(server, key, account, profile) as client:
        instance = client.instances.get(definition_id, workflow_id, include_logs=True)
        events = client.instances.events(definition_id, workflow_id)
        if json_output and not follow:
            emit({"instance": instance.model_dump(mode="json"), "events": [
                e.model_dump(mode="json") for e in events]}, None, True)  # fmt: skip
            return
        show_instance(instance)
        for log in instance.logs or []:
            typer.echo(f"  step {log.stepName}: {log.status}")
        typer.echo("timeline:")
        for event in events:
            print_event(event, json_output)
        if follow:
            follow_timeline(client, definition_id, workflow_id, instance, len(events), json_output)


def print_event(event: WorkflowEventOut, json_output: bool) -> None:
    if json_output:
        emit(event, None, True)
    else:
        typer.echo("  " + event_line(event))


def follow_timeline(
    client: RelayflowClient,
    definition_id: str,
    workflow_id: str,
    instance: WorkflowInstanceOut,
    seen: int,
    json_output: bool,
) -> None:
    """Poll the audit log, printing what is new, until the instance has ended (Ctrl-C stops)."""
    try:
        while instance.status not in ENDED:
            time.sleep(FOLLOW_POLL_S)
            events = client.instances.events(definition_id, workflow_id)
            for event in events[seen:]:
                print_event(event, json_output)
            seen = len(events)
            instance = client.instances.get(definition_id, workflow_id)
        events = client.instances.events(definition_id, workflow_id)
        for event in events[seen:]:  # what happened between the last poll and the end
            print_event(event, json_output)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if not json_output:
        typer.echo(f"{instance.status} at {instance.completedAt}")


def control(
    command: Literal["suspend", "resume", "terminate"],
    definition_id: str,
    workflow_id: str,
    connection: tuple[Any, ...],
) -> None:
    with connected(*connection) as client:
        getattr(client.instances, command)(definition_id, workflow_id)
        instance = client.instances.get(definition_id, workflow_id)
    typer.echo(f"{workflow_id} {instance.status}")


@instances_app.command("suspend")
def instances_suspend(
    definition_id: DefinitionArgument,
    workflow_id: WorkflowArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Suspend a Runnable instance: its timers and waits hold until it is resumed."""
    control("suspend", definition_id, workflow_id, (server, key, account, profile))


@instances_app.command("resume")
def instances_resume(
    definition_id: DefinitionArgument,
    workflow_id: WorkflowArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Resume a Suspended instance."""
    control("resume", definition_id, workflow_id, (server, key, account, profile))


@instances_app.command("terminate")
def instances_terminate(
    definition_id: DefinitionArgument,
    workflow_id: WorkflowArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Terminate an instance: final."""
    control("terminate", definition_id, workflow_id, (server, key, account, profile))


@instances_app.command("retry")
def instances_retry(
    definition_id: DefinitionArgument,
    workflow_id: WorkflowArgument,
    latest: Annotated[
        bool, typer.Option("--latest", help="On the definition's newest version.")
    ] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Re-run an instance a failed step terminated, from that step."""
    with connected(server, key, account, profile) as client:
        instance = client.instances.retry(definition_id, workflow_id, latest=latest)
    typer.echo(f"{workflow_id} {instance.status} on version {instance.version}")


@instances_app.command("bulk")
def instances_bulk(
    definition_id: DefinitionArgument,
    action: Annotated[
        Literal["suspend", "resume", "terminate"],
        typer.Option("--action", help="What to do to every matching instance."),
    ],
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help='A version number or "all" [the latest].')
    ] = None,
    started_from: Annotated[
        str | None, typer.Option("--from", help="Started at or after (ISO-8601).")
    ] = None,
    started_to: Annotated[
        str | None, typer.Option("--to", help="Started at or before (ISO-8601).")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="A phone number or chat user id.")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Suspend, resume or terminate every instance matching the filters; prints the counts."""
    chosen: int | Literal["all"] | None = None
    if version == "all":
        chosen = "all"
    elif version is not None:
        if not version.isdigit() or int(version) < 1:
            raise fail('--version must be a version number or "all"', 2)
        chosen = int(version)
    with connected(server, key, account, profile) as client:
        try:
            result = client.instances.bulk(
                definition_id,
                action,
                status=status,
                version=chosen,
                start_time_from=started_from,
                start_time_to=started_to,
                contact=contact,
            )
        except ValueError as error:  # the client checks the filters before sending
            raise fail(str(error), 2) from None
    if json_output:
        emit(result, None, True)
    else:
        typer.echo(
            f"{action}: {result.matched} matched, {result.changed} changed, "
            f"{result.skipped} skipped"
        )
