"""`relayflow docs`: generated documentation."""

from __future__ import annotations

import typer

from relayflow.cli.apps import docs_app
from relayflow.errors import error_table_markdown


@docs_app.command("errors")
def docs_errors() -> None:
    """The error-code table in Markdown (the README's table is generated with this)."""
    typer.echo(error_table_markdown())
