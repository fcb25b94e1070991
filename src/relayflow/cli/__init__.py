"""The `relayflow` command line: serve, manage accounts and keys, validate, migrate.

`apps` holds the command tree; each module adds its commands to it when imported.
"""

from __future__ import annotations

from relayflow.cli import (
    accounts,
    database,
    definitions,
    docs,
    flows,
    instances,
    sandbox,
    server,
)
from relayflow.cli.apps import app

__all__ = [
    "accounts",
    "app",
    "database",
    "definitions",
    "docs",
    "flows",
    "instances",
    "main",
    "sandbox",
    "server",
]


def main() -> None:
    app()
