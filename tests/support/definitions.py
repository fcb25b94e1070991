"""Small valid definitions to create and run: the auto reply, a named definition, SMS steps."""

from __future__ import annotations

from typing import Any


def sms_step(step_id: str, destination: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "demo_sms", "destination": destination, "text": text},
        **extra,
    }


def definition(name: str, trigger: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"trigger": trigger, "status": "enabled", "definition": {"name": name, "steps": steps}}


def sms_definition(
    name: str = "Auto reply", text: str = "Thanks!", **top: object
) -> dict[str, object]:
    """A small valid definition; keyword arguments override top-level fields."""
    body: dict[str, object] = {
        "trigger": "inbound_sms",
        "status": "enabled",
        "definition": {
            "name": name,
            "steps": [
                {
                    "id": "reply",
                    "stepType": "SMS",
                    "inputs": {
                        "subAccountId": "acme_sms",
                        "destination": "{{data.payload.source}}",
                        "text": text,
                    },
                }
            ],
        },
    }
    body.update(top)
    return body
