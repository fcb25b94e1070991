"""What the deployment files may name: `relayflow …` command lines and RELAYFLOW_* variables.

A command line is checked by relayflow's own CLI (typer's command group parses it exactly as
the process would, environment included, without running it); a variable must be a field of
`relayflow.config.Settings` (nested fields with `__`) or the envvar of a CLI option.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.core import TyperCommand, TyperGroup

from relayflow.cli import app
from relayflow.config import Settings

VARIABLE = re.compile(r"\bRELAYFLOW_[A-Z0-9_]+\b")


Command = TyperCommand | TyperGroup


def cli() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _commands(group: TyperGroup) -> Iterator[Command]:
    for command in group.commands.values():
        assert isinstance(command, TyperCommand | TyperGroup)
        yield command
        if isinstance(command, TyperGroup):
            yield from _commands(command)


def resolve(words: list[str]) -> tuple[Command, dict[str, Any]]:
    """The command `words` names and the values it would run with (flags, then the
    environment, then defaults); fails the test for an unknown command or option."""
    assert words[:1] == ["relayflow"], f"not a relayflow command line: {words}"
    command: Command = cli()
    rest = words[1:]
    path = ["relayflow"]
    while isinstance(command, TyperGroup):
        if not rest or rest[0] not in command.commands:
            pytest.fail(f"{' '.join(words)!r}: {' '.join(path)} has no command {rest[:1]}")
        path.append(rest[0])
        found = command.commands[rest.pop(0)]
        assert isinstance(found, TyperCommand | TyperGroup)
        command = found
    try:
        context = command.make_context(" ".join(path), rest)
    except typer.TyperException as error:  # the CLI's usage errors: unknown option, bad value
        problem = str(error)
    else:
        return command, dict(context.params)
    pytest.fail(f"{' '.join(words)!r}: {problem}")


def option_names(command: Command) -> set[str]:
    return {name for param in command.params for name in param.opts if name.startswith("-")}


def cli_variables() -> set[str]:
    names: set[str] = set()
    for command in _commands(cli()):
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
    return names


def settings_variables() -> set[str]:
    names: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            variable = f"{prefix}{name.upper()}"
            names.add(variable)
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                walk(info.annotation, f"{variable}__")

    walk(Settings, str(Settings.model_config.get("env_prefix") or ""))
    return names


def unknown_variables(text: str) -> set[str]:
    """RELAYFLOW_* names in `text` that neither Settings nor the CLI reads."""
    return set(VARIABLE.findall(text)) - settings_variables() - cli_variables()
