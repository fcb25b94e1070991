from datetime import timedelta

import pytest

from relayflow.model.timespan import TimespanError, parse_positive_timespan, parse_timespan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.6:30:15", timedelta(days=1, hours=6, minutes=30, seconds=15)),
        ("0.00:01:00", timedelta(minutes=1)),
        ("00:02:00", timedelta(minutes=2)),
        ("1.00:00:00", timedelta(days=1)),
        ("2", timedelta(days=2)),
        (" 3 ", timedelta(days=3)),
        ("00:05", timedelta(minutes=5)),
        ("00:00:01.5", timedelta(seconds=1, milliseconds=500)),
        ("00:00:00.0000001", timedelta(0)),  # 100 ns rounds down to 0 µs
        ("00:00:00.1234567", timedelta(microseconds=123456)),
        ("-00:01:00", timedelta(minutes=-1)),
        ("10675199.02:48:05", timedelta(days=10675199, hours=2, minutes=48, seconds=5)),
    ],
)
def test_parses_dotnet_timespans(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "1.24:00:00",
        "1:60:00",
        "00:00:60",
        "1.2.3",
        "01:02:03:04",
        "1e3",
        "P1D",
        "00:00:00.12345678",
        "-1",
        "1 day",
        "１",
    ],
)
def test_rejects_everything_else(text: str) -> None:
    with pytest.raises(TimespanError):
        parse_timespan(text)


def test_waits_cannot_be_negative() -> None:
    with pytest.raises(TimespanError, match="negative"):
        parse_positive_timespan("-00:00:01")
    assert parse_positive_timespan("00:00:00") == timedelta(0)
