"""The record of a send keyed by its step execution, through the store's hot path (SQLite's
`store/messages` functions, PostgreSQL's one-statement versions): what a re-run after a crash
finds decides whether it sends again, so each state of the record is checked on both."""

from __future__ import annotations

from relayflow.api.context import AppContext
from relayflow.store.database import Database
from relayflow.store.hotpath import hot_path_for
from relayflow.store.messages import FAILED, SENDING, MessageRow
from tests.support.tenants import make_tenant

POINTER = "5f0c6a1e-7c1d-4c59-9d61-2f3a4b5c6d7e"


def attempt_row(row_id: str, at_ms: int, answer: dict[str, str] | None = None) -> MessageRow:
    return MessageRow(
        id=row_id,
        account_id="acme",
        instance_id="a" * 24,
        pointer_id=POINTER,
        channel="sms",
        provider="8x8",
        sub_account_id="acme_sms",
        recipient="+6591234567",
        client_message_id=POINTER,
        request={"destination": "+6591234567", "text": f"hi {at_ms}"},
        response=answer,
        status=SENDING if answer is None else "sent",
        created_at_ms=at_ms,
    )


async def test_a_retried_refusal_is_not_taken_for_the_answer_after_a_crash(
    db: Database, context: AppContext
) -> None:
    await make_tenant(context, "acme")
    sends = hot_path_for(db)
    first = await sends.record_attempt(attempt_row("m1", 1))
    assert first.answer is None
    await sends.record_answer(first.row_id, None, {"error": "busy"}, FAILED)
    again = await sends.record_attempt(attempt_row("m2", 2))  # the retry, before its call ...
    assert again.answer is None
    # ... and the process dies during the call: the re-run must call again, not return the
    # refusal of the attempt before as if it were this attempt's answer.
    rerun = await sends.record_attempt(attempt_row("m3", 3))
    assert rerun.answer is None
    assert rerun.row_id == first.row_id  # the same row, so the same clientMessageId goes out
    [message] = await context.messages.list_messages("acme", limit=10, offset=0)
    assert message.request["text"] == "hi 3"  # what the last attempt sent


async def test_an_answered_send_is_never_made_again(db: Database, context: AppContext) -> None:
    await make_tenant(context, "acme")
    sends = hot_path_for(db)
    first = await sends.record_attempt(attempt_row("m1", 1))
    await sends.record_answer(first.row_id, "umid-1", {"umid": "umid-1"}, "sent")
    rerun = await sends.record_attempt(attempt_row("m2", 2))
    assert rerun.answer == {"umid": "umid-1"}
    assert rerun.row_id == "umid-1"  # the answer's umid became the row's id


async def test_a_send_answered_in_process_keeps_its_first_answer(
    db: Database, context: AppContext
) -> None:
    await make_tenant(context, "acme")
    sends = hot_path_for(db)
    assert await sends.record_answered_send(attempt_row("u1", 1, {"umid": "u1"})) == {"umid": "u1"}
    again = await sends.record_answered_send(attempt_row("u2", 2, {"umid": "u2"}))
    assert again == {"umid": "u1"}
