"""Failures the fake can be told to inject, so retry and fault paths can be tested for real.

Three kinds, strongest first:
- outages (`/outage`): every request of a role fails one way until a deadline or until ended,
  the way a provider or a customer's CRM is down for a while; they consume nothing else;
- counted rules (`/fail`): the next N matching requests fail one way, first rule first;
- a seeded random rate per role (`/fail-rate`).
With the same seed and the same sequence of requests the random draws are the same, so
fault-injection tests are reproducible.

Modes: "500", "503", "429", "401", "400" answer that status (the role's error body); "slow"
answers normally after `delay`; "drop" closes the connection unanswered (nothing accepted);
"lost" accepts and records the request for real, then closes the connection before the answer
is written (accepted, but the sender cannot know).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

MODES = ("500", "503", "429", "slow", "drop", "lost", "401", "400")
# "slow" is not a failure: an outage of slow answers would just be a slow site.
OUTAGE_MODES = tuple(mode for mode in MODES if mode != "slow")
# Modes whose request is still processed normally (and so answered or recorded for real).
PROCESSED_MODES = ("slow", "lost")
ROLES = ("sms", "chatapps", "voice", "crm")


class FaultError(ValueError):
    """A control request describing a fault the fake cannot inject."""


@dataclass(frozen=True)
class Fault:
    """One injected failure: `mode`, plus `retry_after` (seconds, None = not given by the test)
    and `delay` (slow) in seconds."""

    mode: str
    retry_after: int | None = None
    delay: float = 2.0

    @property
    def wait(self) -> int:
        """The seconds a 429 asks for: 1 unless the test said otherwise."""
        return 1 if self.retry_after is None else self.retry_after

    def headers(self) -> dict[str, str]:
        """`Retry-After` as the answer carries it: always on 429, on 503 only when given, so a
        test can check both a retry that honours the header and one that must back off alone."""
        if self.mode == "429":
            return {"Retry-After": str(self.wait)}
        if self.mode == "503" and self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {}


@dataclass
class _Counted:
    role: str
    fault: Fault
    remaining: int


@dataclass
class _Rate:
    rate: float
    modes: tuple[str, ...]
    rng: random.Random
    retry_after: int | None
    delay: float


@dataclass
class _Outage:
    fault: Fault
    until: float | None  # a time.monotonic() deadline; None = until `DELETE /outage`

    def remaining(self, now: float) -> float | None:
        return None if self.until is None else round(max(0.0, self.until - now), 3)


def _role(value: Any) -> str:
    role = "*" if value is None else value
    if role != "*" and role not in ROLES:
        raise FaultError(f"role must be one of {', '.join(ROLES)} or '*'")
    return str(role)


def _mode(value: Any, allowed: tuple[str, ...] = MODES) -> str:
    mode = str(value)
    if mode not in allowed:
        raise FaultError(f"mode must be one of {', '.join(allowed)}")
    return mode


def _seconds(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise FaultError(f"{name} must be a number of seconds >= 0")
    return float(value)


def _timing(spec: dict[str, Any]) -> tuple[int | None, float]:
    retry_after = spec.get("retryAfter")
    if retry_after is not None:
        retry_after = math.ceil(_seconds(retry_after, "retryAfter"))
    return retry_after, _seconds(spec.get("delay", 2.0), "delay")


class FaultPlan:
    """The faults still to inject; `take(role)` says how the next request of `role` fails."""

    def __init__(self) -> None:
        self._counted: list[_Counted] = []
        self._rates: dict[str, _Rate] = {}
        self._outages: dict[str, _Outage] = {}

    def clear(self) -> None:
        self._counted.clear()
        self._rates.clear()
        self._outages.clear()

    def add(self, spec: dict[str, Any]) -> None:
        """`{role, mode, count=1, retryAfter?, delay=2}` from `POST /fail`."""
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultError("count must be an integer >= 1")
        retry_after, delay = _timing(spec)
        fault = Fault(_mode(spec.get("mode")), retry_after, delay)
        self._counted.append(_Counted(_role(spec.get("role")), fault, count))

    def set_rate(self, spec: dict[str, Any]) -> None:
        """`{role, rate, modes, seed?, retryAfter?, delay?}` (`POST /fail-rate`); rate 0 = off."""
        role, rate = _role(spec.get("role")), spec.get("rate")
        if not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultError("rate must be a number from 0 to 1")
        if rate == 0:
            self._rates.pop(role, None)
            return
        modes = spec.get("modes") or ["500"]
        if not isinstance(modes, list):
            raise FaultError("modes must be a list")
        retry_after, delay = _timing(spec)
        rng = random.Random(spec.get("seed"))
        self._rates[role] = _Rate(float(rate), tuple(map(_mode, modes)), rng, retry_after, delay)

    def start_outage(self, spec: dict[str, Any]) -> None:
        """`{role="*", mode="503", seconds?, retryAfter?}` (`POST /outage`); replaces the role's
        outage. Without `seconds` it lasts until `end_outages()`."""
        role = _role(spec.get("role"))
        mode = _mode(spec.get("mode", "503"), OUTAGE_MODES)
        seconds, until = spec.get("seconds"), None
        if seconds is not None:
            if not _seconds(seconds, "seconds"):
                raise FaultError("seconds must be > 0 (leave it out for an open-ended outage)")
            until = time.monotonic() + float(seconds)
        retry_after, _ = _timing(spec)
        self._outages[role] = _Outage(Fault(mode, retry_after), until)

    def end_outages(self) -> None:
        self._outages.clear()

    def _active_outages(self) -> dict[str, _Outage]:
        """The outages not yet over (finished ones are forgotten here)."""
        now = time.monotonic()
        for role, outage in list(self._outages.items()):
            if outage.until is not None and outage.until <= now:
                del self._outages[role]
        return self._outages

    def take(self, role: str) -> Fault | None:
        outages = self._active_outages()
        outage = outages.get(role) or outages.get("*")
        if outage is not None:  # consumes no counted rule and no random draw
            return outage.fault
        for rule in self._counted:
            if rule.role in (role, "*"):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._counted.remove(rule)
                return rule.fault
        rate = self._rates.get(role) or self._rates.get("*")
        if rate is not None and rate.rng.random() < rate.rate:
            return Fault(rate.rng.choice(rate.modes), rate.retry_after, rate.delay)
        return None

    def describe(self) -> dict[str, Any]:
        """What is still pending, for `GET /faults`."""
        now = time.monotonic()
        return {
            "counted": [
                {"role": rule.role, "mode": rule.fault.mode, "remaining": rule.remaining}
                for rule in self._counted
            ],
            "rates": {
                role: {"rate": rate.rate, "modes": list(rate.modes)}
                for role, rate in self._rates.items()
            },
            "outages": [
                {"role": role, "mode": outage.fault.mode, "remaining": outage.remaining(now)}
                for role, outage in self._active_outages().items()
            ],
        }
