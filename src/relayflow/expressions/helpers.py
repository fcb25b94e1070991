"""The expression helper functions (spec §8.3) and their `GET /steps/functions` descriptors.

`isCountryCode`, `isTimeOfDayBetween`, `isDayOfWeek` and `uuid` run in Python (phonenumbers,
zoneinfo, uuid4) and reach JavaScript through the jail's memoised host-call protocol;
`stringContains` is pure JavaScript (see `jail.py`). Arguments arrive as JSON values, so
every helper checks its types itself and raises `HelperError` with a message that names the
helper: the jail turns it into an expression error instead of crashing the step.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime
from typing import Any

import phonenumbers

from relayflow import ids
from relayflow.expressions.timezones import UnknownTimeZoneError, to_zoneinfo

JsonValue = Any


class HelperError(ValueError):
    """A helper was called with arguments it cannot use."""


# --- argument parsing -------------------------------------------------------------------------

_PHONE_NOISE = re.compile(r"[\s\-().]")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,7})?)?$")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _text(helper: str, name: str, value: JsonValue) -> str:
    if not isinstance(value, str):
        raise HelperError(f"{helper}: {name} must be a string, not {_describe(value)}")
    return value


def _describe(value: JsonValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def parse_timestamp(helper: str, value: JsonValue) -> datetime:
    """An ISO date or date-time (no offset = UTC), an RFC 1123 date, or epoch milliseconds.

    The result keeps the offset it was written with, so callers can read the local date.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise HelperError(f"{helper}: timestamp {value} is out of range") from None
    text = _text(helper, "timestamp", value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise HelperError(
                f"{helper}: cannot parse timestamp '{text[:60]}' "
                "(expected e.g. '2021-05-25' or '2021-05-25T14:40:15+07:00')"
            ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _time_of_day(helper: str, name: str, value: JsonValue) -> time:
    text = _text(helper, name, value).strip()
    match = _TIME_OF_DAY.match(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise HelperError(f"{helper}: {name} '{text[:20]}' is not a time of day like '09:00:00'")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


# --- the helpers ------------------------------------------------------------------------------


def is_country_code(phone_number: JsonValue, country_code: JsonValue) -> bool:
    """True when the number belongs to the ISO 3166-1 alpha-2 country.

    libphonenumber's region decides for valid numbers; otherwise the country calling code
    decides when it maps to exactly one region (`+6512345678` is not a valid SG number, but
    +65 is only Singapore). Digits without `+` (chat-apps `channelUserId`s) are international.
    """
    helper = "isCountryCode"
    region = _text(helper, "countryCode", country_code).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise HelperError(
            f"{helper}: countryCode '{region[:10]}' is not a two-letter country code like 'SG'"
        )
    if phone_number is None:
        return False  # a missing sender is not in any country
    if isinstance(phone_number, int) and not isinstance(phone_number, bool):
        phone_number = str(phone_number)
    number = _PHONE_NOISE.sub("", _text(helper, "phoneNumber", phone_number))
    if number.startswith("00"):
        number = "+" + number[2:]
    elif not number.startswith("+"):
        number = "+" + number
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    if phonenumbers.is_valid_number(parsed):
        return phonenumbers.region_code_for_number(parsed) == region
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(parsed.country_code or 0, ())
    return len(regions) == 1 and regions[0] == region


def is_time_of_day_between(
    timestamp: JsonValue, time_from: JsonValue, time_to: JsonValue, timezone_id: JsonValue
) -> bool:
    """True when the timestamp's local time in the zone is within [from, to] (inclusive).

    A range whose end is before its start crosses midnight (`22:00:00`–`06:00:00`). The local
    time is compared to the second, so `18:00:00.900` is still within `…–18:00:00`.
    """
    helper = "isTimeOfDayBetween"
    instant = parse_timestamp(helper, timestamp)
    start = _time_of_day(helper, "timeFrom", time_from)
    end = _time_of_day(helper, "timeTo", time_to)
    try:
        zone = to_zoneinfo(_text(helper, "timezoneId", timezone_id))
    except UnknownTimeZoneError as error:
        raise HelperError(f"{helper}: {error}") from None
    try:
        local = instant.astimezone(zone).time().replace(microsecond=0, tzinfo=None)
    except OverflowError:
        raise HelperError(f"{helper}: timestamp is out of range") from None
    if start <= end:
        return start <= local <= end
    return local >= start or local <= end


def is_day_of_week(date_or_timestamp: JsonValue, day: JsonValue) -> bool:
    """True when the date falls on `day` (any case; `Tue` works too).

    A timestamp counts by the date written in it: `2021-05-25T23:30:00-05:00` is a Tuesday even
    though it is Wednesday in UTC.
    """
    helper = "isDayOfWeek"
    name = _text(helper, "day", day).strip().lower()
    matches = [index for index, full in enumerate(_DAYS) if name in (full, full[:3])]
    if not matches:
        raise HelperError(f"{helper}: day '{name[:20]}' is not a day of the week like 'Monday'")
    when: date = parse_timestamp(helper, date_or_timestamp).date()
    return when.weekday() == matches[0]


def new_uuid() -> str:
    """A random (version 4) UUID string (seeded in flow tests: `relayflow.ids`)."""
    return ids.new_uuid()


HOST_HELPERS: dict[str, Callable[..., JsonValue]] = {
    "isCountryCode": is_country_code,
    "isTimeOfDayBetween": is_time_of_day_between,
    "isDayOfWeek": is_day_of_week,
    "uuid": new_uuid,
}
_ARITY = {name: len(inspect.signature(helper).parameters) for name, helper in HOST_HELPERS.items()}


def helper_arities() -> dict[str, int]:
    """Name -> number of parameters of every host helper (the jail generates its stubs)."""
    return dict(_ARITY)


def call_helper(name: str, args: list[JsonValue]) -> JsonValue:
    """Run a host helper for the jail; `HelperError` for unknown names or bad arguments."""
    helper = HOST_HELPERS.get(name)
    if helper is None:
        raise HelperError(f"unknown helper function '{name}'")
    arity = _ARITY[name]
    if len(args) != arity:  # cannot happen from JavaScript: the stubs pad or cut to the arity
        raise HelperError(f"{name}: expected {arity} arguments, got {len(args)}")
    return helper(*args)


# --- GET /steps/functions ---------------------------------------------------------------------


def _parameter(
    name: str,
    description: str,
    example: JsonValue,
    *,
    kind: str = "string",
    required: bool = True,
    default: JsonValue = None,
) -> dict[str, JsonValue]:
    return {
        "name": name,
        "type": kind,
        "required": required,
        "default": default,
        "example": example,
        "description": description,
    }


FUNCTIONS: list[dict[str, JsonValue]] = [
    {
        "name": "isCountryCode",
        "description": "Checks if a phone number belongs to a country. Returns true or false.",
        "parameters": [
            _parameter(
                "phoneNumber",
                "Phone number in international format; the leading '+' may be omitted.",
                "+6512345678",
            ),
            _parameter("countryCode", "Two-letter ISO 3166-1 country code.", "SG"),
        ],
        "example": "isCountryCode('+6512345678', 'SG')",
    },
    {
        "name": "stringContains",
        "description": "Checks if a string contains another string. Returns true or false.",
        "parameters": [
            _parameter("source", "The string to search in.", "Hello World"),
            _parameter("value", "The string to search for.", "world"),
            _parameter(
                "ignoreCase",
                "Ignore upper and lower case when comparing.",
                True,
                kind="boolean",
                required=False,
                default=False,
            ),
        ],
        "example": "stringContains('Hello World', 'world', true)",
    },
    {
        "name": "isTimeOfDayBetween",
        "description": (
            "Checks if the time of day of a timestamp, in the given time zone, is between two "
            "times (inclusive; a range that ends before it starts crosses midnight). "
            "Returns true or false."
        ),
        "parameters": [
            _parameter(
                "timestamp",
                "Date and time; without an offset it is UTC. "
                "Standard date and datetime formats are supported.",
                "2020-10-15T14:40:15+07:00",
            ),
            _parameter("timeFrom", "Start of the range, HH:mm:ss.", "09:00:00"),
            _parameter("timeTo", "End of the range, HH:mm:ss.", "18:00:00"),
            _parameter(
                "timezoneId",
                "Time zone id, as listed by GET /steps/timezones.",
                "Singapore Standard Time",
            ),
        ],
        "example": (
            "isTimeOfDayBetween('2020-10-15T14:40:15+07:00', '09:00:00', '18:00:00', "
            "'Singapore Standard Time')"
        ),
    },
    {
        "name": "isDayOfWeek",
        "description": (
            "Checks if a date or timestamp falls on a given day of the week. Returns true or false."
        ),
        "parameters": [
            _parameter(
                "timestamp",
                "Date or a timestamp. Standard date and datetime formats are supported.",
                "2021-05-25",
            ),
            _parameter("day", "Day of the week (not case sensitive).", "Monday"),
        ],
        "example": "isDayOfWeek('2021-05-25', 'Tuesday')",
    },
    {
        "name": "uuid",
        "description": "Generates a new random UUID string.",
        "parameters": [],
        "example": "uuid()",
    },
]
