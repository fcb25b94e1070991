"""Helper functions (spec §8.3) in Python, and their `GET /steps/functions` descriptors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from relayflow.expressions.helpers import (
    FUNCTIONS,
    HelperError,
    call_helper,
    is_country_code,
    is_day_of_week,
    is_time_of_day_between,
    new_uuid,
)

# --- isCountryCode ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        ("+6512345678", "SG", True),  # spec example: not a valid SG number, but +65 is only SG
        ("+6591234567", "SG", True),
        ("6591234567", "SG", True),  # chat-apps channelUserId: digits without '+'
        ("006591234567", "SG", True),
        ("+65 9123-4567", "sg", True),
        (6591234567, "SG", True),
        ("+6591234567", "MY", False),
        ("+14155552671", "US", True),
        ("+14155552671", "CA", False),
        ("+16135550123", "CA", True),
        ("+15555555555", "US", False),  # invalid, and +1 is shared by many regions
        ("+33612345678", "FR", True),
        ("+447400123456", "GB", True),
        ("not a number", "SG", False),
        ("", "SG", False),
        ("+", "SG", False),
        (None, "SG", False),
        ("+6591234567", "XX", False),
    ],
)
def test_is_country_code(number: Any, country: str, expected: bool) -> None:
    assert is_country_code(number, country) is expected


@pytest.mark.parametrize(
    ("number", "country", "message"),
    [
        ({"n": 1}, "SG", "phoneNumber must be a string"),
        (True, "SG", "phoneNumber must be a string"),
        ("+6591234567", "SGP", "two-letter country code"),
        ("+6591234567", None, "countryCode must be a string"),
        ("+6591234567", 65, "countryCode must be a string"),
    ],
)
def test_is_country_code_rejects_bad_arguments(number: Any, country: Any, message: str) -> None:
    with pytest.raises(HelperError, match=message) as caught:
        is_country_code(number, country)
    assert str(caught.value).startswith("isCountryCode: ")


# --- isTimeOfDayBetween -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "start", "end", "zone", "expected"),
    [
        # spec example: 14:40 at +07:00 is 15:40 in Singapore
        ("2020-10-15T14:40:15+07:00", "09:00:00", "18:00:00", "Singapore Standard Time", True),
        ("2020-10-15T14:40:15+07:00", "16:00:00", "18:00:00", "Singapore Standard Time", False),
        # no offset means UTC: 01:00 UTC is 09:00 in Singapore, and bounds are inclusive
        ("2020-10-15T01:00:00", "09:00:00", "18:00:00", "Singapore Standard Time", True),
        ("2020-10-15T10:00:00Z", "09:00:00", "18:00:00", "Singapore Standard Time", True),
        ("2020-10-15T10:00:00.900Z", "09:00:00", "18:00:00", "Singapore Standard Time", True),
        ("2020-10-15T10:00:01Z", "09:00:00", "18:00:00", "Singapore Standard Time", False),
        ("2020-10-15T00:59:59Z", "09:00:00", "18:00:00", "Singapore Standard Time", False),
        # a range that crosses midnight
        ("2020-10-15T15:30:00Z", "22:00:00", "06:00:00", "Singapore Standard Time", True),
        ("2020-10-15T21:30:00Z", "22:00:00", "06:00:00", "Singapore Standard Time", True),
        ("2020-10-15T22:00:00Z", "22:00:00", "06:00:00", "Singapore Standard Time", True),
        ("2020-10-15T23:00:00Z", "22:00:00", "06:00:00", "Singapore Standard Time", False),
        ("2020-10-15T06:00:00Z", "22:00:00", "06:00:00", "UTC", True),
        # daylight saving: Berlin is UTC+2 in July and UTC+1 in January
        ("2021-07-01T07:30:00Z", "09:00", "17:00", "W. Europe Standard Time", True),
        ("2021-01-15T07:30:00Z", "09:00", "17:00", "W. Europe Standard Time", False),
        ("2021-01-15T08:00:00Z", "9:00", "17:00", "w. europe standard time", True),
        # IANA names and epoch milliseconds work too
        ("2020-10-15T01:00:00Z", "09:00:00", "18:00:00", "Asia/Singapore", True),
        (1602723600000, "09:00:00", "18:00:00", "Singapore Standard Time", True),
    ],
)
def test_is_time_of_day_between(
    timestamp: Any, start: str, end: str, zone: str, expected: bool
) -> None:
    assert is_time_of_day_between(timestamp, start, end, zone) is expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2020-10-15T14:40:15Z", "09:00", "18:00", "Nowhere Standard Time"), "unknown time zone"),
        (("2020-10-15T14:40:15Z", "09:00", "18:00", None), "timezoneId must be a string"),
        (("yesterday", "09:00", "18:00", "UTC"), "cannot parse timestamp 'yesterday'"),
        ((None, "09:00", "18:00", "UTC"), "timestamp must be a string"),
        (("2020-10-15T14:40:15Z", "9am", "18:00", "UTC"), "timeFrom '9am' is not a time of day"),
        (("2020-10-15T14:40:15Z", "09:00", "25:00", "UTC"), "timeTo '25:00' is not a time of day"),
        (("2020-10-15T14:40:15Z", "09:00", ["18:00"], "UTC"), "timeTo must be a string"),
        ((1e300, "09:00", "18:00", "UTC"), "out of range"),
    ],
)
def test_is_time_of_day_between_rejects_bad_arguments(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(HelperError, match=message) as caught:
        is_time_of_day_between(*args)
    assert str(caught.value).startswith("isTimeOfDayBetween: ")


# --- isDayOfWeek ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "day", "expected"),
    [
        ("2021-05-25", "Tuesday", True),  # spec example
        ("2021-05-25", "Monday", False),
        ("2021-05-25", "TUESDAY", True),
        ("2021-05-25", "tue", True),
        ("2021-05-25T23:30:00-05:00", "Tuesday", True),  # the local date as written
        ("2021-05-25T23:30:00Z", "tuesday", True),
        ("2021-05-25T23:30:00", "Tuesday", True),
        ("2021-05-30T10:00:00.0000000+08:00", "Sunday", True),
        ("Tue, 25 May 2021 10:00:00 GMT", "Tuesday", True),
        (1621900800000, "Tuesday", True),  # 2021-05-25T00:00:00Z in epoch milliseconds
    ],
)
def test_is_day_of_week(when: Any, day: str, expected: bool) -> None:
    assert is_day_of_week(when, day) is expected


@pytest.mark.parametrize(
    ("when", "day", "message"),
    [
        ("2021-05-25", "Funday", "not a day of the week"),
        ("2021-05-25", None, "day must be a string"),
        ("25th of May", "Tuesday", "cannot parse timestamp"),
        ({"date": "2021-05-25"}, "Tuesday", "timestamp must be a string, not an object"),
    ],
)
def test_is_day_of_week_rejects_bad_arguments(when: Any, day: Any, message: str) -> None:
    with pytest.raises(HelperError, match=message):
        is_day_of_week(when, day)


# --- uuid and the dispatcher ------------------------------------------------------------------


def test_uuid_is_random_version_4() -> None:
    values = {new_uuid() for _ in range(100)}
    assert len(values) == 100
    assert all(uuid.UUID(value).version == 4 for value in values)


def test_call_helper_dispatches_and_checks_arity() -> None:
    assert call_helper("isCountryCode", ["+6512345678", "SG"]) is True
    assert call_helper("isDayOfWeek", ["2021-05-25", "Tuesday"]) is True
    with pytest.raises(HelperError, match="unknown helper function 'open'"):
        call_helper("open", ["/etc/passwd"])
    with pytest.raises(HelperError, match="expected 2 arguments, got 1"):
        call_helper("isCountryCode", ["+6512345678"])


# --- GET /steps/functions ---------------------------------------------------------------------

SPEC_IS_DAY_OF_WEEK_PARAMETERS = [
    {
        "name": "timestamp",
        "type": "string",
        "required": True,
        "default": None,
        "example": "2021-05-25",
        "description": "Date or a timestamp. Standard date and datetime formats are supported.",
    },
    {
        "name": "day",
        "type": "string",
        "required": True,
        "default": None,
        "example": "Monday",
        "description": "Day of the week (not case sensitive).",
    },
]


def test_functions_cover_every_helper() -> None:
    names = [function["name"] for function in FUNCTIONS]
    assert names == ["isCountryCode", "stringContains", "isTimeOfDayBetween", "isDayOfWeek", "uuid"]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function["name"])
def test_function_descriptors_have_the_documented_shape(function: dict[str, Any]) -> None:
    assert list(function) == ["name", "description", "parameters", "example"]
    assert isinstance(function["description"], str)
    assert function["description"]
    assert function["example"].startswith(function["name"] + "(")
    for parameter in function["parameters"]:
        assert set(parameter) == {"name", "type", "required", "default", "example", "description"}
        assert parameter["type"] in ("string", "boolean")
        assert isinstance(parameter["required"], bool)
        assert isinstance(parameter["description"], str)
        assert parameter["description"]
        if parameter["required"]:
            assert parameter["default"] is None


def test_is_day_of_week_descriptor_matches_8x8() -> None:
    (descriptor,) = [function for function in FUNCTIONS if function["name"] == "isDayOfWeek"]
    assert descriptor["parameters"] == SPEC_IS_DAY_OF_WEEK_PARAMETERS
    assert descriptor["example"] == "isDayOfWeek('2021-05-25', 'Tuesday')"
    assert descriptor["description"].startswith(
        "Checks if a date or timestamp falls on a given day of the week."
    )
