"""Windows time-zone ids for `/steps/timezones` and `isTimeOfDayBetween`."""

from __future__ import annotations

import re

import pytest

from relayflow.expressions import timezones
from relayflow.expressions.timezones import TIMEZONES, UnknownTimeZoneError, search, to_zoneinfo

NAME = re.compile(r"^\S.* \(UTC[+-]\d\d:\d\d\)$")


def _offset_minutes(name: str) -> int:
    match = re.search(r"\(UTC([+-])(\d\d):(\d\d)\)$", name)
    assert match is not None
    minutes = int(match[2]) * 60 + int(match[3])
    return -minutes if match[1] == "-" else minutes


def test_every_windows_id_is_listed_once_with_its_display_name() -> None:
    ids = [zone["id"] for zone in TIMEZONES]
    assert len(ids) == len(set(ids)) == len(timezones.windows_ids()) >= 140
    assert all(set(zone) == {"id", "name"} and NAME.match(zone["name"]) for zone in TIMEZONES)
    singapore = {"id": "Singapore Standard Time", "name": "Kuala Lumpur, Singapore (UTC+08:00)"}
    assert singapore in TIMEZONES
    assert {"id": "UTC", "name": "Coordinated Universal Time (UTC+00:00)"} in TIMEZONES
    # Standard offsets, not the daylight-saving one of the moment:
    berlin = "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna (UTC+01:00)"
    assert {"id": "W. Europe Standard Time", "name": berlin} in TIMEZONES
    india = "Chennai, Kolkata, Mumbai, New Delhi (UTC+05:30)"
    assert {"id": "India Standard Time", "name": india} in TIMEZONES


def test_sorted_by_offset_then_name() -> None:
    keys = [(_offset_minutes(zone["name"]), zone["name"]) for zone in TIMEZONES]
    assert keys == sorted(keys)
    assert keys[0][0] == -12 * 60
    assert keys[-1][0] == 14 * 60


def test_timezones_is_a_copy() -> None:
    TIMEZONES.clear()
    assert len(timezones.TIMEZONES) >= 140


def test_search_is_a_case_insensitive_substring_match() -> None:
    assert search(None) == timezones.TIMEZONES
    assert search("") == timezones.TIMEZONES
    assert search("SINGAPORE") == [
        {"id": "Singapore Standard Time", "name": "Kuala Lumpur, Singapore (UTC+08:00)"}
    ]
    assert [zone["id"] for zone in search("berlin")] == ["W. Europe Standard Time"]
    assert all("+08:00" in zone["name"] for zone in search("utc+08:00"))
    assert search("no such zone") == []


@pytest.mark.parametrize(
    ("zone_id", "key"),
    [
        ("Singapore Standard Time", "Asia/Singapore"),
        ("singapore standard time", "Asia/Singapore"),
        (" W. Europe Standard Time ", "Europe/Berlin"),
        ("SE Asia Standard Time", "Asia/Bangkok"),
        ("North Asia East Standard Time", "Asia/Irkutsk"),
        ("UTC", "Etc/UTC"),
        ("America/New_York", "America/New_York"),
    ],
)
def test_to_zoneinfo(zone_id: str, key: str) -> None:
    assert to_zoneinfo(zone_id).key == key


@pytest.mark.parametrize("zone_id", ["Nowhere Standard Time", "", "Mars/Olympus", "../etc/passwd"])
def test_unknown_ids_raise_a_clear_error(zone_id: str) -> None:
    with pytest.raises(UnknownTimeZoneError, match="time zone id"):
        to_zoneinfo(zone_id)
