"""Windows time-zone ids (8x8's vocabulary) mapped to IANA zones, and the `/steps/timezones` list.

8x8 names zones by their Windows id ("Singapore Standard Time"). We map them to IANA zones with
tzlocal's copy of CLDR's windowsZones.xml so daylight saving follows tzdata. IANA names are
accepted too (an extension: they are unambiguous and cannot clash with a Windows id).
The list names each zone as 8x8 does, by its Windows display name with the offset last
("Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna (UTC+01:00)"): the places come from
`windows_zone_names.json` (no maintained package ships them), the offset from tzdata.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

_WINDOWS_TO_IANA: dict[str, str] = dict(win_tz)

# `[{id, name}]` sorted by current standard offset, then name. Built on first access by the module
# `__getattr__` below: loading 142 zones costs tens of milliseconds we do not want at import.
TIMEZONES: list[dict[str, str]]
_BY_LOWER: dict[str, str] = {windows_id.lower(): windows_id for windows_id in _WINDOWS_TO_IANA}


class UnknownTimeZoneError(ValueError):
    """The id is neither a Windows time-zone id nor an IANA zone name."""


def windows_ids() -> list[str]:
    """Every Windows time-zone id we can map, in alphabetical order."""
    return sorted(_WINDOWS_TO_IANA)


def to_zoneinfo(windows_id: str) -> ZoneInfo:
    """The IANA zone for a Windows id (case-insensitive); IANA names pass through."""
    if not isinstance(windows_id, str) or not windows_id.strip():
        raise UnknownTimeZoneError(f"time zone id must be a non-empty string, not {windows_id!r}")
    key = windows_id.strip()
    canonical = _BY_LOWER.get(key.lower())
    if canonical is not None:
        return ZoneInfo(_WINDOWS_TO_IANA[canonical])
    if "/" in key or key.upper() == "UTC":
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise UnknownTimeZoneError(
        f"unknown time zone id '{windows_id}' (expected a Windows id such as "
        "'Singapore Standard Time'; see GET /steps/timezones)"
    )


def _standard_offset(zone: ZoneInfo, now: datetime) -> timedelta:
    local = now.astimezone(zone)
    return (local.utcoffset() or timedelta(0)) - (local.dst() or timedelta(0))


def _format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def _places() -> dict[str, str]:
    """Windows id -> the places of its display name ("Amsterdam, Berlin, ..."), package data."""
    text = resources.files(__package__).joinpath("windows_zone_names.json").read_text("utf-8")
    names: dict[str, str] = json.loads(text)["names"]
    return names


def _city(iana: str) -> str:
    """A Windows id without a vendored display name (one newer than the file) is named after
    its IANA zone's city, so every id stays listed."""
    return iana.rsplit("/", 1)[-1].replace("_", " ")


@functools.cache
def _timezones() -> list[dict[str, str]]:
    """Sorted as Windows and 8x8 list them: by current standard offset, then name."""
    now = datetime.now(UTC)
    places = _places()
    rows: list[tuple[timedelta, str, str]] = []
    for windows_id, iana in _WINDOWS_TO_IANA.items():
        offset = _standard_offset(ZoneInfo(iana), now)
        name = f"{places.get(windows_id) or _city(iana)} ({_format_offset(offset)})"
        rows.append((offset, name, windows_id))
    rows.sort()
    return [{"id": windows_id, "name": name} for _, name, windows_id in rows]


def search(contains: str | None = None) -> list[dict[str, str]]:
    """`GET /steps/timezones?contains=`: case-insensitive substring match on the name or the
    Windows id, as 8x8 does (its `contains=europe` example lists "W. Europe Standard Time")."""
    zones = _timezones()
    if not contains:
        return [dict(zone) for zone in zones]
    needle = contains.lower()
    return [
        dict(zone)
        for zone in zones
        if needle in zone["id"].lower() or needle in zone["name"].lower()
    ]


def __getattr__(name: str) -> Any:
    """Build `TIMEZONES` on first access (a fresh copy each time: callers may mutate it)."""
    if name == "TIMEZONES":
        return search(None)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
