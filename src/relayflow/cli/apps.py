"""The command tree: `relayflow` and its groups, which the command modules fill in."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="relayflow: workflow automation for messaging (8x8 Automation API).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
docs_app = typer.Typer(help="Print generated documentation.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(docs_app, name="docs")
sandbox_app = typer.Typer(
    help="Play the customer against the sandbox provider.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
definitions_app = typer.Typer(
    help="Definitions of a running relayflow (--server, --key, --account).", no_args_is_help=True
)
app.add_typer(definitions_app, name="definitions")
instances_app = typer.Typer(
    help="Instances of a running relayflow (--server, --key, --account).", no_args_is_help=True
)
app.add_typer(instances_app, name="instances")
