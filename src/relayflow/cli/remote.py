"""Commands that drive a running relayflow over its API, through `relayflow.client`.

Where the server, key and account come from, first match wins: the flags (`--server`, `--key`,
`--account`), their environment variables (`RELAYFLOW_SERVER`, `RELAYFLOW_API_KEY`,
`RELAYFLOW_ACCOUNT`), the profile named by `--profile` / `RELAYFLOW_PROFILE` (or the file's
`default_profile`) in `~/.config/relayflow/config.toml`, then the default server
`http://127.0.0.1:8080`. The key travels in the Authorization header only: never in a URL,
never printed.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from relayflow.cli.common import err, fail
from relayflow.client import RelayflowClient, RelayflowError
from relayflow.client.errors import ValidationError

DEFAULT_SERVER = "http://127.0.0.1:8080"
T = TypeVar("T")

ServerOption = Annotated[
    str | None,
    typer.Option("--server", envvar="RELAYFLOW_SERVER", help=f"Server URL [{DEFAULT_SERVER}]."),
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", envvar="RELAYFLOW_API_KEY", help="API key.", show_default=False),
]
RemoteAccountOption = Annotated[
    str | None, typer.Option("--account", envvar="RELAYFLOW_ACCOUNT", help="Account id.")
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="RELAYFLOW_PROFILE",
        help="A profile of ~/.config/relayflow/config.toml.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True)
class Connection:
    server: str
    key: str
    account: str


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "relayflow" / "config.toml"


def read_profile(name: str | None, path: Path | None = None) -> dict[str, str]:
    """The named profile (or the file's `default_profile`); {} when none is asked for and the
    file names no default. A missing or malformed file, or an unknown profile, is an error."""
    path = path or config_path()
    if not path.exists():
        if name is not None:
            raise fail(f"profile '{name}' asked for, but {path} does not exist")
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise fail(f"{path}: {error}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(path))} holds API keys: chmod 600 it",
            highlight=False,
        )
    chosen = name or document.get("default_profile")
    if chosen is None:
        return {}
    profile = document.get("profiles", {}).get(chosen)
    if not isinstance(profile, dict):
        raise fail(f"{path} has no [profiles.{chosen}] table")
    unknown = set(profile) - {"server", "key", "account"}
    if unknown:
        raise fail(f"[profiles.{chosen}]: unknown setting(s) {', '.join(sorted(unknown))}")
    return {field: str(value) for field, value in profile.items()}


def connection(
    server: str | None, key: str | None, account: str | None, profile: str | None
) -> Connection:
    settings = read_profile(profile)
    chosen_key = key or settings.get("key")
    chosen_account = account or settings.get("account")
    if not chosen_key:
        raise fail("no API key: --key, RELAYFLOW_API_KEY or a profile's `key`", 2)
    if not chosen_account:
        raise fail("no account: --account, RELAYFLOW_ACCOUNT or a profile's `account`", 2)
    return Connection(
        server or settings.get("server") or DEFAULT_SERVER, chosen_key, chosen_account
    )


@contextmanager
def connected(
    server: str | None, key: str | None, account: str | None, profile: str | None
) -> Iterator[RelayflowClient]:
    """A client of the chosen server; the server's refusals become a message and exit 1."""
    chosen = connection(server, key, account, profile)
    try:
        with RelayflowClient(chosen.server, chosen.key, chosen.account) as client:
            yield client
    except ValidationError as error:
        problems = "".join(f"\n  {p.path}: {p.message}" for p in error.errors)
        raise fail(f"{error.message} (code {error.code}){problems}") from None
    except RelayflowError as error:
        raise fail(describe(error, chosen.server)) from None


def describe(error: RelayflowError, server: str) -> str:
    if not error.status:  # nothing answered: a timeout or no connection
        return f"{server}: {error.message}"
    return f"{error.message} (HTTP {error.status}, code {error.code})"


def as_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return value


def emit(value: Any, as_table: Callable[[], Table] | None, json_output: bool) -> None:
    """`--json`: the API's own documents; otherwise a table for people."""
    if json_output or as_table is None:
        typer.echo(json.dumps(as_json(value), indent=2, ensure_ascii=False))
        return
    Console(soft_wrap=True).print(as_table())


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*["" if cell is None else str(cell) for cell in row])
    return shown
