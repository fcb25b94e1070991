"""`relayflow sandbox ...` drives the same router as the HTTP sandbox endpoints."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from relayflow.cli import app
from relayflow.clock import SystemClock
from relayflow.config import Settings
from relayflow.runtime import Runtime
from relayflow.store.database import Database

runner = CliRunner()


def cli(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_worker(url: str) -> None:
    async def main() -> None:
        runtime = Runtime(Settings(database_url=url), Database(url), SystemClock())
        try:
            await runtime.worker.run_until_idle()
        finally:
            await runtime.close()

    asyncio.run(main())


def define(url: str, body: dict) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        runtime = Runtime(Settings(database_url=url), Database(url), SystemClock())
        try:
            await runtime.definitions.create("demo", body)
        finally:
            await runtime.close()

    asyncio.run(main())


def test_sandbox_commands_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("accounts", "create", "demo", "--db", url)
    define(
        url,
        {
            "trigger": "inbound_sms",
            "status": "enabled",
            "definition": {
                "name": "ivr",
                "steps": [
                    {
                        "id": "call",
                        "stepType": "VoiceMessage",
                        "nextStepId": "keys",
                        "inputs": {
                            "subAccountId": "demo_voice",
                            "action": "say&capture",
                            "clientRequestId": "req-1",
                            "params": {"destination": "{{data.payload.source}}", "text": "Press 1"},
                        },
                    },
                    {
                        "id": "keys",
                        "stepType": "WaitForDTMF",
                        "inputs": {"dtmfRequestId": "req-1"},
                        "nextStepId": "bye",
                    },
                    {
                        "id": "bye",
                        "stepType": "SMS",
                        "inputs": {
                            "subAccountId": "demo_sms",
                            "destination": "{{data.payload.source}}",
                            "text": "You pressed {{data.keysPressed}}",
                        },
                    },
                ],
            },
        },
    )
    started = cli("sandbox", "sms", "+6591234567", "call me", "--db", url)
    assert started["event"]["payload"]["body"] == "call me"
    assert len(started["started"]) == 1
    run_worker(url)
    [call] = cli("sandbox", "outbox", "--channel", "voice", "--db", url)
    assert call["request"]["clientRequestId"] == "req-1"
    pressed = cli("sandbox", "dtmf", "1", "--client-request-id", "req-1", "--db", url)
    assert pressed["resumed"] == started["started"]
    assert pressed["event"]["actionDetails"] == {"dtmf": "1"}
    assert pressed["event"]["destination"] == "+6591234567"
    run_worker(url)
    [sms] = cli("sandbox", "outbox", "--channel", "sms", "--db", url)
    assert sms["request"]["destination"] == "+6591234567"
    chat = cli("sandbox", "chat", "whatsapp", "+6591234567", "hi", "--payload", "YES", "--db", url)
    assert chat["event"]["payload"]["content"] == {"text": "hi", "payload": "YES"}


def test_sandbox_commands_reject_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("accounts", "create", "demo", "--db", url)
    for args in (
        ("sandbox", "dtmf", "1"),
        ("sandbox", "dtmf", "1a", "--uid", "x"),
        ("sandbox", "chat", "whatsapp", "+6591234567"),
    ):
        result = runner.invoke(app, [*args, "--db", url])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output


def test_sandbox_commands_name_an_unknown_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(
        app, ["sandbox", "sms", "+6591234567", "hi", "-a", "nobody", "--db", url]
    )
    assert result.exit_code == 1
    assert "Account 'nobody' does not exist." in result.output
