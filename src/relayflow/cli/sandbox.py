"""`relayflow sandbox`: play the customer against the sandbox provider.

On the local database (`--db`) by default; against a running relayflow with `--server` (or
`--profile`), through its API, with the key from `--key` / `RELAYFLOW_API_KEY` / the profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from relayflow.api.shapes import message_json
from relayflow.cli.apps import sandbox_app
from relayflow.cli.common import (
    AccountOption,
    DbOption,
    fail,
    print_json,
    with_runtime,
)
from relayflow.cli.remote import KeyOption, ProfileOption, as_json, connected
from relayflow.client import RelayflowClient
from relayflow.config import DEFAULT_DATABASE_URL

RemoteServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Drive this running relayflow instead of the local --db."),
]


def remote(
    server: str | None,
    key: str | None,
    account: str,
    profile: str | None,
    call: Callable[[RelayflowClient], Any],
) -> bool:
    """Run `call` against the server and print its answer, when a server was asked for."""
    if server is None and profile is None:
        return False
    with connected(server, key, account, profile) as client:
        print_json(as_json(call(client)))
    return True


@sandbox_app.command("sms")
def sandbox_sms(
    sender: Annotated[
        str, typer.Argument(metavar="FROM", help="Customer number, e.g. +6591234567.")
    ],
    text: Annotated[str, typer.Argument(help="Message text.")],
    to: Annotated[str, typer.Option(help="Your virtual number.")] = "+6580000000",
    sub_account: Annotated[str | None, typer.Option("--sub-account", help="subAccountId.")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
    server: RemoteServerOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """A customer sends an SMS: routed like 8x8's inbound SMS webhook."""
    if remote(
        server,
        key,
        account,
        profile,
        lambda c: c.sandbox.inbound_sms(sender, to, text, sub_account_id=sub_account),
    ):
        return
    event, result = with_runtime(
        db, account, lambda rt: rt.sandbox.inbound_sms(account, sender, to, text, sub_account)
    )
    print_json({"event": event, **result.as_json()})


@sandbox_app.command("chat")
def sandbox_chat(
    channel: Annotated[str, typer.Argument(help="whatsapp, viber, line, RCS, ...")],
    sender: Annotated[str, typer.Argument(metavar="FROM", help="Phone number or channel user id.")],
    text: Annotated[str | None, typer.Argument(help="Message text.")] = None,
    payload: Annotated[str | None, typer.Option(help="Quick-reply button payload.")] = None,
    sub_account: Annotated[str | None, typer.Option("--sub-account", help="subAccountId.")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
    server: RemoteServerOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """A customer sends a chat-apps message (or presses a button with --payload)."""
    if text is None and payload is None:
        raise fail("give the message TEXT and/or --payload")
    if remote(
        server,
        key,
        account,
        profile,
        lambda c: c.sandbox.inbound_chat(
            channel, sender, text=text, payload=payload, sub_account_id=sub_account
        ),
    ):
        return
    event, result = with_runtime(
        db,
        account,
        lambda rt: rt.sandbox.inbound_chat(account, channel, sender, text, payload, sub_account),
    )
    print_json({"event": event, **result.as_json()})


@sandbox_app.command("dtmf")
def sandbox_dtmf(
    digits: Annotated[str, typer.Argument(help="Keys pressed, e.g. 1.")],
    client_request_id: Annotated[str | None, typer.Option("--client-request-id")] = None,
    uid: Annotated[str | None, typer.Option("--uid")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
    server: RemoteServerOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """The callee of a say&capture call presses keys."""
    if not client_request_id and not uid:
        raise fail("give --client-request-id or --uid of the voice message")
    if not digits or any(c not in "0123456789*#" for c in digits):
        raise fail("digits may only contain 0-9, * and #")
    if remote(
        server,
        key,
        account,
        profile,
        lambda c: c.sandbox.dtmf(digits, client_request_id=client_request_id, uid=uid),
    ):
        return
    event, result = with_runtime(
        db, account, lambda rt: rt.sandbox.dtmf(account, client_request_id, uid, digits)
    )
    print_json({"event": event, **result.as_json()})


@sandbox_app.command("outbox")
def sandbox_outbox(
    account: AccountOption = "demo",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    channel: Annotated[
        Literal["sms", "chatapps", "voice"] | None, typer.Option(help="sms, chatapps or voice.")
    ] = None,
    db: DbOption = DEFAULT_DATABASE_URL,
    server: RemoteServerOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Messages your workflows sent, newest first, with the exact 8x8 request bodies."""
    if remote(
        server,
        key,
        account,
        profile,
        lambda c: c.sandbox.outbox(channel=channel, limit=limit),
    ):
        return
    rows = with_runtime(
        db,
        account,
        lambda rt: rt.sandbox.outbox(
            account, limit=limit, offset=0, channel=channel, workflow_id=None
        ),
    )
    print_json([message_json(row) for row in rows])
