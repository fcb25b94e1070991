"""Flows offline: `validate` a definition, `test` flow tests, `simulate` a conversation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from relayflow.cli.apps import app
from relayflow.cli.common import (
    fail,
    print_json,
)
from relayflow.config import Settings
from relayflow.jsonbody import JsonBodyError, parse_json_object
from relayflow.logs import configure_logging
from relayflow.model.validation import validate_definition_input
from relayflow.testing.command import run_command as run_flow_tests
from relayflow.testing.simulate import run_simulation


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(help="Definition JSON file ('-' for stdin).", allow_dash=True)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a definition offline; if invalid, list every problem and exit with code 1."""
    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        document = parse_json_object(raw, what=str(file))
    except OSError as error:
        raise fail(f"cannot read {file}: {error.strerror}") from None
    except JsonBodyError as error:
        raise fail(str(error)) from None
    result = validate_definition_input(document, Settings().limits)
    if as_json:
        print_json({"valid": result.valid, "errors": [p.as_json() for p in result.problems]})
    elif result.valid:
        typer.echo(f"{file}: valid")
    else:
        for problem in result.problems:
            typer.echo(f"{problem.path or '(body)'}: [{int(problem.code)}] {problem.message}")
    if not result.valid:
        raise typer.Exit(1)


@app.command("test")
def flow_test(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH", help="*.flowtest.json files, or directories searched recursively."
        ),
    ],
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", metavar="FILE", help="Also write JUnit XML.")
    ] = None,
    keyword: Annotated[
        str | None,
        typer.Option(
            "-k", metavar="SUBSTRING", help="Only tests whose name or file name contains it."
        ),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Write what happened into each file's expect.")
    ] = False,
) -> None:
    """Run flow tests on the real engine with a virtual clock and mocks; exit 0 if all pass,
    1 if any fails, 2 for an unreadable or invalid test file."""
    # Engine logs go to stderr as JSON, warnings and worse only: the report stays on stdout.
    configure_logging("warning")
    code = run_flow_tests(
        paths,
        keyword=keyword,
        junit=junit_xml,
        update=update,
        out=typer.echo,
        err=lambda line: typer.echo(line, err=True),
    )
    raise typer.Exit(code)


@app.command("simulate")
def flow_simulate(
    flow: Annotated[
        Path,
        typer.Argument(metavar="FLOW.json", help="A definition (the body of POST /definitions)."),
    ],
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            metavar="FILE",
            help="Run these commands (one a line) and print the transcript.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", metavar="ISO", help="Virtual start time (default 2026-01-05T09:00:00Z)."
        ),
    ] = None,
    mocks: Annotated[
        Path | None,
        typer.Option(
            "--mocks", metavar="FILE", help="A flow test's mocks object (HTTP, provider answers)."
        ),
    ] = None,
) -> None:
    """Play the customer against a flow in virtual time; /save writes a flow test. Exit 1 when an
    action of --script fails, 2 for an unreadable or invalid flow, mocks or script file."""
    configure_logging("warning")
    code = run_simulation(
        flow,
        script=script,
        start=start,
        mocks=mocks,
        out=typer.echo,
        err=lambda line: typer.echo(line, err=True),
    )
    raise typer.Exit(code)
