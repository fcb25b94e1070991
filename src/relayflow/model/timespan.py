""".NET `TimeSpan` strings as 8x8 uses them for Wait durations and wait timeouts.

Grammar (the .NET "c" format plus 8x8's bare-days form): `[-][d.]hh:mm[:ss[.fffffff]]` or a bare
integer meaning days (`"2"` = two days). Hours ≤ 23, minutes and seconds ≤ 59, as .NET enforces.
"""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(
    r"^(?P<neg>-)?(?:(?P<days>\d{1,8})\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?$",
    re.ASCII,  # \d must not accept other scripts' digits
)
_BARE_DAYS = re.compile(r"^\d{1,8}$", re.ASCII)


class TimespanError(ValueError):
    """The text is not a timespan; the message says what form is expected."""


def parse_timespan(text: str) -> timedelta:
    """Parse `text` into a `timedelta`, raising `TimespanError` with a helpful message."""
    value = text.strip()
    if _BARE_DAYS.match(value):
        return timedelta(days=int(value))
    match = _TIMESPAN.match(value)
    if match is None:
        raise TimespanError(
            f"'{text}' is not a timespan; expected [d.]hh:mm:ss (e.g. '1.06:30:15', '00:05:00') "
            "or a whole number of days (e.g. '2')."
        )
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise TimespanError(
            f"'{text}' is not a timespan: hours must be 0-23 and minutes/seconds 0-59."
        )
    fraction = (match["fraction"] or "0").ljust(7, "0")
    span = timedelta(
        days=int(match["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int(fraction) // 10,
    )
    return -span if match["neg"] else span


def parse_positive_timespan(text: str) -> timedelta:
    """Like `parse_timespan`, but waits cannot go backwards in time."""
    span = parse_timespan(text)
    if span < timedelta(0):
        raise TimespanError(f"'{text}' is negative; a wait cannot be shorter than zero.")
    return span
