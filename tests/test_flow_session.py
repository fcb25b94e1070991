"""A recorded conversation (`relayflow simulate`, the console's virtual-time simulator) saves
as a flow test that replays to the same result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from relayflow.cli import app
from relayflow.testing.session import RecordedSession

GALLERY = Path(__file__).parents[1] / "src/relayflow/console/static/gallery"


def template(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((GALLERY / f"{name}.json").read_text())
    return body


async def record_ivr() -> dict[str, Any]:
    async with RecordedSession(template("ivr"), name="IVR by hand") as session:
        await session.http_trigger({"phone": "+6591234567"})
        await session.dtmf("1")
        await session.advance("00:05:00")
        return session.flowtest()


async def record_reply() -> dict[str, Any]:
    async with RecordedSession(template("sms-auto-reply")) as session:
        await session.inbound_sms("+6591234567", "hi", sub_account_id="acme_sms")
        await session.inbound_chat("whatsapp", "+6591234567", text="hello")
        return session.flowtest()


# Sync tests: `relayflow test` runs its own event loop.
def test_a_recorded_conversation_replays_as_a_passing_flow_test(tmp_path: Path) -> None:
    document = asyncio.run(record_ivr())
    assert [entry["do"] for entry in document["script"]] == ["http_trigger", "dtmf", "advance"]
    assert document["expect"]["outbox"][-1]["text"] == "Sales will call you back within the hour."
    assert document["expect"]["instances"][0]["status"] == "Complete"
    file = tmp_path / "ivr.flowtest.json"
    file.write_text(json.dumps(document, indent=2))
    result = CliRunner().invoke(app, ["test", str(file)])
    assert result.exit_code == 0, result.output
    assert "1 passed, 0 failed" in result.output


def test_a_recording_that_no_longer_holds_fails(tmp_path: Path) -> None:
    document = asyncio.run(record_reply())
    document["definition"]["definition"]["steps"][0]["inputs"]["text"] = "Changed since"
    file = tmp_path / "reply.flowtest.json"
    file.write_text(json.dumps(document, indent=2))
    result = CliRunner().invoke(app, ["test", str(file)])
    assert result.exit_code == 1
    assert 'expect.outbox[0].text: expected "Thanks for your message!' in result.output
