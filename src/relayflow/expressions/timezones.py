"""Windows time-zone ids (8x8's vocabulary) mapped to IANA zones, and the `/steps/timezones` list.

8x8 names zones by their Windows id ("Singapore Standard Time"). We map them to IANA zones with
tzlocal's copy of CLDR's windowsZones.xml so daylight saving follows tzdata. IANA names are
accepted too (an extension: they are unambiguous and cannot clash with a Windows id).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

_WINDOWS_TO_IANA: dict[str, str] = dict(win_tz)

# `[{id, name}]` sorted by current standard offset, then id. Built on first access by the module
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


@functools.cache
def _timezones() -> list[dict[str, str]]:
    now = datetime.now(UTC)
    rows: list[tuple[timedelta, str, str]] = []
    for windows_id, iana in _WINDOWS_TO_IANA.items():
        offset = _standard_offset(ZoneInfo(iana), now)
        rows.append((offset, windows_id, f"{iana} ({_format_offset(offset)})"))
    rows.sort()
    return [{"id": windows_id, "name": name} for _, windows_id, name in rows]


def search(contains: str | None = None) -> list[dict[str, str]]:
    """`GET /steps/timezones?contains=`: case-insensitive substring match on id or name."""
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
