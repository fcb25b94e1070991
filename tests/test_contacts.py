"""Who an instance is about (engine/contacts.py): recorded at start for the console's filter."""

from __future__ import annotations

from relayflow.engine.contacts import MAX_CONTACTS, contacts_of, phone_digits
from relayflow.services.sandbox import chat_event, sms_event


def test_phone_numbers_become_their_digits() -> None:
    assert phone_digits("+65 9123-4567") == "6591234567"
    assert phone_digits("(065) 9123.4567") == "06591234567"
    assert phone_digits("12345") is None  # too short
    assert phone_digits("+1234567890123456") is None  # too long
    assert phone_digits("order 42") is None


def test_an_inbound_sms_is_about_its_sender_not_our_number() -> None:
    event = sms_event("u1", "+65 9123 4567", "+6580000000", "hi", "sub", 0)
    assert contacts_of(event) == ("6591234567",)


def test_a_chat_message_is_about_its_user() -> None:
    event = chat_event("u1", "whatsapp", "+6591234567", "hi", None, None, 0)
    assert contacts_of(event) == ("6591234567",)
    line = {"payload": {"user": {"lineUserId": "U4af4980629", "name": "Ann"}}}
    assert contacts_of(line) == ("U4af4980629",)


def test_an_http_body_is_searched_a_few_levels_deep_within_bounds() -> None:
    body = {"customer": {"phone": "+44 7759 251098", "name": "Bo"}, "to": "+6580000000"}
    assert contacts_of(body) == ("447759251098",)
    many = {"numbers": [f"+659100{n:04d}" for n in range(100)]}
    assert len(contacts_of(many)) == MAX_CONTACTS
    deep: dict[str, object] = {"a": {"b": {"c": {"d": {"e": "+6591234567"}}}}}
    assert contacts_of(deep) == ()
    assert contacts_of("not an object") == ()
    assert contacts_of({"userId": "x" * 500}) == ()
