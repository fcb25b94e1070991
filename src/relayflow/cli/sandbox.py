"""`relayflow sandbox`: play the customer against the sandbox provider."""

from __future__ import annotations

from typing import Annotated

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
from relayflow.config import DEFAULT_DATABASE_URL


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
) -> None:
    """A customer sends an SMS: routed like 8x8's inbound SMS webhook."""
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
) -> None:
    """A customer sends a chat-apps message (or presses a button with --payload)."""
    if text is None and payload is None:
        raise fail("give the message TEXT and/or --payload")
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
) -> None:
    """The callee of a say&capture call presses keys."""
    if not client_request_id and not uid:
        raise fail("give --client-request-id or --uid of the voice message")
    if not digits or any(c not in "0123456789*#" for c in digits):
        raise fail("digits may only contain 0-9, * and #")
    event, result = with_runtime(
        db, account, lambda rt: rt.sandbox.dtmf(account, client_request_id, uid, digits)
    )
    print_json({"event": event, **result.as_json()})


@sandbox_app.command("outbox")
def sandbox_outbox(
    account: AccountOption = "demo",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    channel: Annotated[str | None, typer.Option(help="sms, chatapps or voice.")] = None,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Messages your workflows sent, newest first, with the exact 8x8 request bodies."""
    rows = with_runtime(
        db,
        account,
        lambda rt: rt.sandbox.outbox(
            account, limit=limit, offset=0, channel=channel, workflow_id=None
        ),
    )
    print_json([message_json(row) for row in rows])
