"""A recorded conversation with one flow in virtual time: what `relayflow simulate` and the
console's virtual-time simulator drive, and what they save as a `*.flowtest.json`.

Each action is run on a `FlowEnvironment` and written down as the flow-test file's own script
entry, so the saved file replays the conversation exactly, and its `expect` holds what happened.
"""

from __future__ import annotations

from typing import Any

from relayflow.clock import iso_from_ms
from relayflow.testing.environment import FlowEnvironment
from relayflow.testing.update import INSTANCE_KEYS


class RecordedSession:
    """`async with RecordedSession(definition) as session:` then actions, then `flowtest()`."""

    def __init__(
        self,
        definition: dict[str, Any],
        *,
        name: str = "recorded conversation",
        mocks: dict[str, Any] | None = None,
        account: str = "acme",
        start: str | int | None = None,
    ) -> None:
        self.name = name
        self._definition = definition
        self._mocks = mocks
        self.env = FlowEnvironment(definition, mocks=mocks, account=account, start=start)
        self.script: list[dict[str, Any]] = []
        self.started_at_ms = self.env.clock.now_ms()

    async def __aenter__(self) -> RecordedSession:
        await self.env.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.env.__aexit__(None, None, None)

    def _record(self, entry: dict[str, Any]) -> None:
        self.script.append({key: value for key, value in entry.items() if value is not None})

    async def inbound_sms(
        self, sender: str, text: str, *, to: str | None = None, sub_account_id: str | None = None
    ) -> list[str]:
        started = await self.env.inbound_sms(
            sender, text, to=to or "+6580000000", sub_account_id=sub_account_id
        )
        self._record(
            {
                "do": "inbound_sms",
                "from": sender,
                "to": to,
                "text": text,
                "subAccountId": sub_account_id,
            }
        )
        return started

    async def inbound_chat(
        self,
        channel: str,
        sender: str,
        *,
        text: str | None = None,
        payload: str | None = None,
        sub_account_id: str | None = None,
    ) -> list[str]:
        started = await self.env.inbound_chat(
            channel, sender, text=text, payload=payload, sub_account_id=sub_account_id
        )
        self._record(
            {
                "do": "inbound_chat",
                "channel": channel,
                "from": sender,
                "text": text,
                "payload": payload,
                "subAccountId": sub_account_id,
            }
        )
        return started

    async def http_trigger(
        self, body: dict[str, Any], *, sub_account_id: str | None = None
    ) -> list[str]:
        started = await self.env.http_trigger(body, sub_account_id=sub_account_id)
        self._record({"do": "http_trigger", "body": body, "subAccountId": sub_account_id})
        return started

    async def dtmf(self, digits: str, *, to: str | None = None) -> list[str]:
        started = await self.env.dtmf(digits, to=to)
        self._record({"do": "dtmf", "digits": digits, "to": to})
        return started

    async def advance(self, by: str | int) -> None:
        await self.env.advance(by)
        self._record({"do": "advance", "by": by})

    def clock_iso(self) -> str:
        """The virtual time now."""
        return iso_from_ms(self.env.clock.now_ms())

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """What happened so far, in the shape of a flow test's `expect`."""
        return {
            "outbox": list(self.env.outbox),
            "instances": [
                {key: instance[key] for key in INSTANCE_KEYS if key in instance}
                for instance in self.env.instances
            ],
            "httpCalls": self.env.http_calls,
        }

    def flowtest(self) -> dict[str, Any]:
        """The conversation as a flow-test document: replaying it gives the same `expect`."""
        document: dict[str, Any] = {
            "name": self.name,
            "definition": self._definition,
            "account": self.env.account_id,
            "start": iso_from_ms(self.started_at_ms),
        }
        if self._mocks:
            document["mocks"] = self._mocks
        document["script"] = list(self.script)
        document["expect"] = self.state()
        return document
