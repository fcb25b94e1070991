"""The record of a send keyed by its step execution (store/messages): what a re-run after a
crash finds decides whether it sends again, so each state of the record is checked."""

from __future__ import annotations

from relayflow.api.context import AppContext
from relayflow.store import messages as message_store
from relayflow.store.database import Database
from relayflow.store.messages import FAILED, MessageRow
from tests.support.tenants import make_tenant

POINTER = "5f0c6a1e-7c1d-4c59-9d61-2f3a4b5c6d7e"


def attempt_row(row_id: str, at_ms: int) -> MessageRow:
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
        request={"destination": "+6591234567", "text": "hi"},
        response=None,
        status="sending",
        created_at_ms=at_ms,
    )


async def test_a_retried_refusal_is_not_taken_for_the_answer_after_a_crash(
    db: Database, context: AppContext
) -> None:
    await make_tenant(context, "acme")
    async with db.transaction() as conn:
        first = await message_store.record_attempt(conn, attempt_row("m1", 1))
        assert first.answer is None
        await message_store.record_answer(conn, first.row_id, None, {"error": "busy"}, FAILED)
    async with db.transaction() as conn:  # the retry: recorded again before its call ...
        again = await message_store.record_attempt(conn, attempt_row("m2", 2))
        assert again.answer is None
    # ... and the process dies during the call: the re-run must call again, not return the
    # refusal of the attempt before as if it were this attempt's answer.
    async with db.transaction() as conn:
        rerun = await message_store.record_attempt(conn, attempt_row("m3", 3))
    assert rerun.answer is None
    assert rerun.row_id == first.row_id  # the same row, so the same clientMessageId goes out


async def test_an_answered_send_is_never_made_again(db: Database, context: AppContext) -> None:
    await make_tenant(context, "acme")
    async with db.transaction() as conn:
        first = await message_store.record_attempt(conn, attempt_row("m1", 1))
        await message_store.record_answer(conn, first.row_id, "umid-1", {"umid": "umid-1"}, "sent")
    async with db.transaction() as conn:
        rerun = await message_store.record_attempt(conn, attempt_row("m2", 2))
    assert rerun.answer == {"umid": "umid-1"}
