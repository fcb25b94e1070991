"""8x8's inbound webhook bodies, as the tests send them."""

from __future__ import annotations

import uuid
from typing import Any

CUSTOMER = "+6591234567"


def inbound_sms(
    text: str,
    sender: str = CUSTOMER,
    umid: str | None = None,
    sub_account_id: str = "acme_sms",
) -> dict[str, Any]:
    """An `inbound_message_received` SMS webhook (a new umid unless one is given)."""
    return {
        "namespace": "SMS",
        "eventType": "inbound_message_received",
        "description": "SMS inbound message",
        "payload": {
            "umid": umid or str(uuid.uuid4()),
            "subAccountId": sub_account_id,
            "timestamp": "2026-01-01T14:34:56.017Z",
            "source": sender,
            "destination": "+6580000000",
            "body": text,
            "encoding": "GSM7",
            "smsCount": 1,
            "price": {"total": 0.04, "perSms": 0.04, "currency": "EUR"},
        },
    }
