"""GSM-7 vs UCS-2 detection and segment counting, as 8x8 reports `encoding` and `smsCount`."""

from __future__ import annotations

import gsm0338  # noqa: F401 - registers the 'gsm03.38' codec

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def detect(text: str) -> tuple[str, int]:
    """(encoding, number of SMS parts) for `text` under AUTO encoding."""
    try:
        septets = len(text.encode("gsm03.38"))  # extension characters count 2
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        return "UCS2", _parts(units, UCS2_SINGLE, UCS2_PART)
    return "GSM7", _parts(septets, GSM7_SINGLE, GSM7_PART)


def _parts(length: int, single: int, part: int) -> int:
    if length <= single:
        return 1
    return -(-length // part)
