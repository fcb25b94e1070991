"""`relayflow accounts` and `relayflow keys`: tenants, their provider, their API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from relayflow.api.context import AppContext
from relayflow.cli.apps import accounts_app, keys_app
from relayflow.cli.common import (
    DbOption,
    fail,
    print_json,
    run_on_database,
    with_runtime,
)
from relayflow.clock import SystemClock, iso_from_ms
from relayflow.config import DEFAULT_DATABASE_URL
from relayflow.services.accounts import PROVIDERS, AccountService


@accounts_app.command("create")
def accounts_create(
    account_id: Annotated[
        str, typer.Argument(metavar="ID", help="Account id, e.g. your 8x8 account id.")
    ],
    provider: Annotated[
        str, typer.Option(help=f"Messaging provider: {', '.join(PROVIDERS)}.")
    ] = "sandbox",
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Create an account; prints {"accountId", "apiKey", "webhookToken"} (shown only once)."""
    created = run_on_database(
        db, lambda database: AccountService(database, SystemClock()).create(account_id, provider)
    )
    print_json(created.as_json())


@accounts_app.command("list")
def accounts_list(
    db: DbOption = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List accounts with their provider and number of active keys."""
    rows = run_on_database(db, lambda database: AccountService(database, SystemClock()).list_all())
    if as_json:
        print_json(
            [
                {
                    "accountId": r.id,
                    "provider": r.provider,
                    "activeKeys": r.active_keys,
                    "createdAt": iso_from_ms(r.created_at_ms),
                }
                for r in rows
            ]
        )
        return
    table = Table("account", "provider", "active keys", "created")
    for r in rows:
        table.add_row(r.id, r.provider, str(r.active_keys), iso_from_ms(r.created_at_ms))
    # Never cut ids short when stdout is not a terminal (80 columns by default).
    Console(width=max(100, 60 + max((len(r.id) for r in rows), default=0))).print(table)


@accounts_app.command("set-provider")
def accounts_set_provider(
    account_id: Annotated[str, typer.Argument(metavar="ID")],
    provider: Annotated[str, typer.Argument(metavar="PROVIDER", help="sandbox or 8x8.")],
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="RELAYFLOW_8X8_API_KEY", help="The 8x8 API key."),
    ] = None,
    region: Annotated[str | None, typer.Option(help="apac (default), us, uk or id.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="One URL for all three 8x8 APIs (proxy, tests)."),
    ] = None,
    sms_url: Annotated[str | None, typer.Option("--sms-url", help="8x8 SMS API base URL.")] = None,
    chatapps_url: Annotated[
        str | None, typer.Option("--chatapps-url", help="8x8 Chat Apps API base URL.")
    ] = None,
    voice_url: Annotated[
        str | None, typer.Option("--voice-url", help="8x8 Voice API base URL.")
    ] = None,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Send through the sandbox or through 8x8 with the account's API key (stored encrypted
    with RELAYFLOW_SECRET_KEY; never printed)."""
    if provider not in ("sandbox", "8x8"):
        raise fail("PROVIDER must be 'sandbox' or '8x8'")
    if provider == "8x8" and not api_key:
        raise fail("--api-key (or RELAYFLOW_8X8_API_KEY) is required for 8x8")

    async def apply(runtime: AppContext) -> Any:
        if provider == "sandbox":
            return await runtime.provider_settings.use_sandbox(account_id)
        assert api_key is not None
        return await runtime.provider_settings.use_8x8(
            account_id,
            api_key,
            region=region,
            base_url=base_url,
            sms_url=sms_url,
            chatapps_url=chatapps_url,
            voice_url=voice_url,
        )

    view = with_runtime(db, account_id, apply)
    print_json(view.as_json())


@accounts_app.command("show-provider")
def accounts_show_provider(
    account_id: Annotated[str, typer.Argument(metavar="ID")], db: DbOption = DEFAULT_DATABASE_URL
) -> None:
    """The account's provider settings (the API key is never shown)."""
    view = with_runtime(db, account_id, lambda runtime: runtime.provider_settings.get(account_id))
    print_json(view.as_json())


@keys_app.command("create")
def keys_create(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="May also change provider settings.")
    ] = False,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Create another API key for an account; prints it once."""
    key = run_on_database(
        db,
        lambda database: AccountService(database, SystemClock()).create_key(
            account_id, name, admin=admin
        ),
    )
    print_json(key.as_json())


@keys_app.command("list")
def keys_list(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """List an account's keys (ids only: secrets are never stored)."""
    rows = run_on_database(
        db, lambda database: AccountService(database, SystemClock()).list_keys(account_id)
    )
    print_json(
        [
            {
                "keyId": r.id,
                "name": r.name,
                "createdAt": iso_from_ms(r.created_at_ms),
                "revokedAt": iso_from_ms(r.revoked_at_ms) if r.revoked_at_ms else None,
                "admin": r.is_admin,
            }
            for r in rows
        ]
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID")], db: DbOption = DEFAULT_DATABASE_URL
) -> None:
    """Revoke an API key by its id; requests with it get 401 from now on."""
    run_on_database(db, lambda database: AccountService(database, SystemClock()).revoke_key(key_id))
    typer.echo(f"revoked {key_id}")
