"""8x8's regional API hosts (spec §10; the voice API has one host)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hosts:
    sms: str
    chatapps: str
    voice: str


REGIONS: dict[str, Hosts] = {
    "apac": Hosts("https://sms.8x8.com", "https://chatapps.8x8.com", "https://voice.8x8.com"),
    "us": Hosts("https://sms.us.8x8.com", "https://chatapps.us.8x8.com", "https://voice.8x8.com"),
    "uk": Hosts("https://sms.8x8.uk", "https://chatapps.8x8.uk", "https://voice.8x8.com"),
    "id": Hosts("https://sms.8x8.id", "https://chatapps.8x8.id", "https://voice.8x8.com"),
}
DEFAULT_REGION = "apac"
