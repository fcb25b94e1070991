"""`relayflow definitions`: list, get, push, pull, enable, disable, delete and diff the
definitions of a running relayflow (deploy from CI: `relayflow definitions push flow.json`)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from relayflow.api.shapes import DefinitionOut
from relayflow.cli.apps import definitions_app
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
from relayflow.jsonbody import JsonBodyError, parse_json_object

PAGE = 500  # the API's largest page
IdArgument = Annotated[str, typer.Argument(metavar="ID", help="Definition id.")]


def body_of(definition: DefinitionOut) -> dict[str, Any]:
    """What `push` takes back: the body the API accepts (trigger, status, subAccountId, the
    definition's name and steps), without the server's bookkeeping (ids, versions, times)."""
    body: dict[str, Any] = {
        "trigger": definition.trigger,
        "status": definition.status,
        "definition": {"name": definition.definition.name, "steps": definition.definition.steps},
    }
    if definition.subAccountId is not None:
        body["subAccountId"] = definition.subAccountId
    return body


def latest(client: RelayflowClient, definition_id: str) -> DefinitionOut:
    versions = client.definitions.get(definition_id, limit=1)
    if not versions:
        raise fail(f"no definition {definition_id}")
    return versions[0]


def all_versions(client: RelayflowClient, definition_id: str) -> list[DefinitionOut]:
    found: list[DefinitionOut] = []
    while True:
        page = client.definitions.get(definition_id, limit=PAGE, offset=len(found))
        found += page
        if len(page) < PAGE:
            return found


def version_of(client: RelayflowClient, definition_id: str, version: int) -> DefinitionOut:
    for found in all_versions(client, definition_id):
        if found.version == version:
            return found
    raise fail(f"definition {definition_id} has no version {version}")


def rows_of(definitions: list[DefinitionOut]) -> list[list[Any]]:
    return [
        [d.id, d.definition.name, d.version, d.trigger, d.status, d.createdAt] for d in definitions
    ]


COLUMNS = ["id", "name", "version", "trigger", "status", "created"]


@definitions_app.command("list")
def definitions_list(
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """The latest version of every definition, newest first."""
    with connected(server, key, account, profile) as client:
        found = list(client.definitions.iterate())
    emit(found, lambda: table("definitions", COLUMNS, rows_of(found)), json_output)


@definitions_app.command("get")
def definitions_get(
    definition_id: IdArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every version of a definition, newest first."""
    with connected(server, key, account, profile) as client:
        versions = all_versions(client, definition_id)
    if not versions:
        raise fail(f"no definition {definition_id}")
    emit(
        versions,
        lambda: table(f"versions of {definition_id}", COLUMNS, rows_of(versions)),
        json_output,
    )


@definitions_app.command("push")
def definitions_push(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A definition (JSON); - is stdin.")],
    definition_id: Annotated[
        str | None, typer.Option("--id", help="Update this definition (a new version).")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a definition from FILE, or with --id add FILE as its next version."""
    body = read_definition(file)
    with connected(server, key, account, profile) as client:
        if definition_id is None:
            saved = client.definitions.create(body)
        else:
            saved = client.definitions.update(definition_id, body)
    if json_output:
        emit(saved, None, True)
    else:
        typer.echo(f"{saved.id} version {saved.version} ({saved.status})")


@definitions_app.command("pull")
def definitions_pull(
    definition_id: IdArgument,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """The latest version as a body `push` accepts (keep it in git, push it from CI)."""
    with connected(server, key, account, profile) as client:
        found = latest(client, definition_id)
    text = json.dumps(body_of(found), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise fail(f"cannot write {output}: {error}") from None
    typer.echo(f"wrote version {found.version} to {output}")


def set_status(definition_id: str, status: str, connection: tuple[Any, ...]) -> None:
    with connected(*connection) as client:
        found = latest(client, definition_id)
        if found.status == status:
            typer.echo(f"{definition_id} is already {status} (version {found.version})")
            return
        saved = client.definitions.update(definition_id, {**body_of(found), "status": status})
    typer.echo(f"{definition_id} {status} (version {saved.version})")


@definitions_app.command("enable")
def definitions_enable(
    definition_id: IdArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Enable a definition (a new version with status enabled)."""
    set_status(definition_id, "enabled", (server, key, account, profile))


@definitions_app.command("disable")
def definitions_disable(
    definition_id: IdArgument,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Disable a definition: its triggers start nothing (running instances carry on)."""
    set_status(definition_id, "disabled", (server, key, account, profile))


@definitions_app.command("delete")
def definitions_delete(
    definition_id: IdArgument,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Only this one.")] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """Delete every version (or one): their running instances are terminated, as 8x8 does."""
    with connected(server, key, account, profile) as client:
        client.definitions.delete(definition_id, version=version)
    typer.echo(f"deleted {definition_id}" + (f" version {version}" if version else ""))


@definitions_app.command("diff")
def definitions_diff(
    definition_id: IdArgument,
    a: Annotated[int, typer.Argument(metavar="A", min=1, help="A version.")],
    b: Annotated[int, typer.Argument(metavar="B", min=1, help="Another version.")],
    server: ServerOption = None,
    key: KeyOption = None,
    account: RemoteAccountOption = None,
    profile: ProfileOption = None,
) -> None:
    """A unified diff of two versions' bodies (exit 0 whether or not they differ)."""
    with connected(server, key, account, profile) as client:
        older, newer = version_of(client, definition_id, a), version_of(client, definition_id, b)
    lines = difflib.unified_diff(
        json.dumps(body_of(older), indent=2, ensure_ascii=False).splitlines(),
        json.dumps(body_of(newer), indent=2, ensure_ascii=False).splitlines(),
        fromfile=f"{definition_id} version {a}",
        tofile=f"{definition_id} version {b}",
        lineterm="",
    )
    text = "\n".join(lines)
    typer.echo(text if text else f"versions {a} and {b} are the same")


def read_definition(file: Path) -> dict[str, Any]:
    try:
        raw = typer.get_binary_stream("stdin").read() if str(file) == "-" else file.read_bytes()
    except OSError as error:
        raise fail(f"cannot read {file}: {error}") from None
    try:
        return parse_json_object(raw)
    except JsonBodyError as error:
        raise fail(f"{file}: {error}") from None
